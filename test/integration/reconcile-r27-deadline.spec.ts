import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { intakeOrders } from '../../connector/intake/order-intake';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * R-27 (terms 6.1.16): an erroneous execution is notified within 3 operational days of discovery,
 * but no later than 3 years from the day it was executed. Found late (a first fetch of a long
 * history, a restated period), the incident's deadline is the sooner of the two, and one found
 * after the 3 years says they ended.
 */
describe("R-27's 3-year limit on the notice deadline, on PostgreSQL", () => {
  let env: TestEnv;
  let orm: Orm;
  const ACCOUNT = 'KZ69998CTA0000000101';
  // Wednesday 2026-11-25, 15:00 in Almaty: 3 operational days from now end Monday 2026-11-30, 17:00.
  const NOW = new Date('2026-11-25T10:00:00Z');

  beforeAll(async () => {
    env = await createTestEnv('r27limit');
    orm = await openOrm(env.config);
    const em = orm.em.fork();
    for (const [number, date] of [['9', '2023-11-20'], ['10', '2023-11-27'], ['11', '2026-11-24']]) {
      const [taken] = await intakeOrders(em, 'onec', [{ order: sampleOrder({ number, date, valueDate: date }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
      await em.execute(`update payment_order set state = 'submitted' where id = ?`, [taken.orderId]);
      // Executed on the document's day, with 10 000.00 less than signed (150 000.00).
      sampleStatementLine(em, { account: ACCOUNT, bankLineId: `BL-${number}`, bookingDate: date, direction: 'debit', amountTiyn: 14_000_000, documentNumber: number, documentDate: date });
    }
    await em.flush();
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  it('the deadline is the sooner of 3 operational days and the end of the 3 years; past them, the incident and the notice say so', async () => {
    const result = await reconcileAccount(orm.em.fork(), ACCOUNT, '2023-11-01', '2026-11-25', { calendar: kzCalendarFromConfig(env.config), now: NOW, actor: 'test' });
    expect(result.incidents).toHaveLength(3);
    const rows = await orm.em.fork().execute<Array<{ line: string; title: string; deadline_at: Date; evidence: { noticeLimit: string; draftNotice: string } }>>(
      "select evidence->>'bankLineId' as line, title, deadline_at, evidence from incident where kind = 'execution_mismatch' order by evidence->>'bankLineId'",
    );
    const byLine = Object.fromEntries(rows.map((r) => [r.line, { ...r, deadline: new Date(r.deadline_at).toISOString() }]));
    // Found in time: 3 operational days.
    expect(byLine['BL-11']).toMatchObject({ deadline: '2026-11-30T12:00:00.000Z', evidence: { noticeLimit: '2029-11-24T19:00:00.000Z' } });
    expect(byLine['BL-11'].title).not.toMatch(/ended/);
    // The 3 years end on Friday, before the 3 days do.
    expect(byLine['BL-10']).toMatchObject({ deadline: '2026-11-27T19:00:00.000Z', evidence: { noticeLimit: '2026-11-27T19:00:00.000Z' } });
    expect(byLine['BL-10'].evidence.draftNotice).toContain('не позднее 2026-11-27T19:00:00.000Z');
    // Ended last week.
    expect(byLine['BL-9']).toMatchObject({ deadline: '2026-11-20T19:00:00.000Z' });
    expect(byLine['BL-9'].title).toMatch(/; the 3 years to notify the bank \(terms 6\.1\.16\) ended 2026-11-20T19:00:00\.000Z$/);
    expect(byLine['BL-9'].evidence.draftNotice).toContain('истёк 2026-11-20T19:00:00.000Z');
  });
});
