import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type IORedis from 'ioredis';
import { QUEUE_NAMES } from './queue-names';
import { buildJobRegistry } from './job.registry';
import { REGISTERED_JOBS } from './jobs';
import type { JobContext } from './job-context';
import type { RegisteredJob } from './job-definition';
import { markOrderFailed } from '../connector/orders/order-state.machine';
import { enqueueWriteBack } from './jobs/write-back.job';
import { transientDatabaseError } from '../connector/shared/pg-errors';
import { openIncident } from '../connector/incidents/incident.service';
import { perContext } from './stage-batcher';
import { backoffAfter, BANK_WAIT_MAX_MS, waitAndRetry } from './jobs/pipeline.helpers';

/** Stages whose jobs are coalesced into batches (queue/stage-batcher.ts): they take many jobs at once. */
const BATCHED_QUEUES = new Set<string>(['validate', 'sign', 'submit', 'track']);

export interface RunningWorkers {
  workers: Worker[];
  close(timeoutMs?: number): Promise<void>;
}

/**
 * Starts one BullMQ worker per queue that has jobs. Each job's payload is validated again when
 * consumed (STYLE.md 2); an unknown job name or a bad payload is unrecoverable (retrying cannot help).
 */
export function startWorkers(context: JobContext, connection: IORedis, jobs: RegisteredJob[] = REGISTERED_JOBS): RunningWorkers {
  const registry = buildJobRegistry(jobs);
  const queuesWithJobs = new Set(jobs.map((j) => j.definition.queue));
  const workers: Worker[] = [];
  /** Handlers running now, whatever BullMQ knows of them: close() waits for these before the process lets go of PostgreSQL. */
  const running = new Set<Promise<unknown>>();
  for (const queueName of QUEUE_NAMES) {
    if (!queuesWithJobs.has(queueName)) continue;
    const worker = new Worker(
      queueName,
      async (job: Job) => {
        const entry = registry.get(job.name);
        if (!entry) throw new UnrecoverableError(`no handler for job ${job.name}`);
        const parsed = entry.definition.payload.safeParse(job.data);
        if (!parsed.success) throw new UnrecoverableError(`job ${job.name} ${job.id}: payload rejected: ${parsed.error.issues.map((i: { path: (string | number)[]; message: string }) => i.path.join('.') + ' ' + i.message).join('; ')}`);
        const handled = entry.handler(parsed.data, context, job);
        running.add(handled);
        try {
          const result = await handled;
          databaseWaits(context).delete(waitKey(job));
          return result;
        } catch (err) {
          return await databaseTrouble(context, job, err);
        } finally {
          running.delete(handled);
        }
      },
      {
        connection: connection as unknown as ConnectionOptions,
        prefix: context.config.redis.prefix,
        concurrency: BATCHED_QUEUES.has(queueName) ? Math.max(context.config.worker.concurrency, context.config.worker.batchConcurrency) : context.config.worker.concurrency,
        lockDuration: context.config.queue.lockDurationMs,
        stalledInterval: context.config.queue.stalledIntervalMs,
        maxStalledCount: context.config.queue.maxStalledCount,
        autorun: true,
      },
    );
    worker.on('error', (err) => context.logger.error({ event: 'worker.error', queue: queueName, err: err.message }));
    worker.on('failed', (job, err) => {
      const exhausted = job !== undefined && (job.attemptsMade >= (job.opts.attempts ?? 1) || err.name === 'UnrecoverableError' || /stalled more than allowable limit/i.test(err.message));
      const orderId = (job?.data as { orderId?: unknown } | undefined)?.orderId;
      if (exhausted && typeof orderId === 'string') {
        void markOrderFailed(context.orm.em.fork(), orderId, `${job?.name}: ${err.message}`, 'worker', job?.name)
          // The ERP hears of it now (1C's status report), not at the next statement fetch.
          .then((changed) => (changed ? enqueueWriteBack(context.queues) : undefined))
          .catch((e: Error) => context.logger.error({ event: 'order.failed.record_error', orderId, err: e.message }));
      }
      // LESSONS.md 13: when stall retries run out there is no `stalled` event, only this.
      const stalled = /stalled more than allowable limit/i.test(err.message);
      context.logger[stalled ? 'error' : 'warn']({
        event: stalled ? 'job.stalled.exhausted' : 'job.failed',
        queue: queueName,
        job: job?.name,
        jobId: job?.id,
        attempt: job?.attemptsMade,
        err: err.message,
      });
    });
    workers.push(worker);
  }
  return {
    workers,
    async close(timeoutMs = 20_000) {
      // Bounded below PM2's kill_timeout (ecosystem.config.js) so PM2 never SIGKILLs a clean shutdown.
      const closed = new Set<string>();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
      const all = Promise.all(workers.map((w) => closeWorker(w, running).then(() => closed.add(w.name))));
      const outcome = await Promise.race([all.then(() => 'closed' as const), bound]);
      clearTimeout(timer);
      if (outcome === 'timeout') {
        context.logger.warn({ event: 'worker.close.timeout', timeoutMs, runningJobs: running.size, queues: workers.map((w) => w.name).filter((name) => !closed.has(name)) });
      }
    },
  };
}

