import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { QueueEvents, type Job } from 'bullmq';
import { startHarness, type Harness } from '../../adapters/bank/test/sandbox.harness';
import { PAYER_IBAN, sampleOrder } from '../../adapters/bank/test/fixtures';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { FAILED_AFTER_SENDING_RU, STATE_RU, renderOnecStatusBody } from '../../adapters/erp/onec-exchange/onec-status.writer';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import type { OrderState } from '../../connector/orders/order-state';
import type { NormalisedOrder } from '../../connector/orders/payment-order';
import type { StatementSource } from '../../connector/statements/statement.service';
import type { StatementData } from '../../connector/statements/statement.model';
import { accountRefOf, fetchAndReconcile, fetchStatementJob, handleFetchStatement, handleScheduleStatements, type StatementsContext } from '../../queue/jobs/fetch-statement.job';
import { STATEMENT_FILE, STATUS_FILE, statusReportEntries, writeBackJob, writeStatementFile, writeStatusReport } from '../../queue/jobs/write-back.job';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';

/**
 * Stages 5-7 on real PostgreSQL and Redis against the real sandbox (in-process, its own schema),
 * talking HTTP through the real Business API client. The sandbox's day clock is frozen at
 * 2026-11-25 09:00 Kazakhstan time and stepped by its admin API; the connector's clock starts there.
 */
const TODAY = '2026-11-25';
const NOW = '2026-11-25T04:00:00Z';

/** Wraps the bank: records every range asked for; `tamper` may change an answer. */
class RecordingSource implements StatementSource {
  calls: Array<[string, string, string]> = [];
  tamper?: (s: StatementData, call: number) => StatementData;
  constructor(private readonly inner: StatementSource) {}
  async getStatement(account: string, from: string, to: string): Promise<StatementData> {
    this.calls.push([account, from, to]);
    const s = await this.inner.getStatement(account, from, to);
    return this.tamper ? this.tamper(s, this.calls.length) : s;
  }
}

