import { openOrm, type Orm } from '../../connector/persistence/database';
import { MoneyError } from '../../connector/shared/money';
import type { StatementData, StatementLineData } from '../../connector/statements/statement.model';
import { loadStoredStatement } from '../../connector/statements/statement.repository';
import { storeStatement } from '../../connector/statements/statement.store';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * The statement 1C gets is summed from stored rows (loadStoredStatement): exactly, in BigInt. Each
 * amount is a safe integer of tiyn, a running sum of them need not be, and past 2^53 a float sum
 * rounds: 1C would get a closing balance off by a tiyn, and a balanced bank statement reported as
 * not balanced.
 */
describe('stored statement sums are exact (BigInt), on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const ACCOUNT = 'KZ69998CTA0000000101';
  const M = Number.MAX_SAFE_INTEGER;
  const line = (bankLineId: string, bookingDate: string, direction: 'debit' | 'credit', amount: number): StatementLineData => ({
    bankLineId, bookingDate, valueDate: bookingDate, direction, amount, currency: 'KZT', status: 'booked', kind: 'payment',
    counterparty: { name: 'X', iinBin: '', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' }, purpose: 'p',
  });
  const statement = (from: string, to: string, lines: StatementLineData[]): StatementData => ({
    account: ACCOUNT, currency: 'KZT', periodFrom: from, periodTo: to, kind: 'booked', openingBalance: M, closingBalance: M, lines, source: 'bank-json',
  });

  beforeAll(async () => {
    env = await createTestEnv('stmtsums');
    orm = await openOrm(env.config);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  it('opening M, +1, +1, -2: closes at M, balanced, no warning', async () => {
    const day = '2026-11-25';
    const stored = await storeStatement(orm.em.fork(), statement(day, day, [line('S1', day, 'credit', 1), line('S2', day, 'credit', 1), line('S3', day, 'debit', 2)]), { now: new Date() });
    expect(stored.balanced).toBe(true);
    const { statement: st, warnings } = await loadStoredStatement(orm.em.fork(), ACCOUNT, day, day, { erpSource: 'onec' });
    expect(st).toMatchObject({ openingBalance: M, closingBalance: M });
    expect(warnings.filter((w) => /not balanced/.test(w))).toEqual([]);
  });

  it('a balance beyond the largest amount is refused (rule range), never written rounded', async () => {
    // Two days in one statement: the second day's opening is M + 2 tiyn.
    await storeStatement(orm.em.fork(), statement('2026-11-26', '2026-11-27', [line('T1', '2026-11-26', 'credit', 1), line('T2', '2026-11-26', 'credit', 1), line('T3', '2026-11-27', 'debit', 2)]), { now: new Date() });
    const load = loadStoredStatement(orm.em.fork(), ACCOUNT, '2026-11-27', '2026-11-27', { erpSource: 'onec' });
    await expect(load).rejects.toThrow(MoneyError);
    await expect(loadStoredStatement(orm.em.fork(), ACCOUNT, '2026-11-27', '2026-11-27', { erpSource: 'onec' })).rejects.toMatchObject({ rule: 'range', message: expect.stringMatching(/opening balance of KZ69998CTA0000000101 on 2026-11-27 is 9007199254740993 tiyn/) });
  });
});
