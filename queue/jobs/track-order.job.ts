import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { PaymentOrder } from '../../connector/persistence/entities';
import { transitionOrder, transitionOrders } from '../../connector/orders/order-state.machine';
import type { JobContext } from '../job-context';
import { pipelineStageBatcher } from '../stage-batcher';
import { openIncident, resolveIncidentsByKey } from '../../connector/incidents/incident.service';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { executionDayOf } from '../../connector/orders/execution-day';
import { refusalReason } from '../../connector/orders/order.mapper';
import { BankError, reasonTextRu } from '../../adapters/bank/business-api/business-api.errors';
import { isFinalStatus } from '../../adapters/bank/business-api/business-api.client';
import { KNOWN_STATUSES } from '../../adapters/bank/business-api/business-api.schemas';
import { backoffAfter, CREDENTIALS_WAIT_MS, credentialsRefused, credentialsUnavailableIncident, lockdownOnCompromiseCode, lockdownOnRefusalCode, retryAfterWait, waitAndRetry } from './pipeline.helpers';
import { enqueueWriteBack } from './write-back.job';

export const trackOrderJob = defineJob({
  name: 'order.track',
  queue: 'track',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `track-${p.orderId}`,
});

type TrackOutcome = { state: string } | { waitMs: number; why: string } | { poll: string };
/** A poll that moved nothing; `newStatus` when it found a status other than the one recorded (recorded for the batch at once). */
type Polled = { poll: string; newStatus: boolean };

/**
 * Stage 5: poll the bank's status with backoff until it is final. Statuses only move forward; an
 * unknown status is kept verbatim and moves nothing (LESSONS.md 3, R-3). R-22: with no notice of
 * non-execution by the end of the operational day after the day the bank received it (or after its
 * value date, when later), the order is deemed executed. R-21: no status at all one business day
 * after submission raises an alert.
 *
 * A batch of polls at a time (queue/stage-batcher.ts): one load of the orders, the status requests
 * in parallel, one update of the statuses that changed, one transition for all the executed ones,
 * one write-back trigger.
 */
export async function trackBatch(context: JobContext, orderIds: string[]): Promise<Array<TrackOutcome | Error>> {
  const em = context.orm.em.fork();
  const orders = await em.find(PaymentOrder, { id: { $in: orderIds } }, { disableIdentityMap: true });
  const byId = new Map(orders.map((o) => [o.id, o]));
  const now = context.clock.now();
  const outcomes = new Map<string, TrackOutcome | Error>();
  const executed: string[] = [];
  const changed: Array<{ id: string; status: string }> = [];
  await Promise.all(
    orderIds.map(async (id) => {
      const order = byId.get(id);
      if (!order || order.state !== 'submitted' || !order.bankReference) return outcomes.set(id, { state: order?.state ?? 'missing' });
      try {
        const outcome = await trackOne(context, order, now);
        if (outcome === 'executed') executed.push(id);
        else if ('newStatus' in outcome) {
          if (outcome.newStatus) changed.push({ id, status: outcome.poll });
          outcomes.set(id, { poll: outcome.poll });
        } else outcomes.set(id, outcome);
      } catch (err) {
        outcomes.set(id, err as Error);
      }
    }),
  );
  if (changed.length > 0) {
    // Kept verbatim (an unknown status included); the state does not move.
    await em.execute(
      `update payment_order p set bank_status = v.status, updated_at = ? from (values ${changed.map(() => '(?::uuid, ?)').join(', ')}) as v (id, status)
        where p.id = v.id and p.state = 'submitted'`,
      [now, ...changed.flatMap((c) => [c.id, c.status])],
    );
  }
  for (const r of await transitionOrders(em, executed, 'executed', { actor: 'bank', from: 'submitted', reason: 'executed by the bank', patch: { bankStatus: 'executed' }, now })) {
    outcomes.set(r.orderId, 'error' in r ? r.error : { state: 'executed' });
  }
  // The status report for 1C (written only when it changed).
  if ([...outcomes.values()].some((o) => 'state' in o && FINAL_STATES.has(o.state))) await enqueueWriteBack(context.queues);
  return orderIds.map((id) => outcomes.get(id) as TrackOutcome | Error);
}