describe('statements: fetch, store, check, reconcile, write back', () => {
  let env: TestEnv;
  let app: AppContext;
  let h: Harness;
  let source: RecordingSource;
  let context: StatementsContext;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    env = await createTestEnv('stmt', { CONNECTOR_FAKE_NOW: NOW });
    env.config.onec.inboxDir = join(env.workDir, 'inbox');
    // Alerts are logged at error level by design; the assertions read the incidents instead.
    app = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    h = await startHarness();
    source = new RecordingSource(h.client());
    context = { ...app, statementSource: source };
  });
  afterAll(async () => {
    await workers?.close(5_000);
    await app?.close();
    await h?.stop();
    await h?.drop();
    await env?.cleanup();
  });

  const db = () => app.orm.em.fork();
  const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => db().execute<T[]>(sql, params);
  const stateOf = async (id: string) => (await q<{ state: OrderState }>('select state from payment_order where id = ?', [id]))[0].state;
  const incidentsOf = (kind: string) => q<{ id: string; severity: string; evidence: Record<string, unknown>; deadline_at: Date }>('select * from incident where kind = ? order by opened_at', [kind]);

  /** An order of ours, moved through the pipeline states up to `until` (the lead's stages do this for real). */
  async function order(overrides: Partial<NormalisedOrder>, until: OrderState, at?: Date): Promise<{ id: string; externalId: string; order: NormalisedOrder }> {
    const o = sampleOrder(overrides);
    const [r] = await intakeOrders(db(), 'onec', [{ order: o }], { enqueueValidate: async () => undefined }, { actor: 't', now: at });
    const path: OrderState[] = ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed'];
    for (const to of path.slice(0, path.indexOf(until) + 1)) await transitionOrder(db(), r.orderId, to, { actor: 't', now: at });
    return { id: r.orderId, externalId: r.externalId, order: o };
  }

  async function executeAtBank(o: { externalId: string; order: NormalisedOrder }): Promise<void> {
    await h.client().submit(h.signed(o.order, o.externalId));
    await h.admin('POST', '/clock/step'); // accepted -> in_processing
    await h.admin('POST', '/clock/step'); // in_processing -> executed (payment line + fee line)
    expect((await h.client().lookup(o.externalId)).status).toBe('executed');
  }

  it('an order executed at the bank and `submitted` here becomes `executed`; its fee is matched; a re-fetch stores nothing twice', async () => {
    const o = await order({ number: 'R-1' }, 'submitted');
    await executeAtBank(o);

    const first = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(first).toMatchObject({ stored: 2, duplicates: 0, matched: 2, executed: 1, incidents: [] });
    expect(await stateOf(o.id)).toBe('executed');
    const lines = await q<{ kind: string; match_kind: string; order_id: string; amount_tiyn: string }>(
      'select kind, match_kind, order_id, amount_tiyn from statement_line where account = ? order by kind desc',
      [PAYER_IBAN],
    );
    expect(lines).toEqual([
      { kind: 'payment', match_kind: 'order', order_id: o.id, amount_tiyn: '774570' },
      // the bank's fee (interbank tariff 300.00), linked to the payment it names, no incident.
      { kind: 'fee', match_kind: 'fee', order_id: o.id, amount_tiyn: '30000' },
    ]);
    const statement = await q<{ balanced: boolean; kind: string }>('select balanced, kind from statement where account = ?', [PAYER_IBAN]);
    expect(statement).toEqual([{ balanced: true, kind: 'intraday' }]);

    // Fetched again: same lines, nothing stored twice, nothing moved twice.
    const second = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(second).toMatchObject({ stored: 0, duplicates: 2, matched: 0, executed: 0, incidents: [] });
    expect(Number((await q<{ n: string }>('select count(*) as n from statement_line where account = ?', [PAYER_IBAN]))[0].n)).toBe(2);
    expect(Number((await q<{ n: string }>("select count(*) as n from order_event where order_id = ? and to_state = 'executed'", [o.id]))[0].n)).toBe(1);
    expect(Number((await q<{ n: string }>('select count(*) as n from statement where account = ?', [PAYER_IBAN]))[0].n)).toBe(1);
    expect(await incidentsOf('unexplained_debit')).toHaveLength(0);
  });

  it('keeps a pending line apart until the bank books it, then reconciles the booked one', async () => {
    const o = await order({ number: 'R-2', amount: '100.00' }, 'submitted');
    await h.client().submit(h.signed(o.order, o.externalId));
    const pending = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(pending).toMatchObject({ stored: 1, executed: 0, incidents: [] });
    const rows = await q<{ status: string; match_kind: string | null }>("select status, match_kind from statement_line where account = ? and status = 'pending'", [PAYER_IBAN]);
    expect(rows).toEqual([{ status: 'pending', match_kind: null }]);
    expect(await stateOf(o.id)).toBe('submitted');

    await h.admin('POST', '/clock/step');
    await h.admin('POST', '/clock/step');
    const booked = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(booked).toMatchObject({ stored: 2, executed: 1, incidents: [] });
    expect(await q("select * from statement_line where account = ? and status = 'pending'", [PAYER_IBAN])).toHaveLength(0);
    expect(await stateOf(o.id)).toBe('executed');
  });

  it('an injected debit no order explains opens one critical incident with the evidence and a 1-business-day deadline (R-29)', async () => {
    const counterparty = { name: 'ИП Неизвестный', iinBin: '', iban: 'KZ000000000000000001', bic: 'XXXXKZKA' };
    const injected = await h.admin<{ lineId: string }>('POST', `/accounts/${PAYER_IBAN}/debit`, { amount: '1234.00', counterparty, purpose: 'Списание' });
    const result = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(result.incidents).toHaveLength(1);
    const [incident] = await incidentsOf('unexplained_debit');
    expect(incident.id).toBe(result.incidents[0]);
    expect(incident.severity).toBe('critical');
    expect(incident.evidence).toMatchObject({ account: PAYER_IBAN, bankLineId: injected.lineId, amount: '1234.00', bookingDate: TODAY, counterparty: { name: counterparty.name, iban: counterparty.iban } });
    expect(String(incident.evidence.draftNotice)).toContain(injected.lineId);
    // Wednesday 2026-11-25 -> end of the next operational day, Thursday 17:00 Kazakhstan time.
    expect(new Date(incident.deadline_at).toISOString()).toBe('2026-11-26T12:00:00.000Z');

    // The next fetches of the same day do not raise it again.
    const again = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(again.incidents).toEqual([]);
    expect(await incidentsOf('unexplained_debit')).toHaveLength(1);
  });

  it('an unbalanced statement is fetched once more, then opens an incident', async () => {
    source.calls = [];
    source.tamper = (s) => ({ ...s, closingBalance: s.closingBalance + 1 });
    const r = await fetchAndReconcile(context, DEMO.arrestedIban, '2026-11-23', '2026-11-23');
    expect(source.calls).toEqual([[DEMO.arrestedIban, '2026-11-23', '2026-11-23'], [DEMO.arrestedIban, '2026-11-23', '2026-11-23']]);
    expect(r.result.balanced).toBe(false);
    expect(await incidentsOf('statement_unbalanced')).toHaveLength(1);

    // Wrong only the first time: the second answer balances, no incident.
    source.tamper = (s, call) => (call === 1 ? { ...s, closingBalance: s.closingBalance + 1 } : s);
    source.calls = [];
    const ok = await fetchAndReconcile(context, DEMO.arrestedIban, '2026-11-20', '2026-11-20');
    expect(ok.result.balanced).toBe(true);
    expect(await incidentsOf('statement_unbalanced')).toHaveLength(1);
    source.tamper = undefined;
  });

  it('an order executed per the bank status but missing from the closed day opens an incident', async () => {
    const at = new Date('2026-11-24T06:00:00Z');
    const o = await order({ number: 'R-3', date: '2026-11-24' }, 'executed', at);
    const r = await fetchAndReconcile(context, PAYER_IBAN, '2026-11-24', '2026-11-24');
    expect(r.result.kind).toBe('booked');
    const incidents = await incidentsOf('executed_missing_from_statement');
    expect(incidents).toHaveLength(1);
    expect(r.incidents).toEqual([incidents[0].id]);
    expect(incidents[0].evidence).toMatchObject({ orderId: o.id, number: 'R-3' });
    expect((await fetchAndReconcile(context, PAYER_IBAN, '2026-11-24', '2026-11-24')).incidents).toEqual([]);
  });

  it('an order deemed executed (R-22) whose debit is not in the closed day opens an incident too', async () => {
    const at = new Date('2026-11-24T07:00:00Z');
    const o = await order({ number: 'R-3D', date: '2026-11-24' }, 'submitted', at);
    await transitionOrder(db(), o.id, 'deemed_executed', { actor: 't', from: 'submitted', reason: 'R-22', now: at });
    const r = await fetchAndReconcile(context, PAYER_IBAN, '2026-11-24', '2026-11-24');
    const incident = (await incidentsOf('executed_missing_from_statement')).find((i) => i.evidence.orderId === o.id);
    expect(incident).toBeDefined();
    expect(r.incidents).toContain(incident?.id);
    expect((await q<{ title: string }>('select title from incident where id = ?', [incident?.id]))[0].title).toMatch(/^Order R-3D of 2026-11-24 is deemed executed \(no notice of non-execution, R-22\) but missing/);
  });

  it('a line naming our order with another amount is an erroneous execution: incident with a draft notice and 3 operational days (R-27)', async () => {
    const o = await order({ number: 'R-5', amount: '200.00' }, 'submitted');
    // What the bank executed under our external id differs from what we signed.
    await executeAtBank({ externalId: o.externalId, order: { ...o.order, amount: '210.00' } });
    const r = await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY);
    expect(r.executed).toBe(0);
    expect(await stateOf(o.id)).toBe('submitted');
    const [incident] = await incidentsOf('execution_mismatch');
    expect(r.incidents).toEqual([incident.id]);
    expect(incident.evidence).toMatchObject({ orderId: o.id, differences: [{ field: 'amount', signed: '200.00', executed: '210.00' }] });
    expect(String(incident.evidence.draftNotice)).toContain('подписано 200.00 KZT, исполнено 210.00 KZT');
    // Wednesday + 3 operational days = Monday 2026-11-30, 17:00 Kazakhstan time.
    expect(new Date(incident.deadline_at).toISOString()).toBe('2026-11-30T12:00:00.000Z');
    // 1C is told: the status text of R-5 says the bank executed it otherwise (its state, and the
    // status code 1C keys on, stay as they were); an order executed as signed reads as before.
    const statuses = renderOnecStatusBody((await statusReportEntries(db(), '2026-11-20')).entries);
    const sectionOf = (number: string) => statuses.split('СекцияДокумент=').find((sec) => sec.includes(`НомерДокумента=${number}\r\n`)) ?? '';
    expect(sectionOf('R-5')).toContain('КодСтатуса=submitted\r\n');
    expect(sectionOf('R-5')).toContain(
      `Статус=${STATE_RU.submitted}. ВНИМАНИЕ: по выписке банк исполнил документ не так, как он подписан (${TODAY} списано 210.00 KZT на счёт ${o.order.beneficiary.iban}).`,
    );
    expect(sectionOf('R-1')).toContain(`Статус=${STATE_RU.executed}\r\n`);
    // An ERP reading the order over the API (orderView's lastError) is told too, once per line.
    const lastError = async () => (await q<{ last_error: string | null }>('select last_error from payment_order where id = ?', [o.id]))[0].last_error;
    const bankLineId = String(incident.evidence.bankLineId);
    expect(await lastError()).toBe(`execution_mismatch: statement line ${bankLineId} of ${TODAY} executed it otherwise than signed (amount 200.00 -> 210.00); incident ${incident.id}`);
    // The fee of that payment is still an expected fee, and nothing else is unexplained.
    expect(await incidentsOf('unexplained_debit')).toHaveLength(1);
    expect((await fetchAndReconcile(context, PAYER_IBAN, TODAY, TODAY)).incidents).toEqual([]);
    expect(await lastError()).toBe(`execution_mismatch: statement line ${bankLineId} of ${TODAY} executed it otherwise than signed (amount 200.00 -> 210.00); incident ${incident.id}`);
  });

  it('writes kl_to_1c.txt from the stored statement, readable by the 1C reader', async () => {
    const path = await writeStatementFile(app, PAYER_IBAN, TODAY, TODAY);
    expect(path).toBe(join(env.workDir, 'inbox', STATEMENT_FILE));
    const parsed = (await import('../../adapters/erp/onec-exchange/onec-statement.mapper')).onecToStatement(parseOnecExchange(readFileSync(path)));
    const stored = await q<{ n: string }>("select count(*) as n from statement_line where account = ? and status = 'booked' and booking_date = ?", [PAYER_IBAN, TODAY]);
    expect(parsed.statement.lines).toHaveLength(Number(stored[0].n));
    expect(parsed.statement.account).toBe(PAYER_IBAN);
    // What the bank says the day closes at is what the file says.
    const bank = await h.client().getStatement(PAYER_IBAN, TODAY, TODAY);
    expect(parsed.statement.openingBalance).toBe(bank.openingBalance);
    expect(parsed.statement.closingBalance).toBe(bank.closingBalance);
  });

  it('the schedule enqueues one fetch per account and range, and twice enqueues nothing more', async () => {
    const fakeJob = { id: 'statements-schedule', attemptsMade: 0 } as unknown as Job;
    const first = (await handleScheduleStatements({}, context, fakeJob)) as { accounts: number; jobs: number };
    expect(first.accounts).toBeGreaterThanOrEqual(1);
    await handleScheduleStatements({}, context, fakeJob);
    const waiting = await app.queues.get('statements').getJobs(['waiting']);
    expect(waiting).toHaveLength(first.jobs);
    expect(waiting.map((j) => j.id).sort()).toContain(`statement-${accountRefOf(PAYER_IBAN)}-2026-11-24-2026-11-24-closed`);
    // STYLE.md 4: no account number in Redis, neither in a payload nor in a job id.
    for (const j of waiting) expect(JSON.stringify({ id: j.id, data: j.data })).not.toMatch(/KZ\d{2}[0-9A-Z]{16}/);
    await app.queues.get('statements').obliterate({ force: true });
    await app.queues.get('writeback').obliterate({ force: true });
  });

  it('a fetch for an account no longer followed fetches nothing and fails no job', async () => {
    const fakeJob = { id: 'statement-x', attemptsMade: 0 } as unknown as Job;
    const stranger = accountRefOf('KZ000000000000000001');
    const counts = async () => q('select (select count(*) from statement)::int as statements, (select count(*) from statement_line)::int as lines');
    const before = await counts();
    await expect(handleFetchStatement({ accountRef: stranger, from: TODAY, to: TODAY, kind: 'intraday' }, context, fakeJob)).resolves.toEqual({ skipped: 'account no longer followed' });
    expect(await counts()).toEqual(before);
  });

  it('statements.fetch and erp.writeback each run twice with one effect', async () => {
    workers = startWorkers(context, app.redis);
    const connections = [app.redis.duplicate(), app.redis.duplicate()];
    const events = {
      statements: new QueueEvents('statements', { connection: connections[0], prefix: env.config.redis.prefix }),
      writeback: new QueueEvents('writeback', { connection: connections[1], prefix: env.config.redis.prefix }),
    };
    await Promise.all([events.statements.waitUntilReady(), events.writeback.waitUntilReady()]);
    const idle = async () => {
      for (const name of ['statements', 'writeback'] as const) {
        const c = await app.queues.get(name).getJobCounts('waiting', 'active', 'delayed');
        if (c.waiting + c.active + c.delayed > 0) return false;
      }
      return true;
    };
    try {
      await h.admin('POST', `/accounts/${PAYER_IBAN}/incoming`, { amount: '555.00' });
      const payload = { accountRef: accountRefOf(PAYER_IBAN), from: TODAY, to: TODAY, kind: 'intraday' as const };
      const run = async () => (await app.queues.get('statements').add(fetchStatementJob.name, payload, { jobId: fetchStatementJob.jobId(payload), removeOnComplete: true })).waitUntilFinished(events.statements, 30_000);
      const a = await run();
      const b = await run();
      expect(a).toMatchObject({ stored: 1, executed: 0, incidents: 0 });
      expect(b).toMatchObject({ stored: 0, executed: 0, incidents: 0 });
      expect(await q("select * from statement_line where account = ? and direction = 'credit'", [PAYER_IBAN])).toHaveLength(1);

      // The fetches asked for write-backs; once they are done the files exist, and running it twice more writes nothing.
      await eventually(idle, { what: 'queues idle' });
      const statementPath = join(env.workDir, 'inbox', STATEMENT_FILE);
      const statusPath = join(env.workDir, 'inbox', STATUS_FILE);
      const marks = async () => q<{ target: string; writes: number }>('select target, writes from writeback_mark order by target');
      const before = await marks();
      const mtimes = [statSync(statementPath).mtimeMs, statSync(statusPath).mtimeMs];
      for (const at of [1, 2]) {
        const job = await app.queues.get('writeback').add(writeBackJob.name, { at }, { jobId: writeBackJob.jobId({ at }) });
        expect(await job.waitUntilFinished(events.writeback, 30_000)).toEqual({ statement: false, status: false });
      }
      expect(await marks()).toEqual(before);
      expect([statSync(statementPath).mtimeMs, statSync(statusPath).mtimeMs]).toEqual(mtimes);
      const status = readFileSync(statusPath, 'latin1');
      expect(status).toContain('R-1');

      // A change (a new order status) is written, once.
      const o = await order({ number: 'R-9', amount: '1.00' }, 'submitted');
      await transitionOrder(db(), o.id, 'rejected', { actor: 't', patch: { bankReasonCode: 'INSUFFICIENT_FUNDS', bankReasonText: 'Недостаточно средств' } });
      const job = await app.queues.get('writeback').add(writeBackJob.name, { at: 3 }, { jobId: writeBackJob.jobId({ at: 3 }) });
      expect(await job.waitUntilFinished(events.writeback, 30_000)).toEqual({ statement: false, status: true });
      const report = parseOnecExchange(readFileSync(statusPath));
      const r9 = report.documents.find((d) => d.order.number === 'R-9');
      expect(r9?.order.raw['КодСтатуса']).toBe('rejected');
      expect(r9?.order.raw['ПричинаОтказа']).toBe('Недостаточно средств');
    } finally {
      await events.statements.close();
      await events.writeback.close();
      for (const c of connections) c.disconnect();
      await workers.close(5_000);
      workers = undefined;
    }
  });

  it('the 1C status report holds a document dated before its window whose status changed within it', async () => {
    // Dated 2026-11-01, taken in and left waiting; it changes state on 2026-11-24 (an invalid one
    // refused for its old date, an executed one after days of waiting for signatures).
    const waited = await order({ number: 'SR-OLD-1', date: '2026-11-01', amount: '5.00' }, 'submitted', new Date('2026-11-02T04:00:00Z'));
    await transitionOrder(db(), waited.id, 'executed', { actor: 't', now: new Date('2026-11-24T04:00:00Z') });
    await order({ number: 'SR-OLD-2', date: '2026-11-01', amount: '6.00' }, 'submitted', new Date('2026-11-02T04:00:00Z'));
    const numbers = (await statusReportEntries(db(), '2026-11-20')).entries.map((e) => e.number);
    expect(numbers).toContain('SR-OLD-1');
    // Old and unchanged since: not in it.
    expect(numbers).not.toContain('SR-OLD-2');
  });

  it('the 1C status report says why each refused order did not go, and keeps the newest documents when it is full', async () => {
    const rejected = await order({ number: 'SR-1', date: '2026-11-20', amount: '2.00' }, 'submitting');
    await transitionOrder(db(), rejected.id, 'rejected', { actor: 't', patch: { bankReasonCode: 'ACCOUNT_BLOCKED' } });
    const invalid = await order({ number: 'SR-2', date: '2026-11-21', amount: '3.00' }, 'received');
    const errors = [{ field: 'beneficiary.iinBin', code: 'IIN_CHECKSUM', message: 'ИИН/БИН: неверная контрольная цифра' }];
    await transitionOrder(db(), invalid.id, 'invalid', { actor: 't', patch: { errors } });
    const failed = await order({ number: 'SR-3', date: '2026-11-22', amount: '4.00' }, 'signed');
    await transitionOrder(db(), failed.id, 'failed', { actor: 't', patch: { lastError: 'erp.submit: socket hang up' } });
    const failedSending = await order({ number: 'SR-4', date: '2026-11-22', amount: '5.00' }, 'submitting');
    await transitionOrder(db(), failedSending.id, 'failed', { actor: 't', patch: { failedFrom: 'submitting', lastError: 'OUTCOME_UNKNOWN: timeout' } });
    await db().execute('update payment_order set submit_attempts = 1 where id = ?', [failedSending.id]);
    // Claimed, and failed before its first send began: nothing of it left.
    const failedClaimed = await order({ number: 'SR-5', date: '2026-11-22', amount: '6.00' }, 'submitting');
    await transitionOrder(db(), failedClaimed.id, 'failed', { actor: 't', patch: { failedFrom: 'submitting', lastError: 'CREDENTIALS_UNAVAILABLE' } });

    const { path, written } = await writeStatusReport(app, { onlyIfChanged: true });
    expect(written).toBe(true);
    const docs = new Map(parseOnecExchange(readFileSync(path)).documents.map((d) => [d.order.number, d.order.raw]));
    expect(docs.get('SR-1')).toMatchObject({ КодСтатуса: 'rejected', ПричинаОтказа: 'Отклонён банком без объяснения причины', КодПричиныОтказа: 'ACCOUNT_BLOCKED' });
    expect(docs.get('SR-2')).toMatchObject({ КодСтатуса: 'invalid', ПричинаОтказа: 'Получатель: ИИН/БИН: неверная контрольная цифра', КодПричиныОтказа: 'IIN_CHECKSUM' });
    // A failed order is not refused (it may be at the bank already): no reason that would invite a second payment.
    expect(docs.get('SR-3')).toMatchObject({ КодСтатуса: 'failed', Статус: 'Техническая ошибка: обратитесь к администратору' });
    expect(docs.get('SR-3')).not.toHaveProperty('ПричинаОтказа');
    // One that failed while being sent may be at the bank, even paid: the 1C user is told not to pay it again.
    expect(docs.get('SR-4')).toMatchObject({ КодСтатуса: 'failed', Статус: FAILED_AFTER_SENDING_RU });
    expect(FAILED_AFTER_SENDING_RU).toMatch(/не создавайте его повторно/);
    expect(docs.get('SR-4')).not.toHaveProperty('ПричинаОтказа');
    expect(docs.get('SR-5')).toMatchObject({ КодСтатуса: 'failed', Статус: 'Техническая ошибка: обратитесь к администратору' });
    expect(JSON.stringify([...docs.values()])).not.toContain('socket hang up');
    // Unchanged statuses: not written again.
    expect((await writeStatusReport(app, { onlyIfChanged: true })).written).toBe(false);

    // Full: the newest documents stay, oldest first as always, and the report says how many older ones it left out.
    const all = await statusReportEntries(db(), '2026-11-20');
    const capped = await statusReportEntries(db(), '2026-11-20', 2);
    expect(all.leftOut).toBe(0);
    expect(capped.entries).toEqual(all.entries.slice(-2));
    expect(capped.leftOut).toBe(all.entries.length - 2);
    expect(all.entries.map((e) => e.number)).toContain('SR-1');
    expect(capped.entries.map((e) => e.number)).not.toContain('SR-1');

    // The worker's file when full: the newest documents, and one warning an hour naming the knob.
    const logged: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const full = { ...app, logger };
    const since = new Date(app.clock.now().getTime() - env.config.pipeline.statusReportDays * 86_400_000).toISOString().slice(0, 10);
    const window = await statusReportEntries(db(), since);
    const { path: fullPath } = await writeStatusReport(full, { onlyIfChanged: false, max: 2 });
    expect(parseOnecExchange(readFileSync(fullPath)).documents.map((d) => d.order.number)).toEqual(window.entries.slice(-2).map((e) => e.number));
    await writeStatusReport(full, { onlyIfChanged: false, max: 2 });
    const warnings = logged.filter((l) => l.event === 'erp.writeback.status_report_full');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ kept: 2, leftOut: window.entries.length - 2, oldestKept: window.entries[window.entries.length - 2].date });
    expect(String(warnings[0].hint)).toContain('pipeline.statusReportDays');
  });

  it('Kazakh letters that cp1251 cannot hold in a 1C file of the worker: one warning and one incident naming them and the knob; none in utf8', async () => {
    await db().execute("delete from incident where kind = 'onec_text_lost'");
    await order({ number: 'KZ-TXT-1', date: '2026-11-24', amount: '7.00', beneficiary: { ...sampleOrder().beneficiary, name: 'ТОО «Қазақстан Әлемі»' } }, 'submitted');
    const logged: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level: 'warn' }, { write: (line: string) => void logged.push(JSON.parse(line)) });
    const inUtf8 = { ...app, logger, config: { ...app.config, onec: { ...app.config.onec, encoding: 'utf8' as const } } };
    await writeStatusReport(inUtf8, { onlyIfChanged: false });
    expect(logged.filter((l) => l.event === 'erp.writeback.text_lost')).toEqual([]);

    const inWindows = { ...app, logger };
    const { path } = await writeStatusReport(inWindows, { onlyIfChanged: false });
    await writeStatusReport(inWindows, { onlyIfChanged: false });
    expect(parseOnecExchange(readFileSync(path)).documents.find((d) => d.order.number === 'KZ-TXT-1')?.order.raw['ПолучательНаименование']).toBe('ТОО «Казакстан Алемі»');
    const warnings = logged.filter((l) => l.event === 'erp.writeback.text_lost');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ file: STATUS_FILE, characters: 'Қ қ Ә' });
    expect(String(warnings[0].hint)).toContain('onec.encoding: utf8');
    const incidents = await db().execute<Array<{ status: string; title: string }>>("select status, title from incident where kind = 'onec_text_lost'");
    expect(incidents).toEqual([{ status: 'open', title: expect.stringMatching(/kl_to_1c_status\.txt is written in cp1251, which cannot hold Қ қ Ә: .*onec\.encoding: utf8/) }]);
  });

  it('a gap between statements is re-fetched once: missed lines repair it, otherwise an incident', async () => {
    // Day 1 for two accounts: the internal one receives 10.00, the reserve one 50.00.
    const internal = DEMO.internalBeneficiaryIban;
    const reserve = DEMO.poorIban;
    await h.admin('POST', `/accounts/${internal}/incoming`, { amount: '10.00' });
    await h.admin('POST', `/accounts/${reserve}/incoming`, { amount: '50.00' });
    // The bank's first answer for the internal account misses the line (and closes without it).
    source.tamper = (s, call) => (call === 1 && s.account === internal ? { ...s, lines: [], closingBalance: s.openingBalance } : s);
    source.calls = [];
    await fetchAndReconcile(context, internal, TODAY, TODAY);
    source.tamper = undefined;
    await fetchAndReconcile(context, reserve, TODAY, TODAY);

    // Day 2. The reserve account's balance moves without any line (money the statements never show).
    await h.admin('PUT', '/clock', { now: '2026-11-26T04:00:00Z' });
    await h.admin('PUT', `/accounts/${reserve}`, { balance: '500.00' });

    source.calls = [];
    const repaired = await fetchAndReconcile(context, internal, '2026-11-26', '2026-11-26');
    expect(source.calls).toEqual([[internal, '2026-11-26', '2026-11-26'], [internal, TODAY, TODAY]]);
    expect(repaired.result.continuity).toBe('repaired');
    expect(repaired.incidents).toEqual([]);
    expect(await q('select * from statement_line where account = ?', [internal])).toHaveLength(1);

    source.calls = [];
    const gap = await fetchAndReconcile(context, reserve, '2026-11-26', '2026-11-26');
    expect(source.calls).toEqual([[reserve, '2026-11-26', '2026-11-26'], [reserve, TODAY, TODAY]]);
    expect(gap.result.continuity).toBe('gap');
    const incidents = await incidentsOf('statement_gap');
    expect(incidents).toHaveLength(1);
    expect(gap.incidents).toEqual([incidents[0].id]);
    // Closed at 150.00 on day 1, opened at 500.00 on day 2.
    expect(incidents[0].evidence).toMatchObject({ account: reserve, difference: 35000 });
  });
});
