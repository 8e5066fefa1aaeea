import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { ConnectorError } from '../../connector/shared/errors';
import type { ExpectedIdentity, KeyFacts, SignResult, WorkerReply, WorkerRequest, WorkerSetup } from './signing.protocol';

type Pending = { resolve: (reply: WorkerReply) => void; reject: (err: Error) => void; timer: NodeJS.Timeout };
/** `cameUp`: the worker answered a ping; `failedStarts`: workers of this slot in a row that died before that. */
type Slot = { worker: Worker; pending: Map<number, Pending>; ready: boolean; cameUp: boolean; failedStarts: number; failure?: string };

/**
 * A worker that dies once is replaced at once (its keys are gone either way). One whose
 * replacements die before they come up (signer.trust files removed while the agent runs) would
 * be replaced at once forever, a core busy and the log flooded: each further replacement waits
 * twice as long as the one before, from 1 s up to 30 s.
 */
const RESPAWN_FIRST_DELAY_MS = 1_000;
const RESPAWN_MAX_DELAY_MS = 30_000;

export function respawnDelayMs(failedStarts: number): number {
  return failedStarts === 0 ? 0 : Math.min(RESPAWN_MAX_DELAY_MS, RESPAWN_FIRST_DELAY_MS * 2 ** (failedStarts - 1));
}
type Outgoing = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never;

export interface SigningPoolOptions {
  size: number;
  setup: Omit<WorkerSetup, 'epoch'>;
  logger: Logger;
  /** Called when a worker dies: the keys it held are gone, so the agent ends every session. */
  onWorkerLost: (reason: string) => void;
  requestTimeoutMs?: number;
  /** Overrides the compiled worker script (tests). */
  workerScript?: string;
}

/**
 * worker_threads pool that does the signing (LESSONS.md 10: a burst of signing never stalls the
 * HTTP event loop). Every worker holds every unlocked key, so any idle worker can sign for
 * anyone; lock and wipe are broadcast. A lockdown bumps a shared epoch first, which makes every
 * worker refuse keys of the old epoch at once, even one busy with a long job.
 */
export class SigningPool {
  private readonly slots: Slot[] = [];
  private readonly epochBuffer = new SharedArrayBuffer(4);
  private readonly epoch = new Int32Array(this.epochBuffer);
  private nextId = 1;
  private closing = false;
  /** The first error a worker reported (start() names it when the workers cannot start). */
  private startFailure: string | undefined;
  private readonly timeoutMs: number;
  private readonly respawnTimers = new Set<NodeJS.Timeout>();
  /** Slots whose workers keep dying at start: logged when the first begins and when the last recovers. */
  private readonly failingSlots = new Set<Slot>();

  constructor(private readonly options: SigningPoolOptions) {
    this.timeoutMs = options.requestTimeoutMs ?? 60_000;
  }

  get size(): number {
    return this.slots.length;
  }

