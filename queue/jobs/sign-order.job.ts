import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { SignerAgentError } from '../../signer-agent/agent/signer-agent.client';
import { waitAndRetry } from './pipeline.helpers';
import { signWithMandates, type MandateOutcome } from '../order-signing';
import { isLockedDown } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';
import { pipelineStageBatcher } from '../stage-batcher';

export const signOrderJob = defineJob({
  name: 'order.sign',
  queue: 'sign',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `sign-${p.orderId}`,
});

/** Agent answers that mean "this signer cannot sign right now": wait, do not fail the order. */
const NOT_READY = new Set(['KEY_LOCKED', 'NOT_ENROLLED', 'UNLOCK_IN_PROGRESS', 'SIGNER_UNAVAILABLE', 'SIGNER_UNREACHABLE', 'SIGNER_TIMEOUT', 'SHUTTING_DOWN']);

/** The id of the job that looks again now and then at an order waiting for people (see handleSignOrder). */
export function idleLookJobId(orderId: string): string {
  return `sign-${orderId}-idle`;
}

/** How often an order that waits for people (no mandate covers it) is looked at again: 5 sweeper bounds, 10 min by default. */
export function unattendedLookMs(context: Pick<JobContext, 'config'>): number {
  return Math.max(context.config.signing.pollEveryMs, 5 * context.config.sweeper.staleAfterMs);
}

/** Stage 3 for a batch of orders (queue/stage-batcher.ts); see `signWithMandates`. */
export async function signBatch(context: JobContext, orderIds: string[]): Promise<Array<MandateOutcome | Error>> {
  // Issue 16: no signature is applied under lockdown; the orders wait as `held`.
  if (await isLockedDown(context)) {
    const held = new Set(await holdPendingOrders(context.orm.em.fork(), 'worker', 'lockdown in force', context.clock.now(), orderIds));
    return orderIds.map((id) => ({ state: held.has(id) ? 'held' : 'past-signing', lockdown: true }));
  }
  const outcomes = await signWithMandates(context, orderIds, (orderId, login, err) => {
    if (err instanceof SignerAgentError && NOT_READY.has(err.code)) return;
    // A certificate that is expired, revoked or not the payer's: another candidate may still sign.
    context.logger.warn({ event: 'order.sign.refused', orderId, login, code: (err as { code?: string }).code, err: err.message });
  });
  return orderIds.map((id) => outcomes.get(id) as MandateOutcome | Error);
}

/**
 * Stage 3 (DESIGN.md). Users with a standing mandate (config `signing.mandates`, off by default)
 * sign with their key unlocked in the agent; everyone else signs through
 * `POST /api/v1/orders/:id/sign`. While a level is missing the order waits in
 * `awaiting_signatures` and this job looks again every `signing.pollEveryMs` (a key may have been
 * unlocked meanwhile).
 */
export const handleSignOrder: JobHandler<typeof signOrderJob.payload> = async (payload, context, job) => {
  const batcher = pipelineStageBatcher<string, MandateOutcome>(context, 'sign', (ids) => signBatch(context, ids));
  const outcome = await batcher.run(payload.orderId);
  if (outcome.state !== 'awaiting_signatures') return outcome;
  // No standing mandate covers it: the order waits for people (POST /api/v1/orders/:id/sign), whose
  // last signature moves it on. A job of its own looks again now and then (a mandate may be
  // configured meanwhile); the sweeper finds it delayed and leaves the order alone instead of
  // running the stage every sweep for as long as nobody signs. Its own id keeps the stage's
  // `sign-<id>` free: an order sent back to this stage (R-17, a lockdown resolved) is looked at at once.
  if (!outcome.mandated) {
    const idleId = idleLookJobId(payload.orderId);
    if (job.id === idleId) return waitAndRetry(job, unattendedLookMs(context), { missing: outcome.missing });
    await context.queues.addUnlessPending(signOrderJob, payload, { jobId: idleId, delay: unattendedLookMs(context) });
    return { state: 'awaiting_signatures', missing: outcome.missing };
  }
  return waitAndRetry(job, context.config.signing.pollEveryMs, { missing: outcome.missing });
};
