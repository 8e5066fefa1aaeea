import type { JobContext } from './job-context';
import { PaymentOrder } from '../connector/persistence/entities';
import { toNormalisedOrder } from '../connector/orders/order.mapper';
import { transitionOrder } from '../connector/orders/order-state.machine';
import { requiredLevels, type SignLevel } from '../connector/signing/signing-policy';
import { freezeDocument, recordSignature, validSignatures, type FrozenDocument } from '../connector/signing/order-signatures';
import { mayUserSign } from '../connector/users/authority';
import { appendAudit } from '../connector/audit/audit.log';
import { ConnectorError } from '../connector/shared/errors';
import { buildPaymentOrderDocument, PAYMENT_ORDER_FORMAT } from '../adapters/bank/business-api/payment-order.document';
import { submitOrderJob } from './jobs/submit-order.job';
import { dropSignaturesOfRevokedSigners } from './jobs/pipeline.helpers';
import { isLockedDown, triggerLockdown } from './lockdown.trigger';
import { SignerAgentError } from '../signer-agent/agent/signer-agent.client';

/**
 * Signing one order (DESIGN.md step 3), shared by the sign job (standing mandates) and a person
 * signing through the API: the policy says which levels the order needs, the users' authority
 * who may give each (R-16); the document bytes are frozen before the first signature and every
 * signature covers exactly them (R-18); the agent adds the signer to the CMS that already holds
 * the earlier ones. When the last level is given the order becomes `signed` and goes to submit.
 */
export interface SigningState {
  order: PaymentOrder;
  document: FrozenDocument;
  levels: SignLevel[];
  missing: SignLevel[];
}

/** Loads an order that may be signed, moving `validated` on to `awaiting_signatures`. Null when it is past signing. */
export async function prepareSigning(context: JobContext, orderId: string): Promise<SigningState | null> {
  const em = context.orm.em.fork();
  // Read-only snapshot: every change goes through conditional updates, never through this entity.
  const order = await em.findOne(PaymentOrder, { id: orderId }, { disableIdentityMap: true });
  if (!order) return null;
  if (order.state === 'validated') {
    await transitionOrder(em, order.id, 'awaiting_signatures', { actor: 'worker', from: 'validated', reason: 'signatures requested' });
    order.state = 'awaiting_signatures';
  }
  if (order.state !== 'awaiting_signatures') return null;
  const document = await freezeDocument(em, order.id, () => ({ format: PAYMENT_ORDER_FORMAT, bytes: buildPaymentOrderDocument(toNormalisedOrder(order), order.externalId) }), context.clock.now());
  await dropSignaturesOfRevokedSigners(context, order);
  const levels = requiredLevels(context.config.signing.rules, order.payerIban, order.amountTiyn);
  const signatures = await validSignatures(em, order.id);
  return { order, document, levels, missing: levels.filter((level) => !signatures.some((s) => s.level === level)) };
}

export type SignAttempt = { signed: SignLevel } | { refused: string };

/** One user's signature on the order, at the level their right gives, if that level is still missing. */
export async function signAs(context: JobContext, state: SigningState, user: { id: string; login: string }, options: { mandate: boolean }): Promise<SignAttempt> {
  const em = context.orm.em.fork();
  const { order, document } = state;
  const signatures = await validSignatures(em, order.id);
  if (signatures.some((s) => s.userId === user.id)) return { refused: 'ALREADY_SIGNED' }; // one person, one signature
  const decision = await mayUserSign(em, user.id, order.payerIban, order.amountTiyn, context.clock);
  if (!decision.allowed || !decision.level) return { refused: decision.reason ?? 'NOT_ALLOWED' };
  if (!state.missing.includes(decision.level)) return { refused: 'LEVEL_ALREADY_SIGNED' };
  if (await isLockedDown(context)) throw Object.assign(new ConnectorError('LOCKED_DOWN', 'the connector is locked down: no signature is applied until an admin resolves the incident'), { lockdown: true });
  const previous = signatures[signatures.length - 1];
  let signed;
  try {
    signed = await context.services.signer().sign(user.id, { orderId: order.id, document: document.bytes, cosign: previous?.cms, expectedBin: order.payerIinBin });
  } catch (err) {
    if (err instanceof SignerAgentError && err.code === 'CERT_REVOKED') {
      // The signer's certificate is revoked per the CRL: the key leaked or the person lost
      // authority without the connector being told (issue 16, R-30).
      await triggerLockdown(context, {
        trigger: 'certificate_check_failed',
        reason: `the EDS certificate of ${user.login} is revoked (${err.message})`,
        scope: `user:${user.login}`,
        evidence: { orderId: order.id, login: user.login, code: err.code },
        actor: 'worker',
      });
      throw Object.assign(err, { lockdown: true });
    }
    throw err;
  }
  if (signed.documentSha256 !== document.sha256) {
    // A signature over other bytes than the frozen document: a check that must never fail did (issue 16).
    await triggerLockdown(context, {
      trigger: 'certificate_check_failed',
      reason: `the signer agent returned a signature of ${user.login} over other bytes than order ${order.number}'s frozen document`,
      scope: `user:${user.login}`,
      evidence: { orderId: order.id, login: user.login, expectedSha256: document.sha256, signedSha256: signed.documentSha256 },
      actor: 'worker',
    });
    throw Object.assign(new ConnectorError('DIGEST_MISMATCH', 'the signer agent signed other bytes than the frozen document'), { lockdown: true });
  }
  const recorded = await recordSignature(
    em,
    { orderId: order.id, userId: user.id, login: user.login, level: decision.level, algorithm: signed.algorithm, serial: signed.serial, subject: signed.subject, iin: signed.iin, signingTime: new Date(signed.signingTime), documentSha256: document.sha256, cms: signed.cmsDer, mandate: options.mandate },
    context.clock.now(),
  );
  if (!recorded) return { refused: 'LEVEL_ALREADY_SIGNED' };
  await appendAudit(em, { actor: `user:${user.login}`, action: 'order.signed', subject: order.id, details: { level: decision.level, serial: signed.serial, mandate: options.mandate, documentSha256: document.sha256 } });
  state.missing = state.missing.filter((l) => l !== decision.level);
  return { signed: decision.level };
}

/** When every level is given: `awaiting_signatures -> signed`, and on to submission. */
export async function completeSigning(context: JobContext, state: SigningState): Promise<boolean> {
  if (state.missing.length > 0) return false;
  const result = await transitionOrder(context.orm.em.fork(), state.order.id, 'signed', { actor: 'worker', from: 'awaiting_signatures', reason: `signed: ${state.levels.join(' + ')}` });
  if (result.changed || result.to === 'signed') await context.queues.add(submitOrderJob, { orderId: state.order.id });
  return true;
}
