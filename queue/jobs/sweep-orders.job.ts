import { z } from 'zod';
import { escalateReconciliationIncidents, lockdownDepsFor } from '../lockdown.trigger';
import { reapplyRedisLock } from '../../connector/lockdown/lockdown.service';
import { raiseCredentialClockIncidents } from '../../connector/vault/credential.vault';
import { purgeIdempotencyRecords } from '../../connector/intake/idempotency.retention';
import { defineJob, type AnyJobDefinition, type JobHandler } from '../job-definition';
import type { OrderState } from '../../connector/orders/order-state';
import { validateOrderJob } from './validate-order.job';
import { idleLookJobId, signOrderJob } from './sign-order.job';
import { submitOrderJob } from './submit-order.job';
import { trackOrderJob } from './track-order.job';
import type { QueueSet } from '../queue.factory';
import { perContext } from '../stage-batcher';

export const sweepOrdersJob = defineJob({
  name: 'maintenance.sweep',
  queue: 'maintenance',
  payload: z.object({}).passthrough(),
  jobId: () => 'sweep-orders',
});

/**
 * Which job moves an order out of each transient state. The pipeline adds its stages here; a
 * state with no job is not swept.
 */
export const STAGE_JOBS: Partial<Record<OrderState, AnyJobDefinition>> = {
  received: validateOrderJob,
  validated: signOrderJob,
  awaiting_signatures: signOrderJob,
  signed: submitOrderJob,
  submitting: submitOrderJob,
  submitted: trackOrderJob,
};

/**
 * Re-queues the stage job of one order unless that job is already waiting or running.
 * A completed or failed job with the same id would make `add` a silent no-op (LESSONS.md 11),
 * so it is removed first; the database state decides whether the work is still needed.
 */
export async function requeueOrder(queues: QueueSet, state: OrderState, orderId: string, options: { now?: boolean } = {}): Promise<boolean> {
  const definition = STAGE_JOBS[state];
  if (!definition) return false;
  // An order waiting for people has its own job that looks again now and then (sign-order.job.ts);
  // the sweeper leaves it to that look, an operator's retry (`now`) looks at once.
  if (!options.now && state === 'awaiting_signatures' && (await queues.isPending(definition.queue, idleLookJobId(orderId)))) return false;
  return queues.addUnlessPending(definition, { orderId });
}

/**
 * The sweeper: PostgreSQL is the truth, Redis only carries work. An order left in a transient
 * state longer than `sweeper.staleAfterMs` is re-queued; this also rebuilds every queue after Redis
 * lost its data. The bound, 2 min by default: well above the time a stage takes when all is well
 * (a bank call at the default bank.timeoutMs of 15 s included), so a sweep rarely even looks at a
 * live order; short enough that an order whose job Redis lost moves again within minutes. It is
 * not what keeps a live order from being doubled, whatever bank.timeoutMs is (up to 10 min): a job
 * still waiting or running is never added again (requeueOrder), and a send is guarded by its send
 * lease (bank.timeoutMs + 5 s, submit-order.job.ts), which a second sender cannot take.
 */
export async function sweepOrders(context: { orm: import('../../connector/persistence/database').Orm; queues: QueueSet; config: { sweeper: { staleAfterMs: number } } }, now: Date, limit = 1000): Promise<number> {
  const states = Object.keys(STAGE_JOBS) as OrderState[];
  if (states.length === 0) return 0;
  const cutoff = new Date(now.getTime() - context.config.sweeper.staleAfterMs);
  const em = context.orm.em.fork();
  // Where the last sweep of each state stopped, in this process. Orders that wait long without
  // changing (submitted at the bank, awaiting people) keep their state_changed_at, so "the oldest
  // `limit`" would be the same orders every time; walking on from there and starting over at the
  // end reaches every order, also the ten thousandth after Redis lost its data.
  const resumeAt = perContext(context, 'sweep.resume', () => new Map<OrderState, { at: Date; id: string }>());
  let requeued = 0;
  // Each state on its own, `limit` each: thousands of orders nobody signs (waiting for people in
  // `awaiting_signatures`) never crowd out one stuck in `submitting`.
  for (const state of states) {
    const after = resumeAt.get(state);
    const rows = await em.execute<Array<{ id: string; state_changed_at: Date }>>(
      `select id, state_changed_at from payment_order where state = ? and state_changed_at < ?${after ? ' and (state_changed_at, id) > (?, ?)' : ''}
        order by state_changed_at, id limit ?`,
      [state, cutoff, ...(after ? [after.at, after.id] : []), limit],
    );
    const last = rows[rows.length - 1];
    if (rows.length < limit || !last) resumeAt.delete(state);
    else resumeAt.set(state, { at: new Date(last.state_changed_at), id: last.id });
    for (const row of rows) if (await requeueOrder(context.queues, state, row.id)) requeued += 1;
  }
  return requeued;
}

export const handleSweepOrders: JobHandler<typeof sweepOrdersJob.payload> = async (_payload, context) => {
  // A lockdown recorded while Redis was down holds in Redis too once it answers (flag, queues paused).
  // Best effort: the rest of the sweep does not wait on it.
  const lockdownReapplied = await reapplyRedisLock(lockdownDepsFor(context)).catch((err: Error) => {
    context.logger.warn({ event: 'lockdown.redis_reapply_failed', err: err.message });
    return false;
  });
  const requeued = await sweepOrders(context, context.clock.now());
  if (requeued > 0) context.logger.warn({ event: 'maintenance.sweep.requeued', requeued });
  // Issue 16: reconciliation incidents (unexplained debit, execution mismatch) are lockdown triggers.
  const escalated = await escalateReconciliationIncidents(context);
  // the Client ID / Secret's clocks as incidents (mailed to the admins by the incident digest).
  const credentials = await raiseCredentialClockIncidents({ em: context.orm.em, clock: context.clock });
  if (credentials.opened > 0) context.logger.warn({ event: 'credentials.clock.incident', opened: credentials.opened });
  // The API's Idempotency-Key records past api.idempotencyKeepDays (they would grow for ever).
  const idempotencyPurged = await purgeIdempotencyRecords(context.orm.em.fork(), context.clock.now(), context.config.api.idempotencyKeepDays);
  return { requeued, escalated, credentials, idempotencyPurged, lockdownReapplied };
};
