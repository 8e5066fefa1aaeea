import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { SignLevel } from './signing-policy';

/**
 * The exact signed bytes and the signatures over them. The document is frozen the first
 * time it is built: every later signature, the submission and the archive use these bytes.
 */
export interface FrozenDocument {
  format: string;
  bytes: Buffer;
  sha256: string;
}

export async function freezeDocument(em: EntityManager, orderId: string, build: () => { format: string; bytes: Buffer }, now: Date): Promise<FrozenDocument> {
  const existing = await loadDocument(em, orderId);
  if (existing) return existing;
  const { format, bytes } = build();
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await em.execute('insert into order_document (order_id, format, bytes, sha256, created_at) values (?, ?, ?, ?, ?) on conflict (order_id) do nothing', [orderId, format, bytes, sha256, now]);
  // Another worker may have won the race: whatever is stored is the document.
  return (await loadDocument(em, orderId)) as FrozenDocument;
}

export async function loadDocument(em: EntityManager, orderId: string): Promise<FrozenDocument | null> {
  const rows = await em.execute<Array<{ format: string; bytes: Buffer; sha256: string }>>('select format, bytes, sha256 from order_document where order_id = ?', [orderId]);
  return rows.length ? { format: rows[0].format, bytes: Buffer.from(rows[0].bytes), sha256: rows[0].sha256 } : null;
}

export interface StoredSignature {
  id: number;
  userId: string;
  login: string;
  level: SignLevel;
  serial: string;
  signingTime: Date;
  cms: Buffer;
}

export async function validSignatures(em: EntityManager, orderId: string): Promise<StoredSignature[]> {
  const rows = await em.execute<Array<{ id: string; user_id: string; login: string; level: SignLevel; serial: string; signing_time: Date; cms: Buffer }>>(
    'select id, user_id, login, level, serial, signing_time, cms from order_signature where order_id = ? and valid order by id',
    [orderId],
  );
  return rows.map((r) => ({ id: Number(r.id), userId: r.user_id, login: r.login, level: r.level, serial: r.serial, signingTime: new Date(r.signing_time), cms: Buffer.from(r.cms) }));
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
}

/** Records a signature; false when that level is already signed (a concurrent signer won). */
export async function recordSignature(em: EntityManager, s: NewSignature, now: Date): Promise<boolean> {
  const rows = await em.execute<Array<{ id: string }>>(
    `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, iin, signing_time, document_sha256, cms, mandate, created_at)
     values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) on conflict (order_id, level) where valid do nothing returning id`,
    [s.orderId, s.userId, s.login, s.level, s.algorithm, s.serial, s.subject, s.iin, s.signingTime, s.documentSha256, s.cms, s.mandate, now],
  );
  return rows.length === 1;
}

/** a signature by a user who lost authority stops counting while the order is not submitted. */
export async function invalidateSignature(em: EntityManager, signatureId: number, reason: string): Promise<void> {
  await em.execute('update order_signature set valid = false, invalidated_reason = ? where id = ?', [reason, signatureId]);
}
