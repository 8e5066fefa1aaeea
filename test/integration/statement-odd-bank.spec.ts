import type { EntityManager } from '@mikro-orm/postgresql';
import { kzCalendarFromConfig, type KzBusinessCalendar } from '../../connector/calendar/kz-business-calendar';
import { intakeOrders } from '../../connector/intake/order-intake';
import type { NormalisedOrder } from '../../connector/orders/payment-order';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { DelayedError, type Job } from 'bullmq';
import { Client } from 'pg';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { mapBankStatement } from '../../adapters/bank/business-api/statement.mapper';
import { createAppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { accountRefOf, handleFetchStatement, handleScheduleStatements } from '../../queue/jobs/fetch-statement.job';
import { REGISTERED_JOBS } from '../../queue/jobs';
import { startWorkers } from '../../queue/worker.runner';
import type { StatementData, StatementLineData } from '../../connector/statements/statement.model';
import { fetchAndReconcileStatement, type StatementSource } from '../../connector/statements/statement.service';
import { sampleOrder } from '../support/orders.fixture';
import { lockdownStatusOf } from '../../queue/lockdown.trigger';
import { resetLockdown } from '../support/lockdown-reset';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';

/**
 * A bank whose statements are odd (on real PostgreSQL): each test scripts the answers of the
 * bank's statement endpoint and runs the real fetch-check-store-reconcile service on them.
 */
const PAYER = 'KZ69998CTA0000000101';
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

  /** An order of ours at the bank (`submitted`), its state set directly. */
  async function submittedOrder(overrides: Partial<NormalisedOrder>): Promise<{ id: string; externalId: string }> {
    const [r] = await intakeOrders(db(), 'test', [{ order: sampleOrder(overrides) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await q(`update payment_order set state = 'submitted', state_changed_at = ? where id = ?`, [new Date('2026-11-24T05:00:00Z'), r.orderId]);
    return { id: r.orderId as string, externalId: r.externalId as string };
  }
  const stateOf = async (id: string) => (await q<{ state: string }>('select state from payment_order where id = ?', [id]))[0].state;
  const incidents = (kind: string) => q<{ id: string; evidence: Record<string, unknown> }>('select id, evidence from incident where kind = ? order by opened_at', [kind]);

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
  it("a second debit naming an order already paid by an earlier day's line is not taken as that payment", async () => {
    const o = await submittedOrder({ number: 'D-1', date: '2026-11-24' });
    const bank = new ScriptedBank();
    const paid = statement(PAYER, '2026-11-24', '2026-11-24', 100_000_000, [line({ bankLineId: 'D1-A', amount: 15_000_000, externalId: o.externalId })]);
    bank.answer(paid);
    expect(await run(bank, PAYER, '2026-11-24', '2026-11-24')).toMatchObject({ executed: 1, incidents: [] });
    expect(await stateOf(o.id)).toBe('executed');
    // The next day the bank debits the same document again.
    bank.answer(statement(PAYER, '2026-11-25', '2026-11-25', paid.closingBalance, [line({ bankLineId: 'D1-B', bookingDate: '2026-11-25', valueDate: '2026-11-25', amount: 15_000_000, externalId: o.externalId })]));
    const again = await run(bank, PAYER, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'));
    const rows = await q<{ bank_line_id: string; match_kind: string; order_id: string | null }>('select bank_line_id, match_kind, order_id from statement_line where account = ? order by bank_line_id', [PAYER]);
    expect(rows).toEqual([
      { bank_line_id: 'D1-A', match_kind: 'order', order_id: o.id },
      { bank_line_id: 'D1-B', match_kind: 'unexplained', order_id: null },
    ]);
    const [incident] = (await incidents('unexplained_debit')).filter((i) => i.evidence.account === PAYER);
    expect(incident.evidence).toMatchObject({ bankLineId: 'D1-B' });
    expect(again.incidents).toEqual([incident.id]);
    // Said as what it is: our order executed twice (the money gone again), not a debit we never
    // signed, which the draft notice would otherwise have told the bank.
    const title = (await q<{ title: string }>('select title from incident where id = ?', [incident.id]))[0].title;
    expect(title).toContain('names order D-1 of 2026-11-24, already debited by line D1-A of 2026-11-24: executed twice');
    expect(incident.evidence).toMatchObject({ repeatedOrder: { orderId: o.id, number: 'D-1', firstLine: { bankLineId: 'D1-A', bookingDate: '2026-11-24' } } });
    const notice = String(incident.evidence.draftNotice);
    expect(notice).toContain('Уведомление о повторном исполнении платёжного поручения № D-1 от 2026-11-24');
    expect(notice).toContain('исполнено 2026-11-24 (операция банка D1-A)');
    expect(notice).toContain('2026-11-25 со счёта повторно списано 150000.00 KZT (операция банка D1-B)');
    expect(notice).not.toContain('нами не формировался');
  });
  it('a budget payment of ours debited a second time, booked by the bank as a tax line, is said to be executed twice, not taken for a withholding', async () => {
    const account = 'KZ000000000000000A24';
    const o = await submittedOrder({ number: 'T-1', date: '2026-11-24', payer: { name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban: account, bic: 'TSESKZKA', kod: '17' } });
    const bank = new ScriptedBank();
    const paid = statement(account, '2026-11-24', '2026-11-24', 100_000_000, [line({ bankLineId: 'T1-A', amount: 15_000_000, kind: 'tax', externalId: o.externalId })]);
    bank.answer(paid);
    expect(await run(bank, account, '2026-11-24', '2026-11-24')).toMatchObject({ executed: 1, incidents: [] });
    bank.answer(statement(account, '2026-11-25', '2026-11-25', paid.closingBalance, [line({ bankLineId: 'T1-B', bookingDate: '2026-11-25', valueDate: '2026-11-25', amount: 15_000_000, kind: 'tax', externalId: o.externalId })]));
    const again = await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'));
    expect(await q('select bank_line_id, match_kind from statement_line where account = ? order by bank_line_id', [account])).toEqual([
      { bank_line_id: 'T1-A', match_kind: 'order' },
      { bank_line_id: 'T1-B', match_kind: 'unexplained' },
    ]);
    const [incident] = (await incidents('unexplained_debit')).filter((i) => i.evidence.account === account);
    expect(again.incidents).toEqual([incident.id]);
    expect(incident.evidence).toMatchObject({ bankLineId: 'T1-B', repeatedOrder: { orderId: o.id, firstLine: { bankLineId: 'T1-A' } } });
  });
  it("two fetches of one account at once (today's and the closed day's) still take only one of an order's two debits as its payment", async () => {
    // One order, debited once on each of two days, both days fetched at the same moment. Run
    // together, each reconciliation could read the other's line as not yet matched and take its own
    // as the payment: the second debit would open no incident. A gate makes that interleaving
    // certain: a line's match waits (in a trigger) until the test opens the gate, which it does once
    // two reconciliations wait at it, or one has waited alone for a while (one at a time, as it must be).
    const account = 'KZ00000000000000R001';
    const o = await submittedOrder({ number: 'R-1', date: '2026-11-24', payer: { ...sampleOrder().payer, iban: account } });
    const bank = new ScriptedBank();
    const first = statement(account, '2026-11-24', '2026-11-24', 100_000_000, [line({ bankLineId: 'R1-A', amount: 15_000_000, externalId: o.externalId })]);
    bank.answer(first);
    bank.answer(statement(account, '2026-11-25', '2026-11-25', first.closingBalance, [line({ bankLineId: 'R1-B', bookingDate: '2026-11-25', valueDate: '2026-11-25', amount: 15_000_000, externalId: o.externalId })]));
    const GATE = 424_242;
    await q(`create function test_match_gate() returns trigger language plpgsql as $$ begin perform pg_advisory_xact_lock_shared(${GATE}); return new; end $$`);
    await q('create trigger test_match_gate before update on statement_line for each row when (old.match_kind is distinct from new.match_kind) execute function test_match_gate()');
    const gate = new Client({ connectionString: env.config.database.url });
    await gate.connect();
    try {
      await gate.query('select pg_advisory_lock($1)', [GATE]);
      const now = new Date('2026-11-25T10:00:00Z');
      const fetches = Promise.all([run(bank, account, '2026-11-24', '2026-11-24', now), run(bank, account, '2026-11-25', '2026-11-25', now)]);
      const waiting = async () => Number((await gate.query(`select count(*) as n from pg_locks where locktype = 'advisory' and objid = $1 and not granted`, [GATE])).rows[0].n);
      for (let alone = 0; ; await new Promise((r) => setTimeout(r, 20))) {
        const n = await waiting();
        if (n >= 2 || (n === 1 && ++alone >= 50)) break;
      }
      await gate.query('select pg_advisory_unlock($1)', [GATE]);
      await fetches;
    } finally {
      await gate.end();
      await q('drop trigger test_match_gate on statement_line');
      await q('drop function test_match_gate()');
    }
    const rows = await q<{ bank_line_id: string; match_kind: string; order_id: string | null }>('select bank_line_id, match_kind, order_id from statement_line where account = ? order by bank_line_id', [account]);
    expect(rows.map((r) => r.match_kind).sort()).toEqual(['order', 'unexplained']);
    expect(rows.filter((r) => r.order_id === o.id)).toHaveLength(1);
    expect((await incidents('unexplained_debit')).filter((i) => i.evidence.account === account)).toHaveLength(1);
    expect(await stateOf(o.id)).toBe('executed');
  });
  it('a debit with the number and date of our order but another amount or beneficiary is an erroneous execution of it (R-27), not an unknown debit', async () => {
    const amount = await submittedOrder({ number: 'M-1', date: '2026-11-23' });
    const beneficiary = await submittedOrder({ number: 'M-2', date: '2026-11-23' });
    const account = PAYER;
    const opening = Number((await q<{ closing_balance: string }>('select closing_balance from statement where account = ? order by period_to desc limit 1', [account]))[0].closing_balance);
    const bank = new ScriptedBank();
    bank.answer(statement(account, '2026-11-26', '2026-11-26', opening, [
      // No reference: the bank names the documents by number and date only.
      line({ bankLineId: 'M1', bookingDate: '2026-11-26', amount: 15_000_100, documentNumber: 'M-1', documentDate: '2026-11-23' }),
      line({ bankLineId: 'M2', bookingDate: '2026-11-26', amount: 15_000_000, documentNumber: 'M-2', documentDate: '2026-11-23', counterparty: { ...BENEFICIARY, iban: 'KZ000000000000009999' } }),
    ]));
    const r = await run(bank, account, '2026-11-26', '2026-11-26', new Date('2026-11-26T10:00:00Z'));
    const rows = await q<{ bank_line_id: string; match_kind: string; order_id: string | null }>(`select bank_line_id, match_kind, order_id from statement_line where bank_line_id in ('M1', 'M2') order by bank_line_id`);
    expect(rows).toEqual([
      { bank_line_id: 'M1', match_kind: 'mismatch', order_id: amount.id },
      { bank_line_id: 'M2', match_kind: 'mismatch', order_id: beneficiary.id },
    ]);
    const mismatches = (await incidents('execution_mismatch')).filter((i) => [amount.id, beneficiary.id].includes(i.evidence.orderId as string));
    expect(mismatches.map((i) => [i.evidence.orderId, i.evidence.differences])).toEqual([
      [amount.id, [{ field: 'amount', signed: '150000.00', executed: '150001.00' }]],
      [beneficiary.id, [{ field: 'beneficiaryIban', signed: BENEFICIARY.iban, executed: 'KZ000000000000009999' }]],
    ]);
    expect(r.incidents.sort()).toEqual(mismatches.map((i) => i.id).sort());
    expect((await incidents('unexplained_debit')).filter((i) => ['M1', 'M2'].includes(i.evidence.bankLineId as string))).toEqual([]);
    expect([await stateOf(amount.id), await stateOf(beneficiary.id)]).toEqual(['submitted', 'submitted']);
  });
  it('a booked line the bank sends again with another amount or direction is an incident, and what was stored stays', async () => {
    const account = 'KZ000000000000000A02';
    const bank = new ScriptedBank();
    // Intraday: two payments booked. The closed day then shows the first at 120.00 and the second as a credit.
    bank.answer(statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'C-1', amount: 10_000 }), line({ bankLineId: 'C-2', amount: 5_000 })], 'intraday'));
    await run(bank, account, '2026-11-24', '2026-11-24');
    const closed = new ScriptedBank();
    closed.answer(statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'C-1', amount: 12_000 }), line({ bankLineId: 'C-2', amount: 5_000, direction: 'credit' })]));
    const r = await run(closed, account, '2026-11-24', '2026-11-24');
    // Opened at the same moment (one clock): in line order.
    const changed = (await incidents('statement_gap')).filter((i) => i.evidence.account === account).sort((a, b) => String(a.evidence.bankLineId).localeCompare(String(b.evidence.bankLineId)));
    expect(changed.map((i) => [i.evidence.bankLineId, i.evidence.stored, i.evidence.fetched])).toEqual([
      ['C-1', { direction: 'debit', amount: '100.00', currency: 'KZT' }, { direction: 'debit', amount: '120.00', currency: 'KZT' }],
      ['C-2', { direction: 'debit', amount: '50.00', currency: 'KZT' }, { direction: 'credit', amount: '50.00', currency: 'KZT' }],
    ]);
    expect([...r.incidents].sort()).toEqual(changed.map((i) => i.id).sort());
    // Booked lines are facts we passed on: the first version stays as the evidence, nothing is stored twice.
    expect(await q('select bank_line_id, direction, amount_tiyn from statement_line where account = ? order by bank_line_id', [account])).toEqual([
      { bank_line_id: 'C-1', direction: 'debit', amount_tiyn: '10000' },
      { bank_line_id: 'C-2', direction: 'debit', amount_tiyn: '5000' },
    ]);
    // Fetched again: no second incident.
    expect((await run(closed, account, '2026-11-24', '2026-11-24')).incidents).toEqual([]);
  });
  it('a booked line sent again under its id as another payment (another account, reference, external id) or as pending again is an incident too', async () => {
    const account = 'KZ000000000000000A21';
    const bank = new ScriptedBank();
    const lines = [line({ bankLineId: 'R-1', amount: 10_000 }), line({ bankLineId: 'R-2', amount: 20_000 }), line({ bankLineId: 'R-3', amount: 30_000, externalId: 'ext-r3' }), line({ bankLineId: 'R-4', amount: 40_000 })];
    bank.answer(statement(account, '2026-11-24', '2026-11-24', 1_000_000, lines, 'intraday'));
    await run(bank, account, '2026-11-24', '2026-11-24');
    const closed = new ScriptedBank();
    closed.answer(
      statement(account, '2026-11-24', '2026-11-24', 1_000_000, [
        line({ bankLineId: 'R-1', amount: 10_000, counterparty: { ...BENEFICIARY, iban: 'KZ86125KZT5004100100' } }),
        line({ bankLineId: 'R-2', amount: 20_000, status: 'pending' }),
        line({ bankLineId: 'R-3', amount: 30_000, externalId: 'ext-other' }),
        line({ bankLineId: 'R-4', amount: 40_000, bankReference: 'ACB-9' }),
      ]),
    );
    const r = await run(closed, account, '2026-11-24', '2026-11-24');
    const changed = (await incidents('statement_gap')).filter((i) => i.evidence.account === account);
    // Opened at the same moment: in line order.
    expect(changed.map((i) => [i.evidence.bankLineId, i.evidence.otherDifferences]).sort((a, b) => String(a[0]).localeCompare(String(b[0])))).toEqual([
      ['R-1', ['counterparty account KZ78722S000000067890 -> KZ86125KZT5004100100']],
      ['R-2', ['pending again']],
      ['R-3', ['external id ext-r3 -> ext-other']],
      ['R-4', ['bank reference none -> ACB-9']],
    ]);
    expect(r.incidents).toEqual(expect.arrayContaining(changed.map((i) => i.id)));
    // The first version stays as stored.
    expect(await q('select bank_line_id, status, counterparty_iban, external_id, bank_reference from statement_line where account = ? order by bank_line_id', [account])).toEqual([
      { bank_line_id: 'R-1', status: 'booked', counterparty_iban: BENEFICIARY.iban, external_id: null, bank_reference: null },
      { bank_line_id: 'R-2', status: 'booked', counterparty_iban: BENEFICIARY.iban, external_id: null, bank_reference: null },
      { bank_line_id: 'R-3', status: 'booked', counterparty_iban: BENEFICIARY.iban, external_id: 'ext-r3', bank_reference: null },
      { bank_line_id: 'R-4', status: 'booked', counterparty_iban: BENEFICIARY.iban, external_id: null, bank_reference: null },
    ]);
    // Fetched again: no second incident.
    expect((await run(closed, account, '2026-11-24', '2026-11-24')).incidents).toEqual([]);
  });

  it('a booked line the bank sends again under its id on another day is an incident naming both days, and stays on its first day', async () => {
    const account = 'KZ000000000000000A23';
    const bank = new ScriptedBank();
    const day24 = statement(account, '2026-11-24', '2026-11-24', 1_000_000, [line({ bankLineId: 'M-1', amount: 10_000 })]);
    bank.answer(day24);
    await run(bank, account, '2026-11-24', '2026-11-24');
    // The next day's statement holds the same operation again, now booked on the 25th, and balances
    // with it: the money counted on both days, or the bank moved it. Either way the 25th as stored
    // (without it: its id is taken) no longer adds up to the bank's balances.
    const moved = line({ bankLineId: 'M-1', amount: 10_000, bookingDate: '2026-11-25', valueDate: '2026-11-25' });
    bank.answer(statement(account, '2026-11-25', '2026-11-25', day24.closingBalance, [moved]));
    const r = await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'));
    const changed = (await incidents('statement_gap')).filter((i) => i.evidence.account === account);
    expect(changed.map((i) => [i.evidence.bankLineId, i.evidence.bookingDate, i.evidence.otherDifferences])).toEqual([['M-1', '2026-11-24', ['booked on 2026-11-24 -> 2026-11-25']]]);
    expect(r.incidents).toEqual(changed.map((i) => i.id));
    // Kept as first stored (the evidence); nothing stored twice.
    expect(await q('select bank_line_id, booking_date::text as booking_date from statement_line where account = ?', [account])).toEqual([{ bank_line_id: 'M-1', booking_date: '2026-11-24' }]);
    // Fetched again: no second incident.
    expect((await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'))).incidents).toEqual([]);
  });

  it('one answer holding a bank line id twice with different facts is an incident naming both versions; an identical repeat is harmless', async () => {
    const account = 'KZ000000000000000A22';
    const bank = new ScriptedBank();
    // The balance counts both: 10.00 to our beneficiary and 70 000.00 to another account, under one id.
    const answer = statement(account, '2026-11-24', '2026-11-24', 10_000_000, [
      line({ bankLineId: 'DUP', amount: 1_000 }),
      line({ bankLineId: 'DUP', amount: 7_000_000, counterparty: { ...BENEFICIARY, iban: 'KZ86125KZT5004100100' } }),
      line({ bankLineId: 'SAME', amount: 2_000, direction: 'credit' }),
      line({ bankLineId: 'SAME', amount: 2_000, direction: 'credit' }),
    ]);
    expect(answer.closingBalance).toBe(10_000_000 - 1_000 - 7_000_000 + 4_000);
    bank.answer(answer);
    const r = await run(bank, account, '2026-11-24', '2026-11-24');
    const conflicts = (await incidents('statement_gap')).filter((i) => i.evidence.account === account);
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0].evidence).toMatchObject({
      bankLineId: 'DUP',
      storedVersion: 0,
      versions: [
        { direction: 'debit', amount: '10.00', counterparty: { iban: BENEFICIARY.iban } },
        { direction: 'debit', amount: '70000.00', counterparty: { iban: 'KZ86125KZT5004100100' } },
      ],
    });
    expect(r.incidents).toContain(conflicts[0].id);
    // A debit nobody reconciles: as urgent as an unexplained one.
    expect((await q<{ severity: string }>('select severity from incident where id = ?', [conflicts[0].id]))[0].severity).toBe('critical');
    expect(r.duplicates).toBe(2);
    expect((await q<{ bank_line_id: string }>('select bank_line_id from statement_line where account = ? order by bank_line_id', [account])).map((l) => l.bank_line_id)).toEqual(['DUP', 'SAME']);
    // Fetched again: no second incident.
    expect((await run(bank, account, '2026-11-24', '2026-11-24')).incidents).toEqual([]);
  });

  it('a closed day fetched again without a booked line we stored is an incident, and the stored line stays', async () => {
    const account = 'KZ000000000000000A04';
    const bank = new ScriptedBank();
    const first = statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'W-1', amount: 10_000 }), line({ bankLineId: 'W-2', amount: 2_000, direction: 'credit' })]);
    bank.answer(first);
    expect((await run(bank, account, '2026-11-24', '2026-11-24')).incidents).toHaveLength(1); // W-1: no order of ours explains it
    // The bank corrects the day: W-1 is now booked as W-1B, same amount, so the balances do not move.
    const corrected = new ScriptedBank();
    corrected.answer(statement(account, '2026-11-24', '2026-11-24', 100_000, [line({ bankLineId: 'W-1B', amount: 10_000 }), line({ bankLineId: 'W-2', amount: 2_000, direction: 'credit' })]));
    const r = await run(corrected, account, '2026-11-24', '2026-11-24');
    const withdrawn = (await incidents('statement_gap')).filter((i) => i.evidence.account === account);
    expect(withdrawn.map((i) => [i.evidence.bankLineId, i.evidence.stored])).toEqual([['W-1', { direction: 'debit', amount: '100.00', currency: 'KZT', bookingDate: '2026-11-24' }]]);
    expect(r.incidents).toContain(withdrawn[0].id);
    expect((await q<{ bank_line_id: string }>('select bank_line_id from statement_line where account = ? order by bank_line_id', [account])).map((l) => l.bank_line_id)).toEqual(['W-1', 'W-1B', 'W-2']);
    // Fetched again: no second incident.
    expect((await run(corrected, account, '2026-11-24', '2026-11-24')).incidents).toEqual([]);
  });
  it('a line naming our tenge order in another currency is an erroneous execution, not a confirmation', async () => {
    const o = await submittedOrder({ number: 'FX-1', date: '2026-11-23' });
    const opening = Number((await q<{ closing_balance: string }>('select closing_balance from statement where account = ? order by period_to desc limit 1', [PAYER]))[0].closing_balance);
    const bank = new ScriptedBank();
    bank.answer(statement(PAYER, '2026-11-27', '2026-11-27', opening, [line({ bankLineId: 'FX1', bookingDate: '2026-11-27', amount: 15_000_000, currency: 'USD', externalId: o.externalId })]));
    const r = await run(bank, PAYER, '2026-11-27', '2026-11-27', new Date('2026-11-27T10:00:00Z'));
    expect(r.executed).toBe(0);
    expect(await stateOf(o.id)).toBe('submitted');
    const [incident] = (await incidents('execution_mismatch')).filter((i) => i.evidence.orderId === o.id);
    expect(incident.evidence.differences).toEqual([{ field: 'currency', signed: 'KZT', executed: 'USD' }]);
  });
  it('lines of days fetched to fill a hole or repair a gap are reconciled too', async () => {
    const account = 'KZ000000000000000A05';
    const bank = new ScriptedBank();
    const first = statement(account, '2026-11-16', '2026-11-16', 1_000_000, []);
    bank.answer(first);
    await run(bank, account, '2026-11-16', '2026-11-16', new Date('2026-11-17T04:00:00Z'));
    // Nothing was fetched for three days; the hole holds a debit nobody ordered.
    const hole = statement(account, '2026-11-17', '2026-11-19', first.closingBalance, [line({ bankLineId: 'HOLE-1', bookingDate: '2026-11-18', valueDate: '2026-11-18', amount: 77_700, counterparty: { ...BENEFICIARY, iban: 'KZ000000000000000666' } })]);
    bank.answer(hole);
    const day = statement(account, '2026-11-20', '2026-11-20', hole.closingBalance, []);
    bank.answer(day);
    const r = await run(bank, account, '2026-11-20', '2026-11-20', new Date('2026-11-20T10:00:00Z'));
    expect(r.continuity).toBe('continuous');
    const [unexplained] = (await incidents('unexplained_debit')).filter((i) => i.evidence.bankLineId === 'HOLE-1');
    expect(unexplained).toBeDefined();
    expect(r.incidents).toContain(unexplained.id);
    expect(await q('select match_kind from statement_line where bank_line_id = ?', ['HOLE-1'])).toEqual([{ match_kind: 'unexplained' }]);

    // A gap: the stored 2026-11-20 missed a debit; the next day's fetch re-fetches it and stores the line.
    const corrected = statement(account, '2026-11-20', '2026-11-20', hole.closingBalance, [line({ bankLineId: 'GAP-1', bookingDate: '2026-11-20', valueDate: '2026-11-20', amount: 5_500, counterparty: { ...BENEFICIARY, iban: 'KZ000000000000000666' } })]);
    const gapBank = new ScriptedBank();
    gapBank.answer(corrected);
    gapBank.answer(statement(account, '2026-11-21', '2026-11-21', corrected.closingBalance, []));
    const repaired = await run(gapBank, account, '2026-11-21', '2026-11-21', new Date('2026-11-21T10:00:00Z'));
    expect(repaired.continuity).toBe('repaired');
    expect(await q('select match_kind from statement_line where bank_line_id = ?', ['GAP-1'])).toEqual([{ match_kind: 'unexplained' }]);
  });
  it('a hole fetched to close the chain that does not balance is fetched again, then an incident, like any statement', async () => {
    const account = 'KZ000000000000000A15';
    const bank = new ScriptedBank();
    const first = statement(account, '2026-11-16', '2026-11-16', 1_000_000, []);
    bank.answer(first);
    await run(bank, account, '2026-11-16', '2026-11-16', new Date('2026-11-17T04:00:00Z'));
    // The 17th was never fetched; the bank's 17th leaves out a 100.00 debit: 10,000.00 - 0 is not 9,900.00.
    const hole = { ...statement(account, '2026-11-17', '2026-11-17', first.closingBalance, []), closingBalance: first.closingBalance - 10_000 };
    bank.answer(hole);
    let asked = 0;
    const counting: StatementSource = { getStatement: async (...args) => ((asked += args[1] === '2026-11-17' ? 1 : 0), bank.getStatement(...args)) };
    // The next day opens where the bank's closing of the 17th says: the chain alone would hold.
    bank.answer(statement(account, '2026-11-18', '2026-11-18', hole.closingBalance, []));
    const r = await run(counting, account, '2026-11-18', '2026-11-18', new Date('2026-11-18T10:00:00Z'));
    expect(asked).toBe(2);
    const [unbalanced] = (await incidents('statement_unbalanced')).filter((i) => i.evidence.account === account);
    expect(unbalanced.evidence).toMatchObject({ from: '2026-11-17', to: '2026-11-17', difference: -10_000 });
    expect(r.incidents).toContain(unbalanced.id);
  });

  it('a closed day the bank rewrites (a back-dated debit) opens the same incident whichever job meets it first: that day fetched again, or the next day finding the gap', async () => {
    // A restatement's evidence holds the day as stored and as fetched (a plain gap's, the two periods).
    const restated = async (account: string) => (await incidents('statement_gap')).filter((i) => i.evidence.account === account && i.evidence.fetched !== undefined);
    const backDated = (account: string) => line({ bankLineId: `${account}-LATE`, bookingDate: '2026-11-23', valueDate: '2026-11-23', amount: 10_000, counterparty: { ...BENEFICIARY, iban: 'KZ000000000000000666' } });
    for (const [account, firstJob] of [['KZ000000000000000A16', 'closed'], ['KZ000000000000000A17', 'intraday']] as const) {
      const closed = statement(account, '2026-11-23', '2026-11-23', 1_000_000, []);
      const bank = new ScriptedBank();
      bank.answer(closed);
      await run(bank, account, '2026-11-23', '2026-11-23', new Date('2026-11-24T04:00:00Z'));
      // Then the bank books a debit on the 23rd, after that day was closed and passed to 1C.
      const rewritten = statement(account, '2026-11-23', '2026-11-23', 1_000_000, [backDated(account)]);
      const later = new ScriptedBank();
      later.answer(rewritten);
      later.answer(statement(account, '2026-11-24', '2026-11-24', rewritten.closingBalance, [], 'intraday'));
      const at = new Date('2026-11-24T10:00:00Z');
      const r = firstJob === 'closed' ? await run(later, account, '2026-11-23', '2026-11-23', at) : await run(later, account, '2026-11-24', '2026-11-24', at);
      const [incident] = await restated(account);
      expect({ firstJob, evidence: incident?.evidence }).toMatchObject({ firstJob, evidence: { from: '2026-11-23', to: '2026-11-23', fetched: { opening: 1_000_000, closing: 990_000 } } });
      expect(r.incidents).toContain(incident.id);
      // The other job, run next, finds the day as now stored: nothing more to say.
      const second = firstJob === 'closed' ? await run(later, account, '2026-11-24', '2026-11-24', at) : await run(later, account, '2026-11-23', '2026-11-23', at);
      expect(second.incidents.filter((id) => id === incident.id)).toEqual([]);
      expect(await restated(account)).toHaveLength(1);
    }
  });

  it("today's statement from a bank that does not say its kind is not taken as a closed day", async () => {
    const account = 'KZ000000000000000A06';
    const json = (lines: Array<{ lineId: string; amount: string }>, closing: string) =>
      // The contract's `kind` is optional: this bank leaves it out.
      mapBankStatement({
        account, currency: 'KZT', from: '2026-11-25', to: '2026-11-25', openingBalance: '1000.00', closingBalance: closing,
        lines: lines.map((l) => ({ ...l, bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'credit' as const, currency: 'KZT', status: 'booked' as const, kind: 'payment' as const, counterparty: { ...BENEFICIARY }, purpose: 'Поступление' })),
      });
    const morning = new ScriptedBank();
    morning.answer(json([{ lineId: 'T-1', amount: '10.00' }], '1010.00'));
    await run(morning, account, '2026-11-25', '2026-11-25', new Date('2026-11-25T04:00:00Z'));
    // Later the same day one more payment came in: the day is still open, its closing moves.
    const noon = new ScriptedBank();
    noon.answer(json([{ lineId: 'T-1', amount: '10.00' }, { lineId: 'T-2', amount: '5.00' }], '1015.00'));
    const r = await run(noon, account, '2026-11-25', '2026-11-25', new Date('2026-11-25T07:00:00Z'));
    expect(r.kind).toBe('intraday');
    expect(r.incidents).toEqual([]);
    expect((await incidents('statement_gap')).filter((i) => (i.evidence as { account?: string }).account === account)).toEqual([]);
    expect(await q('select kind, closing_balance from statement where account = ?', [account])).toEqual([{ kind: 'intraday', closing_balance: '101500' }]);
  });
  it('a bank in maintenance (R-24) makes the statement fetch wait for it without spending an attempt', async () => {
    const account = 'KZ000000000000000A07';
    const app = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    try {
      const maintenance = { getStatement: async () => { throw new BankError('MAINTENANCE', 'planned maintenance of the Business API', { httpStatus: 503, retryAfterMs: 3_600_000 }); } };
      const context = { ...app, config: { ...app.config, pipeline: { ...app.config.pipeline, accounts: [account] } }, statementSource: maintenance };
      const delayedUntil: number[] = [];
      const job = { id: 'statement-m', attemptsMade: 0, token: 't', moveToDelayed: async (at: number) => void delayedUntil.push(at) } as unknown as Job;
      const before = Date.now();
      // A failed job would stay under its id for days, and the schedule's next add of that id is ignored.
      await expect(handleFetchStatement({ accountRef: accountRefOf(account), from: '2026-11-25', to: '2026-11-25', kind: 'intraday' }, context, job)).rejects.toBeInstanceOf(DelayedError);
      expect(delayedUntil).toHaveLength(1);
      expect(delayedUntil[0]).toBeGreaterThanOrEqual(before + 3_600_000);
    } finally {
      await app.close();
    }
  });
  it('a statement fetch that failed for good is fetched again by the next scheduled run', async () => {
    const account = 'KZ000000000000000A08';
    // One attempt per job, so the outage outlasts them at once.
    const app = await createAppContext({ config: { ...env.config, queue: { ...env.config.queue, attempts: 1 } }, role: 'worker', logger: createLogger({ level: 'silent' }) });
    let calls = 0;
    const down = { getStatement: async () => { calls += 1; throw new BankError('TRANSIENT', 'the bank could not be reached'); } };
    const context = { ...app, config: { ...app.config, pipeline: { ...app.config.pipeline, accounts: [account] } }, statementSource: down };
    const workers = startWorkers(context, app.redis, REGISTERED_JOBS.filter((j) => j.definition.name === 'statements.fetch'));
    try {
      const fakeJob = { id: 'statements-schedule', attemptsMade: 0 } as unknown as Job;
      await handleScheduleStatements({}, context, fakeJob);
      // Both ranges (the closed days and today) asked for and failed.
      await eventually(async () => calls >= 2 && (await app.queues.get('statements').getJobCounts('active', 'wait', 'delayed')).active === 0, { what: 'both fetches failed' });
      const failedOnce = calls;
      // The outage is over at the next tick: both ranges are asked for again.
      await handleScheduleStatements({}, context, fakeJob);
      await eventually(async () => calls >= failedOnce + 2, { what: 'fetched again after a failure', timeoutMs: 10_000 });
    } finally {
      await workers.close(5_000);
      await app.close();
    }
  });

  it('a statement no attempt can fetch (the bank down, a closed day that always times out) is an incident, not only a log line; it closes once a fetch succeeds', async () => {
    const account = 'KZ000000000000000A09';
    const app = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    try {
      let down = true;
      const bank = new ScriptedBank();
      bank.answer(statement(account, '2026-11-24', '2026-11-24', 500_000, []));
      const source: StatementSource = {
        getStatement: async (a, from, to) => {
          if (down) throw new BankError('TRANSIENT', 'the bank did not answer within 120000 ms', { operation: 'statement' });
          return bank.getStatement(a, from, to);
        },
      };
      const context = { ...app, config: { ...app.config, pipeline: { ...app.config.pipeline, accounts: [account] } }, statementSource: source };
      const fetch = (attemptsMade: number) =>
        handleFetchStatement({ accountRef: accountRefOf(account), from: '2026-11-24', to: '2026-11-24', kind: 'closed' }, context, { id: 'statement-f', attemptsMade, opts: { attempts: 3 } } as unknown as Job);
      const failing = async () => (await incidents('statements_failing')).filter((i) => i.evidence.account === account);
      // Attempts left: BullMQ backs off and tries again; nothing to tell yet.
      await expect(fetch(0)).rejects.toMatchObject({ code: 'TRANSIENT' });
      expect(await failing()).toEqual([]);
      // The last attempt fails too, at this run and at the next: one incident saying which days are not fetched.
      await expect(fetch(2)).rejects.toMatchObject({ code: 'TRANSIENT' });
      await expect(fetch(2)).rejects.toMatchObject({ code: 'TRANSIENT' });
      const [incident, ...more] = await failing();
      expect(more).toEqual([]);
      expect(incident.evidence).toMatchObject({ account, from: '2026-11-24', to: '2026-11-24', kind: 'closed', code: 'TRANSIENT' });
      // The bank answers again: the statement is stored and the incident closes by itself.
      down = false;
      await fetch(0);
      expect(await q('select status from incident where id = ?', [incident.id])).toEqual([{ status: 'resolved' }]);
    } finally {
      await app.close();
    }
  });
  it("someone else's debit under our order's number and date is a mismatch, and our own payment booked the next day is still ours, not an unexplained debit", async () => {
    // An account of its own: no other test's statements on it.
    const account = 'KZ78722S000000067890';
    const payer = { name: 'ТОО "Второй счёт"', iinBin: '190840000015', iban: account, bic: 'CASPKZKA', kod: '17' };
    const o = await submittedOrder({ number: 'X-1', date: '2026-11-24', payer });
    const bank = new ScriptedBank();
    // Day 1: a debit that is not ours (the bank's own UI, say) under our number and date, another amount.
    const day1 = statement(account, '2026-11-24', '2026-11-24', 500_000_000, [line({ bankLineId: 'X1-FOREIGN', amount: 7_000_000, documentNumber: 'X-1', documentDate: '2026-11-24' })]);
    bank.answer(day1);
    await run(bank, account, '2026-11-24', '2026-11-24');
    // Day 2: our payment, naming our external id, for the amount signed.
    bank.answer(statement(account, '2026-11-25', '2026-11-25', day1.closingBalance, [line({ bankLineId: 'X1-OURS', bookingDate: '2026-11-25', valueDate: '2026-11-25', amount: 15_000_000, externalId: o.externalId })]));
    await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'));
    const rows = await q<{ bank_line_id: string; match_kind: string; order_id: string | null }>('select bank_line_id, match_kind, order_id from statement_line where account = ? order by booking_date', [account]);
    expect(rows).toEqual([
      { bank_line_id: 'X1-FOREIGN', match_kind: 'mismatch', order_id: o.id },
      { bank_line_id: 'X1-OURS', match_kind: 'order', order_id: o.id },
    ]);
    expect((await incidents('unexplained_debit')).filter((i) => i.evidence.account === account)).toEqual([]);
    expect((await incidents('execution_mismatch')).filter((i) => i.evidence.orderId === o.id)).toHaveLength(1);
  });
  it('a debit the bank dates before the period it sends it in (a UTC date just after midnight in Almaty) is reconciled too: a debit no order explains is an unexplained debit (R-29)', async () => {
    const account = 'KZ000000000000000A31';
    const bank = new ScriptedBank();
    const closed = statement(account, '2026-11-24', '2026-11-24', 1_000_000, []);
    bank.answer(closed);
    await run(bank, account, '2026-11-24', '2026-11-24', new Date('2026-11-25T04:00:00Z'));
    // 2026-11-25 00:30 in Almaty is 2026-11-24 19:30 UTC: a bank writing UTC dates puts the line of
    // the 25th, sent in the statement of the 25th (which balances with it), on the 24th.
    const stranger = line({ bankLineId: 'UTC-1', bookingDate: '2026-11-24', valueDate: '2026-11-24', amount: 70_000, counterparty: { ...BENEFICIARY, iban: 'KZ000000000000000666' } });
    bank.answer(statement(account, '2026-11-25', '2026-11-25', closed.closingBalance, [stranger], 'intraday'));
    const r = await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-25T10:00:00Z'));
    expect(r.balanced).toBe(true);
    const [unexplained] = (await incidents('unexplained_debit')).filter((i) => i.evidence.bankLineId === 'UTC-1');
    expect(unexplained).toBeDefined();
    expect(r.incidents).toContain(unexplained.id);
    expect(await q('select match_kind from statement_line where account = ? and bank_line_id = ?', [account, 'UTC-1'])).toEqual([{ match_kind: 'unexplained' }]);
  });
  it('a credit naming our executed order is that payment coming back: an incident, the order stays executed, the line stays a credit; any other credit is incoming money', async () => {
    // An account of its own: the other tests' statements of account do not chain with these.
    const account = 'KZ000000000000000R01';
    const o = await submittedOrder({ number: 'R-1', date: '2026-11-24', payer: { ...sampleOrder().payer, iban: account } });
    const bank = new ScriptedBank();
    const paid = statement(account, '2026-11-24', '2026-11-24', 100_000_000, [line({ bankLineId: 'R1-PAY', amount: 15_000_000, externalId: o.externalId })]);
    bank.answer(paid);
    expect(await run(bank, account, '2026-11-24', '2026-11-24')).toMatchObject({ executed: 1, incidents: [] });
    // The next day the beneficiary's bank returns it (account closed), under our external id; and an ordinary incoming payment.
    const returned = line({ bankLineId: 'R1-RET', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'credit', amount: 15_000_000, externalId: o.externalId, purpose: 'Возврат: счет получателя закрыт' });
    const incoming = line({ bankLineId: 'R1-IN', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'credit', amount: 15_000_000, purpose: 'Оплата по договору' });
    bank.answer(statement(account, '2026-11-25', '2026-11-25', paid.closingBalance, [returned, incoming]));
    const r = await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T04:00:00Z'));
    const found = (await incidents('payment_returned')).filter((i) => i.evidence.account === account);
    expect(found.map((i) => i.evidence)).toEqual([expect.objectContaining({ orderId: o.id, number: 'R-1', bankLineId: 'R1-RET', amount: '150000.00' })]);
    expect(r.incidents).toEqual([found[0].id]);
    expect(await stateOf(o.id)).toBe('executed');
    const rows = await q<{ bank_line_id: string; match_kind: string; order_id: string | null }>(`select bank_line_id, match_kind, order_id from statement_line where account = ? and bank_line_id like 'R1-%' order by bank_line_id`, [account]);
    expect(rows).toEqual([
      { bank_line_id: 'R1-IN', match_kind: 'credit', order_id: null },
      { bank_line_id: 'R1-PAY', match_kind: 'order', order_id: o.id },
      { bank_line_id: 'R1-RET', match_kind: 'credit', order_id: null },
    ]);
    // Fetched again: the same line raises nothing new.
    expect((await run(bank, account, '2026-11-25', '2026-11-25', new Date('2026-11-26T05:00:00Z'))).incidents).toEqual([]);
    expect((await incidents('payment_returned')).filter((i) => i.evidence.account === account)).toHaveLength(1);
  });
  it('a statement the bank refuses for good is said: an answer we cannot take opens statement_unavailable; a configured compromise code, on any call, locks down (R-31)', async () => {
    const account = 'KZ000000000000000A18';
    const config = { ...env.config, lockdown: { ...env.config.lockdown, bankRefusalCodes: [...env.config.lockdown.bankRefusalCodes, 'CLIENT_BLOCKED'] } };
    const app = await createAppContext({ config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    try {
      const refusing = (err: BankError) => ({ ...app, config: { ...app.config, pipeline: { ...app.config.pipeline, accounts: [account] } }, statementSource: { getStatement: async () => Promise.reject(err) } });
      const job = { id: 'statement-r', attemptsMade: 0, token: 't', moveToDelayed: async () => undefined } as unknown as Job;
      const fetch = (context: ReturnType<typeof refusing>, from: string) => handleFetchStatement({ accountRef: accountRefOf(account), from, to: from, kind: 'closed' }, context, job);
      const other = new BankError('CONTRACT_VIOLATION', "the bank's statement answer is about account \"KZ86125KZT5004100100\", where ... was asked; nothing of it is stored", { operation: 'statement' });
      await expect(fetch(refusing(other), '2026-11-20')).rejects.toMatchObject({ name: 'UnrecoverableError', message: expect.stringMatching(/^CONTRACT_VIOLATION: /) });
      const [unavailable] = (await incidents('statement_unavailable')).filter((i) => i.evidence.account === account);
      expect(unavailable.evidence).toMatchObject({ from: '2026-11-20', to: '2026-11-20', code: 'CONTRACT_VIOLATION' });
      expect((await lockdownStatusOf(app)).state).toBe('normal');

      const blocked = new BankError('CONTRACT_VIOLATION', 'the bank did not accept the request (HTTP 422, CLIENT_BLOCKED)', { httpStatus: 422, bankCode: 'CLIENT_BLOCKED', reasonCode: 'CLIENT_BLOCKED', operation: 'statement' });
      await expect(fetch(refusing(blocked), '2026-11-21')).rejects.toMatchObject({ name: 'UnrecoverableError' });
      const status = await lockdownStatusOf(app);
      expect(status.state).toBe('locked');
      const lockIncident = (await q<{ evidence: Record<string, unknown> }>('select evidence from incident where id = ?', [status.incidentId]))[0];
      expect(lockIncident.evidence).toMatchObject({ trigger: 'bank_refused_compromise', scope: 'credentials', evidence: { account, reasonCode: 'CLIENT_BLOCKED', operation: 'statement' } });
    } finally {
      // Nothing after this test runs locked down.
      await resetLockdown(app);
      await app.close();
    }
  });
});
