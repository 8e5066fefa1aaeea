import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { SignLevel } from './signing-policy';
import { cmsSignerSerials } from '../../signer-agent/cms/cms.parser';
import { appendAudits, auditOfChangedOrders } from '../audit/audit.log';
import { policyAmountTiyn } from './signing-policy';
import { decideSign, type SignerRecord } from '../users/authority';
import { transitionOrders } from '../orders/order-state.machine';

/**
 * The exact signed bytes and the signatures over them. The document is frozen the first
 * time it is built: every later signature, the submission and the archive use these bytes.
 */
export interface FrozenDocument {
  format: string;
  bytes: Buffer;
  sha256: string;
}

/**
 * Freezes the documents of the orders that have none yet: one read, one insert of the missing ones,
 * one read back of those. `version`: the order's version the bytes were built from; the document is
 * frozen only while the order still has it. A withdrawn order sent again corrected loses its
 * unsigned document (order-intake.ts replaceInvalid): bytes built from the row read before that
 * must not become the corrected order's document, to be signed and sent with the old requisites.
 * Such an order is left out of the result (it is validated again and comes back to be signed).
 */
export async function freezeDocuments(em: EntityManager, orderIds: readonly string[], build: (orderId: string) => { format: string; bytes: Buffer; version?: number }, now: Date): Promise<Map<string, FrozenDocument>> {
  const frozen = await loadDocuments(em, orderIds);
  const missing = orderIds.filter((id) => !frozen.has(id));
  if (missing.length === 0) return frozen;
  const rows = missing.map((orderId) => {
    const { format, bytes, version } = build(orderId);
    return [orderId, format, bytes, createHash('sha256').update(bytes).digest('hex'), now, version ?? null];
  });
  await em.execute(
    `insert into order_document (order_id, format, bytes, sha256, created_at)
     select v.order_id, v.format, v.bytes, v.sha256, v.created_at
       from (values ${rows.map(() => '(?::uuid, ?, ?::bytea, ?, ?::timestamptz, ?::int)').join(', ')}) as v(order_id, format, bytes, sha256, created_at, version)
      where v.version is null or exists (select 1 from payment_order o where o.id = v.order_id and o.version = v.version)
     on conflict (order_id) do nothing`,
    rows.flat(),
  );
  // Read back: a concurrent freeze may have won, and its bytes are the frozen ones.
  for (const [id, doc] of await loadDocuments(em, missing)) frozen.set(id, doc);
  return frozen;
}

