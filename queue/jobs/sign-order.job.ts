import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { AppUser } from '../../connector/persistence/entities';
import { mandatedLogins } from '../../connector/signing/signing-policy';
import { SignerAgentError } from '../../signer-agent/agent/signer-agent.client';
import { waitAndRetry } from './pipeline.helpers';
import { completeSigning, prepareSigning, signAs } from '../order-signing';
import { isLockedDown } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';

export const signOrderJob = defineJob({
  name: 'order.sign',
  queue: 'sign',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `sign-${p.orderId}`,
});

/** Agent answers that mean "this signer cannot sign right now": wait, do not fail the order. */
const NOT_READY = new Set(['KEY_LOCKED', 'NOT_ENROLLED', 'UNLOCK_IN_PROGRESS', 'SIGNER_UNAVAILABLE', 'SIGNER_UNREACHABLE', 'SIGNER_TIMEOUT', 'SHUTTING_DOWN']);

/**
 * Stage 3 (DESIGN.md). Users with a standing mandate (config `signing.mandates`, off by default)
 * sign with their key unlocked in the agent; everyone else signs through
 * `POST /api/v1/orders/:id/sign`. While a level is missing the order waits in
 * `awaiting_signatures` and this job looks again every `signing.pollEveryMs` (a key may have been
 * unlocked meanwhile).
 */
export const handleSignOrder: JobHandler<typeof signOrderJob.payload> = async (payload, context, job) => {
  const log = context.logger.child({ orderId: payload.orderId, jobId: job.id });
  const em = context.orm.em.fork();
  // Issue 16: no signature is applied under lockdown; the order waits as `held`.
  if (await isLockedDown(context)) {
    const held = await holdPendingOrders(em, 'worker', 'lockdown in force', context.clock.now(), [payload.orderId]);
    return { state: held.length ? 'held' : 'unchanged', lockdown: true };
  }
  const state = await prepareSigning(context, payload.orderId);
  if (!state) return { state: 'past-signing' };
  const candidates = mandatedLogins(context.config.signing.mandates, state.order.payerIban, state.order.amountTiyn);
  for (const login of candidates) {
    if (state.missing.length === 0) break;
    const user = await em.findOne(AppUser, { login });
    if (!user) continue;
    try {
      const attempt = await signAs(context, state, user, { mandate: true });
      if ('signed' in attempt) log.info({ event: 'order.sign.signed', level: attempt.signed, login });
    } catch (err) {
      if (err instanceof SignerAgentError && NOT_READY.has(err.code)) continue;
      if ((err as { lockdown?: boolean }).lockdown) return { state: 'held', lockdown: true };
      // A certificate that is expired, revoked or not the payer's: another candidate may still sign.
      log.warn({ event: 'order.sign.refused', login, code: (err as { code?: string }).code, err: (err as Error).message });
    }
  }
  if (await completeSigning(context, state)) return { state: 'signed' };
  // No standing mandate covers it: the order waits for people (POST /api/v1/orders/:id/sign), whose
  // last signature moves it on; only the sweeper looks at it again now and then.
  if (candidates.length === 0) return { state: 'awaiting_signatures', missing: state.missing };
  return waitAndRetry(job, context.config.signing.pollEveryMs, { missing: state.missing });
};
