import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { intakeOrders } from '../../connector/intake/order-intake';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * Reconciliation on a real PostgreSQL database stays within one account: a debit on account A
 * says nothing about an order paid from account B, however much else the two share (a company's
 * two accounts numbering their documents alike, the same supplier paid the same sum the same
 * day). Were a line on A to confirm B's order, B's order would read `executed` in the ERP while
 * its money never left, and A's debit would hide as "ours" instead of raising R-29's incident.
 * Both match paths are checked: by reference (our external id, the bank's reference) and by
 * requisites (number + date + amount + counterparty).
 */
describe('reconciliation stays within one account, on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const A = 'KZ69998CTA0000000101';
  const B = 'KZ56998CTA0000000202';
  const payerOf = (iban: string) => ({ name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban, bic: 'TSESKZKA', kod: '17' });

  beforeAll(async () => {
    env = await createTestEnv('reconacct');
    orm = await openOrm(env.config);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  const reconcile = (account: string, day: string) => reconcileAccount(orm.em.fork(), account, day, day, { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' });
  const q = <T>(sql: string, params: unknown[]) => orm.em.fork().execute<T[]>(sql, params);

  /** Orders taken in (in this order: the first is the oldest), then at the bank with `bankReference`. */
  async function atBank(orders: Array<{ number: string; date: string; payer: string; bankReference: string }>): Promise<Array<{ id: string; externalId: string }>> {
    const em = orm.em.fork();
    const taken = [];
    for (const o of orders) {
      // One at a time: created_at orders them, and the oldest is what a query across accounts would find first.
      const [r] = await intakeOrders(em, 'onec', [{ order: sampleOrder({ number: o.number, date: o.date, payer: payerOf(o.payer) }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
      await em.execute(`update payment_order set state = 'submitted', bank_reference = ?, state_changed_at = now() where id = ?`, [o.bankReference, r.orderId]);
      taken.push({ id: r.orderId as string, externalId: r.externalId as string });
    }
    return taken;
  }

  it("by requisites: a debit on A with B's number, date, amount and beneficiary confirms A's order of that number, never B's; with no such order on A it is unexplained", async () => {
    // B's order first (older): a match across accounts would find it before A's.
    const [onB, onA] = await atBank([
      { number: '31', date: '2026-12-10', payer: B, bankReference: 'REF-B31' },
      { number: '31', date: '2026-12-10', payer: A, bankReference: 'REF-A31' },
    ]);
    const [onlyB] = await atBank([{ number: '32', date: '2026-12-10', payer: B, bankReference: 'REF-B32' }]);
    const em = orm.em.fork();
    // No bank reference, no external id on the lines: only the requisites name the document.
    sampleStatementLine(em, { account: A, bankLineId: 'BL-A31', bookingDate: '2026-12-10', direction: 'debit', amountTiyn: 15_000_000, documentNumber: '31', documentDate: '2026-12-10' });
    sampleStatementLine(em, { account: A, bankLineId: 'BL-A32', bookingDate: '2026-12-10', direction: 'debit', amountTiyn: 15_000_000, documentNumber: '32', documentDate: '2026-12-10' });
    await em.flush();

    const result = await reconcile(A, '2026-12-10');
    expect(result.executed).toBe(1);
    expect(await q("select bank_line_id, match_kind, order_id from statement_line where bank_line_id in ('BL-A31', 'BL-A32') order by bank_line_id", [])).toEqual([
      { bank_line_id: 'BL-A31', match_kind: 'order', order_id: onA.id },
      { bank_line_id: 'BL-A32', match_kind: 'unexplained', order_id: null },
    ]);
    const states = await q<{ id: string; state: string }>('select id, state from payment_order where id in (?, ?, ?)', [onB.id, onA.id, onlyB.id]);
    expect(Object.fromEntries(states.map((s) => [s.id, s.state]))).toEqual({ [onA.id]: 'executed', [onB.id]: 'submitted', [onlyB.id]: 'submitted' });
    // A's debit of number 32 is nobody's on A: a possible unauthorised payment, raised on A.
    expect(result.incidents).toHaveLength(1);
    const incidents = await q<{ kind: string; evidence: { account: string; bankLineId: string } }>("select kind, evidence from incident where evidence->>'bankLineId' like 'BL-A3%'", []);
    expect(incidents.map((i) => [i.kind, i.evidence.account, i.evidence.bankLineId])).toEqual([['unexplained_debit', A, 'BL-A32']]);
    // B's own statement, still without those debits, has nothing of them.
    expect(await reconcile(B, '2026-12-10')).toEqual({ matched: 0, executed: 0, fees: 0, incidents: [] });
  });

  it("by reference: a debit on A carrying B's order's external id or bank reference is not B's payment: unexplained, B's order untouched", async () => {
    const [onB] = await atBank([{ number: '41', date: '2026-12-11', payer: B, bankReference: 'REF-B41' }]);
    const em = orm.em.fork();
    // Every requisite coincides too: only the account differs.
    sampleStatementLine(em, { account: A, bankLineId: 'BL-A41X', bookingDate: '2026-12-11', direction: 'debit', amountTiyn: 15_000_000, documentNumber: '41', documentDate: '2026-12-11', externalId: onB.externalId });
    sampleStatementLine(em, { account: A, bankLineId: 'BL-A41R', bookingDate: '2026-12-11', direction: 'debit', amountTiyn: 15_000_000, documentNumber: '41', documentDate: '2026-12-11', bankReference: 'REF-B41' });
    // A fee line naming B's document is A's fee, linked to no order of B.
    sampleStatementLine(em, { account: A, bankLineId: 'BL-A41F', bookingDate: '2026-12-11', direction: 'debit', amountTiyn: 30_000, kind: 'fee', isFee: true, externalId: onB.externalId, documentNumber: null, documentDate: null });
    await em.flush();

    const result = await reconcile(A, '2026-12-11');
    expect(result.executed).toBe(0);
    expect(await q("select bank_line_id, match_kind, order_id from statement_line where bank_line_id like 'BL-A41%' order by bank_line_id", [])).toEqual([
      { bank_line_id: 'BL-A41F', match_kind: 'fee', order_id: null },
      { bank_line_id: 'BL-A41R', match_kind: 'unexplained', order_id: null },
      { bank_line_id: 'BL-A41X', match_kind: 'unexplained', order_id: null },
    ]);
    expect(await q('select state, bank_reference from payment_order where id = ?', [onB.id])).toEqual([{ state: 'submitted', bank_reference: 'REF-B41' }]);
    expect(result.incidents).toHaveLength(2);
    expect(await q("select count(*)::int as n from order_event where order_id = ? and to_state = 'executed'", [onB.id])).toEqual([{ n: 0 }]);
  });
});
