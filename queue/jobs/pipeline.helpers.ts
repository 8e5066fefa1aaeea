import { DelayedError, type Job } from 'bullmq';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobContext } from '../job-context';
import type { PaymentOrder } from '../../connector/persistence/entities';
import { cmsHoldsEverySigner, invalidateSignatures, validSignatures, type StoredSignature } from '../../connector/signing/order-signatures';
import { decideSign, loadSigner, type SignerRecord } from '../../connector/users/authority';
import { policyAmountTiyn } from '../../connector/signing/signing-policy';
import { appendAudit } from '../../connector/audit/audit.log';
import { openIncident } from '../../connector/incidents/incident.service';
import { triggerLockdown } from '../lockdown.trigger';
import { readLockdownRow } from '../../connector/lockdown/lockdown.flag';
import { perContext } from '../stage-batcher';
import type { BankError } from '../../adapters/bank/business-api/business-api.errors';

/**
 * The users a stage asks about, each loaded once per batch (or per order outside a batch): a
 * signer's rights are read at most once per batch, never cached across batches, so R-17 (a
 * disabled user's signature stops counting) holds from the next batch on.
 */
export class SignerDirectory {
  private readonly byId = new Map<string, Promise<SignerRecord | null>>();
  private readonly byLogin = new Map<string, Promise<SignerRecord | null>>();

  constructor(private readonly em: EntityManager) {}

  signer(userId: string): Promise<SignerRecord | null> {
    let found = this.byId.get(userId);
    if (!found) this.byId.set(userId, (found = loadSigner(this.em, userId)));
    return found;
  }

  signerByLogin(login: string): Promise<SignerRecord | null> {
    let found = this.byLogin.get(login);
    if (!found) {
      this.byLogin.set(login, (found = loadSigner(this.em, { login })));
      // The same record for a later look by id.
      found.then((s) => s && !this.byId.has(s.user.id) && this.byId.set(s.user.id, Promise.resolve(s)), () => undefined);
    }
    return found;
  }
}

/** Why a chain of signatures is dropped when its newest CMS does not name exactly its valid signers. */
export const CMS_INCOMPLETE = 'the CMS of the newest signature does not name exactly the valid signers';

/**
 * Before anything else, signatures that no longer count: R-17 (a signer who may no longer sign this
 * order, or no longer at the level they signed at), or a chain whose newest CMS, the one the bank would get, does not name exactly the valid
 * signers (signed at once before the signature_chain migration, or a bug). The CMS of later
 * signatures contains the earlier ones, so the whole round is invalidated and signed afresh.
 * Returns why, or null when every signature still counts.
 */
export async function dropSignaturesThatNoLongerCount(
  context: JobContext,
  order: Pick<PaymentOrder, 'id' | 'payerIban' | 'amountTiyn' | 'currency'>,
  known?: { signatures: StoredSignature[]; directory: SignerDirectory },
): Promise<string | null> {
  const em = context.orm.em.fork();
  const signatures = known?.signatures ?? (await validSignatures(em, order.id));
  if (signatures.length === 0) return null;
  const directory = known?.directory ?? new SignerDirectory(em);
  const reasons: string[] = [];
  // R-16: one person, one signature; a person is their certificate and its IIN, not a login
  // (signatures recorded before signing refused the same person under a second login).
  const people = new Map<string, string>();
  for (const s of signatures) {
    const decision = decideSign(await directory.signer(s.userId), order.payerIban, policyAmountTiyn(order), context.clock);
    if (!decision.allowed) reasons.push(`${s.login}: ${decision.reason}`);
    // The level is part of the authority (R-16): a second signature given by someone whose right now
    // carries the first level only (or the other way round) was given with a right they lost (R-17).
    else if (decision.level !== s.level) reasons.push(`${s.login}: LEVEL_CHANGED (signed as ${s.level}, may now sign ${decision.level ?? 'none'})`);
    const earlier = people.get(`serial:${s.serial}`) ?? (s.iin ? people.get(`iin:${s.iin}`) : undefined);
    if (earlier !== undefined) reasons.push(`${s.login}: SAME_PERSON as ${earlier}`);
    people.set(`serial:${s.serial}`, s.login);
    if (s.iin) people.set(`iin:${s.iin}`, s.login);
  }
  const why = reasons.length > 0 ? `signer lost authority (${reasons.join('; ')})` : cmsHoldsEverySigner(signatures) ? null : CMS_INCOMPLETE;
  if (why === null) return null;
  if (why === CMS_INCOMPLETE) context.logger.warn({ event: 'order.signatures.cms_incomplete', orderId: order.id, signatures: signatures.map((s) => s.id) });
  await invalidateSignatures(em, signatures.map((s) => s.id), why);
  await appendAudit(em, { actor: 'worker', action: 'order.signatures.invalidated', subject: order.id, details: { reasons: reasons.length > 0 ? reasons : [why] } });
  return why;
}

