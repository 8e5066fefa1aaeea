/**
 * The pipeline's stages coalesce the concurrent jobs of one stage in one process into batches
 * (issue 15: "batch where it pays"; connector/shared/batcher.ts). Each BullMQ job still carries one
 * order id and completes or retries on its own; its handler hands the id to the batcher and waits
 * for that order's outcome. The batch does the PostgreSQL work of all of them at once (one load,
 * one conditional UPDATE per transition, one audit append, one addBulk of the next stage), so the
 * per-order cost falls with the batch size. Everything a batch does is per order and idempotent,
 * so a crash in the middle leaves each order where a re-run of its own job picks it up (the same
 * guarantees as one job at a time), and a batch that fails as a whole can run its orders again
 * one by one.
 */

import { StageBatcher, type BatchRunner } from '../connector/shared/batcher';

export { StageBatcher, type BatchOptions, type BatchRunner } from '../connector/shared/batcher';

/**
 * At most `size` holders at once; the others wait in arrival order. The submit stage holds one
 * from the last lockdown look to the bank's answer, so however many jobs a stage takes at once,
 * no more than `size` requests per process are past that look when a lockdown lands.
 */
export class Slots {
  private free: number;
  private readonly waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`slots must be a whole number >= 1, got ${size}`);
    this.free = size;
  }

  /** How many wait for a slot now. */
  get queued(): number {
    return this.waiting.length;
  }

  async hold<T>(work: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free -= 1;
    else await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free += 1;
    }
  }
}

/** One shared object per (context, name) in this process: a stage's batcher, the send slots. */
const shared = new WeakMap<object, Map<string, unknown>>();

export function perContext<T>(owner: object, name: string, make: () => T): T {
  let byName = shared.get(owner);
  if (!byName) shared.set(owner, (byName = new Map()));
  if (!byName.has(name)) byName.set(name, make());
  return byName.get(name) as T;
}

/** One batcher per (context, stage): every job of that stage in this process shares it. */
export function stageBatcher<T, R>(owner: object, stage: string, make: () => StageBatcher<T, R>): StageBatcher<T, R> {
  return perContext(owner, `batcher:${stage}`, make);
}

/** The batcher of a pipeline stage (validate, sign, submit, track), sized by `worker.batchSize` and `worker.batchWaitMs`. */
export function pipelineStageBatcher<T, R>(
  context: { config: { worker: { batchSize: number; batchWaitMs: number } } },
  stage: string,
  runner: BatchRunner<T, R>,
): StageBatcher<T, R> {
  const { batchSize, batchWaitMs } = context.config.worker;
  // A batch that fails as a whole runs its orders again one by one: an order whose data breaks the
  // batch's statement costs only its own job an attempt (PostgreSQL down fails each alone, as before).
  return stageBatcher(context, stage, () => new StageBatcher(runner, { maxBatch: batchSize, maxWaitMs: batchWaitMs, isolateFailures: true }));
}
