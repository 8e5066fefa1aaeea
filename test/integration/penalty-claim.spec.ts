import { appWorld } from '../support/app-world';
import { randomUUID } from 'node:crypto';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import type { OrderState } from '../../connector/orders/order-state';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { penaltyClaim, penaltyTiyn } from '../../connector/claims/penalty.claim';
import { sampleOrder } from '../support/orders.fixture';
import { fakeSubmitJob } from '../support/pipeline-world';
import { handleSubmitOrder } from '../../queue/jobs/submit-order.job';
import type { JobContext } from '../../queue/job-context';
import type { BankPaymentDocument } from '../../adapters/bank/business-api/business-api.schemas';
import { storeStatement } from '../../connector/statements/statement.store';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import type { StatementLineData } from '../../connector/statements/statement.model';

/** the penalty for an order the bank did not execute in time, from what PostgreSQL holds. */
describe('penalty claim (R-28)', () => {
  const world = appWorld('penalty-claim');
  // Tuesday 2026-11-24, 11:00 in Kazakhstan: before the cut-off, so that is the operational day.
  const receivedAt = new Date('2026-11-24T06:00:00Z');
  const now = new Date('2026-11-30T06:00:00Z');

  const db = () => world.db();
  const calendar = () => kzCalendarFromConfig(world.env.config);

  /** Dated and valued the day it was sent unless `valueDate` says later (sampleOrder's are today's). */
  async function orderAtBank(number: string, amount: string, until: OrderState, valueDate = '2026-11-24'): Promise<{ id: string; iban: string }> {
    const [r] = await intakeOrders(db(), 'claims', [{ order: sampleOrder({ number, amount, date: '2026-11-24', valueDate }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    const path: OrderState[] = ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed'];
    for (const to of path.slice(0, path.indexOf(until) + 1)) await transitionOrder(db(), r.orderId, to, { actor: 't', now: receivedAt });
    const [row] = await db().execute<Array<{ payer_iban: string }>>('select payer_iban from payment_order where id = ?', [r.orderId]);
    return { id: r.orderId, iban: row.payer_iban };
  }

  async function statement(iban: string, day: string, openingTiyn: number): Promise<void> {
    await db().execute(
      `insert into statement (id, account, currency, period_from, period_to, kind, opening_balance, closing_balance, balanced, source, fetched_at)
       values (?, ?, 'KZT', ?, ?, 'booked', ?, ?, true, 'test', now())`,
      [randomUUID(), iban, day, day, openingTiyn, openingTiyn],
    );
  }

  async function bookedDebit(orderId: string, iban: string, day: string, amountTiyn: number): Promise<void> {
    await db().execute(
      `insert into statement_line (id, account, bank_line_id, booking_date, value_date, direction, amount_tiyn, currency, status, kind, counterparty_name, counterparty_iin_bin, counterparty_iban, counterparty_bic, purpose, order_id, created_at)
       values (?, ?, ?, ?, ?, 'debit', ?, 'KZT', 'booked', 'payment', 'x', '000000000000', 'KZ000000000000000000', 'XXXXKZKA', 'p', ?, now())`,
      [randomUUID(), iban, `L-${randomUUID()}`, day, day, amountTiyn, orderId],
    );
  }

  it('0.01 % of the amount per day, in tiyn, rounded half up, exact for large amounts', () => {
    expect(penaltyTiyn(100_000_00, 3)).toBe(3_000); // 100,000.00 x 0.01 % x 3 = 30.00
    expect(penaltyTiyn(12_345, 1)).toBe(1); // 1.2345 tiyn -> 1
    expect(penaltyTiyn(15_000, 1)).toBe(2); // 1.5 tiyn -> 2
    expect(penaltyTiyn(123_456_789_012_345, 9_999)).toBe(123_444_443_333_444); // the product passes 2^53 before the division
    expect(penaltyTiyn(100_000_00, 0)).toBe(0);
  });

  it('an order executed 3 days after the day the bank received it, with the funds there: the penalty and a draft claim', async () => {
    const o = await orderAtBank('C-1', '100000.00', 'executed');
    await statement(o.iban, '2026-11-24', 250_000_00);
    await bookedDebit(o.id, o.iban, '2026-11-27', 100_000_00);
    const claim = await penaltyClaim(db(), o.id, calendar(), now);
    expect(claim).toMatchObject({
      receivedDay: '2026-11-24',
      executedDay: '2026-11-27',
      delayDays: 3,
      penalty: '30.00',
      penaltyTiyn: 3_000,
      fundsAtReceipt: { openingBalance: '250000.00', sufficient: true },
      claimable: true,
      notes: [],
    });
    expect(claim.draft).toContain('100000.00 × 0,01 % × 3 = 30.00 KZT');
    expect(claim.draft).toContain('получено банком в операционный день 2026-11-24 и исполнено 2026-11-27');
  });

  it('not claimable when the funds did not cover it, or it was executed on time; still counting while not executed', async () => {
    const short = await orderAtBank('C-2', '100000.00', 'executed');
    // The same account and day as above, its opening balance now short of the amount.
    await db().execute("update statement set opening_balance = ? where account = ? and period_from = '2026-11-24'", [50_000_00, short.iban]);
    await bookedDebit(short.id, short.iban, '2026-11-26', 100_000_00);
    const refused = await penaltyClaim(db(), short.id, calendar(), now);
    expect(refused).toMatchObject({ delayDays: 2, claimable: false, fundsAtReceipt: { sufficient: false } });
    // Every amount with its currency, as in the draft.
    expect(refused.notes.join(' ')).toMatch(/the opening balance of 2026-11-24 \(50000\.00 KZT\) did not cover the amount \(100000\.00 KZT\)/);

    const onTime = await orderAtBank('C-3', '10.00', 'executed');
    await bookedDebit(onTime.id, onTime.iban, '2026-11-24', 10_00);
    expect(await penaltyClaim(db(), onTime.id, calendar(), now)).toMatchObject({ delayDays: 0, penalty: '0.00', claimable: false });

    const waiting = await orderAtBank('C-4', '1000.00', 'submitted');
    // Not executed: counted to today (2026-11-30); with no statement of that day stored, a person checks the funds.
    await db().execute("delete from statement where account = ? and period_from = '2026-11-24'", [waiting.iban]);
    const pending = await penaltyClaim(db(), waiting.id, calendar(), now);
    expect(pending).toMatchObject({ executedDay: null, delayDays: 6, penalty: '0.60', fundsAtReceipt: null, claimable: true });
    expect(pending.notes.join(' ')).toMatch(/check that the funds were sufficient/);
    expect(pending.draft).toContain('на дату претензии не исполнено');
  });

  it("the funds must cover the bank's fee as well (R-23): an opening of exactly the amount is short once the fee is booked", async () => {
    const o = await orderAtBank('C-FEE', '100000.00', 'executed');
    await db().execute("delete from statement where account = ? and period_from = '2026-11-24'", [o.iban]);
    await statement(o.iban, '2026-11-24', 100_000_00);
    await bookedDebit(o.id, o.iban, '2026-11-26', 100_000_00);
    expect(await penaltyClaim(db(), o.id, calendar(), now)).toMatchObject({ delayDays: 2, fundsAtReceipt: { sufficient: true }, claimable: true });
    await db().execute(
      `insert into statement_line (id, account, bank_line_id, booking_date, value_date, direction, amount_tiyn, currency, status, kind, counterparty_name, counterparty_iin_bin, counterparty_iban, counterparty_bic, purpose, order_id, created_at)
       values (?, ?, ?, '2026-11-26', '2026-11-26', 'debit', 300, 'KZT', 'booked', 'fee', 'bank', '000000000000', 'KZ000000000000000000', 'XXXXKZKA', 'fee', ?, now())`,
      [randomUUID(), o.iban, `F-${randomUUID()}`, o.id],
    );
    const short = await penaltyClaim(db(), o.id, calendar(), now);
    expect(short).toMatchObject({ delayDays: 2, fundsAtReceipt: { openingBalance: '100000.00', sufficient: false }, claimable: false });
    expect(short.notes.join(' ')).toMatch(/did not cover the amount \(100000\.00 KZT\) and the bank's fee \(3\.00 KZT\)/);
  });

  it('an order valued ahead counts its delay from its value date, not from the day the bank received it; one valued earlier counts as before', async () => {
    // Received Tuesday 2026-11-24, valued 5 business days on (Tuesday 2026-12-01), debited Thursday 2026-12-03: 2 days late, not 9.
    const ahead = await orderAtBank('C-6', '100000.00', 'executed', '2026-12-01');
    // Funds are judged on the day they had to be there: the value date's, not the receipt day's.
    await statement(ahead.iban, '2026-12-01', 250_000_00);
    await bookedDebit(ahead.id, ahead.iban, '2026-12-03', 100_000_00);
    const claim = await penaltyClaim(db(), ahead.id, calendar(), new Date('2026-12-04T06:00:00Z'));
    expect(claim).toMatchObject({
      receivedDay: '2026-11-24',
      dueDay: '2026-12-01',
      executedDay: '2026-12-03',
      delayDays: 2,
      penalty: '20.00',
      fundsAtReceipt: { openingBalance: '250000.00', sufficient: true },
      claimable: true,
      notes: [],
    });
    expect(claim.draft).toContain('получено банком в операционный день 2026-11-24 с датой валютирования 2026-12-01 (подлежало исполнению 2026-12-01) и исполнено 2026-12-03; просрочка 2 дн.');
    expect(claim.draft).toContain('100000.00 × 0,01 % × 2 = 20.00 KZT');
    expect(claim.draft).toContain('Остаток на счёте на начало 2026-12-01: 250000.00 KZT.');

    // Executed on its value date: no delay at all, though 7 days after receipt.
    const onValueDate = await orderAtBank('C-7', '100000.00', 'executed', '2026-12-01');
    await bookedDebit(onValueDate.id, onValueDate.iban, '2026-12-01', 100_000_00);
    expect(await penaltyClaim(db(), onValueDate.id, calendar(), new Date('2026-12-04T06:00:00Z'))).toMatchObject({ dueDay: '2026-12-01', delayDays: 0, penalty: '0.00', claimable: false });

    // Still at the bank before its value date (today 2026-11-30): not due yet, nothing to claim.
    const waiting = await orderAtBank('C-8', '1000.00', 'submitted', '2026-12-01');
    const notDue = await penaltyClaim(db(), waiting.id, calendar(), now);
    expect(notDue).toMatchObject({ receivedDay: '2026-11-24', dueDay: '2026-12-01', executedDay: null, delayDays: 0, claimable: false });
    expect(notDue.notes.join(' ')).toMatch(/not executed yet, but not due before the operational day of its value date 2026-12-01 \(2026-12-01\): no delay so far/);

    // A value date on a Saturday: due the next business day (Monday 2026-11-30).
    const weekend = await orderAtBank('C-9', '100000.00', 'executed', '2026-11-28');
    await bookedDebit(weekend.id, weekend.iban, '2026-12-01', 100_000_00);
    expect(await penaltyClaim(db(), weekend.id, calendar(), now)).toMatchObject({ dueDay: '2026-11-30', delayDays: 1 });

    // Valued before the day it was sent: counted from the receipt day, exactly as an order valued that day.
    const earlier = await orderAtBank('C-10', '100000.00', 'executed', '2026-11-20');
    await bookedDebit(earlier.id, earlier.iban, '2026-11-27', 100_000_00);
    const asBefore = await penaltyClaim(db(), earlier.id, calendar(), now);
    expect(asBefore).toMatchObject({ receivedDay: '2026-11-24', dueDay: '2026-11-24', delayDays: 3, penalty: '30.00' });
    expect(asBefore.draft).toContain('получено банком в операционный день 2026-11-24 и исполнено 2026-11-27');
  });

  it('an order whose debit the bank books as a tax line (a budget payment) counts its delay to that booking, as reconciliation matched it', async () => {
    const o = await orderAtBank('C-11', '1000.00', 'submitted');
    const [row] = await db().execute<Array<{ external_id: string; beneficiary_iban: string }>>('select external_id, beneficiary_iban from payment_order where id = ?', [o.id]);
    // The real path: the statement stored, then reconciled (which confirms the order by the line).
    const line: StatementLineData = {
      bankLineId: 'TAX-C-11', bookingDate: '2026-11-26', valueDate: '2026-11-26', direction: 'debit', amount: 1_000_00, currency: 'KZT', status: 'booked', kind: 'tax',
      counterparty: { name: 'РГУ УГД', iinBin: '', iban: row.beneficiary_iban, bic: '' }, purpose: 'Налог', externalId: row.external_id,
    };
    await storeStatement(db(), { account: o.iban, currency: 'KZT', periodFrom: '2026-11-26', periodTo: '2026-11-26', kind: 'booked', openingBalance: 5_000_00, closingBalance: 4_000_00, lines: [line], source: 'bank-json' }, { now });
    await reconcileAccount(db(), o.iban, '2026-11-26', '2026-11-26', { calendar: calendar(), now });
    const [{ state }] = await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [o.id]);
    expect(state).toBe('executed');
    const claim = await penaltyClaim(db(), o.id, calendar(), now);
    expect(claim).toMatchObject({ receivedDay: '2026-11-24', executedDay: '2026-11-26', delayDays: 2, penalty: '0.20' });
  });

  it("a payment in another currency (requisites.currencies allows it) is claimed in that currency, not in tenge", async () => {
    const { id } = await orderAtBank('C-USD', '5000.00', 'executed');
    // A dollar account of the company, with its own statement.
    const iban = 'KZ000000000000000USD';
    await db().execute("update payment_order set currency = 'USD', payer_iban = ? where id = ?", [iban, id]);
    await statement(iban, '2026-11-24', 9_000_00);
    await bookedDebit(id, iban, '2026-11-26', 5_000_00);
    const o = { id };
    const claim = await penaltyClaim(db(), o.id, calendar(), now);
    expect(claim).toMatchObject({ currency: 'USD', delayDays: 2, penalty: '1.00', claimable: true });
    expect(claim.draft).toContain('на сумму 5000.00 USD со счёта');
    expect(claim.draft).toContain('Остаток на счёте на начало 2026-11-24: 9000.00 USD.');
    expect(claim.draft).toContain('5000.00 × 0,01 % × 2 = 1.00 USD.');
    expect(claim.draft).not.toContain('KZT');
  });

  it('refuses an order the bank never received', async () => {
    const notSent = await orderAtBank('C-5', '10.00', 'signed');
    await expect(penaltyClaim(db(), notSent.id, calendar(), now)).rejects.toMatchObject({ code: 'NOT_CLAIMABLE' });
    await expect(penaltyClaim(db(), randomUUID(), calendar(), now)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
  it('counts from the day the bank says it received the order, not the later moment a lookup after an unknown outcome recorded it', async () => {
    // Claimed for submission Tuesday 2026-11-24 at 16:50 in Kazakhstan; its send timed out, and the
    // bank (its own time of receipt: 16:51, before the 17:00 cut-off) had it. The retry's lookup finds
    // it at 17:20, after the cut-off: by that record alone it was received on Wednesday.
    const claimedAt = new Date('2026-11-24T11:50:00Z');
    const [r] = await intakeOrders(db(), 'claims', [{ order: sampleOrder({ number: 'C-LATE', amount: '100000.00', date: '2026-11-24', valueDate: '2026-11-24' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting'] as const) await transitionOrder(db(), r.orderId, to, { actor: 't', now: claimedAt });
    await db().execute('update payment_order set submit_attempts = 1 where id = ?', [r.orderId]);
    const [order] = await db().execute<Array<{ external_id: string; payer_iban: string }>>('select external_id, payer_iban from payment_order where id = ?', [r.orderId]);
    // The bank's side (the boundary): its lookup answer for our external id.
    const bank = {
      lookup: async (externalId: string): Promise<BankPaymentDocument> => ({
        documentId: 'DOC-LATE',
        externalId,
        status: 'accepted',
        updatedAt: '2026-11-24T11:51:00Z',
        receivedAt: '2026-11-24T11:51:00Z',
        document: { payerAccount: order.payer_iban, number: 'C-LATE', date: '2026-11-24', amount: '100000.00', currency: 'KZT' },
      }),
    };
    const context: JobContext = {
      ...world.context,
      clock: { now: () => new Date('2026-11-24T12:20:00Z') },
      services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> },
    };
    await expect(handleSubmitOrder({ orderId: r.orderId }, context, fakeSubmitJob(r.orderId, 1))).resolves.toMatchObject({ state: 'submitted' });
    await transitionOrder(db(), r.orderId, 'executed', { actor: 't', now: new Date('2026-11-26T06:00:00Z') });
    // The funds that day (an earlier test of this file may have stored that day's statement already).
    const [{ n }] = await db().execute<Array<{ n: string }>>("select count(*) as n from statement where account = ? and period_from = '2026-11-24' and period_to = '2026-11-24'", [order.payer_iban]);
    if (Number(n) === 0) await statement(order.payer_iban, '2026-11-24', 900_000_00);
    else await db().execute("update statement set opening_balance = ?, closing_balance = ? where account = ? and period_from = '2026-11-24' and period_to = '2026-11-24'", [900_000_00, 900_000_00, order.payer_iban]);
    await bookedDebit(r.orderId, order.payer_iban, '2026-11-26', 100_000_00);
    const claim = await penaltyClaim(db(), r.orderId, calendar(), now);
    expect(claim).toMatchObject({ receivedDay: '2026-11-24', dueDay: '2026-11-24', executedDay: '2026-11-26', delayDays: 2, penalty: '20.00', fundsAtReceipt: { sufficient: true }, claimable: true });
  });
});
