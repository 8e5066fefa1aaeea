import type { Command } from 'commander';
import { runDoctor, type CheckResult, type DoctorReport, type ExtraCheck } from '../../doctor/doctor.checks';
import { SmtpMailer } from '../../../adapters/mail/smtp.mailer';
import { runAction } from '../run-action';
import { Queue } from 'bullmq';
import { probeRedis } from '../../shared/redis-probe';
import { withTimeout } from '../../shared/timeout';
import { schedulerLeaderKey } from '../../../queue/scheduler.runner';
import { UNDELIVERED_AFTER_ATTEMPTS, WEBHOOK_CURSOR } from '../../../queue/jobs/dispatch-webhooks.job';
import { clockFromConfig } from '../../shared/clock';
import type { ConnectorConfig } from '../../../config/config.schema';
import { printJson, table } from '../output';
import { readSigningSecret } from '../../shared/secret-file';
import { Client } from 'pg';

/**
 * The admins' mail server (lockdown.notify.smtp), when e-mails are configured: connects, upgrades to
 * TLS and logs in as a lockdown's e-mail would, without sending anything. A component check.
 */
export const checkSmtp: ExtraCheck = async (config, strict, timeoutMs) => {
  const { emails, smtp } = config.lockdown.notify;
  if (emails.length === 0 && !smtp) return null;
  const failed = (detail: string, hint: string): CheckResult => ({ name: 'smtp', core: strict, verdict: strict ? 'FAIL' : 'WARN', detail, hint });
  if (!smtp) return failed(`${emails.length} admin e-mail(s) in lockdown.notify.emails, no lockdown.notify.smtp`, 'configure lockdown.notify.smtp, or admins get no e-mail when the connector locks down');
  if (emails.length === 0) return failed(`lockdown.notify.smtp ${smtp.host}:${smtp.port} is set, no lockdown.notify.emails`, 'list the admins in lockdown.notify.emails');
  const verified = await new SmtpMailer({ ...smtp, timeoutMs: Math.min(smtp.timeoutMs, timeoutMs) }, emails).verify();
  if (!verified.ok) return failed(verified.error, 'check lockdown.notify.smtp (host, port, security, user, passwordFile, caFile) and the network to the mail server');
  return { name: 'smtp', core: false, verdict: 'OK', detail: `${smtp.host}:${smtp.port} (${smtp.security}${smtp.user ? `, login ${smtp.user}` : ''}) accepts us; ${emails.length} admin(s)` };
};

/**
 * The processes PM2 runs, as Redis sees them: a worker serving the submit queue (BullMQ's named
 * connections) and a scheduler holding its leader lease. Stopped, or not started again after a
 * reboot, orders wait unsent and statements, sweeps and alerts stop while every service they need
 * is up. WARN (FAIL with --strict); nothing when Redis cannot be reached (its own check says so).
 */
export const checkProcesses: ExtraCheck = async (config, strict, timeoutMs) => {
  const down = (name: string, detail: string): CheckResult => ({
    name,
    core: strict,
    verdict: strict ? 'FAIL' : 'WARN',
    detail,
    hint: 'start them: pm2 start ecosystem.config.js, then pm2 save (and pm2 startup once, so they start at boot)',
  });
  const redis = probeRedis(config.redis.url, Math.min(3_000, timeoutMs));
  let queue: Queue | undefined;
  try {
    // A Redis that takes the connection and never answers: null, Redis's own check says what is wrong.
    await withTimeout(redis.connect(), Math.min(3_000, timeoutMs), 'Redis');
    queue = new Queue('submit', { connection: redis, prefix: config.redis.prefix });
    const [workers, lease] = await Promise.all([queue.getWorkersCount(), redis.pttl(schedulerLeaderKey(config.redis.prefix))]);
    return [
      workers > 0
        ? { name: 'workers', core: false, verdict: 'OK', detail: `${workers} worker connection(s) serve the submit queue` }
        : down('workers', 'no worker process serves the queues: orders are taken in but not validated, signed or sent'),
      lease > 0
        ? { name: 'scheduler', core: false, verdict: 'OK', detail: 'a scheduler holds the leader lease' }
        : down('scheduler', 'no scheduler holds the leader lease: no statements, sweeps, 1C outbox scans or incident e-mails'),
    ];
  } catch {
    return null;
  } finally {
    await queue?.close().catch(() => undefined);
    redis.disconnect();
  }
};

