import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { PaymentOrder, AppUser } from '../../connector/persistence/entities';
import { toNormalisedOrder } from '../../connector/orders/order.mapper';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { mandatedLogins, requiredLevels, type SignLevel } from '../../connector/signing/signing-policy';
import { freezeDocument, recordSignature, validSignatures } from '../../connector/signing/order-signatures';
import { mayUserSign } from '../../connector/users/authority';
import { appendAudit } from '../../connector/audit/audit.log';
import { buildPaymentOrderDocument, PAYMENT_ORDER_FORMAT } from '../../adapters/bank/business-api/payment-order.document';
import { SignerAgentError } from '../../signer-agent/agent/signer-agent.client';
import { submitOrderJob } from './submit-order.job';
import { dropSignaturesOfRevokedSigners, waitAndRetry } from './pipeline.helpers';
import { isLockedDown, triggerLockdown } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';

export const signOrderJob = defineJob({
  name: 'order.sign',
  queue: 'sign',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `sign-${p.orderId}`,
});

/** Agent answers that mean "this signer cannot sign right now": wait, do not fail the order. */
const NOT_READY = new Set(['KEY_LOCKED', 'NOT_ENROLLED', 'UNLOCK_IN_PROGRESS', 'SIGNER_UNAVAILABLE', 'SHUTTING_DOWN']);

/**
 * Stage 3 (DESIGN.md): the signing policy says which levels the order needs, the users'
 * authority who may give each; a user with a standing mandate (config, off by default) signs with
 * their key unlocked in the agent. The document bytes are frozen before the first signature and
 * every signature covers exactly them (R-18). While a signer is missing the order waits in
 * `awaiting_signatures` and the job looks again later (its key may be unlocked meanwhile).
 */
export const handleSignOrder: JobHandler<typeof signOrderJob.payload> = async (payload, context, job) => {
  const log = context.logger.child({ orderId: payload.orderId, jobId: job.id });
  const em = context.orm.em.fork();
  // Issue 16: no signature is applied under lockdown; the order waits as `held`.
  if (await isLockedDown(context)) {
    const held = await holdPendingOrders(em, 'worker', 'lockdown in force', context.clock.now(), [payload.orderId]);
    return { state: held.length ? 'held' : 'unchanged', lockdown: true };
  }
  // Read-only snapshot: every change goes through conditional updates, never through this entity.
  const order = await em.findOne(PaymentOrder, { id: payload.orderId }, { disableIdentityMap: true });
  let state = order?.state;
  if (order && state === 'validated') {
    await transitionOrder(em, order.id, 'awaiting_signatures', { actor: 'worker', from: 'validated', reason: 'signatures requested' });
    state = 'awaiting_signatures';
  }
  if (!order || state !== 'awaiting_signatures') return { state: state ?? 'missing' };
  const now = context.clock.now();
  const document = await freezeDocument(em, order.id, () => ({ format: PAYMENT_ORDER_FORMAT, bytes: buildPaymentOrderDocument(toNormalisedOrder(order), order.externalId) }), now);
  await dropSignaturesOfRevokedSigners(context, order);
  const levels = requiredLevels(context.config.signing.rules, order.payerIban, order.amountTiyn);
  let signatures = await validSignatures(em, order.id);
  const missing = (): SignLevel[] => levels.filter((level) => !signatures.some((s) => s.level === level));
  const candidates = mandatedLogins(context.config.signing.mandates, order.payerIban, order.amountTiyn);
  for (const level of missing()) {
    for (const login of candidates) {
      const user = await em.findOne(AppUser, { login });
      if (!user || signatures.some((s) => s.userId === user.id)) continue; // one person, one signature
      const decision = await mayUserSign(em, user.id, order.payerIban, order.amountTiyn, context.clock);
      if (!decision.allowed || decision.level !== level) continue;
      const previous = signatures[signatures.length - 1];
      try {
        const signed = await context.services.signer().sign(user.id, { orderId: order.id, document: document.bytes, cosign: previous?.cms, expectedBin: order.payerIinBin });
        if (signed.documentSha256 !== document.sha256) {
          // A signature over other bytes than the frozen document: a check that must never fail did (issue 16).
          await triggerLockdown(context, {
            trigger: 'certificate_check_failed',
            reason: `the signer agent returned a signature of ${login} over other bytes than order ${order.number}'s frozen document`,
            scope: `user:${login}`,
            evidence: { orderId: order.id, login, expectedSha256: document.sha256, signedSha256: signed.documentSha256 },
            actor: 'worker',
          });
          throw new Error('the agent signed other bytes than the frozen document');
        }
        const recorded = await recordSignature(
          em,
          { orderId: order.id, userId: user.id, login, level, algorithm: signed.algorithm, serial: signed.serial, subject: signed.subject, iin: signed.iin, signingTime: new Date(signed.signingTime), documentSha256: document.sha256, cms: signed.cmsDer, mandate: true },
          context.clock.now(),
        );
        if (recorded) {
          await appendAudit(em, { actor: `user:${login}`, action: 'order.signed', subject: order.id, details: { level, serial: signed.serial, mandate: true, documentSha256: document.sha256 } });
          log.info({ event: 'order.sign.signed', level, login });
        }
        signatures = await validSignatures(em, order.id);
        break;
      } catch (err) {
        if (err instanceof SignerAgentError && NOT_READY.has(err.code)) continue;
        if (err instanceof SignerAgentError && err.code === 'CERT_REVOKED') {
          // A mandated signer's certificate is revoked per the CRL: either the key leaked or the
          // person lost authority without the connector being told (issue 16, R-30).
          await triggerLockdown(context, {
            trigger: 'certificate_check_failed',
            reason: `the EDS certificate of ${login} is revoked (${err.message})`,
            scope: `user:${login}`,
            evidence: { orderId: order.id, login, code: err.code },
            actor: 'worker',
          });
          return { state: 'held', lockdown: true };
        }
        if ((err as { code?: string }).code === 'ECONNREFUSED' || /ECONNREFUSED|socket hang up/.test((err as Error).message)) continue;
        // A certificate that is expired, revoked or not the payer's: the order cannot be signed by
        // this user; another candidate may still sign it.
        log.warn({ event: 'order.sign.refused', login, level, code: (err as { code?: string }).code, err: (err as Error).message });
      }
    }
  }
  if (missing().length === 0) {
    await transitionOrder(em, order.id, 'signed', { actor: 'worker', from: 'awaiting_signatures', reason: `signed: ${levels.join(' + ')}` });
    await context.queues.add(submitOrderJob, { orderId: order.id });
    return { state: 'signed' };
  }
  return waitAndRetry(job, context.config.signing.pollEveryMs, { state: 'awaiting_signatures', missing: missing() });
};