const FINAL_STATES = new Set(['executed', 'rejected', 'deemed_executed']);

async function trackOne(context: JobContext, order: PaymentOrder, now: Date): Promise<Exclude<TrackOutcome, { poll: string }> | Polled | 'executed'> {
  const em = context.orm.em.fork();
  const calendar = kzCalendarFromConfig(context.config);
  let status;
  try {
    status = await context.services.bank().getStatus(order.bankReference as string);
  } catch (err) {
    // No status because the bank does not answer is no status too (R-21): the incident does not wait for the bank.
    await noStatusOverdue(context, calendar, order, now, err instanceof BankError ? err.code : 'ERROR');
    // The bank says when to come back (R-24); without a Retry-After a job can keep (none, 0, a year) it is a failed poll, backed off below.
    const retryAfter = err instanceof BankError && (err.code === 'RATE_LIMITED' || err.code === 'MAINTENANCE') ? retryAfterWait(context, err.retryAfterMs) : undefined;
    if (retryAfter !== undefined) return { waitMs: retryAfter, why: (err as BankError).code };
    // Our own credentials cannot be used (marked revoked, the vault cannot be opened, or the bank
    // refuses them): retrying at once would spend the attempts and turn an order that is at the
    // bank into `failed` (an ERP user might pay it again); the poll waits for an operator.
    if (err instanceof BankError && err.code === 'CREDENTIALS_UNAVAILABLE') {
      // Said even when nothing is being submitted (only orders under tracking).
      await credentialsUnavailableIncident(context, { code: err.details.providerCode ?? err.code, message: err.message });
      return { waitMs: Math.max(context.config.tracking.pollEveryMs, CREDENTIALS_WAIT_MS), why: `${err.code} (${err.details.providerCode ?? 'credentials'})` };
    }
    if (err instanceof BankError && (err.code === 'AUTH' || err.code === 'CREDENTIALS_REVOKED')) {
      await credentialsRefused(context, err, { orderId: order.id, stage: 'track' });
      return { waitMs: Math.max(context.config.tracking.pollEveryMs, CREDENTIALS_WAIT_MS), why: err.code };
    }
    throw err;
  }
  // An answer about another document (the bank mixed answers up) says nothing about this order:
  // applying it could refuse or execute the wrong one. Nothing moves; one incident, and the poll
  // waits and asks again (spending the attempts would turn an order at the bank into `failed`).
  // It is no status of this order either (R-21): overdue as if the bank had not answered.
  if (status.externalId !== order.externalId || status.documentId !== order.bankReference) {
    await noStatusOverdue(context, calendar, order, now, 'CONTRACT_VIOLATION');
    const why = `the bank's status answer for document ${order.bankReference} is about document ${status.documentId} (external id ${status.externalId})`;
    context.logger.error({ event: 'order.track.foreign_status', alert: true, orderId: order.id, documentId: status.documentId, externalId: status.externalId }, why);
    await orderPollIncident(context, order, now, {
      kind: 'bank_status_mismatch',
      severity: 'high',
      title: `The bank answers the status of order ${order.number} with another document's (CONTRACT_VIOLATION): its status is not known`,
      evidence: { bankReference: order.bankReference, answered: { documentId: status.documentId, externalId: status.externalId, status: status.status } },
      key: '',
    });
    return { waitMs: context.config.tracking.maxPollEveryMs, why: `CONTRACT_VIOLATION: ${why}` };
  }
  if (status.status === 'executed') return 'executed';
  if (status.status === 'rejected') {
    // The reason in words the ERP's users read (R-23), as at submit: a code the connector knows in
    // its Russian words, another one with the bank's own text; neither code nor text: null.
    const refusal = { bankReasonCode: status.reasonCode ?? 'REJECTED', bankReasonText: status.reasonCode ? reasonTextRu(status.reasonCode, status.reasonText) : (status.reasonText ?? null) };
    await transitionOrder(em, order.id, 'rejected', {
      actor: 'bank',
      from: 'submitted',
      // The event's reason is what the status webhook tells an ERP: the same words as 1C's status
      // report, not the bank's bare code (a code alone read "ACCOUNT_ARRESTED: ACCOUNT_ARRESTED").
      reason: `${refusal.bankReasonCode}: ${refusalReason({ state: 'rejected', errors: null, ...refusal }).reason}`,
      patch: { bankStatus: status.status, ...refusal },
      now,
    });
    // R-31 (terms 5.2.2, 5.2.8d): refused at execution for identification / authentication / compromise reasons.
    await lockdownOnCompromiseCode(context, status.reasonCode, `the bank refused order ${order.number} at execution with ${status.reasonCode}`, {
      orderId: order.id,
      reasonCode: status.reasonCode,
      bankReference: order.bankReference,
    });
    return { state: 'rejected' };
  }
  // Statuses only move forward (LESSONS.md 3): a stale `accepted` after any later status is not
  // recorded (it would also make the order look as if it never had a processing status, R-21).
  const stale = status.status === 'accepted' && Boolean(order.bankStatus) && order.bankStatus !== 'accepted';
  const newStatus = !isFinalStatus(status.status) && !stale && status.status !== order.bankStatus;
  // R-21 before R-22: the two windows close together, and an order the bank never confirmed as
  // processing is one a person should look at, even as it is deemed executed.
  if (status.status === 'accepted' && statusOverdueAt(calendar, order, now, true)) await statusOverdue(context, order, { bankStatus: status.status }, now);
  // R-22: the day the bank received it, then one more operational day without a notice. Never a day
  // before the one we recorded it accepted on: a stale or wrong day from the bank would deem the
  // order executed at once, before any notice of non-execution could come. Nor before its value
  // date: the bank does not execute an order dated ahead until then, and 1C told "executed" on the
  // day after it was sent would show salaries paid days before any money moved.
  const acceptedDay = calendar.operationalDayOf(order.stateChangedAt);
  // The bank's day as an operational day: one it gives on a weekend or holiday is the business day
  // after it (as an instruction then is, R-20); taken as it was, the order was deemed executed a
  // business day early.
  const bankDay = status.operationalDay && !calendar.isBusinessDay(status.operationalDay) ? calendar.nextBusinessDay(status.operationalDay) : status.operationalDay;
  const receivedDay = bankDay && bankDay > acceptedDay ? bankDay : acceptedDay;
  const deemedAt = calendar.endOfOperationalDay(calendar.nextBusinessDay(executionDayOf(calendar, receivedDay, order.valueDate)));
  // What the bank says of the order now: a stale `accepted` is not recorded, so the status it
  // last reported stands (an unknown one included: a stale answer must not undo it).
  const current = stale ? (order.bankStatus as string) : status.status;
  if (now >= deemedAt && !(KNOWN_STATUSES as readonly string[]).includes(current)) {
    // A status the connector does not know is not "no notice of non-execution": it may be one
    // (`returned`, a refusal spelled another way). It moves nothing (LESSONS.md 3); a person asks
    // the bank, and the order is polled on until a known status, or the statement, says.
    await statusUnknown(context, order, current, deemedAt, now);
    return { poll: status.status, newStatus };
  }
  if (now >= deemedAt) {
    await transitionOrder(em, order.id, 'deemed_executed', {
      actor: 'worker',
      from: 'submitted',
      reason: `no notice of non-execution by ${deemedAt.toISOString()} (R-22)`,
      ...(newStatus ? { patch: { bankStatus: status.status } } : {}),
      now,
    });
    return { state: 'deemed_executed' };
  }
  return { poll: status.status, newStatus };
}

