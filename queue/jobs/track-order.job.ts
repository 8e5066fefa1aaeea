import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { PaymentOrder } from '../../connector/persistence/entities';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { openIncident } from '../../connector/incidents/incident.service';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { isFinalStatus } from '../../adapters/bank/business-api/business-api.client';
import { waitAndRetry } from './pipeline.helpers';
import { enqueueWriteBack } from './write-back.job';
import { triggerLockdown } from '../lockdown.trigger';

export const trackOrderJob = defineJob({
  name: 'order.track',
  queue: 'track',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `track-${p.orderId}`,
});

/**
 * Stage 5: poll the bank's status with backoff until it is final. Statuses only move forward; an
 * unknown status is kept verbatim and moves nothing (LESSONS.md 3, R-3). R-22: with no notice of
 * non-execution by the end of the operational day after the day the bank received it, the order
 * is deemed executed. R-21: no status at all one business day after submission raises an alert.
 */
export const handleTrackOrder: JobHandler<typeof trackOrderJob.payload> = async (payload, context, job) => {
  const em = context.orm.em.fork();
  const order = await em.findOne(PaymentOrder, { id: payload.orderId });
  if (!order || order.state !== 'submitted' || !order.bankReference) return { state: order?.state ?? 'missing' };
  const now = context.clock.now();
  let status;
  try {
    status = await context.services.bank().getStatus(order.bankReference);
  } catch (err) {
    if (err instanceof BankError && (err.code === 'RATE_LIMITED' || err.code === 'MAINTENANCE')) return waitAndRetry(job, err.retryAfterMs ?? context.config.tracking.pollEveryMs, err.code);
    throw err;
  }
  if (status.status === 'executed') {
    await transitionOrder(em, order.id, 'executed', { actor: 'bank', from: 'submitted', reason: 'executed by the bank', patch: { bankStatus: status.status }, now });
    await enqueueWriteBack(context.queues); // the status report for 1C (written only when it changed)
    return { state: 'executed' };
  }
  if (status.status === 'rejected') {
    const text = status.reasonText ?? status.reasonCode ?? 'rejected by the bank';
    await transitionOrder(em, order.id, 'rejected', {
      actor: 'bank',
      from: 'submitted',
      reason: `${status.reasonCode ?? 'REJECTED'}: ${text}`,
      patch: { bankStatus: status.status, bankReasonCode: status.reasonCode ?? 'REJECTED', bankReasonText: text },
      now,
    });
    if (status.reasonCode && context.config.lockdown.bankRefusalCodes.includes(status.reasonCode)) {
      // R-31 (terms 5.2.2, 5.2.8d): refused at execution for identification / authentication / compromise reasons.
      await triggerLockdown(context, {
        trigger: 'bank_refused_compromise',
        reason: `the bank refused order ${order.number} at execution with ${status.reasonCode}`,
        scope: 'credentials',
        evidence: { orderId: order.id, reasonCode: status.reasonCode, bankReference: order.bankReference },
        actor: 'worker',
      });
    }
    await enqueueWriteBack(context.queues); // the status report for 1C (written only when it changed)
    return { state: 'rejected' };
  }
  if (!isFinalStatus(status.status) && status.status !== order.bankStatus) {
    // Kept verbatim (an unknown status included); the state does not move.
    await em.execute("update payment_order set bank_status = ?, updated_at = ? where id = ? and state = 'submitted'", [status.status, now, order.id]);
  }
  const calendar = kzCalendarFromConfig(context.config);
  // the day the bank received it, then one more operational day without a notice.
  const receivedDay = status.operationalDay ?? calendar.operationalDayOf(order.stateChangedAt);
  const deemedAt = calendar.endOfOperationalDay(calendar.nextBusinessDay(receivedDay));
  if (now >= deemedAt) {
    await transitionOrder(em, order.id, 'deemed_executed', { actor: 'worker', from: 'submitted', reason: `no notice of non-execution by ${deemedAt.toISOString()} (R-22)`, now });
    await enqueueWriteBack(context.queues); // the status report for 1C (written only when it changed)
    return { state: 'deemed_executed' };
  }
  // a processing status is due within 1 business day of submission.
  const alertAt = calendar.operationalDeadline(order.stateChangedAt, 1);
  if (now >= alertAt && status.status === 'accepted') {
    await openIncident(context.orm.em.fork(), {
      kind: 'status_overdue',
      severity: 'medium',
      title: `Order ${order.number} has no processing status one business day after submission (R-21)`,
      evidence: { orderId: order.id, externalId: order.externalId, bankStatus: status.status },
      dedupeKey: `status_overdue:${order.id}`,
      actor: 'worker',
    });
  }
  // Backoff: the first polls are quick, later ones stretch up to maxPollEveryMs.
  const polls = Number((job.data as { polls?: number }).polls ?? 0) + 1;
  await job.updateData({ ...job.data, polls });
  const delay = Math.min(context.config.tracking.maxPollEveryMs, context.config.tracking.pollEveryMs * 2 ** Math.min(polls, 10) / 2);
  return waitAndRetry(job, delay, status.status);
};
