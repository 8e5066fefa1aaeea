import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { intakeOrders } from '../../connector/intake/order-intake';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { retryFailedOrder } from '../../queue/order-retry';
import type { QueueSet } from '../../queue/queue.factory';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * Reconciliation on a real PostgreSQL database (its own, dropped after) when the bank names an
 * order by its requisites only: the order is found by its number and date together, so last
 * year's document with the same number is neither taken nor mistaken for this one.
 */
describe('reconciliation by requisites (number + date), on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const ACCOUNT = 'KZ69998CTA0000000101';
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    env = await createTestEnv('recreq');
    orm = await openOrm(env.config);
    const em = orm.em.fork();
    // The same number on two dates, a year apart, with the same amount and beneficiary.
    const taken = await intakeOrders(
      em,
      'onec',
      [{ order: sampleOrder({ number: '5', date: '2025-11-24' }) }, { order: sampleOrder({ number: '5', date: '2026-11-24' }) }, { order: sampleOrder({ number: '6', date: '2026-11-24' }) }],
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    [ids.lastYear, ids.thisYear, ids.six] = taken.map((t) => t.orderId as string);
    // At the bank (how they got there is the pipeline's business, tested elsewhere).
    await em.execute(`update payment_order set state = 'submitted', state_changed_at = now() where id in (?, ?, ?)`, [ids.lastYear, ids.thisYear, ids.six]);
    const line = (bankLineId: string, documentNumber: string, documentDate: string) =>
      sampleStatementLine(em, { account: ACCOUNT, bankLineId, bookingDate: '2026-11-24', direction: 'debit', amountTiyn: 15_000_000, purpose: 'Оплата по счету №12 за товары', documentNumber, documentDate });
    line('BL-5', '5', '2026-11-24');
    line('BL-6', '6', '2025-11-24'); // number 6 exists, but not of that date
    await em.flush();
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  it("matches this year's order by number and date, leaves last year's alone, and a number of another date explains nothing", async () => {
    const result = await reconcileAccount(orm.em.fork(), ACCOUNT, '2026-11-24', '2026-11-24', { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' });
    expect(result.executed).toBe(1);
    const lines = await orm.em.fork().execute<Array<{ bank_line_id: string; match_kind: string; order_id: string | null }>>(
      'select bank_line_id, match_kind, order_id from statement_line order by bank_line_id',
    );
    expect(lines).toEqual([
      { bank_line_id: 'BL-5', match_kind: 'order', order_id: ids.thisYear },
      { bank_line_id: 'BL-6', match_kind: 'unexplained', order_id: null },
    ]);
    const states = await orm.em.fork().execute<Array<{ id: string; state: string }>>('select id, state from payment_order');
    expect(Object.fromEntries(states.map((s) => [s.id, s.state]))).toEqual({ [ids.lastYear]: 'submitted', [ids.thisYear]: 'executed', [ids.six]: 'submitted' });
    expect(result.incidents).toHaveLength(1);
  });

  it('a debit of an order that failed after it was sent confirms it executed; one of an order never sent is an unexplained debit, linked so that a retry is refused', async () => {
    const em = orm.em.fork();
    const taken = await intakeOrders(em, 'onec', [{ order: sampleOrder({ number: '7', date: '2026-11-24' }) }, { order: sampleOrder({ number: '8', date: '2026-11-24' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const [sent, unsent] = taken.map((t) => t.orderId as string);
    // Attempts are counted before each send (submit-order.job.ts): one was made.
    await em.execute(`update payment_order set state = 'failed', failed_from = 'submitting', submit_attempts = 1, last_error = 'TRANSIENT: HTTP 502' where id = ?`, [sent]);
    await em.execute(`update payment_order set state = 'failed', failed_from = 'signed', last_error = 'order.submit: stalled' where id = ?`, [unsent]);
    const line = (bankLineId: string, documentNumber: string) =>
      sampleStatementLine(em, { account: ACCOUNT, bankLineId, bookingDate: '2026-11-25', direction: 'debit', amountTiyn: 15_000_000, purpose: 'Оплата по счету №12 за товары', documentNumber, documentDate: '2026-11-24' });
    line('BL-7', '7');
    line('BL-8', '8');
    await em.flush();

    const result = await reconcileAccount(orm.em.fork(), ACCOUNT, '2026-11-25', '2026-11-25', { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' });
    expect(result.executed).toBe(1);
    const rows = await orm.em.fork().execute<Array<{ id: string; state: string; failed_from: string | null }>>('select id, state, failed_from from payment_order where id in (?, ?)', [sent, unsent]);
    expect(Object.fromEntries(rows.map((r) => [r.id, [r.state, r.failed_from]]))).toEqual({ [sent]: ['executed', null], [unsent]: ['failed', 'signed'] });
    const lines = await orm.em.fork().execute<Array<{ bank_line_id: string; match_kind: string; order_id: string }>>("select bank_line_id, match_kind, order_id from statement_line where bank_line_id in ('BL-7', 'BL-8') order by bank_line_id");
    expect(lines).toEqual([
      { bank_line_id: 'BL-7', match_kind: 'order', order_id: sent },
      { bank_line_id: 'BL-8', match_kind: 'unexplained', order_id: unsent },
    ]);
    // We never sent order 8, yet its debit is there: paid by hand, or by someone with our credentials.
    expect(result.incidents).toHaveLength(1);
    const [incident] = await orm.em.fork().execute<Array<{ kind: string; severity: string; title: string; evidence: { bankLineId: string; unsentOrder: { orderId: string } } }>>(
      'select kind, severity, title, evidence from incident where id = ?',
      [result.incidents[0]],
    );
    expect(incident).toMatchObject({ kind: 'unexplained_debit', severity: 'critical', title: expect.stringMatching(/names order 8 of 2026-11-24, which failed before it was ever sent/), evidence: { bankLineId: 'BL-8', unsentOrder: { orderId: unsent } } });
    // Paid all the same: a retry would pay it twice.
    await expect(retryFailedOrder(orm.em.fork(), {} as QueueSet, unsent, 'test')).rejects.toMatchObject({ code: 'ALREADY_DEBITED' });
    // Judged again by a later fetch: nothing new.
    expect((await reconcileAccount(orm.em.fork(), ACCOUNT, '2026-11-25', '2026-11-25', { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' })).incidents).toEqual([]);
    // The ERP reads the order as executed (order_event says why).
    const [event] = await orm.em.fork().execute<Array<{ from_state: string; reason: string }>>("select from_state, reason from order_event where order_id = ? and to_state = 'executed'", [sent]);
    expect(event).toMatchObject({ from_state: 'failed', reason: expect.stringMatching(/statement line BL-7 .* confirms the debit/) });
  });

  it('every wrong debit naming an order is an erroneous execution of its own: a second one days after the first was dealt with is raised, a re-run raises neither again', async () => {
    const em = orm.em.fork();
    const [taken] = await intakeOrders(em, 'onec', [{ order: sampleOrder({ number: '17', date: '2026-12-01' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const orderId = taken.orderId as string;
    await em.execute(`update payment_order set state = 'submitted', state_changed_at = now() where id = ?`, [orderId]);
    const reconcile = (day: string) => reconcileAccount(orm.em.fork(), ACCOUNT, day, day, { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' });
    // Day D: our number and date with another amount.
    sampleStatementLine(em, { account: ACCOUNT, bankLineId: 'BL-M1', bookingDate: '2026-12-01', direction: 'debit', amountTiyn: 14_000_000, documentNumber: '17', documentDate: '2026-12-01' });
    await em.flush();
    const first = await reconcile('2026-12-01');
    expect(first.incidents).toHaveLength(1);
    await orm.em.fork().execute(`update incident set status = 'resolved', resolved_at = now(), resolved_by = 'test' where id = ?`, [first.incidents[0]]);
    // Day D+2: 50 000.00 to another account under the same number and date.
    sampleStatementLine(em, { account: ACCOUNT, bankLineId: 'BL-M2', bookingDate: '2026-12-03', direction: 'debit', amountTiyn: 5_000_000, counterpartyIban: 'KZ86125KZT5004100100', documentNumber: '17', documentDate: '2026-12-01' });
    await em.flush();
    const second = await reconcile('2026-12-03');
    expect(second.incidents).toHaveLength(1);
    const incidents = await orm.em.fork().execute<Array<{ dedupe_key: string; evidence: { bankLineId: string } }>>(
      "select dedupe_key, evidence from incident where kind = 'execution_mismatch' and evidence->>'orderId' = ? order by opened_at",
      [orderId],
    );
    expect(incidents.map((i) => [i.dedupe_key, i.evidence.bankLineId])).toEqual([
      [`execution_mismatch:${orderId}:BL-M1`, 'BL-M1'],
      [`execution_mismatch:${orderId}:BL-M2`, 'BL-M2'],
    ]);
    // Fetched again: each line still finds its own incident.
    expect((await reconcile('2026-12-01')).incidents).toEqual([]);
    expect((await reconcile('2026-12-03')).incidents).toEqual([]);
    const [{ state }] = await orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [orderId]);
    expect(state).toBe('submitted');
  });

  it('a tax paid to the Treasury account for another tax office (another BIN) or as another tax (another KNP) is an erroneous execution; a line without them, or with them as signed, confirms it', async () => {
    const em = orm.em.fork();
    // Every budget payment goes to this one account: only the BIN and the KNP say where it went.
    const treasury = { name: 'РГУ "УГД по Есильскому району"', iinBin: '120940001232', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11' };
    const taken = await intakeOrders(
      em,
      'onec',
      ['21', '22', '23', '24'].map((number) => ({ order: sampleOrder({ number, date: '2026-12-05', beneficiary: treasury, knp: '911', kbk: '101202' }) })),
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    const [wrongBin, wrongKnp, omitted, asSigned] = taken.map((t) => t.orderId as string);
    await em.execute(`update payment_order set state = 'submitted', state_changed_at = now() where id in (?, ?, ?, ?)`, [wrongBin, wrongKnp, omitted, asSigned]);
    const line = (bankLineId: string, over: { counterpartyIinBin: string; knp: string | null }) =>
      sampleStatementLine(em, {
        account: ACCOUNT,
        bankLineId,
        bookingDate: '2026-12-07',
        direction: 'debit',
        amountTiyn: 15_000_000,
        counterpartyName: treasury.name,
        counterpartyIban: treasury.iban,
        counterpartyBic: treasury.bic,
        documentDate: '2026-12-05',
        ...over,
      });
    line('BL-21', { counterpartyIinBin: '091240005670', knp: '911' });
    line('BL-22', { counterpartyIinBin: '120940001232', knp: '912' });
    line('BL-23', { counterpartyIinBin: '', knp: null });
    line('BL-24', { counterpartyIinBin: '120940001232', knp: '911' });
    await em.flush();

    const reconcile = () => reconcileAccount(orm.em.fork(), ACCOUNT, '2026-12-07', '2026-12-07', { calendar: kzCalendarFromConfig(env.config), now: new Date('2026-12-07T10:00:00+05:00'), actor: 'test' });
    const result = await reconcile();
    expect(result.executed).toBe(2);
    const states = await orm.em.fork().execute<Array<{ id: string; state: string }>>('select id, state from payment_order where id in (?, ?, ?, ?)', [wrongBin, wrongKnp, omitted, asSigned]);
    expect(Object.fromEntries(states.map((r) => [r.id, r.state]))).toEqual({ [wrongBin]: 'submitted', [wrongKnp]: 'submitted', [omitted]: 'executed', [asSigned]: 'executed' });
    const incidents = await orm.em.fork().execute<Array<{ kind: string; dedupe_key: string; title: string; deadline_at: Date; evidence: { differences: unknown[]; draftNotice: string } }>>(
      "select kind, dedupe_key, title, deadline_at, evidence from incident where kind = 'execution_mismatch' and evidence->>'orderId' in (?, ?) order by evidence->>'number'",
      [wrongBin, wrongKnp],
    );
    expect(incidents).toHaveLength(2);
    expect(incidents.map((i) => i.dedupe_key)).toEqual([`execution_mismatch:${wrongBin}:BL-21`, `execution_mismatch:${wrongKnp}:BL-22`]);
    expect(incidents[0].title).toMatch(/Order 21 of 2026-12-05 was executed differently from what was signed \(beneficiaryIinBin\)/);
    expect(incidents[0].evidence.differences).toEqual([{ field: 'beneficiaryIinBin', signed: '120940001232', executed: '091240005670' }]);
    expect(incidents[0].evidence.draftNotice).toContain('beneficiaryIinBin: подписано 120940001232, исполнено 091240005670');
    expect(incidents[1].evidence.differences).toEqual([{ field: 'knp', signed: '911', executed: '912' }]);
    // 3 operational days from discovery (Mon 2026-12-07 -> Thu 2026-12-10 at the latest).
    for (const i of incidents) expect(new Date(i.deadline_at).getTime()).toBeLessThanOrEqual(Date.parse('2026-12-11T00:00:00+05:00'));
    // Fetched again: each line finds its own incident.
    expect((await reconcile()).incidents).toEqual([]);
  });
});