/** Status webhooks this late (at the least; two dispatch periods when they are longer) are a warning. */
export const WEBHOOK_LAG_WARN_MS = 5 * 60_000;

/** Events counted behind the oldest undelivered one, at most (a count of millions is no clue more). */
const BEHIND_COUNT_MAX = 100_000;

/** What doctor reads of the webhook delivery: the cursor, the first event past it, how many follow. */
export interface WebhookLag {
  cursor: { lastEventId: string; attempts: number; lastError: string | null; nextAttemptAt: Date | null; updatedAt: Date } | null;
  oldest: { id: string; orderId: string; fromState: string | null; toState: string; at: Date } | null;
  /** Events after the oldest undelivered one (capped at BEHIND_COUNT_MAX). */
  behind: number;
}

/**
 * The verdict on status webhooks (pure: the check below reads the rows). WARN when the oldest
 * undelivered event is older than the lag bound or the last attempt failed, naming the event, the
 * error (HTTP status or network code), the attempts and the events waiting behind it; never the
 * URL (it may carry a token). WARN even with --strict: the ERP's endpoint, not this installation.
 */
export function webhooksVerdict(lag: WebhookLag, config: ConnectorConfig, now: Date): CheckResult {
  const name = 'webhooks';
  const { cursor, oldest, behind } = lag;
  if (!cursor) return { name, core: false, verdict: 'OK', detail: 'configured; no dispatch has run yet (the first starts after the status events there are)' };
  const failing = cursor.attempts > 0;
  const boundMs = Math.max(WEBHOOK_LAG_WARN_MS, 2 * config.webhooks.everyMs);
  const ageMs = oldest ? now.getTime() - oldest.at.getTime() : 0;
  if (!oldest && !failing) return { name, core: false, verdict: 'OK', detail: `every status event delivered (the last acknowledged: event ${cursor.lastEventId})` };
  if (oldest && !failing && ageMs <= boundMs) {
    return { name, core: false, verdict: 'OK', detail: `${behind + 1} status event(s) on their way, the oldest (event ${oldest.id}) ${Math.round(ageMs / 1000)} s old` };
  }
  const waiting = behind >= BEHIND_COUNT_MAX ? `${BEHIND_COUNT_MAX} or more events wait` : `${behind} more event(s) wait`;
  const event = oldest
    ? `status event ${oldest.id} (order ${oldest.orderId}, ${oldest.fromState ?? 'new'} -> ${oldest.toState}, ${oldest.at.toISOString()}) undelivered for ${Math.round(ageMs / 60_000)} min`
    : `the status event after ${cursor.lastEventId} undelivered`;
  if (failing) {
    const next = cursor.nextAttemptAt ? `, next attempt ${cursor.nextAttemptAt.toISOString()}` : '';
    return {
      name,
      core: false,
      verdict: 'WARN',
      detail: `${event}: the last attempt failed (${cursor.lastError ?? 'error'}, ${cursor.updatedAt.toISOString()}), ${cursor.attempts} attempt(s) so far${next}; ${waiting} behind it`,
      hint: `the ERP's endpoint (webhooks.url) refuses it: check the URL, the ERP and the network (HTTP 3xx, 401, 410 do not heal by themselves); retries go on with backoff up to webhooks.maxBackoffMs, a webhook_undelivered incident is opened from the ${UNDELIVERED_AFTER_ATTEMPTS}th failed attempt (connector incidents list) and closes once it is delivered`,
    };
  }
  return {
    name,
    core: false,
    verdict: 'WARN',
    detail: `${event}: no attempt failed, it was not sent; ${waiting} behind it`,
    hint: 'no dispatch ran: check that a scheduler and a worker run (pm2 status; the doctor lines workers and scheduler); a PostgreSQL transaction left open after writing a status change also holds webhooks back (the worker logs webhook.held_back with its pid)',
  };
}

/**
 * Status webhooks to the ERP (webhooks.url), when configured: whether they keep up. Reads the
 * dispatcher's cursor (queue/jobs/dispatch-webhooks.job.ts) and the first event past it; nothing
 * when PostgreSQL cannot be reached (its own check says so). A secret file that cannot be read
 * stops every delivery before any attempt, so it is named first.
 */
