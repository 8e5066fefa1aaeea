import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Tamper-evident audit log (R-18, R-26): each record carries the hash of the previous one, so a
 * modified, deleted or reordered record breaks the chain at a nameable place.
 * Appends are serialised with a transaction-scoped advisory lock (one chain, many processes).
 */
const AUDIT_LOCK_ID = 0x61756474; // "audt"
export const GENESIS_HASH = '0'.repeat(64);

export interface AuditInput {
  actor: string;
  action: string;
  subject?: string | null;
  /** Never a secret: callers pass ids, codes and counts. */
  details?: Record<string, unknown> | null;
  at?: Date;
}

/** Canonical JSON: keys sorted at every depth, so the hash does not depend on key order in jsonb. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value ?? null);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function auditHash(prevHash: string, record: { seq: number; at: Date; actor: string; action: string; subject: string | null; details: unknown }): string {
  const body = canonicalJson({
    seq: record.seq,
    at: record.at.toISOString(),
    actor: record.actor,
    action: record.action,
    subject: record.subject,
    details: record.details ?? null,
  });
  return createHash('sha256').update(prevHash).update('\n').update(body).digest('hex');
}

export async function appendAudit(em: EntityManager, input: AuditInput): Promise<{ seq: number; hash: string }> {
  return (await appendAudits(em, [input]))[0];
}

/**
 * Appends several records under one lock and one insert (a batch stage records each order's event
 * without taking the global lock once per order). The chain is the same as one append at a time.
 */
export async function appendAudits(em: EntityManager, inputs: readonly AuditInput[]): Promise<Array<{ seq: number; hash: string }>> {
  if (inputs.length === 0) return [];
  return em.transactional(async (tx) => {
    await tx.execute('select pg_advisory_xact_lock(?)', [AUDIT_LOCK_ID]);
    const last = await tx.execute<Array<{ seq: string; hash: string }>>('select seq, hash from audit_event order by seq desc limit 1');
    let seq = last.length ? Number(last[0].seq) : 0;
    let prevHash = last.length ? last[0].hash : GENESIS_HASH;
    const rows: unknown[][] = [];
    const out: Array<{ seq: number; hash: string }> = [];
    for (const input of inputs) {
      seq += 1;
      // Millisecond precision: what PostgreSQL stores is what the hash covers.
      const at = new Date((input.at ?? new Date()).getTime());
      const subject = input.subject ?? null;
      const details = input.details ?? null;
      const hash = auditHash(prevHash, { seq, at, actor: input.actor, action: input.action, subject, details });
      rows.push([seq, at, input.actor, input.action, subject, details === null ? null : JSON.stringify(details), prevHash, hash]);
      out.push({ seq, hash });
      prevHash = hash;
    }
    await tx.execute(
      `insert into audit_event (seq, at, actor, action, subject, details, prev_hash, hash) values ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      rows.flat(),
    );
    return out;
  });
}

export interface AuditVerifyResult {
  ok: boolean;
  records: number;
  /** The first record that breaks the chain, and how. */
  problem?: { seq: number; kind: 'modified' | 'missing' | 'reordered'; message: string };
}

/** Walks the whole chain in seq order; names the first modified, missing or reordered record. */
export async function verifyAudit(em: EntityManager): Promise<AuditVerifyResult> {
  const rows = await em.execute<Array<{ seq: string; at: Date; actor: string; action: string; subject: string | null; details: unknown; prev_hash: string; hash: string }>>(
    'select seq, at, actor, action, subject, details, prev_hash, hash from audit_event order by seq',
  );
  let prevHash = GENESIS_HASH;
  let expectedSeq = 1;
  for (const row of rows) {
    const seq = Number(row.seq);
    if (seq !== expectedSeq) {
      return { ok: false, records: rows.length, problem: { seq: expectedSeq, kind: 'missing', message: `record ${expectedSeq} is missing (next present is ${seq})` } };
    }
    if (row.prev_hash !== prevHash) {
      const kind = rows.some((r) => r.hash === row.prev_hash) ? 'reordered' : 'missing';
      return { ok: false, records: rows.length, problem: { seq, kind, message: `record ${seq} does not follow record ${seq - 1} (${kind})` } };
    }
    const recomputed = auditHash(prevHash, { seq, at: new Date(row.at), actor: row.actor, action: row.action, subject: row.subject, details: row.details });
    if (recomputed !== row.hash) {
      return { ok: false, records: rows.length, problem: { seq, kind: 'modified', message: `record ${seq} (${row.action}) was modified after it was written` } };
    }
    prevHash = row.hash;
    expectedSeq += 1;
  }
  return { ok: true, records: rows.length };
}
