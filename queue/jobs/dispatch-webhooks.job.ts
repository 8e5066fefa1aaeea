import { randomUUID } from 'node:crypto';
import { readSigningSecret } from '../../connector/shared/secret-file';
import type IORedis from 'ioredis';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { WebhookClient } from '../../adapters/erp/http/webhook.client';
import { ConnectorError } from '../../connector/shared/errors';
import { formatAmount } from '../../connector/shared/money';
import type { OrderEventSnapshot } from '../../connector/orders/order-event.snapshot';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { perContext } from '../stage-batcher';
import { openIncident, resolveIncidentsByKey } from '../../connector/incidents/incident.service';

export const dispatchWebhooksJob = defineJob({
  name: 'webhook.dispatch',
  queue: 'writeback',
  payload: z.object({}).passthrough(),
  jobId: () => 'webhook-dispatch',
});

/** The one delivery cursor (`webhook_cursor.name`); doctor's `webhooks` check reads it. */
export const WEBHOOK_CURSOR = 'default';

export type DispatchResult =
  | { status: 'disabled' | 'locked' | 'backoff' }
  /** Status changes still being written when it looked (the next run tries again): by whom, open how long. */
  | { status: 'unsettled'; waitingFor: Array<{ pid: number; openSeconds: number; application: string }> }
  | { status: 'done'; delivered: number; failed?: { eventId: string; error: string; attempts: number } };

/** A transaction holding status changes back from the ERP longer than this is named in a warning (once a minute). */
const STUCK_WRITER_WARN_S = 60;

interface EventRow {
  id: string;
  order_id: string;
  from_state: string | null;
  to_state: string;
  reason: string | null;
  at: Date;
  order_snapshot: OrderEventSnapshot | null;
  erp_document_id: string | null;
  number: string;
  doc_date: string | Date;
  amount_tiyn: string | number;
  external_id: string;
  source: string;
  errors: unknown;
}

/**
 * The order as the event found it: its snapshot, kept with the event when it was written. Events
 * written before snapshots were kept (migration 20261128000000) have none: their order as it is now.
 */
function orderAtEvent(e: EventRow): OrderEventSnapshot {
  if (e.order_snapshot) return e.order_snapshot;
  return {
    amountTiyn: Number(e.amount_tiyn),
    number: e.number,
    date: isoDay(e.doc_date),
    erpDocumentId: e.erp_document_id,
    source: e.source,
    externalId: e.external_id,
    errors: (e.errors as OrderEventSnapshot['errors']) ?? null,
  };
}

