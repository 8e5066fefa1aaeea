import type { EntityManager } from '@mikro-orm/postgresql';
import { kzCalendarFromConfig, type KzBusinessCalendar } from '../../connector/calendar/kz-business-calendar';
import { openOrm, type Orm } from '../../connector/persistence/database';
import type { StatementData, StatementLineData } from '../../connector/statements/statement.model';
import { fetchAndReconcileStatement, type StatementSource } from '../../connector/statements/statement.service';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * A bank whose statements are odd (on real PostgreSQL): each test scripts the answers of the
 * bank's statement endpoint and runs the real fetch-check-store-reconcile service on them.
 */
const BENEFICIARY = { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' };

/** Answers with the next scripted statement for the range asked. */
class ScriptedBank implements StatementSource {
  private readonly answers = new Map<string, StatementData[]>();
  answer(s: StatementData): void {
    const key = `${s.account} ${s.periodFrom} ${s.periodTo}`;
    this.answers.set(key, [...(this.answers.get(key) ?? []), s]);
  }
  async getStatement(account: string, from: string, to: string): Promise<StatementData> {
    const queue = this.answers.get(`${account} ${from} ${to}`);
    if (!queue?.length) throw new Error(`no scripted statement for ${account} ${from}..${to}`);
    return queue.length > 1 ? (queue.shift() as StatementData) : queue[0];
  }
}

function line(overrides: Partial<StatementLineData> & Pick<StatementLineData, 'bankLineId' | 'amount'>): StatementLineData {
  return {
    bookingDate: '2026-11-24',
    valueDate: '2026-11-24',
    direction: 'debit',
    currency: 'KZT',
    status: 'booked',
    kind: 'payment',
    counterparty: { ...BENEFICIARY },
    purpose: 'Оплата по счету №12 за товары',
    ...overrides,
  };
}

/** A statement whose closing is its opening plus its booked lines (it balances). */
function statement(account: string, from: string, to: string, opening: number, lines: StatementLineData[], kind: StatementData['kind'] = 'booked'): StatementData {
  let closing = opening;
  for (const l of lines) if (l.status === 'booked') closing += l.direction === 'credit' ? l.amount : -l.amount;
  return { account, currency: 'KZT', periodFrom: from, periodTo: to, kind, openingBalance: opening, closingBalance: closing, lines, source: 'bank-json' };
}

describe('statements from an odd bank, on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  let calendar: KzBusinessCalendar;

  beforeAll(async () => {
    env = await createTestEnv('oddbank');
    orm = await openOrm(env.config);
    calendar = kzCalendarFromConfig(env.config);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  const db = (): EntityManager => orm.em.fork();
  const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => db().execute<T[]>(sql, params);
  const run = (bank: StatementSource, account: string, from: string, to: string, now = new Date('2026-11-25T04:00:00Z')) =>
    fetchAndReconcileStatement({ em: db(), source: bank, calendar, now }, account, from, to);

  it('a pending line the bank books with another amount is stored with the booked amount', async () => {
    const account = 'KZ000000000000000A01';
    const bank = new ScriptedBank();
    // Intraday: the payment is pending at 100.00; the closed day books it at 100.50 (e.g. converted at the day's rate).
    bank.answer(statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'P-1', amount: 10_000, status: 'pending' })], 'intraday'));
    await run(bank, account, '2026-11-24', '2026-11-24');
    const booked = new ScriptedBank();
    booked.answer(statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'P-1', amount: 10_050, purpose: 'Оплата, курс дня' })]));
    const r = await run(booked, account, '2026-11-24', '2026-11-24');
    expect(r.balanced).toBe(true);
    const rows = await q<{ status: string; amount_tiyn: string; purpose: string }>('select status, amount_tiyn, purpose from statement_line where account = ?', [account]);
    expect(rows).toEqual([{ status: 'booked', amount_tiyn: '10050', purpose: 'Оплата, курс дня' }]);
    // What 1C is given balances with the bank's closing: the stored lines are the bank's.
    const closing = (await q<{ closing_balance: string }>('select closing_balance from statement where account = ?', [account]))[0].closing_balance;
    const sum = (await q<{ s: string }>(`select sum(amount_tiyn) as s from statement_line where account = ? and status = 'booked'`, [account]))[0].s;
    expect(100_000 - Number(sum)).toBe(Number(closing));
  });
});
