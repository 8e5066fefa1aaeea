import { randomUUID } from 'node:crypto';
import type { JobContext } from './job-context';
import type IORedis from 'ioredis';
import { sweepOrdersJob } from './jobs/sweep-orders.job';
import { refreshCrlsJob } from './jobs/refresh-crls.job';
import { scanOnecOutbox, scanOnecOutboxJob } from './jobs/scan-onec-outbox.job';
import { isLockedDown, retryLockdownKeyWipe } from './lockdown.trigger';
import { writeStatusReport } from './jobs/write-back.job';
import { dispatchWebhooks, dispatchWebhooksJob } from './jobs/dispatch-webhooks.job';
import { scheduleStatementsJob } from './jobs/fetch-statement.job';
import { mailIncidentAlerts, mailIncidentReminders } from './incident-alerts';

export interface ScheduleEntry {
  /** Stable scheduler id: upserting it again replaces, never duplicates (LESSONS.md 12). */
  id: string;
  everyMs: number;
  definition: { name: string; queue: import('./queue-names').QueueName };
  data: Record<string, unknown>;
}

export function schedules(context: JobContext): ScheduleEntry[] {
  return [
    { id: 'sweep-orders', everyMs: context.config.sweeper.everyMs, definition: sweepOrdersJob, data: {} },
    // The 1C outbox folder (INTERFACES.md "1C folder exchange"); the job itself holds a folder lock.
    { id: 'onec-outbox-scan', everyMs: context.config.onec.scanEveryMs, definition: scanOnecOutboxJob, data: {} },
    // Status webhooks to the ERP; the job returns at once when no URL is configured.
    { id: 'webhook-dispatch', everyMs: context.config.webhooks.everyMs, definition: dispatchWebhooksJob, data: {} },
    // Configured CRL URLs (signer.crl entries that are http(s) URLs); the job returns at once when there are none.
    { id: 'crl-refresh', everyMs: context.config.signer.crlRefreshMinutes * 60_000, definition: refreshCrlsJob, data: {} },
    // Stage 5: every account's statement, today's and the closed previous business day(s) (issue 15).
    { id: 'statements-schedule', everyMs: context.config.pipeline.statementsEveryMs, definition: scheduleStatementsJob, data: {} },
  ];
}

export interface RunningScheduler {
  isLeader(): boolean;
  close(): Promise<void>;
}

/** The Redis key of the scheduler's leader lease (doctor reads it to say whether a scheduler runs). */
export function schedulerLeaderKey(prefix: string): string {
  return `${prefix}:scheduler:leader`;
}

/**
 * Job schedulers are registered from one place only (LESSONS.md 12): the scheduler process that
 * holds a Redis leader lease (`<prefix>:scheduler:leader`, SET NX PX) upserts them; others
 * stand by and take over when the lease lapses. Renewal is a compare-and-set in Lua so a process
 * that lost the lease never extends another's.
 */