/** An order past the R-22 deadline under a status the connector does not know: one incident per order and status. */
async function statusUnknown(context: JobContext, order: PaymentOrder, bankStatus: string, deemedAt: Date, now: Date): Promise<void> {
  const shown = JSON.stringify(bankStatus.slice(0, 60));
  await orderPollIncident(context, order, now, {
    kind: 'status_unknown',
    severity: 'high',
    title: `Order ${order.number}: the bank reports the status ${shown}, which the connector does not know; it is not deemed executed at the R-22 deadline (${deemedAt.toISOString()}): ask the bank what it means`,
    evidence: { bankReference: order.bankReference, bankStatus: bankStatus.slice(0, 200), deemedAt: deemedAt.toISOString() },
    key: `:${bankStatus.slice(0, 60)}`,
  });
}

/**
 * R-21: a processing status is due within 1 business day of submission. Overdue only for an order
 * that never had one: the bank reported nothing past `accepted` so far (a later stale `accepted`
 * after `in_processing`, LESSONS.md 3, is not a missing status).
 */
function statusOverdueAt(calendar: ReturnType<typeof kzCalendarFromConfig>, order: PaymentOrder, now: Date, bankAnswered: boolean): boolean {
  if (order.bankStatus && order.bankStatus !== 'accepted') return false;
  if (!bankAnswered) return now >= calendar.operationalDeadline(order.stateChangedAt, 1);
  // An order dated ahead (salaries sent on the 1st for the 10th) stays `accepted` at the bank until
  // its value date: its business day for a processing status starts there, not at the submission,
  // or every such order opened a false R-21 incident a day after it was sent. Only when the bank
  // answers: one that does not answer at all is overdue a business day after the submission.
  const acceptedDay = calendar.operationalDayOf(order.stateChangedAt);
  const dueDay = executionDayOf(calendar, acceptedDay, order.valueDate);
  return now >= (dueDay === acceptedDay ? calendar.operationalDeadline(order.stateChangedAt, 1) : calendar.endOfOperationalDay(calendar.addBusinessDays(dueDay, 1)));
}