  currentEpoch(): number {
    return Atomics.load(this.epoch, 0);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.options.size; i += 1) this.slots.push(this.spawn());
    try {
      await Promise.all(this.slots.map((slot) => this.request(slot, { type: 'ping' }).then(() => void (slot.cameUp = true))));
    } catch (err) {
      // A worker that cannot start (a signer.trust path that cannot be read, ...) said why before it
      // exited: that reason is what the admin must read, not "the worker stopped".
      const cause = this.startFailure;
      throw cause ? new ConnectorError('SIGNER_UNAVAILABLE', cause) : err;
    }
  }

  /**
   * Opens the keystore in one worker first (a wrong password costs one decryption, not N), then
   * in the others. If any worker fails after the first succeeded, the key is wiped everywhere.
   */
  async unlock(userId: string, p12: Uint8Array, password: string, expectedIin: string | null): Promise<KeyFacts> {
    const epoch = this.currentEpoch();
    const [first, ...rest] = this.liveSlots();
    if (!first) throw new ConnectorError('SIGNER_UNAVAILABLE', 'no signing worker is running');
    const message: Outgoing = { type: 'unlock', userId, p12, password, expectedIin, epoch };
    const facts = this.unwrap(await this.request(first, message)).facts;
    const others = await Promise.allSettled(rest.map((slot) => this.request(slot, message)));
    const failed = others.find((o) => o.status === 'rejected' || !o.value.ok);
    if (failed) {
      this.lock(userId);
      if (failed.status === 'rejected') throw failed.reason;
      this.unwrap((failed as PromiseFulfilledResult<WorkerReply>).value);
    }
    if (!facts) throw new ConnectorError('INTERNAL', 'worker unlocked a key without reporting its certificate');
    return facts;
  }

  /** Signs on the least busy worker. */
  async sign(request: { userId: string; document: Uint8Array; cosign: Uint8Array | null; signingTime: Date; expected: ExpectedIdentity }): Promise<SignResult> {
    const slot = this.leastBusy();
    const reply = this.unwrap(
      await this.request(slot, {
        type: 'sign',
        userId: request.userId,
        document: request.document,
        cosign: request.cosign,
        signingTime: request.signingTime.toISOString(),
        expected: request.expected,
      }),
    );
    if (!reply.cms || !reply.facts || !reply.signingTime || !reply.revocation) throw new ConnectorError('INTERNAL', 'worker answered a signature without CMS');
    return { cms: reply.cms, facts: reply.facts, signingTime: new Date(reply.signingTime), revocation: reply.revocation };
  }

  /** Wipes one user's key in every worker. Messages are ordered per worker, so no later sign can use it. */
  lock(userId: string): void {
    for (const slot of this.liveSlots()) void this.request(slot, { type: 'lock', userId }).catch(() => undefined);
  }

  /**
   * Lockdown: bump the epoch (effective immediately in every worker, busy or not), then ask each
   * worker to zero what it holds. Waits at most `waitMs` for their acknowledgements and reports
   * how many gave it; a busy worker still drops the keys before its next use of any of them.
   */
  async wipeAll(waitMs: number): Promise<{ acknowledged: number; workers: number; wiped: number }> {
    Atomics.add(this.epoch, 0, 1);
    const slots = this.liveSlots();
    let acknowledged = 0;
    let wiped = 0;
    const acks = slots.map((slot) =>
      this.request(slot, { type: 'wipeAll' }).then((reply) => {
        acknowledged += 1;
        if (reply.ok) wiped = Math.max(wiped, reply.wiped ?? 0);
      }),
    );
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(acks), new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
    if (timer) clearTimeout(timer);
    return { acknowledged, workers: slots.length, wiped };
  }

  /** Wipes everything, then stops the workers (graceful shutdown). */
  async close(): Promise<void> {
    this.closing = true;
    for (const timer of this.respawnTimers) clearTimeout(timer);
    this.respawnTimers.clear();
    await this.wipeAll(2_000);
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
    this.slots.length = 0;
  }

  inFlight(): number {
    return this.slots.reduce((n, slot) => n + slot.pending.size, 0);
  }

  private spawn(failedStarts = 0): Slot {
    // Compiled: the worker sits beside this file. Under ts-jest (sources) the built copy in dist/ is used.
    const beside = join(__dirname, 'signing.worker.js');
    const script = this.options.workerScript ?? (existsSync(beside) ? beside : join(__dirname, '..', '..', 'dist', 'signer-agent', 'agent', 'signing.worker.js'));
    const setup: WorkerSetup = { ...this.options.setup, epoch: this.epochBuffer };
    const worker = new Worker(script, { workerData: setup });
    const slot: Slot = { worker, pending: new Map(), ready: true, cameUp: false, failedStarts };
    worker.on('message', (reply: WorkerReply) => {
      const pending = slot.pending.get(reply.id);
      if (!pending) return;
      slot.pending.delete(reply.id);
      clearTimeout(pending.timer);
      pending.resolve(reply);
    });
    worker.on('error', (err) => {
      this.startFailure ??= err.message;
      slot.failure = err.message;
      // Said once when the workers begin failing to start (the backoff line names it), not at every attempt.
      if (this.failingSlots.has(slot)) return;
      this.options.logger.error({ event: 'signer.worker.error', err: { name: err.name, message: err.message } }, 'signing worker failed');
    });
    worker.on('exit', (code) => {
      slot.ready = false;
      for (const [, pending] of slot.pending) {
        clearTimeout(pending.timer);
        pending.reject(new ConnectorError('SIGNER_UNAVAILABLE', 'the signing worker stopped; unlock the key again'));
      }
      slot.pending.clear();
      if (this.closing) return;
      const failedStarts = slot.cameUp ? 0 : slot.failedStarts + 1;
      const delayMs = respawnDelayMs(slot.cameUp ? 0 : slot.failedStarts);
      if (delayMs === 0) {
        this.options.logger.error({ event: 'signer.worker.lost', exitCode: code }, 'signing worker exited; every session ends');
        this.replace(slot, failedStarts);
      } else {
        if (!this.failingSlots.has(slot)) {
          this.options.logger.error(
            { event: 'signer.worker.respawn_backoff', exitCode: code, reason: slot.failure ?? null, failedStarts },
            `signing workers die as they start (${slot.failure ?? `exit code ${code}`}); started again after a growing pause, up to ${RESPAWN_MAX_DELAY_MS / 1000} s`,
          );
        }
        this.failingSlots.add(slot);
        const timer = setTimeout(() => {
          this.respawnTimers.delete(timer);
          if (!this.closing) this.replace(slot, failedStarts);
        }, delayMs);
        // A pause never keeps a stopping process alive.
        timer.unref();
        this.respawnTimers.add(timer);
      }
      this.options.onWorkerLost(`worker exited with code ${code}`);
    });
    return slot;
  }

  /** A new worker in the slot of one that exited; it counts as up once it answers a ping. */
  private replace(dead: Slot, failedStarts: number): void {
    const index = this.slots.indexOf(dead);
    if (index < 0) return;
    const slot = this.spawn(failedStarts);
    this.slots[index] = slot;
    const wasFailing = this.failingSlots.delete(dead);
    if (wasFailing) this.failingSlots.add(slot);
    this.request(slot, { type: 'ping' }).then(
      () => {
        slot.cameUp = true;
        slot.failedStarts = 0;
        if (this.failingSlots.delete(slot) && this.failingSlots.size === 0) {
          this.options.logger.info({ event: 'signer.worker.recovered' }, 'signing workers start again; unlock the keys again');
        }
      },
      () => undefined,
    );
  }

  private liveSlots(): Slot[] {
    return this.slots.filter((slot) => slot.ready);
  }

  private leastBusy(): Slot {
    let best: Slot | undefined;
    for (const slot of this.liveSlots()) if (!best || slot.pending.size < best.pending.size) best = slot;
    if (!best) throw new ConnectorError('SIGNER_UNAVAILABLE', 'no signing worker is running');
    return best;
  }

  private request(slot: Slot, message: Outgoing): Promise<WorkerReply> {
    const id = this.nextId++;
    return new Promise<WorkerReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        slot.pending.delete(id);
        reject(new ConnectorError('SIGNER_TIMEOUT', `the signing worker did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      slot.pending.set(id, { resolve, reject, timer });
      slot.worker.postMessage({ ...message, id } as WorkerRequest);
    });
  }

  private unwrap(reply: WorkerReply): Extract<WorkerReply, { ok: true }> {
    if (reply.ok) return reply;
    throw new ConnectorError(reply.code, reply.message);
  }
}
