import { DelayedError, type Job } from 'bullmq';
import type { JobContext } from '../job-context';
import type { PaymentOrder } from '../../connector/persistence/entities';
import { invalidateSignature, validSignatures } from '../../connector/signing/order-signatures';
import { mayUserSign } from '../../connector/users/authority';
import { appendAudit } from '../../connector/audit/audit.log';

/**
 * R-17 before anything else: a signature whose signer may no longer sign this order stops
 * counting. The CMS of later signatures contains the earlier ones, so the whole round is
 * invalidated and signed afresh.
 */
export async function dropSignaturesOfRevokedSigners(context: JobContext, order: PaymentOrder): Promise<number> {
  const em = context.orm.em.fork();
  const signatures = await validSignatures(em, order.id);
  const revoked: string[] = [];
  for (const s of signatures) {
    const decision = await mayUserSign(em, s.userId, order.payerIban, order.amountTiyn, context.clock);
    if (!decision.allowed) revoked.push(`${s.login}: ${decision.reason}`);
  }
  if (revoked.length === 0) return 0;
  for (const s of signatures) await invalidateSignature(em, s.id, `signer lost authority (${revoked.join('; ')})`);
  await appendAudit(em, { actor: 'worker', action: 'order.signatures.invalidated', subject: order.id, details: { reasons: revoked } });
  return signatures.length;
}

/** Re-runs this same job later without spending an attempt (BullMQ's moveToDelayed + DelayedError). */
export async function waitAndRetry(job: Job, delayMs: number, _why: unknown): Promise<never> {
  await job.moveToDelayed(Date.now() + delayMs, job.token);
  throw new DelayedError();
}