export const checkWebhooks: ExtraCheck = async (config, _strict, timeoutMs) => {
  const { url, secretFile } = config.webhooks;
  if (!url) return null;
  const name = 'webhooks';
  if (!secretFile) return { name, core: false, verdict: 'WARN', detail: 'webhooks.url is set, webhooks.secretFile is not: no status event can be signed, none is sent', hint: 'set webhooks.secretFile to the file holding the HMAC secret the ERP verifies with' };
  // The dispatcher's own judgement of the file (queue/jobs/dispatch-webhooks.job.ts): what stops it stops every delivery.
  const read = readSigningSecret(secretFile, 'webhooks.secretFile');
  if ('problem' in read) return { name, core: false, verdict: 'WARN', detail: `no status event is sent: ${read.problem}`, hint: 'fix webhooks.secretFile: the HMAC secret the ERP verifies with, mode 0600' };
  // Half the check's time each for the connection and the query: it answers within its bound.
  const ms = Math.min(3_000, Math.floor(timeoutMs / 2));
  const client = new Client({ connectionString: config.database.url, connectionTimeoutMillis: ms, query_timeout: ms, statement_timeout: ms });
  client.on('error', () => undefined);
  try {
    try {
      await withTimeout(client.connect(), ms, 'PostgreSQL');
    } catch {
      return null;
    }
    const { rows } = await withTimeout(
      client.query<{ last_event_id: string; attempts: number; last_error: string | null; next_attempt_at: Date | null; updated_at: Date; event_id: string | null; order_id: string | null; from_state: string | null; to_state: string | null; at: Date | null; behind: number }>(
        `select c.last_event_id::text, c.attempts, c.last_error, c.next_attempt_at, c.updated_at,
                e.id::text as event_id, e.order_id, e.from_state, e.to_state, e.at,
                (select count(*) from (select 1 from order_event b where b.id > e.id limit ${BEHIND_COUNT_MAX}) b)::int as behind
           from webhook_cursor c
           left join lateral (select id, order_id, from_state, to_state, at from order_event where id > c.last_event_id order by id limit 1) e on true
          where c.name = $1`,
        [WEBHOOK_CURSOR],
      ),
      ms,
      'PostgreSQL',
    );
    const row = rows[0];
    return webhooksVerdict(
      {
        cursor: row ? { lastEventId: row.last_event_id, attempts: Number(row.attempts), lastError: row.last_error, nextAttemptAt: row.next_attempt_at ? new Date(row.next_attempt_at) : null, updatedAt: new Date(row.updated_at) } : null,
        oldest: row?.event_id ? { id: row.event_id, orderId: row.order_id as string, fromState: row.from_state, toState: row.to_state as string, at: new Date(row.at as Date) } : null,
        behind: Number(row?.behind ?? 0),
      },
      config,
      clockFromConfig(config).now(),
    );
  } catch (err) {
    return { name, core: false, verdict: 'WARN', detail: `the webhook delivery state could not be read: ${(err as Error).message}`, hint: 'run connector migrate if the migrations check says some are pending; else run connector doctor again' };
  } finally {
    void client.end().catch(() => undefined);
  }
};

/**
 * The report for a terminal: one line per check, its hint on the line below. As a fourth column the
 * hint began after the longest detail of all (a master key's or a folder's runs to hundreds of
 * characters), so every line was padded to some 800 columns and wrapped into screens of blanks.
 */
export function renderDoctorReport(report: DoctorReport): string {
  const lines = table(report.checks.map((c) => [c.verdict, c.name, c.detail]), ['VERDICT', 'CHECK', 'DETAIL']).split('\n');
  const indent = ' '.repeat(Math.max('VERDICT'.length, ...report.checks.map((c) => c.verdict.length)) + 2);
  return [lines[0], ...report.checks.flatMap((c, i) => (c.hint ? [lines[i + 1], `${indent}hint: ${c.hint}`] : [lines[i + 1]]))].join('\n');
}

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check config, Redis, PostgreSQL, migrations, clock skew and disk (exit 1 if a core check fails); bank, signer agent and the mail server for admin alerts are WARN unless --strict')
    .option('--json', 'one JSON document')
    .option('--strict', 'an unreachable bank, signer agent or mail server fails too')
    .action(
      runAction(async (opts: { json?: boolean; strict?: boolean }) => {
        const report = await runDoctor({ strict: opts.strict, extra: [checkSmtp, checkProcesses, checkWebhooks] });
        if (opts.json) {
          printJson(report);
        } else {
          process.stdout.write(`${renderDoctorReport(report)}\n`);
          process.stdout.write(report.ok ? 'doctor: all core checks passed\n' : 'doctor: a core check FAILED (see hints)\n');
        }
        return report.ok ? 0 : 1;
      }),
    );
}