/**
 * R-21 for a poll that got no status of this order (the bank did not answer, or answered about
 * another document). Best effort: a calendar that cannot say (its data ended) must not hide the
 * bank's error.
 */
async function noStatusOverdue(context: JobContext, calendar: ReturnType<typeof kzCalendarFromConfig>, order: PaymentOrder, now: Date, bankError: string): Promise<void> {
  let overdue: boolean;
  try {
    overdue = statusOverdueAt(calendar, order, now, false);
  } catch {
    return;
  }
  if (overdue) await statusOverdue(context, order, { bankError }, now);
}

/** R-21: one incident per order whose processing status is overdue (the bank says only `accepted`, or does not answer). */
async function statusOverdue(context: JobContext, order: PaymentOrder, evidence: Record<string, unknown>, now: Date): Promise<void> {
  await orderPollIncident(context, order, now, {
    kind: 'status_overdue',
    severity: 'medium',
    title: `Order ${order.number} has no processing status one business day after submission (R-21)`,
    evidence,
    key: '',
  });
}

/**
 * An incident about one order that every poll finds again while it lasts (keyed `<kind>:<order id><key>`):
 * one incident, not one timeline entry per poll, and none again once a person resolved it (they
 * asked the bank; `connector orders settle` ends it).
 */
async function orderPollIncident(
  context: JobContext,
  order: PaymentOrder,
  now: Date,
  incident: { kind: string; severity: 'medium' | 'high'; title: string; evidence: Record<string, unknown>; key: string },
): Promise<void> {
  await openIncident(context.orm.em.fork(), {
    kind: incident.kind,
    severity: incident.severity,
    title: incident.title,
    evidence: { orderId: order.id, externalId: order.externalId, ...incident.evidence },
    dedupeKey: `${incident.kind}:${order.id}${incident.key}`,
    actor: 'worker',
    now,
    onRepeat: 'ignore',
    once: true,
  });
}

/**
 * A poll that failed (the bank: 5xx, a timeout, no connection, maintenance without a Retry-After,
 * an answer off the contract; or our own side: PostgreSQL for a moment, a lost job lock) never
 * gives the order up: it is at the bank, and an order shown `failed` to the ERP's users while the
 * bank executes it may be paid again (R-24: when the service resumes, so does the work, with nobody
 * retrying by hand). It waits as BullMQ's backoff would, doubling from `queue.backoffMs` up to
 * `tracking.maxPollEveryMs`, without spending an attempt (BullMQ never gives one back over the days
 * an order is tracked). From `queue.attempts` failures in a row an incident says so: one for the
 * bank's outage (5xx, timeouts, maintenance, rate limits: every order meets it), one per order for
 * what only this order meets (the bank does not know its document, answers it off the contract,
 * or our own error). One answered poll starts the count again.
 */
