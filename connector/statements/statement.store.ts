import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { addDays, checkBalance, type StatementBalances } from './statement.checks';
import type { StatementData, StatementKind, StatementLineData } from './statement.model';
import { takeAdvisoryLockWaiting } from '../persistence/database';

/**
 * How long a statement's writer waits for the account's lock. Its holder stores a whole statement in
 * one transaction: months of history (a first fetch, a re-fetch after an outage) are thousands of lines
 * in batches of 500, longer than database.lockTimeoutMs, and the fetch of the same account that waits
 * for it has nothing better to do than wait (failing, it would be retried into the same wait).
 */
const ACCOUNT_LOCK_WAIT_MS = 300_000;

/**
 * Statements in PostgreSQL (issue 15 stage 5). Lines are keyed by (account, bank line id), so a
 * re-fetch stores nothing twice (LESSONS.md 5); a line the bank first showed as pending and now
 * books under the same id is promoted, never duplicated. Pending lines are a snapshot of what the
 * bank has not booked yet: they are stored apart (status `pending`, never counted in balances nor
 * reconciled) and replaced by each fetch of their period. Fee and tax lines are kept like any
 * other (LESSONS.md 7, R-25).
 */

export interface StoreResult {
  statementId: string;
  /** Lines stored for the first time. */
  stored: number;
  /** Lines already stored (a re-fetch). */
  duplicates: number;
  /** Pending lines now booked under the same bank line id. */
  promoted: number;
  /** Pending lines of an earlier fetch that this fetch no longer shows (booked under another id, or withdrawn). */
  pendingDropped: number;
  /**
   * Booked lines stored before that this fetch shows under the same id with other facts: another
   * amount, direction, currency, counterparty account, external id, bank reference or booking day,
   * or pending again (kept as stored).
   */
  changed: ChangedLine[];
  /** Bank line ids this answer holds more than once with different facts (only the first is stored). */
  conflicts: ConflictingLine[];
  /** Booked lines stored before, booked within this period, that this fetch no longer shows (kept as stored). */
  withdrawn: WithdrawnLine[];
  balanced: boolean;
  /** What was stored for this period before this fetch (null: the period is new). */
  before: StatementBalances | null;
}

/** What identifies a booked line as a payment: compared when the bank sends the same id again. */
export interface LineFacts {
  direction: string;
  amount: number;
  currency: string;
  status: string;
  counterpartyIban: string;
  externalId: string | null;
  bankReference: string | null;
  /**
   * The day it was booked: a line moved to another day is a restatement too. Stored under its first
   * day, it is in neither the new day's stored lines (so that day's lines no longer add up to the
   * bank's balances, and 1C is given a statement short of it) nor, once the old day is fetched
   * again, the bank's old day; without this the move passed unsaid until then, if ever.
   */
  bookingDate: string;
}

/** A booked line the bank sent again under its id with other facts. */
export interface ChangedLine {
  bankLineId: string;
  bookingDate: string;
  stored: LineFacts;
  fetched: LineFacts;
}

/** One bank line id that one answer holds several times, differing in any field. */
export interface ConflictingLine {
  bankLineId: string;
  /** Every distinct version in the answer's order; the first is the one stored. */
  variants: StatementLineData[];
}

function factsOf(l: StatementLineData): LineFacts {
  return {
    direction: l.direction,
    amount: l.amount,
    currency: l.currency,
    status: l.status,
    counterpartyIban: l.counterparty.iban,
    externalId: l.externalId ?? null,
    bankReference: l.bankReference ?? null,
    bookingDate: l.bookingDate,
  };
}

function sameFacts(a: LineFacts, b: LineFacts): boolean {
  return (Object.keys(a) as Array<keyof LineFacts>).every((k) => a[k] === b[k]);
}

/** A line as comparable text: every field, nested ones too, in a fixed order; an absent optional field is left out. */
function canonicalLine(l: StatementLineData): string {
  const sorted = (v: unknown): unknown =>
    v && typeof v === 'object' ? Object.fromEntries(Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => [k, sorted((v as Record<string, unknown>)[k])])) : v;
  return JSON.stringify(sorted(l));
}

