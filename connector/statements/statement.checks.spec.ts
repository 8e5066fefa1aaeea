import { checkBalance, checkContinuity, checkRestatement, type StatementBalances } from './statement.checks';
import type { StatementData, StatementLineData } from './statement.model';
import { scheduledRanges } from './statement.schedule';
import { KzBusinessCalendar } from '../calendar/kz-business-calendar';

const line = (over: Partial<StatementLineData>): StatementLineData => ({
  bankLineId: 'L1',
  bookingDate: '2026-11-25',
  valueDate: '2026-11-25',
  direction: 'debit',
  amount: 100,
  currency: 'KZT',
  status: 'booked',
  kind: 'payment',
  counterparty: { name: 'X', iinBin: '', iban: '', bic: '' },
  purpose: 'p',
  ...over,
});

const statement = (opening: number, closing: number, lines: StatementLineData[]): StatementData => ({
  account: 'KZ00',
  currency: 'KZT',
  periodFrom: '2026-11-25',
  periodTo: '2026-11-25',
  kind: 'booked',
  openingBalance: opening,
  closingBalance: closing,
  lines,
  source: 'bank-json',
});

const M = Number.MAX_SAFE_INTEGER;
const credit = (amount: number, bankLineId: string) => line({ bankLineId, direction: 'credit', amount });

describe('checkBalance: opening + booked lines = closing (LESSONS.md 6)', () => {
  it.each([
    ['no lines', statement(1000, 1000, []), true, 0],
    ['a debit and a credit', statement(1000, 1150, [line({ amount: 50 }), line({ bankLineId: 'L2', direction: 'credit', amount: 200 })]), true, 0],
    ['a fee line counts like any debit', statement(1000, 600, [line({ amount: 300 }), line({ bankLineId: 'F', kind: 'fee', amount: 100 })]), true, 0],
    ['pending lines do not count', statement(1000, 900, [line({ amount: 100 }), line({ bankLineId: 'P', status: 'pending', amount: 500 })]), true, 0],
    ['a missing line shows as a difference', statement(1000, 800, [line({ amount: 100 })]), false, -100],
    ['negative balances (overdraft)', statement(-500, -700, [line({ amount: 200 })]), true, 0],
    // Past 2^53 a float sum rounds: M + 1 + 1 - 1 came out as M, a statement balanced by rounding...
    ['a sum past 2^53 is exact: no balance by rounding', statement(M, M, [credit(1, 'C1'), credit(1, 'C2'), line({ amount: 1 })]), false, -1],
    // ...and M + 1 + 1 - 2 as M - 1, a balanced statement called broken.
    ['a sum past 2^53 is exact: no imbalance by rounding', statement(M, M, [credit(1, 'C1'), credit(1, 'C2'), line({ amount: 2 })]), true, 0],
  ])('%s', (_name, s, ok, difference) => {
    expect(checkBalance(s)).toMatchObject({ ok, difference });
  });
});

const prev = (over: Partial<StatementBalances> = {}): StatementBalances => ({
  periodFrom: '2026-11-24',
  periodTo: '2026-11-24',
  openingBalance: 0,
  closingBalance: 1000,
  kind: 'booked',
  ...over,
});

describe('checkContinuity: one closing is the next opening', () => {
  it.each([
    ['nothing stored before', null, { periodFrom: '2026-11-25', openingBalance: 5 }, { status: 'first' }],
    ['adjacent and equal', prev(), { periodFrom: '2026-11-25', openingBalance: 1000 }, { status: 'continuous' }],
    ['adjacent and different', prev(), { periodFrom: '2026-11-25', openingBalance: 1300 }, { status: 'gap', difference: 300 }],
    ['overlapping periods compare balances', prev({ periodTo: '2026-11-25' }), { periodFrom: '2026-11-25', openingBalance: 1000 }, { status: 'continuous' }],
    ['days never fetched in between', prev({ periodTo: '2026-11-20' }), { periodFrom: '2026-11-25', openingBalance: 1000 }, { status: 'hole', missingFrom: '2026-11-21', missingTo: '2026-11-24' }],
    ['a hole across a month end', prev({ periodTo: '2026-11-29' }), { periodFrom: '2026-12-02', openingBalance: 1000 }, { status: 'hole', missingFrom: '2026-11-30', missingTo: '2026-12-01' }],
  ])('%s', (_name, p, next, verdict) => {
    expect(checkContinuity(p, next)).toEqual(verdict);
  });
});

describe('checkRestatement: the same period fetched again', () => {
  it.each([
    ['new period', null, { openingBalance: 1, closingBalance: 2 }, 'new'],
    ['same balances', prev(), { openingBalance: 0, closingBalance: 1000 }, 'same'],
    ['intraday grows during the day', prev({ kind: 'intraday' }), { openingBalance: 0, closingBalance: 700 }, 'updated'],
    ['a closed day never changes', prev(), { openingBalance: 0, closingBalance: 700 }, 'restated'],
    ['an intraday opening never changes', prev({ kind: 'intraday' }), { openingBalance: 10, closingBalance: 1000 }, 'restated'],
  ])('%s', (_name, stored, fetched, status) => {
    expect(checkRestatement(stored, fetched).status).toBe(status);
  });
});

describe('scheduledRanges: today intraday plus the closed days since the previous business day', () => {
  const calendar = KzBusinessCalendar.shipped({ cutoff: '17:00' });
  it.each([
    ['a Wednesday', '2026-11-25T04:00:00Z', { from: '2026-11-24', to: '2026-11-24' }, '2026-11-25'],
    ['a Monday also covers the weekend', '2026-11-30T04:00:00Z', { from: '2026-11-27', to: '2026-11-29' }, '2026-11-30'],
    ['late evening UTC is already the next day in Kazakhstan', '2026-11-24T20:00:00Z', { from: '2026-11-24', to: '2026-11-24' }, '2026-11-25'],
  ])('%s', (_name, now, closed, today) => {
    const [c, i] = scheduledRanges(calendar, new Date(now));
    expect(c).toEqual({ ...closed, kind: 'closed' });
    expect(i).toEqual({ from: today, to: today, kind: 'intraday' });
  });
  it.each([
    ['a Tuesday past the calendar data (2024..2027)', '2028-01-04T04:00:00Z', { from: '2028-01-03', to: '2028-01-03' }, '2028-01-04'],
    ['a Monday past it still covers the weekend', '2028-01-03T04:00:00Z', { from: '2027-12-31', to: '2028-01-02' }, '2028-01-03'],
  ])('%s: statements are still fetched, from the previous weekday (fail closed: no debit goes unseen)', (_name, now, closed, today) => {
    const [c, i] = scheduledRanges(calendar, new Date(now));
    expect(c).toEqual({ ...closed, kind: 'closed' });
    expect(i).toEqual({ from: today, to: today, kind: 'intraday' });
  });
});
