import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { allowWorkBetweenStatements, READ_ONLY_SNAPSHOT } from '../persistence/database';

/**
 * Tamper-evident audit log (R-18, R-26): each record carries the hash of the previous one, so a
 * modified, deleted or reordered record breaks the chain at a nameable place.
 * Appends are serialised with a transaction-scoped advisory lock (one chain, many processes), taken
 * by the database function `audit_append`.
 */
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

type AuditRecord = { seq: number; at: Date; actor: string; action: string; subject: string | null; details: unknown };

/**
 * The canonical JSON of a record's body, split around its sequence number: the keys sorted
 * (action, actor, at, details, seq, subject), so `head + seq + tail` is exactly
 * `canonicalJson({ seq, at, actor, action, subject, details })`. The database function
 * `audit_append` only learns the sequence number under the chain's lock, so it gets the two parts.
 */
export function auditRecordParts(record: Omit<AuditRecord, 'seq'>): { head: string; tail: string } {
  const head = `{"action":${canonicalJson(record.action)},"actor":${canonicalJson(record.actor)},"at":${canonicalJson(record.at.toISOString())},"details":${canonicalJson(record.details ?? null)},"seq":`;
  return { head, tail: `,"subject":${canonicalJson(record.subject)}}` };
}

/** sha256(prevHash + "\n" + canonical JSON of the record), in hex; `audit_append` computes the same in SQL. */
export function auditHash(prevHash: string, record: AuditRecord): string {
  const { head, tail } = auditRecordParts(record);
  return createHash('sha256').update(prevHash).update('\n').update(head).update(String(record.seq)).update(tail).digest('hex');
}

export async function appendAudit(em: EntityManager, input: AuditInput): Promise<{ seq: number; hash: string }> {
  return (await appendAudits(em, [input]))[0];
}

/**
 * Appends records to the chain, in the order given, in one statement: the database function
 * `audit_append` (migration 20261126000000) takes the chain's advisory lock, reads its head and
 * inserts them all. Inside a transaction, the lock is held until it ends, so the records land with
 * the changes they describe; outside one, the statement is its own transaction.
 */
export async function appendAudits(em: EntityManager, inputs: readonly AuditInput[]): Promise<Array<{ seq: number; hash: string }>> {
  if (inputs.length === 0) return [];
  const records = inputs.map(auditRecordJson);
  const rows = await em.execute<Array<{ appended_seq: string; appended_hash: string }>>('select appended_seq, appended_hash from audit_append(?::jsonb)', [JSON.stringify(records)]);
  return rows.map((row) => ({ seq: Number(row.appended_seq), hash: row.appended_hash }));
}

/** A record as `audit_append` takes it. */
function auditRecordJson(input: AuditInput): Record<string, unknown> {
  // Millisecond precision: what PostgreSQL stores is what the hash covers.
  const at = new Date((input.at ?? new Date()).getTime());
  const subject = input.subject ?? null;
  const details = input.details ?? null;
  return { at: at.toISOString(), actor: input.actor, action: input.action, subject, details, ...auditRecordParts({ at, actor: input.actor, action: input.action, subject, details }) };
}

/**
 * A CTE named `aud` that appends, in the very statement that changes orders, the audit records of
 * the orders it changed: each record names its order, and only those whose order is among
 * `changedOrdersSql` (a subquery of the statement) are appended, in the order given; with none,
 * `audit_append` is not called (no chain lock for nothing). The change and its records commit
 * together. A CTE that only reads runs only when referenced: the statement must select
 * `aud.appended` through `left join aud on true`.
 */
export function auditOfChangedOrders(records: ReadonlyArray<{ order: string; input: AuditInput }>, changedOrdersSql: string): { cte: string; param: string } {
  return {
    cte: `aud as (
         select (select count(*) from audit_append(x.records)) as appended
           from (select jsonb_agg(a.r order by a.n) as records from jsonb_array_elements(?::jsonb) with ordinality as a(r, n)
                  where (a.r->>'order')::uuid in (${changedOrdersSql})) x
          where x.records is not null)`,
    param: JSON.stringify(records.map((r) => ({ order: r.order, ...auditRecordJson(r.input) }))),
  };
}

export interface AuditVerifyResult {
  ok: boolean;
  records: number;
  /** The first record that breaks the chain, and how. */
  problem?: { seq: number; kind: 'modified' | 'missing' | 'reordered'; message: string };
}

type AuditRow = { seq: string; at: Date; actor: string; action: string; subject: string | null; details: unknown; prev_hash: string; hash: string };

/** Records read at a time: the walk holds one batch in memory, however long the log. */
const VERIFY_BATCH = 5_000;

/**
 * Walks the whole chain in seq order; names the first modified, missing or reordered record. The
 * chain is read from one snapshot (a read-only REPEATABLE READ transaction) through a cursor, a
 * batch at a time, so years of records verify in constant memory while the worker keeps
 * appending.
 */
export async function verifyAudit(em: EntityManager, options: { batch?: number } = {}): Promise<AuditVerifyResult> {
  const batchSize = options.batch ?? VERIFY_BATCH;
  return em.transactional(async (tx) => {
    // Each batch of records is hashed between two fetches: the walk's snapshot is not idle, it works.
    await allowWorkBetweenStatements(tx);
    const [{ n }] = await tx.execute<Array<{ n: string }>>('select count(*) as n from audit_event');
    const records = Number(n);
    await tx.execute('declare audit_walk no scroll cursor for select seq, at, actor, action, subject, details, prev_hash, hash from audit_event order by seq');
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    for (;;) {
      const rows = await tx.execute<AuditRow[]>(`fetch forward ${batchSize} from audit_walk`);
      if (!rows.length) break;
      for (const row of rows) {
        const seq = Number(row.seq);
        if (seq !== expectedSeq) {
          return { ok: false, records, problem: { seq: expectedSeq, kind: 'missing', message: `record ${expectedSeq} is missing (next present is ${seq})` } };
        }
        if (row.prev_hash !== prevHash) {
          // Reordered when the hash it claims to follow is another record's; missing otherwise.
          const elsewhere = await tx.execute('select 1 from audit_event where hash = ? limit 1', [row.prev_hash]);
          const kind = elsewhere.length ? 'reordered' : 'missing';
          return { ok: false, records, problem: { seq, kind, message: `record ${seq} does not follow record ${seq - 1} (${kind})` } };
        }
        const recomputed = auditHash(prevHash, { seq, at: new Date(row.at), actor: row.actor, action: row.action, subject: row.subject, details: row.details });
        if (recomputed !== row.hash) {
          return { ok: false, records, problem: { seq, kind: 'modified', message: `record ${seq} (${row.action}) was modified after it was written` } };
        }
        prevHash = row.hash;
        expectedSeq += 1;
      }
    }
    return { ok: true, records };
  }, READ_ONLY_SNAPSHOT);
}
