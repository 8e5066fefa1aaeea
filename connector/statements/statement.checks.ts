import { checkStatementBalance, expectedClosingTiyn, type StatementData } from './statement.model';

/**
 * The checks every fetched statement goes through (LESSONS.md 6, issue 15 stage 5). Pure
 * functions over balances and periods; the statement service acts on their verdicts (re-fetch,
 * incident, alert).
 */

export interface BalanceVerdict {
  ok: boolean;
  /** Opening + booked credits - booked debits. */
  expectedClosing: number;
  /** closing - expectedClosing (tiyn); 0 when ok. */
  difference: number;
}

/** Opening + booked lines = closing; pending lines do not count (they have not moved money yet). */
export function checkBalance(statement: StatementData): BalanceVerdict {
  const { ok, expectedClosing } = checkStatementBalance(statement);
  // From the exact sum: expectedClosing rounds past 2^53, and closing minus a rounded figure could read 0.
  return { ok, expectedClosing, difference: Number(BigInt(statement.closingBalance) - expectedClosingTiyn(statement)) };
}

/** What the store remembers of a statement: enough to chain balances. */
export interface StatementBalances {
  periodFrom: string;
  periodTo: string;
  openingBalance: number;
  closingBalance: number;
  kind: 'booked' | 'intraday';
}

export type ContinuityVerdict =
  /** Nothing stored before: nothing to chain to. */
  | { status: 'first' }
  /** The previous statement ends the day before and its closing is this opening. */
  | { status: 'continuous' }
  /**
   * Days between the previous statement and this one were never fetched: fetch them (by date
   * range, never by a "new only" cursor, LESSONS.md 8) before judging the balances.
   */
  | { status: 'hole'; missingFrom: string; missingTo: string }
  /** Adjacent periods whose balances do not chain: money moved that no stored line explains. */
  | { status: 'gap'; difference: number };

export function addDays(isoDate: string, days: number): string {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

/**
 * One day's closing equals the next day's opening (LESSONS.md 6). `previous` is the latest stored
 * statement of the account that ends before `next` starts.
 */
export function checkContinuity(previous: StatementBalances | null, next: Pick<StatementData, 'periodFrom' | 'openingBalance'>): ContinuityVerdict {
  if (!previous) return { status: 'first' };
  const dayBefore = addDays(next.periodFrom, -1);
  if (previous.periodTo < dayBefore) return { status: 'hole', missingFrom: addDays(previous.periodTo, 1), missingTo: dayBefore };
  const difference = next.openingBalance - previous.closingBalance;
  return difference === 0 ? { status: 'continuous' } : { status: 'gap', difference };
}

export type RestatementVerdict = { status: 'new' } | { status: 'same' } | { status: 'updated' } | { status: 'restated'; openingDifference: number; closingDifference: number };

/**
 * The same period fetched again. An intraday statement grows during the day (its closing moves);
 * its opening never does. A closed (booked) period never changes: a different opening or closing
 * means the bank rewrote history we already passed to the ERP, which is a gap too.
 */
export function checkRestatement(stored: StatementBalances | null, fetched: Pick<StatementData, 'openingBalance' | 'closingBalance'>): RestatementVerdict {
  if (!stored) return { status: 'new' };
  const openingDifference = fetched.openingBalance - stored.openingBalance;
  const closingDifference = fetched.closingBalance - stored.closingBalance;
  if (openingDifference === 0 && closingDifference === 0) return { status: 'same' };
  if (openingDifference === 0 && stored.kind === 'intraday') return { status: 'updated' };
  return { status: 'restated', openingDifference, closingDifference };
}