/** Database errors in a row, per job, in this process, after which an incident says so (about 10 minutes at the longest backoff). */
export const DATABASE_WAITS_BEFORE_INCIDENT = 10;

const waitKey = (job: Job): string => `${job.queueName}:${job.id}`;
const databaseWaits = (context: JobContext): Map<string, number> => perContext(context, 'worker.databaseWaits', () => new Map<string, number>());

async function databaseTroubleIncident(context: JobContext, job: Job, why: string, err: unknown, inARow: number): Promise<void> {
  const message = (err as Error).message.split('\n').pop() ?? '';
  context.logger.error({ event: 'job.database_trouble', alert: true, job: job.name, jobId: job.id, why, inARow, err: message });
  await openIncident(context.orm.em.fork(), {
    kind: 'database_trouble',
    severity: 'high',
    title: `Job ${job.name} (${job.id}) met a database error ${inARow} times in a row and keeps waiting: ${why}; its order does not move until it passes (check the statement's plan, the bounds database.*TimeoutMs, sessions holding locks in pg_stat_activity)`,
    evidence: { job: job.name, jobId: job.id, queue: job.queueName, why, error: message.slice(0, 300), inARow },
    dedupeKey: `database_trouble:${job.name}`,
    onRepeat: 'ignore',
    actor: 'worker',
    now: context.clock.now(),
  }).catch((e: Error) => context.logger.error({ event: 'job.database_trouble.incident_failed', err: e.message }));
}

/**
 * A statement ended by a database bound (database.lockTimeoutMs, statementTimeoutMs, ...), a
 * deadlock or a dropped connection says nothing about the order: another session held a lock, or
 * PostgreSQL was away. It is retried like any error (BullMQ's backoff spends an attempt), but the
 * last attempt is never spent on it: the job waits and runs again, so a lock held for longer than
 * all the backoffs never turns an order into a permanent `failed`. Any other error is rethrown as is.
 */
async function databaseTrouble(context: JobContext, job: Job, err: unknown): Promise<never> {
  const why = transientDatabaseError(err);
  if (why === null) {
    databaseWaits(context).delete(waitKey(job));
    throw err;
  }
  const inARow = (databaseWaits(context).get(waitKey(job)) ?? 0) + 1;
  databaseWaits(context).set(waitKey(job), inARow);
  // Transient by its kind, but not going away (a statement that always outlasts statementTimeoutMs,
  // a transaction that always idles past its bound): retried for ever without a word, its order would
  // stand still unseen. Said once, by an incident, when it keeps coming; the job goes on waiting.
  if (inARow === DATABASE_WAITS_BEFORE_INCIDENT) await databaseTroubleIncident(context, job, why, err, inARow);
  const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
  context.logger.warn({
    event: 'job.database_transient',
    job: job.name,
    jobId: job.id,
    attempt: job.attemptsMade + 1,
    why,
    err: (err as Error).message.split('\n').pop(),
    next: lastAttempt ? 'waits and runs again without failing' : 'retried with backoff',
  });
  if (!lastAttempt) throw err;
  // The backoff the attempts had come to, at most a minute: it comes back soon after the lock is free.
  return waitAndRetry(job, backoffAfter(context, job.attemptsMade + 1, BANK_WAIT_MAX_MS), why);
}

/**
 * Closes one worker. With Redis reachable, BullMQ's graceful close: no new job is taken, the
 * running ones finish and are recorded in Redis. With Redis unreachable, that close never returns:
 * it disconnects the worker's blocking connection and waits for its `end` event, which ioredis
 * never emits for a connection that is between two reconnection attempts (no socket: the
 * disconnect only cancels the next attempt; bullmq#4656, ioredis#1247), and BullMQ's lock-renewal
 * timer then keeps the process alive for good, even after Redis is back. So then the worker is
 * closed with `force` (nothing is interrupted: BullMQ stops renewing locks and fetching, and does
 * not record the outcome) and the handlers still running are awaited here. Their effects are in
 * PostgreSQL; the jobs, left active in Redis with lapsing locks, run again on the next worker and
 * return early because the order has moved on (STYLE.md 4, 5).
 */
async function closeWorker(worker: Worker, running: Set<Promise<unknown>>): Promise<void> {
  if (await blockingConnectionLive(worker)) {
    await worker.close();
  } else {
    await worker.close(true);
    await Promise.allSettled([...running]);
  }
}

/** Whether the worker's blocking connection has a socket to Redis now (without waiting for one). */
async function blockingConnectionLive(worker: Worker): Promise<boolean> {
  const client = worker.getBackend().blockingClient;
  if (!client) return true;
  const now = await Promise.race([client, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))]);
  return now !== undefined && now.status === 'ready';
}
