import type { JobContext } from './job-context';
import { PaymentOrder } from '../connector/persistence/entities';
import { toNormalisedOrder } from '../connector/orders/order.mapper';
import { transitionOrders } from '../connector/orders/order-state.machine';
import { mandatedLogins, policyAmountTiyn, requiredLevels, type SignLevel } from '../connector/signing/signing-policy';
import { freezeDocuments, recordSignatures, validSignatures, validSignaturesOf, type FrozenDocument, type NewSignature, type StoredSignature } from '../connector/signing/order-signatures';
import { decideSign, type SignerRecord } from '../connector/users/authority';
import { ConnectorError } from '../connector/shared/errors';
import { buildPaymentOrderDocument, PAYMENT_ORDER_FORMAT } from '../adapters/bank/business-api/payment-order.document';
import { submitOrderJob } from './jobs/submit-order.job';
import { dropSignaturesThatNoLongerCount, SignerDirectory } from './jobs/pipeline.helpers';
import { isLockedDown, triggerLockdown } from './lockdown.trigger';
import { SignerAgentError, type SignInput, type SignOutput } from '../signer-agent/agent/signer-agent.client';
import { MAX_SIGN_BATCH } from '../signer-agent/agent/signer-agent.contract';
import { checkSigner } from '../signer-agent/cms/cms.verifier';
import type { CertificateInfo } from '../signer-agent/certificates/certificate.info';
import { SignerError } from '../signer-agent/signer.errors';
import { StageBatcher, stageBatcher } from './stage-batcher';
import { enqueueWriteBack } from './jobs/write-back.job';
import { CONSOLE_SOURCE, type FieldError } from '../connector/orders/payment-order';

/**
 * Signing orders (DESIGN.md step 3), shared by the sign job (standing mandates, a batch of orders
 * at a time) and a person signing one order through the API: the policy says which levels the
 * order needs, the users' authority who may give each (R-16); the document bytes are frozen
 * before the first signature and every signature covers exactly them (R-18); the agent adds the
 * signer to the CMS that already holds the earlier ones. When the last level is given the order
 * becomes `signed` and goes to submit.
 */
export interface SigningState {
  order: PaymentOrder;
  document: FrozenDocument;
  levels: SignLevel[];
  missing: SignLevel[];
  /** The valid signatures so far, in signing order (the last one's CMS holds them all). */
  signatures: StoredSignature[];
}

/** Loads an order that may be signed, moving `validated` on to `awaiting_signatures`. Null when it is past signing. */
export async function prepareSigning(context: JobContext, orderId: string): Promise<SigningState | null> {
  return (await prepareSigningMany(context, [orderId], new SignerDirectory(context.orm.em.fork()))).get(orderId) ?? null;
}