async function pollFailed(context: JobContext, job: Parameters<JobHandler<typeof trackOrderJob.payload>>[2], orderId: string, err: unknown): Promise<never> {
  if (err instanceof BankError) await lockdownOnRefusalCode(context, err, { orderId, stage: 'track' });
  const failures = Number((job.data as { failures?: number }).failures ?? 0) + 1;
  await job.updateData({ ...job.data, failures });
  if (failures >= (job.opts.attempts ?? 1)) await statusPollsFailing(context, err, failures, orderId);
  return waitAndRetry(job, backoffAfter(context, failures, context.config.tracking.maxPollEveryMs), err instanceof BankError ? err.code : 'ERROR');
}

/** Errors every order meets while the bank's service is down (R-24). */
const OUTAGE_CODES: ReadonlySet<string> = new Set(['TRANSIENT', 'OUTCOME_UNKNOWN', 'MAINTENANCE', 'RATE_LIMITED']);

/** One incident while the bank's status calls fail for everyone; one per order for a failure of its own. */
async function statusPollsFailing(context: JobContext, err: unknown, failures: number, orderId: string): Promise<void> {
  const code = err instanceof BankError ? err.code : 'ERROR';
  const message = err instanceof Error ? err.message.slice(0, 300) : String(err).slice(0, 300);
  const outage = err instanceof BankError && OUTAGE_CODES.has(err.code);
  const httpStatus = err instanceof BankError ? err.details.httpStatus : undefined;
  await openIncident(context.orm.em.fork(), {
    kind: 'status_polls_failing',
    severity: 'high',
    title: outage
      ? `The bank's status calls fail (${code}${httpStatus ? `, HTTP ${httpStatus}` : ''}, ${failures} in a row for one order): orders at the bank are polled on, none is given up; resolve this once the bank answers again`
      : `The status of order ${orderId} cannot be read (${code}: ${message}; ${failures} polls in a row): it is polled on and never given up; ask the bank about it, then connector orders settle if it will not answer; this closes by itself once its status is read`,
    evidence: { code, httpStatus, bankCode: err instanceof BankError ? err.details.bankCode : undefined, orderId, failures, ...(outage ? {} : { error: message }) },
    dedupeKey: outage ? 'status_polls_failing' : `status_polls_failing:${orderId}`,
    // Every poll meanwhile finds it again: one incident, not one timeline entry per poll.
    onRepeat: 'ignore',
    actor: 'worker',
    now: context.clock.now(),
  });
}

/**
 * Closes this order's own `status_polls_failing` incident once its poll is answered. The bank-wide one
 * stays for a person: a bank that answers now and then would otherwise open and close it over and over.
 */
async function statusPollsRecovered(context: JobContext, orderId: string): Promise<void> {
  await resolveIncidentsByKey(context.orm.em.fork(), `status_polls_failing:${orderId}`, { actor: 'worker', note: `the bank answered a status poll again (order ${orderId})`, now: context.clock.now() });
}

export const handleTrackOrder: JobHandler<typeof trackOrderJob.payload> = async (payload, context, job) => {
  const batcher = pipelineStageBatcher<string, TrackOutcome>(context, 'track', (ids) => trackBatch(context, ids));
  const outcome = await batcher.run(payload.orderId).catch((err: unknown) => pollFailed(context, job, payload.orderId, err));
  // This order's poll is answered again after its own incident said it was not: that incident closes.
  // Best effort: a failure here must not spend the job's attempts on a poll that succeeded.
  if (!('waitMs' in outcome) && Number((job.data as { failures?: number }).failures ?? 0) >= (job.opts.attempts ?? 1)) {
    await job.updateData({ ...job.data, failures: 0 });
    await statusPollsRecovered(context, payload.orderId).catch((err: Error) => context.logger.warn({ event: 'order.track.incident_close_failed', orderId: payload.orderId, err: err.message }));
  }
  if ('state' in outcome) return outcome;
  if ('waitMs' in outcome) return waitAndRetry(job, outcome.waitMs, outcome.why);
  // Backoff: the first polls are quick, later ones stretch up to maxPollEveryMs.
  const polls = Number((job.data as { polls?: number }).polls ?? 0) + 1;
  await job.updateData({ ...job.data, polls, failures: 0 });
  const delay = Math.min(context.config.tracking.maxPollEveryMs, context.config.tracking.pollEveryMs * 2 ** Math.min(polls, 10) / 2);
  return waitAndRetry(job, delay, outcome.poll);
};
