import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { DelayedError, type Job } from 'bullmq';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { handleWriteBack, STATEMENT_FILE, writeStatusReport } from '../../queue/jobs/write-back.job';
import type { JobContext } from '../../queue/job-context';
import { ManualClock } from '../../connector/shared/clock';
import { storeStatement } from '../../connector/statements/statement.store';
import type { StatementData, StatementLineData } from '../../connector/statements/statement.model';
import { sampleOrder } from '../support/orders.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * The status report 1C reads (`kl_to_1c_status.txt`), on real PostgreSQL. Two write-backs that
 * overlap (the writeback queue runs several jobs at once; each 2-second window has its own job):
 * the one that read the statuses first must not write them last over the newer ones (the first
 * write-back is held where it would start writing).
 */
describe('1C write-back', () => {
  let env: TestEnv;
  let app: AppContext;

  beforeAll(async () => {
    env = await createTestEnv('onecwb');
    env.config.onec.inboxDir = join(env.workDir, 'inbox');
    app = await createAppContext({ config: env.config, role: 'worker' });
  });
  afterAll(async () => {
    await app?.close();
    await env?.cleanup();
  });

  it('the status report written last holds the newest statuses', async () => {
    const [o] = await intakeOrders(app.orm.em.fork(), 'onec', [{ order: sampleOrder({ number: 'RACE-1', erpDocumentId: 'race-1' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const) await transitionOrder(app.orm.em.fork(), o.orderId, to, { actor: 't' });

    // The first write-back is held when it opens its transaction (its writing step).
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let held!: () => void;
    const isHeld = new Promise<void>((r) => (held = r));
    const gatedOrm = {
      em: {
        fork: () => {
          const em = app.orm.em.fork();
          const transactional = em.transactional.bind(em);
          em.transactional = (async (...args: Parameters<typeof transactional>) => {
            held();
            await gate;
            return transactional(...args);
          }) as typeof em.transactional;
          return em;
        },
      },
    } as unknown as MikroORM;
    const first = writeStatusReport({ ...app, orm: gatedOrm }, { onlyIfChanged: true });
    await isHeld;

    // Meanwhile the bank executes the order and a second write-back writes that.
    await transitionOrder(app.orm.em.fork(), o.orderId, 'executed', { actor: 't' });
    expect((await writeStatusReport(app, { onlyIfChanged: true })).written).toBe(true);

    open();
    const { path } = await first;
    const report = parseOnecExchange(readFileSync(path));
    expect(report.documents.find((d) => d.order.number === 'RACE-1')?.order.raw['КодСтатуса']).toBe('executed');
  });

  it('holds the documents 1C exported, not the orders another ERP or a person sent under the same number and date', async () => {
    const intake = async (source: string, payerIban?: string) =>
      (await intakeOrders(app.orm.em.fork(), source, [{ order: sampleOrder({ number: 'SAME-7', ...(payerIban ? { payer: { ...sampleOrder().payer, iban: payerIban } } : {}) }) }], { enqueueValidate: async () => undefined }, { actor: 't' }))[0];
    const ours = await intake('onec');
    const theirs = await intake('api:other-erp', 'KZ86125KZT5004100100');
    expect(theirs.orderId).not.toBe(ours.orderId);
    await transitionOrder(app.orm.em.fork(), theirs.orderId, 'invalid', { actor: 't', patch: { errors: [{ field: 'amount', code: 'AMOUNT_NOT_POSITIVE', message: 'Сумма должна быть больше нуля' }] } });
    const { path } = await writeStatusReport(app, { onlyIfChanged: false });
    const same = parseOnecExchange(readFileSync(path)).documents.filter((d) => d.order.number === 'SAME-7');
    expect(same.map((d) => d.order.raw['КодСтатуса'])).toEqual(['received']);
  });

  it('names the paying account of each document: two accounts may each have a document of the same number and date', async () => {
    const other = 'KZ86125KZT5004100100';
    const intake = async (payerIban?: string) =>
      (await intakeOrders(app.orm.em.fork(), 'onec', [{ order: sampleOrder({ number: 'TWO-1', ...(payerIban ? { payer: { ...sampleOrder().payer, iban: payerIban } } : {}) }) }], { enqueueValidate: async () => undefined }, { actor: 't' }))[0];
    const first = await intake();
    const second = await intake(other);
    await transitionOrder(app.orm.em.fork(), second.orderId, 'invalid', { actor: 't', patch: { errors: [{ field: 'amount', code: 'AMOUNT_NOT_POSITIVE', message: 'Сумма должна быть больше нуля' }] } });
    expect(second.orderId).not.toBe(first.orderId);
    const { path } = await writeStatusReport(app, { onlyIfChanged: false });
    const two = parseOnecExchange(readFileSync(path)).documents.filter((d) => d.order.number === 'TWO-1');
    expect(two.map((d) => [d.order.raw['ПлательщикИИК'], d.order.raw['КодСтатуса']])).toEqual([
      [sampleOrder().payer.iban, 'received'],
      [other, 'invalid'],
    ]);
  });

  it('a closed day fetched late (a hole filled after an outage) reaches kl_to_1c.txt, though it is before the previous business day', async () => {
    const account = 'KZ20998CTA0000000777';
    const wednesday = new ManualClock(new Date('2026-11-25T05:00:00Z')); // 10:00 in Kazakhstan
    const context = { ...app, clock: wednesday, config: { ...app.config, pipeline: { ...app.config.pipeline, accounts: [account] } } } as unknown as JobContext;
    const statement = (periodFrom: string, periodTo: string, opening: number, lines: StatementLineData[] = [], kind: 'booked' | 'intraday' = 'booked'): StatementData => ({
      account, currency: 'KZT', periodFrom, periodTo, kind, openingBalance: opening,
      closingBalance: lines.reduce((b, l) => b + (l.direction === 'credit' ? l.amount : -l.amount), opening), lines, source: 'bank-json',
    });
    const late: StatementLineData = {
      bankLineId: 'LATE-1', bookingDate: '2026-11-20', valueDate: '2026-11-20', direction: 'debit', amount: 10_000, currency: 'KZT', status: 'booked', kind: 'payment',
      counterparty: { name: 'ТОО "Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' }, purpose: 'Оплата по счёту 5', documentNumber: '5', documentDate: '2026-11-20',
    };
    const em = app.orm.em.fork();
    // Tuesday 18th was fetched on the 19th as usual; then the bank was down until today.
    await storeStatement(em, statement('2026-11-18', '2026-11-18', 100_000), { now: new Date('2026-11-19T03:00:00Z') });
    // Today: the hole (19th-23rd, a payment booked on Friday the 20th), then the usual ranges.
    await storeStatement(em, statement('2026-11-19', '2026-11-23', 100_000, [late]), { now: wednesday.now() });
    await storeStatement(em, statement('2026-11-24', '2026-11-24', 90_000), { now: wednesday.now() });
    await storeStatement(em, statement('2026-11-25', '2026-11-25', 90_000, [], 'intraday'), { now: wednesday.now() });
    // The fetch reconciles what it stored (the write-back waits for that, up to 5 minutes).
    await reconcileAccount(app.orm.em.fork(), account, '2026-11-19', '2026-11-25', { calendar: kzCalendarFromConfig(app.config), now: wednesday.now(), actor: 'test' });

    const written = async () => {
      await handleWriteBack({}, context, { id: 'late' } as Job);
      const file = parseOnecExchange(readFileSync(join(env.config.onec.inboxDir, STATEMENT_FILE)));
      return [file.header.raw['ДатаНачала'], file.documents.map((d) => d.order.raw['ИдентификаторОперацииБанка'])];
    };
    expect(await written()).toEqual(['19.11.2026', ['LATE-1']]);
    // As long as a day fetched on time: still there on the next business day, gone the day after.
    wednesday.advance(86_400_000);
    await storeStatement(em, statement('2026-11-25', '2026-11-25', 90_000), { now: wednesday.now() });
    await storeStatement(em, statement('2026-11-26', '2026-11-26', 90_000, [], 'intraday'), { now: wednesday.now() });
    expect(await written()).toEqual(['19.11.2026', ['LATE-1']]);
    wednesday.advance(86_400_000);
    await storeStatement(em, statement('2026-11-26', '2026-11-26', 90_000), { now: wednesday.now() });
    await storeStatement(em, statement('2026-11-27', '2026-11-27', 90_000, [], 'intraday'), { now: wednesday.now() });
    expect(await written()).toEqual(['26.11.2026', []]);
  });

  it("a line the bank books into a later day's statement but dates earlier (a back-dated correction) reaches kl_to_1c.txt, whose closing is the bank's", async () => {
    const account = 'KZ31998CTA0000000776';
    const clock = new ManualClock(new Date('2026-11-25T05:00:00Z')); // Wednesday 10:00 in Kazakhstan
    const inboxDir = join(env.workDir, 'inbox-backdated');
    const context = { ...app, clock, config: { ...app.config, onec: { ...app.config.onec, inboxDir }, pipeline: { ...app.config.pipeline, accounts: [account] } } } as unknown as JobContext;
    const credit = (bankLineId: string, day: string, amount: number): StatementLineData => ({
      bankLineId, bookingDate: day, valueDate: day, direction: 'credit', amount, currency: 'KZT', status: 'booked', kind: 'payment',
      counterparty: { name: 'ТОО "Плательщик"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' }, purpose: 'Возврат', documentNumber: bankLineId, documentDate: day,
    });
    const em = app.orm.em.fork();
    // Monday 23rd and Tuesday 24th fetched as usual; on Tuesday the bank booked a correction dated Friday the 20th.
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-23', periodTo: '2026-11-23', kind: 'booked', openingBalance: 100_000, closingBalance: 100_000, lines: [], source: 'bank-json' }, { now: new Date('2026-11-24T03:00:00Z') });
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 100_000, closingBalance: 107_000, lines: [credit('CORR-1', '2026-11-20', 5_000), credit('TUE-1', '2026-11-24', 2_000)], source: 'bank-json' }, { now: clock.now() });
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-25', periodTo: '2026-11-25', kind: 'intraday', openingBalance: 107_000, closingBalance: 107_000, lines: [], source: 'bank-json' }, { now: clock.now() });
    await handleWriteBack({}, context, { id: 'backdated' } as Job);
    const file = parseOnecExchange(readFileSync(join(inboxDir, STATEMENT_FILE)));
    expect(file.documents.map((d) => d.order.raw['ИдентификаторОперацииБанка'])).toEqual(['CORR-1', 'TUE-1']);
    const balances = readFileSync(join(inboxDir, STATEMENT_FILE), 'latin1');
    expect(new TextDecoder('windows-1251').decode(Buffer.from(balances, 'latin1'))).toMatch(/НачальныйОстаток=1000\.00\r\nВсегоПоступило=70\.00\r\nВсегоСписано=0\.00\r\nКонечныйОстаток=1070\.00\r\n/);
  });

  /**
   * A 1C order of 100.00 from `account`, submitted, with the statement line of its debit on 2026-11-24
   * (`line` overrides), and a write-back context writing into its own inbox on a manual clock.
   */
  async function submittedOneCOrder(account: string, inbox: string, number: string, date: string, line: Partial<StatementLineData> & { bankLineId: string }) {
    const clock = new ManualClock(new Date('2026-11-25T05:00:00Z'));
    const inboxDir = join(env.workDir, inbox);
    const context = { ...app, clock, config: { ...app.config, onec: { ...app.config.onec, inboxDir }, pipeline: { ...app.config.pipeline, accounts: [account] } } } as unknown as JobContext;
    const [o] = await intakeOrders(app.orm.em.fork(), 'onec', [{ order: sampleOrder({ number, date, amount: '100.00', payer: { ...sampleOrder().payer, iban: account } }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const) await transitionOrder(app.orm.em.fork(), o.orderId, to, { actor: 't' });
    const [order] = await app.orm.em.fork().execute<Array<{ external_id: string; beneficiary_iban: string }>>('select external_id, beneficiary_iban from payment_order where id = ?', [o.orderId]);
    const debit: StatementLineData = {
      bookingDate: '2026-11-24', valueDate: '2026-11-24', direction: 'debit', amount: 10_000, currency: 'KZT', status: 'booked', kind: 'payment',
      counterparty: { name: 'ТОО "Получатель"', iinBin: '190840000015', iban: order.beneficiary_iban, bic: 'CASPKZKA' }, purpose: 'Оплата', externalId: order.external_id,
      ...line,
    };
    return { account, clock, inboxDir, context, line: debit };
  }

  it('waits for reconciliation before it writes a debit of ours the bank booked without number or date: 1C gets it once, under the order\'s number and date', async () => {
    const { account, clock, inboxDir, context, line } = await submittedOneCOrder('KZ30998CTA0000000888', 'inbox-unreconciled', 'NONUM-1', '2026-11-23', { bankLineId: 'NONUM-LINE' });
    await storeStatement(app.orm.em.fork(), { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 100_000, closingBalance: 90_000, lines: [line], source: 'bank-json' }, { now: clock.now() });

    const delays: number[] = [];
    const job = { id: 'wb', token: 't', moveToDelayed: async (at: number) => void delays.push(at) } as unknown as Job;
    const file = join(inboxDir, STATEMENT_FILE);
    const documents = () => parseOnecExchange(readFileSync(file)).documents.map((d) => [d.order.raw['ИдентификаторОперацииБанка'], d.order.raw['НомерДокумента']]);
    // Stored, not yet reconciled (the fetch reconciles right after it commits): no file yet, the job comes back.
    await expect(handleWriteBack({}, context, job)).rejects.toThrow(DelayedError);
    // Seen first as pending an hour ago and booked now (the usual intraday-then-closed way): the same.
    await app.orm.em.fork().execute("update statement_line set status = 'pending', created_at = created_at - interval '1 hour' where account = ?", [account]);
    await storeStatement(app.orm.em.fork(), { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 100_000, closingBalance: 90_000, lines: [line], source: 'bank-json' }, { now: clock.now() });
    expect((await app.orm.em.fork().execute<Array<{ status: string }>>('select status from statement_line where account = ?', [account]))[0].status).toBe('booked');
    await expect(handleWriteBack({}, context, job)).rejects.toThrow(DelayedError);
    expect(delays).toHaveLength(2);
    expect(existsSync(file)).toBe(false);
    await reconcileAccount(app.orm.em.fork(), account, '2026-11-24', '2026-11-24', { calendar: kzCalendarFromConfig(app.config), now: clock.now(), actor: 'test' });
    await handleWriteBack({}, context, job);
    expect(documents()).toEqual([['NONUM-LINE', 'NONUM-1']]);
  });

  it("waits for reconciliation too when the bank wrote a number of its own, and 1C gets the debit under the order's number, once", async () => {
    const { account, clock, context, inboxDir, line } = await submittedOneCOrder('KZ57998CTA0000000887', 'inbox-bank-number', 'OWN-1', '2026-11-24', {
      bankLineId: 'OWN-LINE',
      documentNumber: 'BANK-000777',
      documentDate: '2026-11-24',
    });
    await storeStatement(app.orm.em.fork(), { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 100_000, closingBalance: 90_000, lines: [line], source: 'bank-json' }, { now: clock.now() });
    const job = { id: 'wb', token: 't', moveToDelayed: async () => undefined } as unknown as Job;
    const file = join(inboxDir, STATEMENT_FILE);
    // Written now, it would go to 1C as BANK-000777 and then, reconciled, as OWN-1: two payments in 1C.
    await expect(handleWriteBack({}, context, job)).rejects.toThrow(DelayedError);
    expect(existsSync(file)).toBe(false);
    await reconcileAccount(app.orm.em.fork(), account, '2026-11-24', '2026-11-24', { calendar: kzCalendarFromConfig(app.config), now: clock.now(), actor: 'test' });
    await handleWriteBack({}, context, job);
    expect(parseOnecExchange(readFileSync(file)).documents.map((d) => [d.order.raw['ИдентификаторОперацииБанка'], d.order.raw['НомерДокумента']])).toEqual([['OWN-LINE', 'OWN-1']]);
  });

  it("waits for reconciliation of a debit of ours in a closed day fetched late too (a hole after an outage), and 1C gets it under the order's number, once", async () => {
    // Wednesday 25th; the hole (19th-23rd) is stored by today's fetch, which reconciles it only after
    // the day asked for is stored too: a write-back in between (another account's fetch, a status change).
    const { account, clock, context, inboxDir, line } = await submittedOneCOrder('KZ84998CTA0000000886', 'inbox-late-unreconciled', 'LATE-OWN-1', '2026-11-20', {
      bankLineId: 'LATE-OWN-LINE',
      bookingDate: '2026-11-20',
      valueDate: '2026-11-20',
      documentNumber: 'BANK-000888',
      documentDate: '2026-11-20',
    });
    const em = app.orm.em.fork();
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-18', periodTo: '2026-11-18', kind: 'booked', openingBalance: 100_000, closingBalance: 100_000, lines: [], source: 'bank-json' }, { now: new Date('2026-11-19T03:00:00Z') });
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-19', periodTo: '2026-11-23', kind: 'booked', openingBalance: 100_000, closingBalance: 90_000, lines: [line], source: 'bank-json' }, { now: clock.now() });
    await storeStatement(em, { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 90_000, closingBalance: 90_000, lines: [], source: 'bank-json' }, { now: clock.now() });
    const job = { id: 'wb', token: 't', moveToDelayed: async () => undefined } as unknown as Job;
    const file = join(inboxDir, STATEMENT_FILE);
    // Written now, the debit would reach 1C as BANK-000888 and, once reconciled, as LATE-OWN-1: two payments in 1C.
    await expect(handleWriteBack({}, context, job)).rejects.toThrow(DelayedError);
    expect(existsSync(file)).toBe(false);
    await reconcileAccount(app.orm.em.fork(), account, '2026-11-19', '2026-11-23', { calendar: kzCalendarFromConfig(app.config), now: clock.now(), actor: 'test' });
    await handleWriteBack({}, context, job);
    expect(parseOnecExchange(readFileSync(file)).documents.map((d) => [d.order.raw['ИдентификаторОперацииБанка'], d.order.raw['НомерДокумента']])).toEqual([['LATE-OWN-LINE', 'LATE-OWN-1']]);
  });

  it('a reconciliation that never comes does not keep the statement from 1C for more than 5 minutes', async () => {
    const account = 'KZ03998CTA0000000889';
    const clock = new ManualClock(new Date('2026-11-25T05:00:00Z'));
    const inboxDir = join(env.workDir, 'inbox-never-reconciled');
    const context = { ...app, clock, config: { ...app.config, onec: { ...app.config.onec, inboxDir }, pipeline: { ...app.config.pipeline, accounts: [account] } } } as unknown as JobContext;
    const line: StatementLineData = {
      bankLineId: 'STRAY-LINE', bookingDate: '2026-11-24', valueDate: '2026-11-24', direction: 'debit', amount: 10_000, currency: 'KZT', status: 'booked', kind: 'payment',
      counterparty: { name: 'ТОО "Кто-то"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' }, purpose: 'Оплата',
    };
    await storeStatement(app.orm.em.fork(), { account, currency: 'KZT', periodFrom: '2026-11-24', periodTo: '2026-11-24', kind: 'booked', openingBalance: 100_000, closingBalance: 90_000, lines: [line], source: 'bank-json' }, { now: clock.now() });
    const job = { id: 'wb', token: 't', moveToDelayed: async () => undefined } as unknown as Job;
    await expect(handleWriteBack({}, context, job)).rejects.toThrow(DelayedError);
    clock.advance(5 * 60_000 + 1_000);
    await handleWriteBack({}, context, job);
    expect(parseOnecExchange(readFileSync(join(inboxDir, STATEMENT_FILE))).documents.map((d) => d.order.raw['ИдентификаторОперацииБанка'])).toEqual(['STRAY-LINE']);
  });
});