/** `prepareSigning` for a batch: one load, one transition, one freeze, one read of the signatures. */
export async function prepareSigningMany(context: JobContext, orderIds: readonly string[], directory: SignerDirectory): Promise<Map<string, SigningState>> {
  const em = context.orm.em.fork();
  // Read-only snapshots: every change goes through conditional updates, never through these entities.
  const orders = await em.find(PaymentOrder, { id: { $in: [...orderIds] } }, { disableIdentityMap: true });
  const validated = orders.filter((o) => o.state === 'validated');
  if (validated.length > 0) {
    const moved = await transitionOrders(em, validated.map((o) => o.id), 'awaiting_signatures', { actor: 'worker', from: 'validated', reason: 'signatures requested' });
    for (const [i, outcome] of moved.entries()) {
      if ('error' in outcome) continue;
      validated[i].state = 'awaiting_signatures';
      // The snapshot's version as the row now has it: later conditional updates expect it.
      validated[i].version = outcome.version;
    }
  }
  const expired = await expireDatedWhileWaiting(context, orders.filter((o) => o.state === 'awaiting_signatures'));
  const active = orders.filter((o) => o.state === 'awaiting_signatures' && !expired.has(o.id));
  const states = new Map<string, SigningState>();
  if (active.length === 0) return states;
  const byId = new Map(active.map((o) => [o.id, o]));
  // Independent of each other: the freeze and the read of the signatures go in parallel.
  const [documents, signatures] = await Promise.all([
    freezeDocuments(
      em,
      active.map((o) => o.id),
      (id) => {
        const order = byId.get(id) as PaymentOrder;
        return { format: PAYMENT_ORDER_FORMAT, bytes: buildPaymentOrderDocument(toNormalisedOrder(order), order.externalId), version: order.version };
      },
      context.clock.now(),
    ),
    validSignaturesOf(context.orm.em.fork(), active.map((o) => o.id)),
  ]);
  for (const order of active) {
    const document = documents.get(order.id);
    // Changed since it was read (withdrawn and sent again corrected): not frozen from the stale row.
    if (!document) continue;
    let valid = signatures.get(order.id) ?? [];
    if ((await dropSignaturesThatNoLongerCount(context, order, { signatures: valid, directory })) !== null) valid = [];
    const levels = requiredLevels(context.config.signing.rules, order.payerIban, policyAmountTiyn(order));
    states.set(order.id, {
      order,
      document,
      levels,
      missing: missingLevels(levels, valid),
      signatures: valid,
    });
  }
  return states;
}

/**
 * The requisite rule that judges a document by today's date and may fail while it waits: a payment
 * order is valid `requisites.staleAfterDays` (10) days from its date. (A value date that passes
 * while it waits is left to the bank, which may execute it on its operational day.)
 */
const DATED_RULES = new Set(['DATE_STALE']);

/**
 * Orders that went stale while they waited for signatures (a signer away for more than the 10 days
 * a payment order is valid): signed anyway, the bank refuses them, after people spent signatures on
 * them. They become `invalid` before anyone signs, with the validator's reason, which goes back to
 * the ERP ("make a new document with today's date"). The ids moved.
 */
async function expireDatedWhileWaiting(context: JobContext, waiting: readonly PaymentOrder[]): Promise<Set<string>> {
  const now = context.clock.now();
  const groups = new Map<string, { reason: string; version: number; perOrder: Map<string, { errors: FieldError[] }> }>();
  for (const order of waiting) {
    const dated = context.validator(toNormalisedOrder(order), { now }).errors.filter((e) => DATED_RULES.has(e.code));
    if (dated.length === 0) continue;
    const reason = dated.map((e) => `${e.field}: ${e.messageEn ?? e.message}`).join('; ');
    const key = `${reason}\u0000${order.version}`;
    if (!groups.has(key)) groups.set(key, { reason, version: order.version, perOrder: new Map() });
    groups.get(key)?.perOrder.set(order.id, { errors: [...(order.errors ?? []), ...dated] });
  }
  const moved = new Set<string>();
  for (const { reason, version, perOrder } of groups.values()) {
    const outcomes = await transitionOrders(context.orm.em.fork(), [...perOrder.keys()], 'invalid', {
      actor: 'worker',
      from: 'awaiting_signatures',
      expectVersion: version,
      reason: `went stale while it waited for signatures: ${reason}`,
      perOrder,
      now,
    });
    for (const outcome of outcomes) if (!('error' in outcome)) moved.add(outcome.orderId);
  }
  if (moved.size > 0) {
    context.logger.info({ event: 'order.sign.dated_invalid', orders: moved.size });
    await enqueueWriteBack(context.queues);
  }
  return moved;
}

/**
 * Issue 15, grouped signing per signer: the documents one signer's key must sign at the same
 * moment in this process go to the agent in one request (`signMany`); each document's outcome,
 * a signature or the agent's refusal, is its own, exactly as with one request each.
 */
function signGrouped(context: JobContext, userId: string, input: SignInput): Promise<SignOutput> {
  const batcher = stageBatcher(context, `agent.sign:${userId}`, () =>
    new StageBatcher<SignInput, SignOutput>((inputs) => context.services.signer().signMany(userId, inputs), { maxBatch: MAX_SIGN_BATCH, maxWaitMs: 0 }),
  );
  return batcher.run(input);
}