/** A booked line of a period that the bank's statement of that period no longer shows. */
export interface WithdrawnLine {
  bankLineId: string;
  bookingDate: string;
  direction: string;
  amount: number;
  currency: string;
}

interface StatementRow {
  id: string;
  period_from: string | Date;
  period_to: string | Date;
  opening_balance: string | number;
  closing_balance: string | number;
  kind: StatementKind;
  currency: string;
}

/** PostgreSQL `date` columns come back as Date (node-pg) or string; both to ISO `YYYY-MM-DD`. */
export function isoDateOf(value: string | Date): string {
  if (typeof value === 'string') return value.slice(0, 10);
  // node-pg builds a local-midnight Date for a `date`: read it back in local time.
  const y = value.getFullYear();
  const m = String(value.getMonth() + 1).padStart(2, '0');
  const d = String(value.getDate()).padStart(2, '0');
  return `${y}-${m}-${d}`;
}

function balancesOf(row: StatementRow): StatementBalances {
  return {
    periodFrom: isoDateOf(row.period_from),
    periodTo: isoDateOf(row.period_to),
    openingBalance: Number(row.opening_balance),
    closingBalance: Number(row.closing_balance),
    kind: row.kind,
  };
}

/** The latest stored statement of `account` that ends before `before` (the one to chain balances to). */
export async function previousStatement(em: EntityManager, account: string, before: string): Promise<StatementBalances | null> {
  const rows = await em.execute<StatementRow[]>(
    'select * from statement where account = ? and period_to < ? order by period_to desc, period_from desc, fetched_at desc limit 1',
    [account, before],
  );
  return rows[0] ? balancesOf(rows[0]) : null;
}

export async function storedStatement(em: EntityManager, account: string, from: string, to: string): Promise<StatementBalances | null> {
  const rows = await em.execute<StatementRow[]>('select * from statement where account = ? and period_from = ? and period_to = ?', [account, from, to]);
  return rows[0] ? balancesOf(rows[0]) : null;
}

const LINE_COLUMNS = [
  'id', 'account', 'bank_line_id', 'statement_id', 'booking_date', 'value_date', 'direction', 'amount_tiyn', 'currency', 'status', 'kind', 'is_fee',
  'counterparty_name', 'counterparty_iin_bin', 'counterparty_iban', 'counterparty_bic', 'purpose', 'knp', 'document_number', 'document_date',
  'bank_reference', 'external_id', 'created_at',
];
/**
 * What a pending line's booking takes from the booked line: all of it (the amount too: a pending
 * amount is the bank's estimate, e.g. before conversion at the day's rate); only the link to the
 * statement it came with stays. `created_at` becomes the time the line was stored as booked: the 1C
 * write-back waits for booked lines stored in the last minutes to be reconciled (write-back.job.ts,
 * linesAwaitingReconciliation), and a line just booked is one of those.
 */
const PROMOTED_COLUMNS = LINE_COLUMNS.filter((c) => !['id', 'account', 'bank_line_id', 'statement_id'].includes(c));
/** Rows per INSERT: 23 parameters each stays far below PostgreSQL's 65535. */
const BATCH = 500;

/**
 * Stores the lines of `statement` (idempotent). `statementId` links first-seen lines to the
 * statement row they came with; a line already stored keeps its first link.
 */