/** The longest a job waits for a bank that failed or is down without saying for how long (R-24): it still comes back within a minute once the bank does. */
export const BANK_WAIT_MAX_MS = 60_000;

/**
 * The wait after the `inARow`-th failure in a row (from 1), as BullMQ's exponential backoff would
 * have it but without spending an attempt: `queue.backoffMs`, doubling, at most `capMs` (never below
 * `queue.backoffMs`).
 */
export function backoffAfter(context: Pick<JobContext, 'config'>, inARow: number, capMs: number): number {
  const { backoffMs } = context.config.queue;
  return Math.min(Math.max(backoffMs, capMs), backoffMs * 2 ** Math.min(inARow - 1, 20));
}

/** The longest a Retry-After is waited for at a time: a longer one is asked again after this (a maintenance window still passes). */
export const RETRY_AFTER_MAX_MS = 3_600_000;

/**
 * The wait a bank's Retry-After asks for (R-24), when a job can keep it; `undefined` when it cannot,
 * and the caller's own backoff stands. One shorter than `queue.backoffMs` (0, a date already past,
 * "-1" read as a date) re-ran the job at once, over and over and without spending an attempt: a storm
 * of lookups and sends at a bank that had asked us to slow down. One longer than RETRY_AFTER_MAX_MS (a
 * year, a date far ahead: a gateway's or the bank's slip) left every order waiting that long with
 * nothing said; the bank is asked again after RETRY_AFTER_MAX_MS.
 */
export function retryAfterWait(context: Pick<JobContext, 'config'>, retryAfterMs: number | undefined): number | undefined {
  if (retryAfterMs === undefined || !Number.isFinite(retryAfterMs) || retryAfterMs < context.config.queue.backoffMs) return undefined;
  return Math.min(retryAfterMs, RETRY_AFTER_MAX_MS);
}

/** While our bank credentials cannot be used (refused, revoked, unopenable) we do not keep hammering the bank (R-31). */
export const CREDENTIALS_WAIT_MS = 60_000;

/**
 * The connector cannot use its own Client ID / Secret (the master key cannot open the vault, ...):
 * nothing is sent, orders wait, and one critical incident says so while it lasts. A pair marked
 * revoked has its own incident already (credentialsRefused, or the lockdown's).
 */
export async function credentialsUnavailableIncident(context: JobContext, problem: { code: string; message: string }): Promise<void> {
  if (problem.code === 'CREDENTIALS_REVOKED') return;
  await openIncident(context.orm.em.fork(), {
    kind: 'credentials_unavailable',
    severity: 'critical',
    title: `The connector cannot open its bank Client Secret (${problem.code}); orders wait and none is sent: ${problem.message}`,
    evidence: { code: problem.code },
    dedupeKey: `credentials_unavailable:${problem.code}`,
    // Found again at every batch while it lasts: one incident, not one timeline entry per look.
    onRepeat: 'ignore',
    actor: 'worker',
  });
}

/**
 * The bank refused our Client ID / Secret (AUTH: a 401, or a 403 / an identification,
 * authentication or compromise code on the token, a lookup or a poll) or said they are blocked or
 * revoked, at a submit or a poll: one critical incident while it lasts; a revocation also marks
 * the pair revoked (nothing more is sent with it, R-31) and engages the lockdown, as does a code of
 * `lockdown.bankRefusalCodes` (issue 16; or only alerts, per config).
 */