function isoDay(value: string | Date): string {
  return typeof value === 'string' ? value.slice(0, 10) : new Date(value.getTime() - value.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
}

/**
 * Status changes to the ERP's webhook URL (issue 12, INTERFACES.md "webhooks"): the `order_event`
 * rows (written in the same transaction as each transition) are the outbox; they are POSTed in
 * order, signed (HMAC-SHA256 over "<timestamp>.<body>"), and the cursor in PostgreSQL moves only
 * when the ERP acknowledged with a 2xx. A failure is retried with a doubling backoff (1 s up to
 * `webhooks.maxBackoffMs`) until acknowledged; later events wait, so the ERP sees them in order.
 * At-least-once: a crash between delivery and the cursor update resends one event; the ERP
 * deduplicates on `eventId`. The cursor starts at the events that exist when webhooks are first
 * run, so enabling them does not replay history. One dispatcher at a time (Redis lock, extended
 * before each delivery to outlast it).
 * Only events below a settled horizon are sent (`settledEventHorizon`): an event id is taken when
 * the transition runs, not when it commits, so a later id can be visible before an earlier one.
 */
/** The incident of a webhook secret file that cannot be used (dispatchWebhooks). */
const SECRET_INCIDENT_KEY = 'webhook_undelivered:secret-file';
/** Per process: none open, as far as this process knows (looked for once, and again after a refusal; not on every dispatch). */
const secretIncidentNoneOpen = new WeakSet<object>();

export async function dispatchWebhooks(
  context: JobContext,
  redis: IORedis,
  options: { client?: WebhookClient; lockMs?: number; settleMs?: number } = {},
): Promise<DispatchResult> {
  const cfg = context.config.webhooks;
  if (!cfg.url) return { status: 'disabled' };
  let client = options.client;
  if (!client) {
    if (!cfg.secretFile) throw new ConnectorError('CONFIG_INVALID', 'webhooks.url is set but webhooks.secretFile is not: webhooks are signed with the secret in that file', 1);
    // An empty file (a `touch`, a secret written elsewhere) signed every event with an empty key,
    // which anyone can compute: an ERP that took the signature as proof could be sent any status.
    // A file others may read lets anyone on the machine do the same (R-4, as the Client Secret's).
    const read = readSigningSecret(cfg.secretFile, 'webhooks.secretFile');
    if ('problem' in read) {
      // Not a log line only: the ERP stops hearing of rejections and executions until a person acts
      // (a 0644 file from before this check, a secret written elsewhere). One open incident says so.
      const title = `No status event is sent to the ERP (webhooks.url): ${read.problem}; the events wait and go out once it is fixed`;
      await openIncident(context.orm.em.fork(), { kind: 'webhook_undelivered', severity: 'high', title, evidence: { problem: read.problem }, dedupeKey: SECRET_INCIDENT_KEY, actor: 'worker', now: context.clock.now(), onRepeat: 'ignore' });
      secretIncidentNoneOpen.delete(context);
      throw new ConnectorError('CONFIG_INVALID', `no status event is sent unsigned or with a secret others may have: ${read.problem}`, 1);
    }
    if (!secretIncidentNoneOpen.has(context)) {
      await resolveIncidentsByKey(context.orm.em.fork(), SECRET_INCIDENT_KEY, { actor: 'worker', note: 'the webhook secret file can be used again; the status events that waited go out', now: context.clock.now() });
      secretIncidentNoneOpen.add(context);
    }
    client = new WebhookClient(cfg.url, read.secret, cfg.timeoutMs);
  }
  const lockMs = options.lockMs ?? 60_000;
  const key = `${context.config.redis.prefix}:webhooks:lock`;
  const me = `${process.pid}-${randomUUID()}`;
  if ((await redis.set(key, me, 'PX', lockMs, 'NX')) !== 'OK') return { status: 'locked' };
  try {
    const em = context.orm.em.fork();
    const now = context.clock.now();
    await em.execute(
      `insert into webhook_cursor (name, last_event_id, attempts, updated_at)
       select ?, coalesce(max(id), 0), 0, ? from order_event
       on conflict (name) do nothing`,
      [WEBHOOK_CURSOR, now],
    );
    const [cursor] = await em.execute<Array<{ last_event_id: string; attempts: number; next_attempt_at: Date | null }>>(
      'select last_event_id, attempts, next_attempt_at from webhook_cursor where name = ?',
      [WEBHOOK_CURSOR],
    );
    if (cursor.next_attempt_at && new Date(cursor.next_attempt_at).getTime() > now.getTime()) return { status: 'backoff' };
    const horizon = await settledEventHorizon(em, options.settleMs ?? SETTLE_MS);
    if (horizon === null) return { status: 'unsettled', waitingFor: await eventWriters(em) };
    let delivered = 0;
    let attempts = cursor.attempts;
    let after = cursor.last_event_id;
    // `batchSize` events in memory at a time, batch after batch until caught up (or the run's time
    // is up): one batch per run (every `webhooks.everyMs`) would cap delivery far below the
    // events a busy day makes, and it would fall behind for good.
    const started = Date.now();
    for (;;) {
      const events = await em.execute<EventRow[]>(
        `select e.id, e.order_id, e.from_state, e.to_state, e.reason, e.at, e.order_snapshot,
                p.erp_document_id, p.number, p.doc_date::text as doc_date, p.amount_tiyn, p.external_id, p.source, p.errors
           from order_event e join payment_order p on p.id = e.order_id
          where e.id > ? and e.id <= ? order by e.id limit ?`,
        [after, horizon, cfg.batchSize],
      );
      for (const e of events) {
        // The order as it was at this status change, not as it is now (corrected since, say).
        const order = orderAtEvent(e);
        const body = JSON.stringify({
          event: 'order.status',
          eventId: String(e.id),
          orderId: e.order_id,
          erpDocumentId: order.erpDocumentId,
          source: order.source,
          number: order.number,
          date: order.date,
          amount: formatAmount(order.amountTiyn),
          externalId: order.externalId,
          state: e.to_state,
          previousState: e.from_state,
          reason: e.reason,
          ...(e.to_state === 'invalid' ? { errors: order.errors ?? [] } : {}),
          at: new Date(e.at).toISOString(),
        });
        // The lock must outlast this delivery (a slow 2xx included) and the cursor update after it:
        // lapsed, another dispatcher would send the same events meanwhile, and out of order.
        if ((await redis.eval(EXTEND, 1, key, me, String(cfg.timeoutMs + lockMs))) !== 1) return { status: 'done', delivered };
        const result = await client.post(body, context.clock.now());
        if (!result.ok) {
          attempts += 1;
          const backoffMs = Math.min(cfg.maxBackoffMs, 1000 * 2 ** Math.min(attempts - 1, 30));
          const error = result.error ?? 'error';
          await em.execute('update webhook_cursor set attempts = ?, next_attempt_at = ?, last_error = ?, updated_at = ? where name = ?', [
            attempts,
            new Date(context.clock.now().getTime() + backoffMs),
            error,
            context.clock.now(),
            WEBHOOK_CURSOR,
          ]);
          context.logger.warn({ event: 'webhook.failed', eventId: String(e.id), orderId: e.order_id, attempts, backoffMs, error });
          // From the 5th on (one incident per event): a crash or a failed incident at the 5th is made up for.
          if (attempts >= UNDELIVERED_AFTER_ATTEMPTS) await undeliveredIncident(context, { eventId: String(e.id), orderId: e.order_id, attempts, error });
          return { status: 'done', delivered, failed: { eventId: String(e.id), error, attempts } };
        }
        // Delivered after failing: the incident opened for it (from the 5th failure on) is closed
        // before the cursor moves past it. A crash in between resends the event (the ERP deduplicates
        // it); the other way round, the incident would stay open for an event delivered long ago.
        if (attempts > 0) await undeliveredRecovered(context, { eventId: String(e.id), orderId: e.order_id, failures: attempts });
        attempts = 0;
        delivered += 1;
        await em.execute('update webhook_cursor set last_event_id = ?, attempts = 0, next_attempt_at = null, last_error = null, updated_at = ? where name = ?', [e.id, context.clock.now(), WEBHOOK_CURSOR]);
        after = e.id;
      }
      if (events.length < cfg.batchSize || Date.now() - started >= RUN_MS) return { status: 'done', delivered };
    }
  } finally {
    const release = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
    await redis.eval(release, 1, key, me).catch(() => undefined);
  }
}

/**
 * Failed deliveries of one event after which a person is told (about 30 s of backoff): every later
 * status change waits behind it, and an endpoint that answers 3xx, 401 or 410 will not heal by
 * itself. One incident per event, with no URL in it (it may carry a token).
 */
export const UNDELIVERED_AFTER_ATTEMPTS = 5;

async function undeliveredIncident(context: JobContext, failed: { eventId: string; orderId: string; attempts: number; error: string }): Promise<void> {
  const { incident } = await openIncident(context.orm.em.fork(), {
    kind: 'webhook_undelivered',
    severity: 'high',
    title: `The ERP's webhook endpoint refused status event ${failed.eventId} ${failed.attempts} times (${failed.error.slice(0, 100)}); every later status change waits behind it: check webhooks.url and the ERP`,
    evidence: failed,
    dedupeKey: `webhook_undelivered:${failed.eventId}`,
    actor: 'worker',
    now: context.clock.now(),
    onRepeat: 'ignore',
  });
  context.logger.error({ event: 'webhook.undelivered', alert: true, ...failed, incidentId: incident.id }, 'webhook.undelivered');
}

/**
 * Closes the `webhook_undelivered` incident of an event the ERP has now acknowledged, with a note
 * (as the worker closes a status-poll incident once the bank answers again): the status changes
 * that waited behind it go on by themselves, and an open incident would send a person to fix an
 * endpoint that works.
 */
async function undeliveredRecovered(context: JobContext, delivered: { eventId: string; orderId: string; failures: number }): Promise<void> {
  const resolved = await resolveIncidentsByKey(context.orm.em.fork(), `webhook_undelivered:${delivered.eventId}`, {
    actor: 'worker',
    note: `the ERP acknowledged status event ${delivered.eventId} (order ${delivered.orderId}) after ${delivered.failures} failed attempt(s); the status changes behind it go on`,
    now: context.clock.now(),
  });
  for (const id of resolved) context.logger.info({ event: 'webhook.recovered', ...delivered, incidentId: id }, 'webhook.recovered');
}

/** Extends the lock only while it is still ours. */
const EXTEND = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** After this long a run starts no further batch (the next run goes on from the cursor). */
const RUN_MS = 30_000;

/** How long a dispatch waits for the transitions in flight when it looks (they take milliseconds). */
const SETTLE_MS = 2_000;

/** Transactions holding `order_event` for writing (an INSERT holds it from before its ids are taken until its end), by virtual transaction id. */
const EVENT_WRITERS = `select virtualtransaction, pid from pg_locks
  where locktype = 'relation' and database = (select oid from pg_database where datname = current_database())
    and relation = 'order_event'::regclass and mode = 'RowExclusiveLock'`;

/**
 * The highest event id at or below which every event is committed or rolled back for good, or
 * null when transactions that may still commit such an event did not end within `settleMs` (the
 * next dispatch tries again). Two transitions take ids 10 and 11; 11 commits first: a cursor moved
 * to 11 would skip 10 forever. An event at or below the largest visible id that is not visible yet
 * was inserted by a transaction that took its id before that snapshot and still holds
 * `order_event` for writing when the lock table is read just after: once those transactions have
 * ended, nothing at or below it can appear any more. Only those are waited for: a long transaction
 * elsewhere (another table, another database on the same server, a session left open, one that
 * only reads events) does not hold deliveries back.
 */
async function settledEventHorizon(em: EntityManager, settleMs: number): Promise<string | null> {
  // One statement: its snapshot (for max) is taken before the lock table is read.
  const [{ top, writers }] = await em.execute<Array<{ top: string; writers: string[] | null }>>(
    `select coalesce((select max(id) from order_event), 0)::text as top, (select array_agg(virtualtransaction) from (${EVENT_WRITERS}) w) as writers`,
  );
  if (!writers?.length) return top;
  const deadline = Date.now() + settleMs;
  for (;;) {
    const [{ running }] = await em.execute<Array<{ running: number }>>(`select count(*)::int as running from (${EVENT_WRITERS}) w where virtualtransaction = any(string_to_array(?, ','))`, [writers.join(',')]);
    if (running === 0) return top;
    if (Date.now() >= deadline) return null;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The sessions whose open transactions hold `order_event` for writing: what an operator looks for in pg_stat_activity. */
async function eventWriters(em: EntityManager): Promise<Array<{ pid: number; openSeconds: number; application: string }>> {
  const rows = await em.execute<Array<{ pid: number; open_seconds: number | null; application: string | null }>>(
    `select w.pid, extract(epoch from now() - a.xact_start)::int as open_seconds, a.application_name as application
       from (${EVENT_WRITERS}) w join pg_stat_activity a on a.pid = w.pid
      where w.pid <> pg_backend_pid()
      order by a.xact_start limit 5`,
  );
  return rows.map((r) => ({ pid: Number(r.pid), openSeconds: Number(r.open_seconds ?? 0), application: r.application ?? '' }));
}

export const handleDispatchWebhooks: JobHandler<typeof dispatchWebhooksJob.payload> = async (_payload, context, job) => {
  const result = await dispatchWebhooks(context, context.queues.connection);
  if (result.status === 'unsettled' && result.waitingFor.some((w) => w.openSeconds >= STUCK_WRITER_WARN_S)) {
    // One transaction left open after writing a status change holds every webhook back: say whose.
    const warned = perContext(context, 'webhooks.stuckWriterWarned', () => ({ at: 0 }));
    if (Date.now() - warned.at >= 60_000) {
      warned.at = Date.now();
      context.logger.warn(
        { event: 'webhook.held_back', alert: true, waitingFor: result.waitingFor },
        `status webhooks are held back by a PostgreSQL transaction open for ${result.waitingFor[0].openSeconds} s that wrote a status change (pid ${result.waitingFor[0].pid}); end it (pg_terminate_backend) if it is stuck`,
      );
    }
  }
  if (result.status === 'done' && (result.delivered > 0 || result.failed)) context.logger.child({ jobId: job.id }).info({ event: 'webhook.dispatched', ...result });
  return result;
};
