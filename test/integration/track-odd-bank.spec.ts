import { BankError, REASON_TEXT_RU } from '../../adapters/bank/business-api/business-api.errors';
import type { BankPaymentStatus } from '../../adapters/bank/business-api/business-api.schemas';
import { intakeOrders } from '../../connector/intake/order-intake';
import type { JobContext } from '../../queue/job-context';
import { handleTrackOrder, trackBatch } from '../../queue/jobs/track-order.job';
import { DelayedError, type Job } from 'bullmq';
import { sampleOrder } from '../support/orders.fixture';
import { appWorld } from '../support/app-world';
import { recordingJob } from '../support/pipeline-world';

/** An order's track job as BullMQ hands it over (3 attempts). */
const trackJob = (orderId: string) => ({ id: `track-${orderId}`, name: 'order.track', data: { orderId }, attemptsMade: 0, opts: { attempts: 3 }, token: 't' }) as unknown as Job;

/**
 * Status polls (stage 5) against a bank whose status answers are odd, on real PostgreSQL: each test
 * scripts what the bank's status endpoint says, one answer per poll, and runs the real trackBatch.
 */
type Answer = Partial<BankPaymentStatus> | Error;

describe('status polls from an odd bank, on PostgreSQL', () => {
  const world = appWorld('trackodd', {}, { quiet: true });
  const db = () => world.db();
  const q = async <T = Record<string, unknown>>(sql: string, params: unknown[] = []) => db().execute<T[]>(sql, params);

  /**
   * An order the bank accepted as `documentId` on Tuesday 2026-11-24 10:00 Kazakhstan time, dated
   * and valued that day (sampleOrder's are today's, which the value-date rule of R-22 would count from).
   */
  async function submitted(number: string, documentId: string, valueDate = '2026-11-24'): Promise<{ id: string; externalId: string }> {
    const [r] = await intakeOrders(db(), 'test', [{ order: sampleOrder({ number, date: '2026-11-24', valueDate }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await q(`update payment_order set state = 'submitted', bank_reference = ?, bank_status = 'accepted', state_changed_at = ? where id = ?`, [documentId, new Date('2026-11-24T05:00:00Z'), r.orderId]);
    return { id: r.orderId as string, externalId: r.externalId as string };
  }

  /** trackBatch at `at` with a bank that gives `answer` for every document. */
  function poll(orderIds: string[], at: string, answer: (documentId: string) => Answer) {
    const bank = {
      async getStatus(documentId: string): Promise<BankPaymentStatus> {
        const a = answer(documentId);
        if (a instanceof Error) throw a;
        return { documentId, externalId: '', status: 'accepted', updatedAt: at, ...a };
      },
    };
    const context: JobContext = { ...world.context, clock: { now: () => new Date(at) }, services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
    return trackBatch(context, orderIds);
  }

  it('poll errors never fail an order at the bank: spread over days or many in a row, it waits longer each time and one incident says so (R-24)', async () => {
    const o = await submitted('S-9', 'DOC-S9');
    const { job, data, delays } = recordingJob(trackJob(o.id));
    const run = (answer: Answer) => {
      const bank = { getStatus: async (documentId: string) => (answer instanceof Error ? Promise.reject(answer) : { documentId, externalId: o.externalId, status: 'accepted', updatedAt: '2026-11-24T06:00:00Z', ...answer }) };
      // Within the day the bank received it: nothing is deemed executed meanwhile.
      const context: JobContext = { ...world.context, clock: { now: () => new Date('2026-11-24T06:00:00Z') }, services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
      return handleTrackOrder({ orderId: o.id }, context, job);
    };
    const down = new BankError('TRANSIENT', 'the bank failed (HTTP 500, no code)');
    // Days of polls, the bank failing two in a row now and then: 12 errors, 4 times the job's attempts.
    for (let day = 0; day < 6; day += 1) {
      await expect(run(down)).rejects.toBeInstanceOf(DelayedError);
      await expect(run(down)).rejects.toBeInstanceOf(DelayedError);
      expect(data.failures).toBe(2);
      await expect(run({ status: 'in_processing' })).rejects.toBeInstanceOf(DelayedError);
      expect(data.failures).toBe(0);
    }
    expect(await q('select state from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted' }]);
    // A failed poll waits as BullMQ's own backoff would (backoffMs, doubling), without spending an attempt.
    const { backoffMs } = world.context.config.queue;
    expect(delays.slice(0, 2).map((d) => Math.round(d / backoffMs))).toEqual([1, 2]);
    const incidents = () => q("select status, evidence->>'code' as code from incident where kind = 'status_polls_failing'");
    expect(await incidents()).toEqual([]);
    // The bank down for good: 12 in a row, 4 times the job's attempts. The order waits, at most
    // tracking.maxPollEveryMs apart, and is never given up; from the 3rd in a row one incident says so.
    delays.length = 0;
    for (let i = 0; i < 12; i += 1) await expect(run(down)).rejects.toBeInstanceOf(DelayedError);
    expect(data.failures).toBe(12);
    const { maxPollEveryMs } = world.context.config.tracking;
    expect(delays.slice(0, 3).map((d) => Math.round(d / backoffMs))).toEqual([1, 2, 4]);
    expect(Math.max(...delays)).toBeLessThanOrEqual(maxPollEveryMs + 50);
    expect(delays[11]).toBeGreaterThan(maxPollEveryMs - 1_000);
    expect(await q('select state from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted' }]);
    expect(await incidents()).toEqual([{ status: 'open', code: 'TRANSIENT' }]);
    // A maintenance answer without a Retry-After is a failed poll too: it waits as long, not the next poll's 2 s.
    await expect(run(new BankError('MAINTENANCE', 'the bank is down for maintenance'))).rejects.toBeInstanceOf(DelayedError);
    expect(delays[12]).toBeGreaterThan(maxPollEveryMs - 1_000);
    // The bank answers again: the order is polled on as before; the bank-wide incident waits for a
    // person (a bank answering now and then would open and close it over and over).
    await expect(run({ status: 'executed' })).resolves.toMatchObject({ state: 'executed' });
    expect(await incidents()).toEqual([{ status: 'open', code: 'TRANSIENT' }]);
  });

  it('what only one order meets (the bank does not know its document, or our own error) is never a dead letter either, and opens an incident for that order', async () => {
    const o = await submitted('S-10', 'DOC-S10');
    const data: Record<string, unknown> = { orderId: o.id };
    const job = {
      id: `track-${o.id}`, name: 'order.track', data, attemptsMade: 0, opts: { attempts: 3 }, token: 't',
      updateData: async (next: Record<string, unknown>) => void Object.assign(data, next),
      moveToDelayed: async () => undefined,
    } as unknown as Job;
    const run = (answer: Error) => {
      const bank = { getStatus: async () => Promise.reject(answer) };
      const context: JobContext = { ...world.context, clock: { now: () => new Date('2026-11-24T06:00:00Z') }, services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
      return handleTrackOrder({ orderId: o.id }, context, job);
    };
    for (let i = 0; i < 2; i += 1) await expect(run(new BankError('NOT_FOUND', 'not found at the bank (DOCUMENT_NOT_FOUND)'))).rejects.toBeInstanceOf(DelayedError);
    // A failure of our own (PostgreSQL for a moment, say) is counted the same way: no BullMQ attempt is spent.
    await expect(run(new Error('Connection terminated unexpectedly'))).rejects.toBeInstanceOf(DelayedError);
    expect(data.failures).toBe(3);
    expect(await q('select state from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted' }]);
    expect(await q(`select dedupe_key, evidence->>'code' as code, status from incident where kind = 'status_polls_failing' and evidence->>'orderId' = ?`, [o.id])).toEqual([
      { dedupe_key: `status_polls_failing:${o.id}`, code: 'ERROR', status: 'open' },
    ]);
    // Its status read at last: the order's own incident closes by itself.
    const answered = async () => {
      const bank = { getStatus: async () => ({ documentId: 'DOC-S10', externalId: o.externalId, status: 'in_processing', updatedAt: '2026-11-24T06:00:00Z' }) };
      const context: JobContext = { ...world.context, clock: { now: () => new Date('2026-11-24T06:00:00Z') }, services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
      return handleTrackOrder({ orderId: o.id }, context, job);
    };
    await expect(answered()).rejects.toBeInstanceOf(DelayedError);
    expect(data.failures).toBe(0);
    expect(await q(`select status from incident where dedupe_key = ?`, [`status_polls_failing:${o.id}`])).toEqual([{ status: 'resolved' }]);
  });

  it('a Retry-After of 0 (or a date already past) does not re-poll at once, over and over; one of a year does not park the order for a year (R-24)', async () => {
    const o = await submitted('S-11', 'DOC-S11');
    const { job, delays } = recordingJob(trackJob(o.id));
    const run = (answer: Error) => {
      const bank = { getStatus: async () => Promise.reject(answer) };
      const context: JobContext = { ...world.context, clock: { now: () => new Date('2026-11-24T06:00:00Z') }, services: { ...world.context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
      return handleTrackOrder({ orderId: o.id }, context, job);
    };
    const { backoffMs } = world.context.config.queue;
    for (let i = 0; i < 3; i += 1) await expect(run(new BankError('RATE_LIMITED', 'the bank limits the request rate; retry after 0 s', { httpStatus: 429, retryAfterMs: 0 }))).rejects.toBeInstanceOf(DelayedError);
    // Backed off as a failed poll: from queue.backoffMs, doubling; never 0.
    expect(delays.map((d) => Math.round(d / backoffMs))).toEqual([1, 2, 4]);
    delays.length = 0;
    await expect(run(new BankError('MAINTENANCE', 'the bank is not serving requests', { httpStatus: 503, retryAfterMs: 365 * 86_400_000 }))).rejects.toBeInstanceOf(DelayedError);
    expect(delays[0]).toBeLessThanOrEqual(3_600_000 + 50);
    expect(delays[0]).toBeGreaterThan(3_600_000 - 1_000);
    expect(await q('select state from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted' }]);
  });

  it('a stale "accepted" after "in_processing" is not recorded, so the order never looks as if it had no processing status (R-21)', async () => {
    const o = await submitted('S-1', 'DOC-S1');
    const as = (status: string) => () => ({ externalId: o.externalId, status });
    await expect(poll([o.id], '2026-11-24T06:00:00Z', as('in_processing'))).resolves.toEqual([{ poll: 'in_processing' }]);
    // The bank's answers go backwards (LESSONS.md 3): statuses only move forward.
    await expect(poll([o.id], '2026-11-24T07:00:00Z', as('accepted'))).resolves.toEqual([{ poll: 'accepted' }]);
    expect((await q<{ bank_status: string }>('select bank_status from payment_order where id = ?', [o.id]))[0].bank_status).toBe('in_processing');
    // Past the R-21 deadline (Wednesday 17:00) the bank does not answer: this order had its processing status.
    const outcome = await poll([o.id], '2026-11-25T12:30:00Z', () => new BankError('TRANSIENT', 'the bank could not be reached'));
    expect(outcome[0]).toBeInstanceOf(BankError);
    expect(await q(`select id from incident where kind = 'status_overdue' and evidence->>'orderId' = ?`, [o.id])).toEqual([]);
  });
  it("a status answer about another document (another external id or document id) moves nothing: one incident, and the poll waits", async () => {
    const o = await submitted('S-2', 'DOC-S2');
    // The bank answers for DOC-S2 with some other client's refused document.
    const [outcome] = await poll([o.id], '2026-11-24T06:00:00Z', () => ({ documentId: 'DOC-OTHER', externalId: 'someone-else', status: 'rejected', reasonCode: 'INSUFFICIENT_FUNDS' }));
    expect(outcome).toMatchObject({ waitMs: expect.any(Number), why: expect.stringMatching(/^CONTRACT_VIOLATION/) });
    // Our external id, another document id: not ours either.
    const [executed] = await poll([o.id], '2026-11-24T06:00:00Z', () => ({ documentId: 'DOC-OTHER', externalId: o.externalId, status: 'executed' }));
    expect(executed).toMatchObject({ why: expect.stringMatching(/^CONTRACT_VIOLATION/) });
    expect(await q('select state, bank_status from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted', bank_status: 'accepted' }]);
    expect(await q(`select kind from incident where evidence->>'orderId' = ?`, [o.id])).toEqual([{ kind: 'bank_status_mismatch' }]);
  });

  it('a refusal at execution reaches the ERP in words (R-23) even when the bank gives only its code', async () => {
    const known = await submitted('S-R1', 'DOC-R1');
    const unknown = await submitted('S-R2', 'DOC-R2');
    const bare = await submitted('S-R3', 'DOC-R3');
    const answers: Record<string, Partial<BankPaymentStatus>> = {
      'DOC-R1': { externalId: known.externalId, status: 'rejected', reasonCode: 'ACCOUNT_ARRESTED' },
      'DOC-R2': { externalId: unknown.externalId, status: 'rejected', reasonCode: 'LIMIT_EXCEEDED', reasonText: 'превышен дневной лимит' },
      'DOC-R3': { externalId: bare.externalId, status: 'rejected' },
    };
    await poll([known.id, unknown.id, bare.id], '2026-11-24T06:00:00Z', (documentId) => answers[documentId]);
    const rows = await q<{ number: string; state: string; bank_reason_code: string; bank_reason_text: string | null }>(
      'select number, state, bank_reason_code, bank_reason_text from payment_order where id in (?, ?, ?) order by number',
      [known.id, unknown.id, bare.id],
    );
    expect(rows).toEqual([
      { number: 'S-R1', state: 'rejected', bank_reason_code: 'ACCOUNT_ARRESTED', bank_reason_text: REASON_TEXT_RU.ACCOUNT_ARRESTED },
      { number: 'S-R2', state: 'rejected', bank_reason_code: 'LIMIT_EXCEEDED', bank_reason_text: 'Банк отказал: превышен дневной лимит' },
      // Nothing said at all: the ERP's status says the bank gave no reason.
      { number: 'S-R3', state: 'rejected', bank_reason_code: 'REJECTED', bank_reason_text: null },
    ]);
  });

  it('an operational day the bank gives from before the order reached it does not make the order deemed executed at once (R-22)', async () => {
    const o = await submitted('S-3', 'DOC-S3');
    // Sent Tuesday 10:00; the bank says it was received on the Friday before.
    const answer = () => ({ documentId: 'DOC-S3', externalId: o.externalId, status: 'in_processing', operationalDay: '2026-11-20' });
    await expect(poll([o.id], '2026-11-24T06:00:00Z', answer)).resolves.toEqual([{ poll: 'in_processing' }]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [o.id]))[0].state).toBe('submitted');
    // The window still closes: the end of the operational day after the one we sent it on (Wednesday 17:00).
    await expect(poll([o.id], '2026-11-25T11:59:00Z', answer)).resolves.toEqual([{ poll: 'in_processing' }]);
    await expect(poll([o.id], '2026-11-25T12:00:00Z', answer)).resolves.toEqual([{ state: 'deemed_executed' }]);
  });

  it('an operational day the bank gives on a weekend or holiday counts as the business day after it: the order is not deemed executed a business day early (R-22)', async () => {
    const o = await submitted('S-12', 'DOC-S12');
    // Sent Friday 2026-11-27 10:00; the bank dates its receipt Saturday the 28th.
    await q('update payment_order set state_changed_at = ? where id = ?', [new Date('2026-11-27T05:00:00Z'), o.id]);
    const answer = () => ({ documentId: 'DOC-S12', externalId: o.externalId, status: 'in_processing', operationalDay: '2026-11-28' });
    // Received on Monday the 30th, the first operational day after it: the window closes at the end of Tuesday, not of Monday.
    await expect(poll([o.id], '2026-11-30T12:00:00Z', answer)).resolves.toEqual([{ poll: 'in_processing' }]);
    await expect(poll([o.id], '2026-12-01T11:59:00Z', answer)).resolves.toEqual([{ poll: 'in_processing' }]);
    await expect(poll([o.id], '2026-12-01T12:00:00Z', answer)).resolves.toEqual([{ state: 'deemed_executed' }]);
  });

  it('an order with a value date ahead is not deemed executed the day after the bank received it, only after the operational day following its value date (R-22); one valued earlier is as before', async () => {
    // Sent Tuesday 2026-11-24 10:00; salaries valued 5 business days on, Tuesday 2026-12-01: the bank holds them until then.
    const ahead = await submitted('S-6', 'DOC-S6', '2026-12-01');
    // Valued before the day it was sent (a document prepared the day before): nothing changes.
    const before = await submitted('S-7', 'DOC-S7', '2026-11-23');
    const answers: Record<string, Partial<BankPaymentStatus>> = {
      // The bank's own operational day is the day it received the order, not the value date: the latest of the three counts.
      'DOC-S6': { externalId: ahead.externalId, status: 'in_processing', operationalDay: '2026-11-24' },
      'DOC-S7': { externalId: before.externalId, status: 'in_processing', operationalDay: '2026-11-24' },
    };
    const state = async (id: string) => (await q<{ state: string }>('select state from payment_order where id = ?', [id]))[0].state;
    // Wednesday 17:00, the end of the operational day after receipt: the earlier-valued one is deemed executed, as before; the other waits.
    await expect(poll([ahead.id, before.id], '2026-11-25T11:59:00Z', (d) => answers[d])).resolves.toEqual([{ poll: 'in_processing' }, { poll: 'in_processing' }]);
    await expect(poll([ahead.id, before.id], '2026-11-25T12:00:00Z', (d) => answers[d])).resolves.toEqual([{ poll: 'in_processing' }, { state: 'deemed_executed' }]);
    // On the value date itself and up to the end of the next operational day (Wednesday 2026-12-02 17:00): still at the bank.
    for (const at of ['2026-11-30T12:00:00Z', '2026-12-01T12:00:00Z', '2026-12-02T11:59:00Z']) await expect(poll([ahead.id], at, (d) => answers[d])).resolves.toEqual([{ poll: 'in_processing' }]);
    expect(await state(ahead.id)).toBe('submitted');
    await expect(poll([ahead.id], '2026-12-02T12:00:00Z', (d) => answers[d])).resolves.toEqual([{ state: 'deemed_executed' }]);
    const [event] = await q<{ reason: string }>("select reason from order_event where order_id = ? and to_state = 'deemed_executed'", [ahead.id]);
    expect(event.reason).toBe(`no notice of non-execution by ${new Date('2026-12-02T12:00:00Z').toISOString()} (R-22)`);
  });

  it('an order dated ahead that the bank keeps "accepted" until its value date opens no R-21 incident before then; past the business day after it, one', async () => {
    const ahead = await submitted('S-8', 'DOC-S8', '2026-12-01');
    const accepted = () => ({ externalId: ahead.externalId, status: 'accepted' });
    const overdue = async () => q(`select id from incident where kind = 'status_overdue' and evidence->>'orderId' = ?`, [ahead.id]);
    // Sent Tuesday 2026-11-24: the day after (Wednesday 17:00) an order valued today would be overdue; this one is not.
    for (const at of ['2026-11-25T12:30:00Z', '2026-11-30T12:00:00Z', '2026-12-02T11:59:00Z']) await poll([ahead.id], at, accepted);
    expect(await overdue()).toEqual([]);
    // The end of the operational day after its value date (Wednesday 2026-12-02 17:00): still only "accepted".
    await poll([ahead.id], '2026-12-02T12:00:00Z', accepted);
    expect(await overdue()).toHaveLength(1);
    // One dated ahead whose polls fail: no answer at all is overdue a business day after the submission, as for any order.
    const silent = await submitted('S-9', 'DOC-S9', '2026-12-01');
    const outcome = await poll([silent.id], '2026-11-25T12:30:00Z', () => new BankError('TRANSIENT', 'the bank could not be reached'));
    expect(outcome[0]).toBeInstanceOf(BankError);
    expect(await q(`select id from incident where kind = 'status_overdue' and evidence->>'orderId' = ?`, [silent.id])).toHaveLength(1);
  });

  it('a status the connector does not know is not "no notice": past the R-22 deadline the order is not deemed executed, one incident asks a person, and a known status later settles it', async () => {
    const o = await submitted('S-4', 'DOC-S4');
    const as = (status: string) => () => ({ documentId: 'DOC-S4', externalId: o.externalId, status });
    // Within the window an unknown status is kept verbatim and moves nothing.
    await expect(poll([o.id], '2026-11-24T06:00:00Z', as('returned'))).resolves.toEqual([{ poll: 'returned' }]);
    // Past it (Wednesday 17:00): still submitted, polled on; one incident however many polls.
    for (const at of ['2026-11-25T12:00:00Z', '2026-11-26T06:00:00Z']) await expect(poll([o.id], at, as('returned'))).resolves.toEqual([{ poll: 'returned' }]);
    expect(await q('select state, bank_status from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted', bank_status: 'returned' }]);
    const incidents = await q<{ kind: string; title: string; n: number }>(`select kind, title, jsonb_array_length(timeline) as n from incident where evidence->>'orderId' = ?`, [o.id]);
    expect(incidents).toEqual([{ kind: 'status_unknown', title: expect.stringMatching(/^Order S-4: the bank reports the status "returned", which the connector does not know; it is not deemed executed/), n: 1 }]);
    // A stale "accepted" after it does not undo it (statuses only move forward): still not deemed executed.
    await expect(poll([o.id], '2026-11-26T06:30:00Z', as('accepted'))).resolves.toEqual([{ poll: 'accepted' }]);
    expect(await q('select state, bank_status from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted', bank_status: 'returned' }]);
    // A known status past the deadline: R-22 applies again.
    await expect(poll([o.id], '2026-11-26T07:00:00Z', as('in_processing'))).resolves.toEqual([{ state: 'deemed_executed' }]);
  });

  it('a poll that cannot use our own credentials (the master key cannot open the vault) waits, and says so in one incident even when nothing is being submitted', async () => {
    const o = await submitted('S-5', 'DOC-S5');
    const unusable = () => new BankError('CREDENTIALS_UNAVAILABLE', 'the connector cannot read its own Client ID / Client Secret, nothing was sent to the bank: MASTER_KEY_MISMATCH: ...', { providerCode: 'MASTER_KEY_MISMATCH' });
    for (let i = 0; i < 2; i++) {
      const [outcome] = await poll([o.id], '2026-11-24T06:00:00Z', unusable);
      expect(outcome).toMatchObject({ waitMs: expect.any(Number), why: 'CREDENTIALS_UNAVAILABLE (MASTER_KEY_MISMATCH)' });
    }
    expect(await q(`select kind, jsonb_array_length(timeline) as n from incident where dedupe_key = 'credentials_unavailable:MASTER_KEY_MISMATCH'`)).toEqual([{ kind: 'credentials_unavailable', n: 1 }]);
    expect(await q('select state from payment_order where id = ?', [o.id])).toEqual([{ state: 'submitted' }]);
  });
});
