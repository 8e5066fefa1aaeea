/**
 * Coalesces concurrent calls into batches: each caller hands over one item and waits for its own
 * outcome; the runner does the work of the whole batch at once. A batch starts when `maxBatch`
 * items are waiting or `maxWaitMs` after the first one arrived: when calls are few each waits at
 * most that long; when they are many the batch fills at once. The pipeline's stages use it
 * (queue/stage-batcher.ts), and the bank sandbox for the status polls that arrive together.
 */
export interface BatchOptions {
  maxBatch: number;
  maxWaitMs: number;
  /**
   * When the runner fails for the whole batch, run each item of it again alone, so that one item
   * whose data breaks the batch's statement fails only its own caller and the others go through.
   * Only for runners whose work is per item and idempotent (a failed batch changed nothing, or
   * what it changed a re-run finds done): the pipeline's stages.
   */
  isolateFailures?: boolean;
}

/** One outcome per item, in the order given; an Error fails that item's job only. */
export type BatchRunner<T, R> = (items: T[]) => Promise<Array<R | Error>>;

interface Waiting<T, R> {
  item: T;
  resolve(value: R): void;
  reject(err: unknown): void;
}

export class StageBatcher<T, R> {
  private waiting: Array<Waiting<T, R>> = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly runner: BatchRunner<T, R>,
    private readonly options: BatchOptions,
  ) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new Error(`maxBatch must be a whole number >= 1, got ${options.maxBatch}`);
  }

  run(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      if (this.waiting.length >= this.options.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.maxWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting.splice(0, this.options.maxBatch);
    if (this.waiting.length > 0) this.timer = setTimeout(() => this.flush(), 0);
    if (batch.length === 0) return;
    // A batch that fails as a whole: every caller gets the error, or, isolating, its own item's run alone.
    this.runBatch(batch, (err) => {
      if (!this.options.isolateFailures || batch.length === 1) batch.forEach((w) => w.reject(err));
      else for (const w of batch) this.runBatch([w], (alone) => w.reject(alone));
    });
  }

  /** Runs `batch` and hands each caller its own outcome; `failed` gets an error of the whole batch. */
  private runBatch(batch: Array<Waiting<T, R>>, failed: (err: unknown) => void): void {
    this.runner(batch.map((w) => w.item)).then((outcomes) => {
      batch.forEach((w, i) => {
        const outcome = outcomes[i];
        if (outcomes.length !== batch.length) w.reject(new Error(`batch runner returned ${outcomes.length} outcomes for ${batch.length} items`));
        else if (outcome instanceof Error) w.reject(outcome);
        else w.resolve(outcome as R);
      });
    }, failed);
  }
}
