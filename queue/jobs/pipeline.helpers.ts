import { DelayedError, type Job } from 'bullmq';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { JobContext } from '../job-context';
import type { PaymentOrder } from '../../connector/persistence/entities';
import { invalidateSignature, validSignatures, type StoredSignature } from '../../connector/signing/order-signatures';
import { decideSign, loadSigner, type SignerRecord } from '../../connector/users/authority';
import { appendAudit } from '../../connector/audit/audit.log';

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

/**
 * R-17 before anything else: a signature whose signer may no longer sign this order stops
 * counting. The CMS of later signatures contains the earlier ones, so the whole round is
 * invalidated and signed afresh. Returns how many signatures were dropped.
 */
export async function dropSignaturesOfRevokedSigners(
  context: JobContext,
  order: Pick<PaymentOrder, 'id' | 'payerIban' | 'amountTiyn'>,
  known?: { signatures: StoredSignature[]; directory: SignerDirectory },
): Promise<number> {
  const em = context.orm.em.fork();
  const signatures = known?.signatures ?? (await validSignatures(em, order.id));
  if (signatures.length === 0) return 0;
  const directory = known?.directory ?? new SignerDirectory(em);
  const revoked: string[] = [];
  for (const s of signatures) {
    const decision = decideSign(await directory.signer(s.userId), order.payerIban, order.amountTiyn, context.clock);
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