export async function startScheduler(context: JobContext, redis: IORedis, options: { leaseMs?: number; extra?: ScheduleEntry[] } = {}): Promise<RunningScheduler> {
  const leaseMs = options.leaseMs ?? 30_000;
  const key = schedulerLeaderKey(context.config.redis.prefix);
  const me = `${process.pid}-${randomUUID()}`;
  let leader = false;
  let stopped = false;

  const renewScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
  const releaseScript = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

  async function register(): Promise<void> {
    const opts = context.queues.scheduledJobOptions();
    for (const entry of [...schedules(context), ...(options.extra ?? [])]) {
      await context.queues.get(entry.definition.queue).upsertJobScheduler(entry.id, { every: entry.everyMs }, { name: entry.definition.name, data: entry.data, opts });
    }
    purging ??= purgeCompleted().finally(() => (purging = undefined));
    context.logger.info({ event: 'scheduler.registered', leader: me });
  }

  /**
   * Completed scheduled jobs left in Redis by releases that kept them (every other job is removed
   * on completion): removed in the background, 10,000 at a time, so that months of them neither
   * hold up the lease renewal nor load every id into memory at once.
   */
  let purging: Promise<void> | undefined;
  async function purgeCompleted(): Promise<void> {
    let removed = 0;
    try {
      for (const queue of context.queues.all()) {
        for (;;) {
          if (stopped) return;
          const ids = await queue.clean(0, 10_000, 'completed');
          removed += ids.length;
          if (ids.length < 10_000) break;
        }
      }
    } catch (err) {
      context.logger.warn({ event: 'scheduler.purge_completed.error', err: (err as Error).message });
    } finally {
      if (removed) context.logger.info({ event: 'scheduler.purge_completed', removed });
    }
  }

  // One tick at a time: while Redis does not answer, ticks would pile up behind the first.
  let ticking = false;
  async function tick(): Promise<void> {
    if (stopped || ticking) return;
    ticking = true;
    try {
      if (leader) {
        const renewed = await redis.eval(renewScript, 1, key, me, String(leaseMs));
        if (renewed !== 1) {
          leader = false;
          context.logger.warn({ event: 'scheduler.lease.lost' });
        }
      } else {
        const acquired = await redis.set(key, me, 'PX', leaseMs, 'NX');
        if (acquired === 'OK') {
          leader = true;
          context.logger.info({ event: 'scheduler.lease.acquired' });
          await register();
        }
      }
    } catch (err) {
      context.logger.warn({ event: 'scheduler.tick.error', err: (err as Error).message });
    } finally {
      ticking = false;
    }
  }

  /**
   * Issue 16: under lockdown every queue is paused, the intake queue too, yet intake must stay open
   * so that no ERP order is lost: the leader scans the 1C outbox itself (orders are stored and wait
   * as `held`; nothing goes further until an admin resolves the lockdown). It sends the statuses
   * back too (the 1C status report, the ERP's webhooks; nothing to the bank): the writeback queue
   * is paused, and without them the ERP would not learn that its documents are held (a user
   * waiting for days might pay another way). And, before those, it asks the signer agent again to
   * wipe the keys the lockdown could not (the agent was not reached): they stay unlocked until it does.
   */
  let scanning = false;
  async function scanWhileLocked(): Promise<void> {
    if (stopped || !leader || scanning) return;
    scanning = true;
    try {
      if (await isLockedDown(context)) {
        // Each on its own: a failing status report must not keep 1C's orders out, nor the webhooks.
        const steps: Array<[string, () => Promise<unknown>]> = [
          // First: keys the lockdown could not wipe stay unlocked in the signer agent until it answers.
          ['signer-agent-wipe', () => retryLockdownKeyWipe(context)],
          ['onec-outbox', () => scanOnecOutbox(context, redis)],
          ['status-report', () => writeStatusReport(context, { onlyIfChanged: true })],
          ['webhooks', () => dispatchWebhooks(context, redis)],
        ];
        for (const [step, run] of steps) {
          try {
            await run();
          } catch (err) {
            context.logger.warn({ event: 'scheduler.lockdown_scan.error', step, err: (err as Error).message });
          }
        }
      }
    } catch (err) {
      context.logger.warn({ event: 'scheduler.lockdown_scan.error', err: (err as Error).message });
    } finally {
      scanning = false;
    }
  }

  /**
   * New incidents to the admins by e-mail (queue/incident-alerts.ts), from the leader itself: queues
   * are paused under lockdown, when incidents matter most. After a failure it waits twice as long
   * each time (up to 16 periods more), so a mail server that is down is not hammered; close() waits
   * for a digest on its way.
   */
  let alerting: Promise<void> | undefined;
  let alertFailures = 0;
  let nextAlertAt = 0;
  function alertIncidents(): void {
    if (stopped || !leader || alerting || performance.now() < nextAlertAt) return;
    alerting = (async () => {
      try {
        const result = await mailIncidentAlerts(context);
        // New incidents first; then the reminders of those whose deadline nears or passed.
        const reminders = result.status === 'failed' ? result : await mailIncidentReminders(context);
        alertFailures = reminders.status === 'failed' ? alertFailures + 1 : 0;
      } catch (err) {
        alertFailures += 1;
        context.logger.warn({ event: 'scheduler.incident_alerts.error', err: (err as Error).message });
      } finally {
        // On the monotonic clock: counted on the wall clock, a step back of the machine's clock (NTP
        // correcting a clock that ran ahead) was added to the wait, and no incident was mailed for that long.
        nextAlertAt = alertFailures ? performance.now() + context.config.lockdown.notify.incidentsEveryMs * 2 ** Math.min(alertFailures, 4) : 0;
        alerting = undefined;
      }
    })();
  }

  // The first look at the lease before the process says it started; bounded: with Redis out of reach
  // it would wait for good, and SIGTERM/SIGINT (handled once this returns) would kill the process
  // instead of stopping it (exit 0, INTERFACES.md). The next ticks take it from there.
  await within(tick(), FIRST_TICK_MS);
  const timer = setInterval(() => void tick(), Math.max(500, Math.floor(leaseMs / 3)));
  const scanTimer = setInterval(() => void scanWhileLocked(), context.config.onec.scanEveryMs);
  const alertTimer = setInterval(alertIncidents, context.config.lockdown.notify.incidentsEveryMs);
  return {
    isLeader: () => leader,
    async close() {
      stopped = true;
      clearInterval(timer);
      clearInterval(scanTimer);
      clearInterval(alertTimer);
      // A digest on its way finishes (bounded by smtp.timeoutMs, below PM2's kill_timeout) before the lease goes.
      await alerting;
      // Redis commands wait for Redis (maxRetriesPerRequest: null): with Redis unreachable the purge and
      // the lease release would hold the shutdown for good. Both are best effort: the purge resumes at
      // the next leader's start and the lease lapses by itself within leaseMs.
      await within(purging ?? Promise.resolve(), REDIS_CLOSE_MS);
      if (leader) await within(redis.eval(releaseScript, 1, key, me), REDIS_CLOSE_MS);
      leader = false;
    },
  };
}

/** How long the start waits for the first tick (Redis answers in milliseconds when it is there). */
const FIRST_TICK_MS = 2_000;

/** How long close() waits for Redis before letting go (the lease lapses by itself). */
const REDIS_CLOSE_MS = 3_000;

/** Waits for `work` (its failure included) at most `ms`; the timer never outlives the wait. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => undefined), new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
