/**
 * The statement model every source maps into (the bank's JSON, ISO 20022 camt.053, a 1C
 * statement file). Reconciliation works on this shape only, never on an adapter's.
 * Amounts are positive integers of tiyn; `direction` says which way the money went for the
 * statement's own account.
 */
export type StatementKind = 'booked' | 'intraday';
export type LineDirection = 'debit' | 'credit';
export type LineStatus = 'booked' | 'pending';
export type LineKind = 'payment' | 'fee' | 'tax' | 'other';

export interface Counterparty {
  name: string;
  iinBin: string;
  iban: string;
  bic: string;
  /**
   * Its КБе (as beneficiary of a debit) or КОд (as payer of a credit), when known: a 1C statement
   * file may carry it; the bank's JSON and camt.053 do not, so for our own payments it comes from
   * the order the line executed (statement.repository.ts).
   */
  code?: string;
}

export interface StatementLineData {
  /** The bank's unique reference of this line: the idempotency key of storage (LESSONS.md 5). */
  bankLineId: string;
  bookingDate: string;
  valueDate: string;
  direction: LineDirection;
  amount: number;
  currency: string;
  status: LineStatus;
  kind: LineKind;
  counterparty: Counterparty;
  purpose: string;
  knp?: string;
  /** КБК of a budget payment, when known (a 1C statement file, or the order the line executed). */
  kbk?: string;
  documentNumber?: string;
  documentDate?: string;
  /** The bank's reference of our document, when the line is one of our orders. */
  bankReference?: string;
  /** Our external id, when the bank echoes it. */
  externalId?: string;
}

export interface StatementData {
  account: string;
  currency: string;
  periodFrom: string;
  periodTo: string;
  kind: StatementKind;
  openingBalance: number;
  closingBalance: number;
  lines: StatementLineData[];
  source: 'bank-json' | 'camt053' | 'onec';
}

/**
 * Opening + booked credits - booked debits, exactly (LESSONS.md 6). Pending lines do not count.
 * BigInt: each amount is a safe integer of tiyn, but a running sum of them need not be, and a float
 * sum past 2^53 rounds, so a statement could balance by rounding (or fail to).
 */
export function expectedClosingTiyn(statement: StatementData): bigint {
  let balance = BigInt(statement.openingBalance);
  for (const line of statement.lines) {
    if (line.status !== 'booked') continue;
    balance += line.direction === 'credit' ? BigInt(line.amount) : -BigInt(line.amount);
  }
  return balance;
}

/**
 * Opening + booked lines must equal closing. `ok` is exact; `expectedClosing` is exact whenever it is
 * a safe integer (beyond that it can equal no closing the readers accept, and `ok` is false).
 */
export function checkStatementBalance(statement: StatementData): { ok: boolean; expectedClosing: number } {
  const balance = expectedClosingTiyn(statement);
  return { ok: balance === BigInt(statement.closingBalance), expectedClosing: Number(balance) };
}