export async function storeLines(
  em: EntityManager,
  statement: StatementData,
  options: { statementId: string | null; now: Date },
): Promise<Omit<StoreResult, 'statementId' | 'balanced' | 'before'>> {
  // The same id twice inside one answer would make ON CONFLICT touch a row twice: keep the first.
  // A repeat that is the same line is harmless; one that differs is another operation under the
  // same id (e.g. 10.00 and 70 000.00 to another account), which the balance check counts but the
  // store cannot keep: said (`conflicts`), never dropped silently.
  const unique = new Map<string, StatementLineData>();
  const variants = new Map<string, Map<string, StatementLineData>>();
  let duplicates = 0;
  for (const line of statement.lines) {
    const first = unique.get(line.bankLineId);
    if (!first) {
      unique.set(line.bankLineId, line);
      continue;
    }
    duplicates += 1;
    const seen = variants.get(line.bankLineId) ?? new Map([[canonicalLine(first), first]]);
    seen.set(canonicalLine(line), seen.get(canonicalLine(line)) ?? line);
    variants.set(line.bankLineId, seen);
  }
  const conflicts = [...variants]
    .filter(([, seen]) => seen.size > 1)
    .map(([bankLineId, seen]) => ({ bankLineId, variants: [...seen.values()] }));
  const lines = [...unique.values()];
  return em.transactional(async (tx) => {
    // One writer per account at a time (the closed-day and intraday fetches may run together):
    // no lock-order deadlocks between their inserts, and the pending snapshot is replaced whole.
    await takeAdvisoryLockWaiting(tx, ACCOUNT_LOCK_WAIT_MS, 'hashtext(?)', [`statement:${statement.account}`]);
    return { ...(await insertLines(tx, statement, lines, duplicates, options)), conflicts };
  });
}

async function insertLines(
  em: EntityManager,
  statement: StatementData,
  lines: StatementLineData[],
  duplicatesInAnswer: number,
  options: { statementId: string | null; now: Date },
): Promise<Omit<StoreResult, 'statementId' | 'balanced' | 'before' | 'conflicts'>> {
  let duplicates = duplicatesInAnswer;
  let stored = 0;
  let promoted = 0;
  const changed: ChangedLine[] = [];
  for (let i = 0; i < lines.length; i += BATCH) {
    const batch = lines.slice(i, i + BATCH);
    const params: unknown[] = [];
    for (const l of batch) {
      params.push(
        randomUUID(), statement.account, l.bankLineId, options.statementId, l.bookingDate, l.valueDate, l.direction, l.amount, l.currency, l.status, l.kind,
        l.kind === 'fee', l.counterparty.name, l.counterparty.iinBin, l.counterparty.iban, l.counterparty.bic, l.purpose, l.knp ?? null,
        l.documentNumber ?? null, l.documentDate ?? null, l.bankReference ?? null, l.externalId ?? null, options.now,
      );
    }
    const values = batch.map(() => `(${LINE_COLUMNS.map(() => '?').join(', ')})`).join(', ');
    const rows = await em.execute<Array<{ inserted: boolean }>>(
      `insert into statement_line (${LINE_COLUMNS.join(', ')}) values ${values}
       on conflict (account, bank_line_id) do update
         set ${PROMOTED_COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}, match_kind = null, reconciled_at = null
         where statement_line.status = 'pending' and excluded.status = 'booked'
       returning (xmax = 0) as inserted`,
      params,
    );
    for (const row of rows) {
      if (row.inserted) stored += 1;
      else promoted += 1;
    }
    duplicates += batch.length - rows.length;
    // A booked line is a fact we passed on: the bank sending it again under its id as another
    // payment (other money, another beneficiary's account, another document's reference or
    // external id, which reconciliation matches by) or as pending again is restating history. Kept
    // as first stored (the evidence); the caller raises it. A line stored in this very batch
    // compares with itself.
    const fetched = new Map(batch.map((l) => [l.bankLineId, l]));
    const storedRows = await em.execute<
      Array<{ bank_line_id: string; direction: string; amount_tiyn: string | number; currency: string; status: string; counterparty_iban: string; external_id: string | null; bank_reference: string | null; booking_date: string | Date }>
    >(
      `select bank_line_id, direction, amount_tiyn, currency, status, counterparty_iban, external_id, bank_reference, booking_date from statement_line
        where account = ? and status = 'booked' and bank_line_id in (${[...fetched.keys()].map(() => '?').join(', ')})`,
      [statement.account, ...fetched.keys()],
    );
    for (const row of storedRows) {
      const l = fetched.get(row.bank_line_id) as StatementLineData;
      const stored: LineFacts = {
        direction: row.direction,
        amount: Number(row.amount_tiyn),
        currency: row.currency,
        status: row.status,
        counterpartyIban: row.counterparty_iban,
        externalId: row.external_id,
        bankReference: row.bank_reference,
        bookingDate: isoDateOf(row.booking_date),
      };
      if (!sameFacts(stored, factsOf(l))) changed.push({ bankLineId: l.bankLineId, bookingDate: isoDateOf(row.booking_date), stored, fetched: factsOf(l) });
    }
  }
  // The pending snapshot of this period is replaced by this fetch's (LESSONS.md 6: kept apart).
  const pendingIds = lines.filter((l) => l.status === 'pending').map((l) => l.bankLineId);
  const keep = pendingIds.length ? ` and bank_line_id not in (${pendingIds.map(() => '?').join(', ')})` : '';
  const dropped = await em.execute<Array<{ id: string }>>(
    `delete from statement_line where account = ? and status = 'pending' and booking_date between ? and ?${keep} returning id`,
    [statement.account, statement.periodFrom, statement.periodTo, ...pendingIds],
  );
  // A booked line is a fact of its day: a statement of that day without it rewrites history (as a
  // changed one does). Kept as stored; the caller raises it.
  const fetchedIds = new Set(lines.map((l) => l.bankLineId));
  const bookedRows = await em.execute<Array<{ bank_line_id: string; booking_date: string | Date; direction: string; amount_tiyn: string | number; currency: string }>>(
    `select bank_line_id, booking_date, direction, amount_tiyn, currency from statement_line where account = ? and status = 'booked' and booking_date between ? and ? order by booking_date, bank_line_id`,
    [statement.account, statement.periodFrom, statement.periodTo],
  );
  const withdrawn = bookedRows
    .filter((r) => !fetchedIds.has(r.bank_line_id))
    .map((r) => ({ bankLineId: r.bank_line_id, bookingDate: isoDateOf(r.booking_date), direction: r.direction, amount: Number(r.amount_tiyn), currency: r.currency }));
  return { stored, duplicates, promoted, pendingDropped: dropped.length, changed, withdrawn };
}