export async function loadDocuments(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, FrozenDocument>> {
  if (orderIds.length === 0) return new Map();
  const rows = await em.execute<Array<{ order_id: string; format: string; bytes: Buffer; sha256: string }>>(
    `select order_id, format, bytes, sha256 from order_document where order_id in (${orderIds.map(() => '?').join(', ')})`,
    [...orderIds],
  );
  return new Map(rows.map((r) => [r.order_id, { format: r.format, bytes: Buffer.from(r.bytes), sha256: r.sha256 }]));
}

export interface StoredSignature {
  id: number;
  userId: string;
  login: string;
  level: SignLevel;
  serial: string;
  /** The signer's IIN in the certificate (null when it has none): who the person is. */
  iin: string | null;
  signingTime: Date;
  cms: Buffer;
}

export async function validSignatures(em: EntityManager, orderId: string): Promise<StoredSignature[]> {
  return (await validSignaturesOf(em, [orderId])).get(orderId) ?? [];
}

/** The valid signatures of many orders, each order's in signing order (every id has an entry). */
export async function validSignaturesOf(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, StoredSignature[]>> {
  const out = new Map<string, StoredSignature[]>(orderIds.map((id) => [id, []]));
  if (orderIds.length === 0) return out;
  const rows = await em.execute<Array<{ id: string; order_id: string; user_id: string; login: string; level: SignLevel; serial: string; iin: string | null; signing_time: Date; cms: Buffer }>>(
    `select id, order_id, user_id, login, level, serial, iin, signing_time, cms from order_signature where order_id in (${orderIds.map(() => '?').join(', ')}) and valid order by id`,
    [...orderIds],
  );
  for (const r of rows) {
    out.get(r.order_id)?.push({ id: Number(r.id), userId: r.user_id, login: r.login, level: r.level, serial: r.serial, iin: r.iin ?? null, signingTime: new Date(r.signing_time), cms: Buffer.from(r.cms) });
  }
  return out;
}

export interface NewSignature {
  orderId: string;
  userId: string;
  login: string;
  level: SignLevel;
  algorithm: string;
  serial: string;
  subject: string;
  iin: string | null;
  signingTime: Date;
  documentSha256: string;
  cms: Buffer;
  mandate: boolean;
  /** The signature whose CMS this one cosigned (null: the first); see the signature_chain migration. */
  cosignedId: number | null;
}

/**
 * Records signatures in one insert (at most one per order), with the audit record of each one
 * recorded (`order.signed`, by the signer) in the same statement; for each, its id, or null when
 * it no longer fits: its level was signed meanwhile, or the signature it cosigned is no longer the
 * order's newest valid one (another signer got in between: the CMS would lack them).
 */
export async function recordSignatures(em: EntityManager, list: readonly NewSignature[], now: Date): Promise<Array<number | null>> {
  if (list.length === 0) return [];
  const audit = auditOfChangedOrders(
    list.map((s) => ({
      order: s.orderId,
      input: { actor: `user:${s.login}`, action: 'order.signed', subject: s.orderId, details: { level: s.level, serial: s.serial, mandate: s.mandate, documentSha256: s.documentSha256 }, at: now },
    })),
    'select order_id from ins',
  );
  const orders = [...new Set(list.map((s) => s.orderId))];
  // The orders' rows are locked before the insert and so before the audit chain's lock: the order
  // every other path takes them in (rows, then chain). Only an order still waiting for signatures
  // takes one: a signature made while it moved on (submitted, withdrawn, gone stale, sent back by a
  // signer's block) must not be stored as counting. A share lock, not the key share the foreign key
  // takes, so that a transition of the order waits for this insert (and this one for it) and the
  // state is judged on the row as it is when the insert goes in.
  // Nor by a signer disabled meanwhile: the block voided their signatures when it was made
  // (voidSignaturesOfLostAuthority); one recorded after it would count again. The signers' rows are
  // share-locked first, in a statement of their own: a block under way (its update of the user,
  // then its lock of the orders) is waited for, and the insert's own snapshot, taken after, sees it
  // committed. Users, then orders, then the audit chain: the block's order, so no deadlock.
  const users = [...new Set(list.map((s) => s.userId))];
  const rows = await em.transactional(async (tx) => {
    await tx.execute(`select id from app_user where id in (${users.map(() => '?').join(', ')}) order by id for share`, users);
    return tx.execute<Array<{ id: string; order_id: string }>>(
      `with lk as (select id from payment_order where id in (${orders.map(() => '?').join(', ')}) and state = 'awaiting_signatures' order by id for share),
       ins as (
         insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, iin, signing_time, document_sha256, cms, mandate, cosigned_id, created_at)
         select v.* from (values ${list.map(() => '(?::uuid, ?::uuid, ?, ?, ?, ?, ?, ?, ?::timestamptz, ?, ?::bytea, ?::boolean, ?::bigint, ?::timestamptz)').join(', ')})
           as v (order_id, user_id, login, level, algorithm, serial, subject, iin, signing_time, document_sha256, cms, mandate, cosigned_id, created_at)
          where v.order_id in (select id from lk)
            and not exists (select 1 from app_user u where u.id = v.user_id and u.blocked_reason is not null)
            and v.cosigned_id is not distinct from (select max(s.id) from order_signature s where s.order_id = v.order_id and s.valid)
            -- Over the bytes frozen now: a withdrawn order corrected meanwhile has a new document.
            and v.document_sha256 = (select d.sha256 from order_document d where d.order_id = v.order_id)
         on conflict do nothing returning id, order_id),
       ${audit.cte}
       select ins.id, ins.order_id, aud.appended from ins left join aud on true`,
      [
        ...orders,
        ...list.flatMap((s) => [s.orderId, s.userId, s.login, s.level, s.algorithm, s.serial, s.subject, s.iin, s.signingTime, s.documentSha256, s.cms, s.mandate, s.cosignedId, now]),
        audit.param,
      ],
    );
  });
  const inserted = new Map(rows.map((r) => [r.order_id, Number(r.id)]));
  return list.map((s) => inserted.get(s.orderId) ?? null);
}

/**
 * Whether the CMS of the newest valid signature, the one the bank receives, names the certificate
 * of every valid signature and no other: a chain broken before the signature_chain migration (two
 * signatures made at once, each over a CMS without the other) or by a bug must not reach the bank.
 */
export function cmsHoldsEverySigner(signatures: readonly StoredSignature[]): boolean {
  if (signatures.length === 0) return false;
  // Serials as the connector's own signer writes them (issuer and serial); a CMS naming a signer
  // by key id would never match, and none is made here.
  const named = cmsSignerSerials(signatures[signatures.length - 1].cms).map((s) => s ?? '').sort();
  const valid = signatures.map((s) => s.serial).sort();
  return named.length === valid.length && named.every((serial, i) => serial === valid[i]);
}

/** Signatures that stop counting while the order is not submitted (R-17, a broken chain), in one statement. */
export async function invalidateSignatures(em: EntityManager, signatureIds: readonly number[], reason: string): Promise<void> {
  if (signatureIds.length === 0) return;
  await em.execute(`update order_signature set valid = false, invalidated_reason = ? where id in (${signatureIds.map(() => '?').join(', ')})`, [reason, ...signatureIds]);
}

/**
 * R-17 at the moment authority is lost (a user blocked, a right revoked or narrowed), in the
 * caller's transaction, after the change: every signature of this user on an order never sent
 * (no attempt counted) that the user may no longer give, as decideSign judges it now, stops
 * counting with its whole round (the later CMS holds the earlier signers), and an order already
 * `signed` (or claimed, `submitting`, but not yet sent) goes back to `awaiting_signatures`.
 * Judged at the next look only, an order claimed in between was sent with the signature, and a
 * user unblocked before that look had their old signatures count again.
 * The orders are locked (in id order) before anything changes: a claim `signed -> submitting` or a
 * send's count of its attempt (both conditional on the row) waits for this and then finds the order
 * moved on, or has counted first (sent while the signature still counted) and is left alone.
 * The send lease is cleared: a sender that held it is stopped at its last look, even if the order
 * is signed afresh and claimed again before that look. The orders whose signatures were voided,
 * and of them those sent back to `awaiting_signatures` (their sign stage is to be queued once this commits).
 */
export async function voidSignaturesOfLostAuthority(em: EntityManager, signer: SignerRecord, actor: string, now: Date): Promise<{ voided: string[]; backToSigning: string[] }> {
  const rows = await em.execute<Array<{ id: string; state: string; payer_iban: string; amount_tiyn: string | number; currency: string; level: SignLevel }>>(
    `select o.id, o.state, o.payer_iban, o.amount_tiyn, o.currency, s.level
       from payment_order o join order_signature s on s.order_id = o.id and s.valid and s.user_id = ?
      where o.submit_attempts = 0 and o.state in ('received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'held', 'failed')
      order by o.id for update of o`,
    [signer.user.id],
  );
  const reasonOf = new Map<string, string>();
  for (const r of rows) {
    const decision = decideSign(signer, r.payer_iban, policyAmountTiyn({ amountTiyn: Number(r.amount_tiyn), currency: r.currency }));
    const lost = !decision.allowed ? decision.reason : decision.level !== r.level ? `LEVEL_CHANGED (signed as ${r.level}, may now sign ${decision.level ?? 'none'})` : null;
    // The same wording as the pipeline's look (dropSignaturesThatNoLongerCount).
    if (lost) reasonOf.set(r.id, `signer lost authority (${signer.user.login}: ${lost})`);
  }
  if (reasonOf.size === 0) return { voided: [], backToSigning: [] };
  const ids = [...reasonOf.keys()];
  await em.execute(
    `update order_signature s set valid = false, invalidated_reason = v.reason
       from jsonb_to_recordset(?::jsonb) as v(id uuid, reason text)
      where s.order_id = v.id and s.valid`,
    [JSON.stringify(ids.map((id) => ({ id, reason: reasonOf.get(id) })))],
  );
  await appendAudits(em, ids.map((id) => ({ actor, action: 'order.signatures.invalidated', subject: id, details: { reasons: [reasonOf.get(id)] }, at: now })));
  const back = [...new Set(rows.filter((r) => reasonOf.has(r.id) && (r.state === 'signed' || r.state === 'submitting')).map((r) => r.id))];
  const backToSigning: string[] = [];
  for (const reason of new Set(back.map((id) => reasonOf.get(id) as string))) {
    const group = back.filter((id) => reasonOf.get(id) === reason);
    for (const moved of await transitionOrders(em, group, 'awaiting_signatures', { actor, from: ['signed', 'submitting'], reason, patch: { sendLeaseUntil: null }, now })) {
      if (!('error' in moved)) backToSigning.push(moved.orderId);
    }
  }
  return { voided: ids, backToSigning };
}