export async function credentialsRefused(context: JobContext, err: BankError, evidence: Record<string, unknown>): Promise<void> {
  if (err.code === 'CREDENTIALS_REVOKED') await context.services.markCredentialsRevoked(err.message);
  await openIncident(context.orm.em.fork(), {
    kind: 'credentials_revoked',
    severity: 'critical',
    title:
      err.code === 'CREDENTIALS_REVOKED'
        ? 'The bank answered that the Client ID / Secret is blocked or revoked (R-2)'
        : err.details.httpStatus === undefined
          ? `The connector has no usable Client ID / Secret, nothing was sent: ${err.message}`
          : err.details.httpStatus === 401
            ? 'The bank refused our Client ID / Secret (401): check bank.clientId and the secret; if both are right, the bank may have blocked the pair (R-2): regenerate it in Internet-banking and store it with connector credentials rotate --secret-stdin'
            : `The bank refused our access (HTTP ${err.details.httpStatus}${err.details.bankCode ? ` ${err.details.bankCode}` : ''})`,
    evidence: { code: err.code, httpStatus: err.details.httpStatus, bankCode: err.details.bankCode },
    dedupeKey: 'credentials_revoked',
    actor: 'worker',
    // Every submit and poll finds it again while it lasts: one incident, not one timeline entry each.
    onRepeat: 'ignore',
  });
  await lockdownOnRefusalCode(context, err, evidence);
  if (err.code === 'CREDENTIALS_REVOKED') {
    await triggerLockdown(context, {
      trigger: 'bank_credentials_revoked',
      reason: 'the bank answered that the Client ID / Secret is blocked or revoked',
      scope: 'credentials',
      evidence: { ...evidence, code: err.code, httpStatus: err.details.httpStatus },
      actor: 'worker',
    });
  }
}

/**
 * R-31: the bank's answer carries a code of `lockdown.bankRefusalCodes` (identification,
 * authentication, compromise; configurable), on whatever call: the token, a lookup, a poll, a
 * statement (a document's own refusal at submit is handled with the order, through
 * `lockdownOnCompromiseCode`).
 */
export async function lockdownOnRefusalCode(context: JobContext, err: BankError, evidence: Record<string, unknown>): Promise<void> {
  const code = err.reasonCode ?? err.details.bankCode;
  await lockdownOnCompromiseCode(context, code, `the bank refused the ${err.details.operation ?? 'bank'} call with ${code} (identification / authentication / compromise)`, {
    ...evidence,
    reasonCode: code,
    httpStatus: err.details.httpStatus,
    operation: err.details.operation,
  });
}

/**
 * A refusal code of `lockdown.bankRefusalCodes` (R-31), wherever the bank gave it (a call refused,
 * a document refused at submit or at execution), locks down with scope `credentials`. Once: every
 * order of a batch meets the same refusal, and each engage would alert the admins again. A lockdown
 * that holds one user only is widened (the Client Secret is marked compromised and must be rotated
 * before the resolve); one that covers the credentials already is left as it is.
 */
export async function lockdownOnCompromiseCode(context: JobContext, code: string | null | undefined, reason: string, evidence: Record<string, unknown>): Promise<void> {
  if (!code || !context.config.lockdown.bankRefusalCodes.includes(code)) return;
  // The orders of one batch meet the refusal at the same moment: they wait for the first one's engage.
  const engaging = perContext(context, 'lockdown.compromise', () => ({ current: null as Promise<void> | null }));
  if (!engaging.current) {
    engaging.current = (async () => {
      if (await credentialsLockedDown(context)) return;
      await triggerLockdown(context, { trigger: 'bank_refused_compromise', reason, scope: 'credentials', evidence, actor: 'worker' });
    })().finally(() => (engaging.current = null));
  }
  await engaging.current;
}

/** A lockdown is recorded and its scope covers the bank credentials (`credentials` or `all`). */
async function credentialsLockedDown(context: JobContext): Promise<boolean> {
  const row = await readLockdownRow(context.orm.em.fork());
  return row.state === 'locked' && (row.scope === 'credentials' || row.scope === 'all');
}

/** Re-runs this same job later without spending an attempt (BullMQ's moveToDelayed + DelayedError). */
export async function waitAndRetry(job: Job, delayMs: number, _why: unknown): Promise<never> {
  await job.moveToDelayed(Date.now() + delayMs, job.token);
  throw new DelayedError();
}