/** The levels still missing once these signatures count. */
function missingLevels(levels: readonly SignLevel[], signatures: readonly StoredSignature[]): SignLevel[] {
  return levels.filter((level) => !signatures.some((s) => s.level === level));
}

export type SignAttempt = { signed: SignLevel } | { refused: string };

/** Why the CMS's signer of `serial` does not hold over `content` (an unreadable CMS included), or its certificate. */
function signerChecked(cms: Buffer, content: Buffer, serial: string): { code: string; message: string } | { certificate: CertificateInfo } {
  try {
    return checkSigner(cms, content, serial);
  } catch (err) {
    return { code: err instanceof SignerError ? err.code : 'INPUT_UNREADABLE', message: (err as Error).message };
  }
}

/**
 * One signer's signature over the frozen document at the level their right gives, if that level
 * is still missing: authority, one person one signature, the agent (cosigning the CMS that
 * holds the earlier signatures), and the checks that lock the connector down when they fail.
 * Nothing is recorded yet; the caller records it (`recordSignatures`) and only then counts it.
 */
async function produceSignature(context: JobContext, state: SigningState, signer: SignerRecord, options: { mandate: boolean }): Promise<NewSignature | { refused: string }> {
  const { order, document } = state;
  const { user } = signer;
  // One person, one signature (R-16: a first and a second signature are two people). A person is
  // their EDS, not a login: the same IIN under another login has signed too.
  if (state.signatures.some((s) => s.userId === user.id || (user.iin != null && s.iin === user.iin))) return { refused: 'ALREADY_SIGNED' };
  const decision = decideSign(signer, order.payerIban, policyAmountTiyn(order), context.clock);
  if (!decision.allowed || !decision.level) return { refused: decision.reason ?? 'NOT_ALLOWED' };
  if (!state.missing.includes(decision.level)) return { refused: 'LEVEL_ALREADY_SIGNED' };
  const previous = state.signatures[state.signatures.length - 1];
  let signed;
  try {
    // The certificate must be of the user's IIN as it is now: the agent's enrolment keeps the IIN the
    // key was enrolled for, which `users set-iin` does not change (the old keystore unlocks again).
    signed = await signGrouped(context, user.id, { orderId: order.id, document: document.bytes, cosign: previous?.cms, expectedIin: user.iin ?? undefined, expectedBin: order.payerIinBin });
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
  // The agent's JSON says what it signed; the CMS is the evidence kept and what the bank
  // verifies: its new signer must hold over the frozen bytes, with the certificate it names.
  const checked = signed.documentSha256 !== document.sha256 ? { code: 'DIGEST_MISMATCH', message: `the agent reports sha256 ${signed.documentSha256}` } : signerChecked(signed.cmsDer, document.bytes, signed.serial);
  if ('code' in checked) {
    const broken = checked;
    // A signature over other bytes than the frozen document: a check that must never fail did (issue 16).
    await triggerLockdown(context, {
      trigger: 'signed_bytes_mismatch',
      reason: `the signer agent returned a signature of ${user.login} over other bytes than order ${order.number}'s frozen document (${broken.code}: ${broken.message})`,
      scope: `user:${user.login}`,
      evidence: { orderId: order.id, login: user.login, expectedSha256: document.sha256, signedSha256: signed.documentSha256, code: broken.code, check: broken.message },
      actor: 'worker',
    });
    throw Object.assign(new ConnectorError('DIGEST_MISMATCH', 'the signer agent signed other bytes than the frozen document'), { lockdown: true });
  }
  // Who signed is read from the certificate in the CMS, not from the agent's JSON: an
  // agent that names another person than the key it used, or a key of another person than the user
  // (the agent was asked for the user's IIN), is tampered with.
  // The certificate is the one the signature verified with (a CMS without it is refused above).
  const { certificate } = checked;
  const impostor =
    certificate.iin !== signed.iin || certificate.bin !== signed.bin || certificate.subject !== signed.subject
      ? `it reports the signer as IIN ${signed.iin ?? '(none)'}, BIN ${signed.bin ?? '(none)'}, but the certificate in its CMS is of IIN ${certificate.iin ?? '(none)'}, BIN ${certificate.bin ?? '(none)'}`
      : user.iin != null && certificate.iin !== user.iin
        ? `the certificate in its CMS carries IIN ${certificate.iin ?? '(none)'}, not the user's`
        : null;
  if (impostor) {
    await triggerLockdown(context, {
      trigger: 'certificate_check_failed',
      reason: `the signer agent returned a signature of ${user.login} on order ${order.number} that is not theirs as it claims: ${impostor}`,
      scope: `user:${user.login}`,
      evidence: { orderId: order.id, login: user.login, serial: signed.serial, reportedIin: signed.iin, certificateIin: certificate.iin, code: 'IDENTITY_MISMATCH' },
      actor: 'worker',
    });
    throw Object.assign(new ConnectorError('IDENTITY_MISMATCH', 'the signer agent returned a signature whose certificate is not the signer it names'), { lockdown: true });
  }
  // The certificate the agent used decides, whatever IIN the login was given: the same key or the
  // same person's IIN as an earlier signature is that person signing again. Not recorded.
  if (state.signatures.some((s) => s.serial === signed.serial || (signed.iin != null && s.iin === signed.iin))) return { refused: 'ALREADY_SIGNED' };
  return {
    orderId: order.id,
    userId: user.id,
    login: user.login,
    level: decision.level,
    algorithm: signed.algorithm,
    serial: signed.serial,
    subject: signed.subject,
    iin: signed.iin,
    signingTime: new Date(signed.signingTime),
    documentSha256: document.sha256,
    cms: signed.cmsDer,
    mandate: options.mandate,
    cosignedId: previous?.id ?? null,
  };
}

/**
 * Records signatures produced for several orders (at most one level per order per call, in
 * signing order) with their audit records (one statement); each one recorded counts on its order's state.
 * One not recorded came too late: its level was signed, or another signature was recorded after
 * the one it cosigned (`recordSignatures`); its signer may sign again over the fresh CMS.
 */
async function recordProduced(context: JobContext, produced: Array<{ state: SigningState; signature: NewSignature }>): Promise<boolean[]> {
  const em = context.orm.em.fork();
  const now = context.clock.now();
  const ids = await recordSignatures(em, produced.map((p) => p.signature), now);
  const kept = produced.flatMap((p, i) => (ids[i] === null ? [] : [{ ...p, id: ids[i] as number }]));
  for (const { state, signature: s, id } of kept) {
    state.missing = state.missing.filter((l) => l !== s.level);
    state.signatures.push({ id, userId: s.userId, login: s.login, level: s.level, serial: s.serial, iin: s.iin, signingTime: s.signingTime, cms: s.cms });
  }
  return ids.map((id) => id !== null);
}

/** Times a person's signature is made again when other signatures keep landing first. */
const SIGN_AGAIN = 3;

/**
 * One user's signature on the order (a person through the API), if their level is still missing.
 * Should another signature be recorded between the read and the insert (a standing mandate on the
 * other level), this one is not recorded and is made again over the CMS that holds it.
 */
export async function signAs(context: JobContext, state: SigningState, user: { id: string; login: string }, options: { mandate: boolean }): Promise<SignAttempt> {
  const em = context.orm.em.fork();
  const signer = await new SignerDirectory(em).signer(user.id);
  if (!signer) return { refused: 'USER_NOT_FOUND' };
  for (let attempt = 1; ; attempt++) {
    // Fresh: another person may have signed since the state was loaded.
    state.signatures = await validSignatures(em, state.order.id);
    state.missing = missingLevels(state.levels, state.signatures);
    if (await isLockedDown(context)) throw Object.assign(new ConnectorError('LOCKED_DOWN', 'the connector is locked down: no signature is applied until an admin resolves the incident'), { lockdown: true });
    const signature = await produceSignature(context, state, signer, options);
    if ('refused' in signature) return signature;
    const [recorded] = await recordProduced(context, [{ state, signature }]);
    if (recorded) return { signed: signature.level };
    // Not recorded because the order moved on meanwhile (submitted, withdrawn, sent back) or the
    // signer was disabled meanwhile: refused at once, not signed again in vain.
    const [now] = await em.execute<Array<{ state: string; blocked: boolean }>>(
      'select o.state, exists (select 1 from app_user u where u.id = ? and u.blocked_reason is not null) as blocked from payment_order o where o.id = ?',
      [user.id, state.order.id],
    );
    if (now?.state !== 'awaiting_signatures') return { refused: 'NOT_AWAITING_SIGNATURES' };
    if (now.blocked) return { refused: 'USER_DISABLED' };
    if (attempt >= SIGN_AGAIN) return { refused: 'SIGNATURES_CHANGED' };
  }
}

/** What signing a batch under standing mandates did to each order. */
export type MandateOutcome =
  | { state: 'signed' | 'past-signing' | 'held'; lockdown?: boolean }
  | { state: 'awaiting_signatures'; missing: SignLevel[]; mandated: boolean };

/**
 * The sign stage for a batch: every order's mandated signers (config `signing.mandates`) sign the
 * levels still missing, the agent's worker threads signing the orders in parallel; the signatures
 * of the batch are recorded in one insert per level and one audit append; the orders complete in
 * one transition and go to submit in one addBulk.
 */
export async function signWithMandates(context: JobContext, orderIds: readonly string[], onRefused: (orderId: string, login: string, err: Error) => void): Promise<Map<string, MandateOutcome | Error>> {
  const directory = new SignerDirectory(context.orm.em.fork());
  const states = await prepareSigningMany(context, orderIds, directory);
  const outcomes = new Map<string, MandateOutcome | Error>(orderIds.map((id) => [id, { state: 'past-signing' }]));
  const candidatesOf = new Map([...states.values()].map((s) => [s.order.id, s.missing.length ? mandatedLoginsFor(context, s) : []]));
  if ([...candidatesOf.values()].some((c) => c.length > 0) && (await isLockedDown(context))) {
    // Issue 16: no signature is applied under lockdown; the orders stay where they are and wait.
    for (const id of states.keys()) outcomes.set(id, { state: 'held', lockdown: true });
    return outcomes;
  }
  const stopped = new Set<string>();
  // Levels are given one at a time across the batch: a second signature cosigns a recorded first one.
  let pending = [...states.values()];
  for (let round = 0; round < 2 && pending.length > 0; round++) {
    if (round > 0 && (await isLockedDown(context))) {
      // A lock landed during the batch (a sibling's revoked certificate, say): no further signature.
      for (const state of pending) {
        stopped.add(state.order.id);
        outcomes.set(state.order.id, { state: 'held', lockdown: true });
      }
      break;
    }
    if (round > 0) {
      // Fresh before a further level (the first round uses what was just read): a person may have
      // signed a level through the API meanwhile, and a new signature must cosign the CMS that
      // holds every signature so far.
      const fresh = await validSignaturesOf(context.orm.em.fork(), pending.map((p) => p.order.id));
      for (const state of pending) {
        state.signatures = fresh.get(state.order.id) ?? [];
        state.missing = missingLevels(state.levels, state.signatures);
      }
    }
    const produced: Array<{ state: SigningState; signature: NewSignature }> = [];
    await Promise.all(
      pending.map(async (state) => {
        if (state.missing.length === 0 || stopped.has(state.order.id)) return;
        for (const login of candidatesOf.get(state.order.id) ?? []) {
          const signer = await directory.signerByLogin(login);
          if (!signer) continue;
          try {
            const signature = await produceSignature(context, state, signer, { mandate: true });
            if ('refused' in signature) continue;
            produced.push({ state, signature });
            return;
          } catch (err) {
            if ((err as { lockdown?: boolean }).lockdown) {
              // The check that failed locked the connector down: this order stops here.
              stopped.add(state.order.id);
              outcomes.set(state.order.id, { state: 'held', lockdown: true });
              return;
            }
            onRefused(state.order.id, login, err as Error);
          }
        }
      }),
    );
    const recorded = await recordProduced(context, produced);
    // Only an order that got a level this round and still misses one may get it from another mandate.
    pending = produced.filter((p, i) => recorded[i] && p.state.missing.length > 0).map((p) => p.state);
  }
  const complete = [...states.values()].filter((s) => s.missing.length === 0 && !stopped.has(s.order.id));
  for (const [orderId, outcome] of await completeSignings(context, complete)) outcomes.set(orderId, outcome === true ? { state: 'signed' } : outcome);
  for (const state of states.values()) {
    if (state.missing.length > 0 && !stopped.has(state.order.id)) {
      outcomes.set(state.order.id, { state: 'awaiting_signatures', missing: state.missing, mandated: (candidatesOf.get(state.order.id) ?? []).length > 0 });
    }
  }
  return outcomes;
}

/**
 * Sets the last error of orders still in `awaiting_signatures` (null clears it), in one statement
 * and only where it changes: it says why an order waits, for the operator. State, version and
 * state_changed_at stay as they are (nothing moved; the sweeper's bounds count from the state change).
 */
export async function recordAwaitingReasons(context: JobContext, reasons: ReadonlyMap<string, string | null>): Promise<void> {
  if (reasons.size === 0) return;
  await context.orm.em.fork().execute(
    `update payment_order p set last_error = v.last_error
       from jsonb_to_recordset(?::jsonb) as v(id uuid, last_error text)
      where p.id = v.id and p.state = 'awaiting_signatures' and p.last_error is distinct from v.last_error`,
    [JSON.stringify([...reasons].map(([id, lastError]) => ({ id, last_error: lastError === null ? null : lastError.slice(0, 2000) })))],
  );
}

function mandatedLoginsFor(context: JobContext, state: SigningState): string[] {
  // A standing mandate signs ERP orders without a per-order approval (config `signing.mandates`). An
  // order a person typed into the console is no ERP's: under a mandate, anyone allowed to prepare
  // orders (an operator, who may not sign) would have their own order paid with nobody's approval.
  if (state.order.source === CONSOLE_SOURCE) return [];
  return mandatedLogins(context.config.signing.mandates, state.order.payerIban, policyAmountTiyn(state.order));
}

/** When every level is given: `awaiting_signatures -> signed`, and on to submission. */
export async function completeSigning(context: JobContext, state: SigningState): Promise<boolean> {
  if (state.missing.length > 0) return false;
  const outcome = (await completeSignings(context, [state])).get(state.order.id);
  if (outcome instanceof Error) throw outcome;
  return true;
}

/** `completeSigning` for orders with every level given: one transition per set of levels, one addBulk to submission. */
async function completeSignings(context: JobContext, complete: readonly SigningState[]): Promise<Map<string, true | Error>> {
  const outcomes = new Map<string, true | Error>();
  const next: string[] = [];
  for (const levels of new Set(complete.map((s) => s.levels.join(' + ')))) {
    const ids = complete.filter((s) => s.levels.join(' + ') === levels).map((s) => s.order.id);
    // The order moves on: why it waited (recordAwaitingReasons) is no longer true.
    for (const outcome of await transitionOrders(context.orm.em.fork(), ids, 'signed', { actor: 'worker', from: 'awaiting_signatures', reason: `signed: ${levels}`, patch: { lastError: null } })) {
      if ('error' in outcome) outcomes.set(outcome.orderId, outcome.error);
      else {
        outcomes.set(outcome.orderId, true);
        next.push(outcome.orderId);
      }
    }
  }
  await context.queues.addBulk(submitOrderJob, next.map((orderId) => ({ orderId })));
  return outcomes;
}
