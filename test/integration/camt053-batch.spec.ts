import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readCamt053 } from '../../adapters/bank/business-api/camt053.reader';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { intakeOrders } from '../../connector/intake/order-intake';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { checkExecutedInStatement, reconcileAccount } from '../../connector/statements/reconciliation';
import { storeStatement } from '../../connector/statements/statement.store';
import { sampleOrder } from '../support/orders.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * A camt.053 batch entry (the bank books two of our payment orders, or a salary register, as one
 * Ntry with several TxDtls) through the statement store and reconciliation on a real PostgreSQL:
 * each of our orders in the batch is confirmed by its own line, none looks "executed but missing
 * from the statement", the balance check counts each transaction once, and a re-fetch
 * stores nothing twice.
 */
describe('camt.053 batch entry: stored and reconciled per transaction, on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const ACCOUNT = 'KZ88998CTB0000000001';
  const DAY = '2026-11-25';
  const NOW = new Date('2026-11-25T15:00:00Z');
  const batch = readFileSync(join(__dirname, '../../adapters/bank/business-api/testdata/camt053-batch.xml'), 'utf8');
  const payer = { name: 'ТОО "Ромашка"', iinBin: '040540000004', iban: ACCOUNT, bic: 'TSESKZKA', kod: '17' };
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    env = await createTestEnv('camtbatch');
    orm = await openOrm(env.config);
    const em = orm.em.fork();
    const orders = [
      { number: '1001', amount: '1500.00', beneficiary: { name: 'ТОО Поставщик', iinBin: '950440000000', iban: 'KZ608260000000000042', bic: 'ALMNKZKA', kbe: '17' }, knp: '710' },
      { number: '1002', amount: '2000.00', beneficiary: { name: 'ТОО Подрядчик', iinBin: '030540000007', iban: 'KZ456010000000000888', bic: 'HSBKKZKX', kbe: '17' }, knp: '859' },
      { number: '1003', amount: '50.00', beneficiary: { name: 'ТОО Поставщик', iinBin: '950440000000', iban: 'KZ608260000000000042', bic: 'ALMNKZKA', kbe: '17' }, knp: '710' },
    ];
    for (const o of orders) {
      const [taken] = await intakeOrders(em, 'onec', [{ order: sampleOrder({ ...o, date: DAY, valueDate: DAY, payer }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
      ids[o.number] = taken.orderId as string;
      await em.execute('update payment_order set external_id = ? where id = ?', [`ext-${o.number}`, ids[o.number]]);
    }
    // 1001 and 1003 await their statement; the bank already reported 1002 executed that day, so only
    // its line in the closed statement shows that the money left as signed.
    await em.execute(`update payment_order set state = 'submitted', state_changed_at = ? where id in (?, ?)`, [new Date('2026-11-25T05:00:00Z'), ids['1001'], ids['1003']]);
    await em.execute(`update payment_order set state = 'executed', state_changed_at = ? where id = ?`, [new Date('2026-11-25T06:00:00Z'), ids['1002']]);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  const q = <T>(sql: string, params: unknown[] = []) => orm.em.fork().execute<T[]>(sql, params);
  const options = () => ({ calendar: kzCalendarFromConfig(env.config), now: NOW, actor: 'test' });

  it('each of our orders in the batch is its own line, matched to its order; none is missing from the statement', async () => {
    const [statement] = await readCamt053(batch);
    const stored = await storeStatement(orm.em.fork(), statement, { now: NOW });
    expect(stored).toMatchObject({ stored: 6, duplicates: 0, balanced: true, withdrawn: [], changed: [], conflicts: [] });

    const result = await reconcileAccount(orm.em.fork(), ACCOUNT, DAY, DAY, options());
    expect(result.executed).toBe(2);
    expect(await q('select bank_line_id, amount_tiyn::int as amount, match_kind, order_id from statement_line order by bank_line_id')).toEqual([
      { bank_line_id: '20261125-00000010/1', amount: 150000, match_kind: 'order', order_id: ids['1001'] },
      { bank_line_id: '20261125-00000010/2', amount: 200000, match_kind: 'order', order_id: ids['1002'] },
      { bank_line_id: '20261125-00000012', amount: 5000, match_kind: 'order', order_id: ids['1003'] },
      // The salary register is no order of ours: each transfer is judged on its own.
      { bank_line_id: 'SAL-20261125-7/1', amount: 10000, match_kind: 'unexplained', order_id: null },
      { bank_line_id: 'SAL-20261125-7/2', amount: 20000, match_kind: 'unexplained', order_id: null },
      { bank_line_id: 'SAL-20261125-7/3', amount: 30025, match_kind: 'unexplained', order_id: null },
    ]);
    const states = await q<{ id: string; state: string }>('select id, state from payment_order');
    expect(Object.fromEntries(states.map((s) => [s.id, s.state]))).toEqual({ [ids['1001']]: 'executed', [ids['1002']]: 'executed', [ids['1003']]: 'executed' });
    expect(await checkExecutedInStatement(orm.em.fork(), ACCOUNT, DAY, DAY, options())).toEqual([]);
    const kinds = await q<{ kind: string; n: number }>('select kind, count(*)::int as n from incident group by kind order by kind');
    expect(kinds).toEqual([{ kind: 'unexplained_debit', n: 3 }]);
    // the incident (whose title a lockdown takes as what happened) and the draft notice name the currency of every amount.
    const [first] = await q<{ title: string; evidence: { currency: string; draftNotice: string } }>("select title, evidence from incident where evidence->>'bankLineId' = 'SAL-20261125-7/1'");
    expect(first.title).toBe(`Debit of 100.00 KZT from ${ACCOUNT} on ${DAY} matches no order: possible unauthorised payment`);
    expect(first.evidence.currency).toBe('KZT');
    expect(first.evidence.draftNotice).toContain(`${DAY} со счёта списано 100.00 KZT (операция банка SAL-20261125-7/1)`);
  });

  it('a re-fetch of the same statement stores nothing twice and withdraws nothing', async () => {
    const [statement] = await readCamt053(batch);
    expect(await storeStatement(orm.em.fork(), statement, { now: NOW })).toMatchObject({ stored: 0, duplicates: 6, balanced: true, withdrawn: [], changed: [], conflicts: [] });
    expect(await q<{ n: number }>('select count(*)::int as n from statement_line')).toEqual([{ n: 6 }]);
  });
});