/**
 * Stores a fetched statement: one row per (account, period), updated by a re-fetch, and its lines
 * (storeLines). One transaction: a crash leaves either all of it or none.
 */
export async function storeStatement(em: EntityManager, statement: StatementData, options: { now: Date }): Promise<StoreResult> {
  const balance = checkBalance(statement);
  return em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, ACCOUNT_LOCK_WAIT_MS, 'hashtext(?)', [`statement:${statement.account}`]);
    const existing = await tx.execute<StatementRow[]>(
      'select * from statement where account = ? and period_from = ? and period_to = ? for update',
      [statement.account, statement.periodFrom, statement.periodTo],
    );
    const rows = await tx.execute<Array<{ id: string }>>(
      `insert into statement (id, account, currency, period_from, period_to, kind, opening_balance, closing_balance, balanced, source, fetched_at)
       values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       on conflict (account, period_from, period_to) do update
         set currency = excluded.currency, kind = excluded.kind, opening_balance = excluded.opening_balance,
             closing_balance = excluded.closing_balance, balanced = excluded.balanced, source = excluded.source, fetched_at = excluded.fetched_at
       returning id`,
      [
        randomUUID(), statement.account, statement.currency, statement.periodFrom, statement.periodTo, statement.kind,
        statement.openingBalance, statement.closingBalance, balance.ok, statement.source, options.now,
      ],
    );
    const statementId = rows[0].id;
    const lines = await storeLines(tx, statement, { statementId, now: options.now });
    return { statementId, ...lines, balanced: balance.ok, before: existing[0] ? balancesOf(existing[0]) : null };
  });
}

/** The day after `date` (re-exported for callers that build ranges). */
export const nextDay = (date: string): string => addDays(date, 1);
