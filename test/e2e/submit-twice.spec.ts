import { randomUUID } from 'node:crypto';
import { DelayedError, type Job } from 'bullmq';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { eventually, type TestEnv } from '../support/test-env';
import type { AppContext } from '../../connector/app/app-context';
import { handleSubmitOrder } from '../../queue/jobs/submit-order.job';
import { retryFailedOrder } from '../../queue/order-retry';
import { perContext, Slots } from '../../queue/stage-batcher';
import type { World } from '../../connector/demo/pipeline-world';
import { AllButSubmit, fakeSubmitJob, sandboxAdmin, startProofWorld, type Ledger } from '../support/pipeline-world';

/**
 * "Runs twice, one effect" for the submit job, when the two runs overlap: BullMQ is at-least-once
 * (LESSONS.md 10): a job whose lock lapses on a live worker runs again elsewhere while the first
 * run is still talking to the bank, and after Redis lost its data the sweeper re-queues an order
 * whose job may still be running. Both runs find the order `submitting` after an earlier attempt
 * with an unknown outcome; the bank must still receive the order once.
 */
const SOURCE = 'proof-twice';

describe('two overlapping runs of the submit job (a lapsed lock, a sweeper re-queue)', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let stages: AllButSubmit | undefined;

  beforeAll(async () => {
    ({ env, context, world } = await startProofWorld('twice'));
  }, 120_000);

  afterAll(async () => {
    await stages?.close();
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  const row = async (orderId: string) =>
    (await context.orm.em.fork().execute<Array<{ state: string; submit_attempts: number; leased: boolean }>>(
      'select state, submit_attempts, coalesce(send_lease_until > now(), false) as leased from payment_order where id = ?',
      [orderId],
    ))[0];

  /** One signed order, its submit job not yet run (every stage but submission runs; the submit job is driven by hand). */
  async function signedOrder(): Promise<string> {
    stages ??= new AllButSubmit(context);
    const orderId = await stages.signedOrder(SOURCE, 'T');
    await context.services.bank().lookup('warm-up-the-token').catch(() => undefined);
    return orderId;
  }

  /** One signed order whose first send got a 500: its outcome is unknown, it stays `submitting`. */
  async function orderAfterAnUnknownOutcome(): Promise<string> {
    const result = { orderId: await signedOrder() };
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { fail5xxNext: 1 } });
    await expect(handleSubmitOrder({ orderId: result.orderId }, context, fakeSubmitJob(result.orderId, 0))).rejects.toThrow();
    expect(await row(result.orderId)).toEqual({ state: 'submitting', submit_attempts: 1, leased: false });
    return result.orderId;
  }

  const requestsFor = async (orderId: string) => {
    const [order] = await context.orm.em.fork().execute<Array<{ external_id: string }>>('select external_id from payment_order where id = ?', [orderId]);
    return (await sandboxAdmin<Ledger>(world.admin, '/submissions')).submissions.filter((s) => s.externalId === order.external_id);
  };

  it('sends the order to the bank once', async () => {
    const orderId = await orderAfterAnUnknownOutcome();
    const result = { orderId };

    // The retry runs twice at once (the bank answers slowly, as under load), as in two worker
    // processes: each run gets its own context, so the submit stage's batcher (one per context
    // and stage) cannot fold the two into one batch; the send lease alone must keep them apart.
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 300 } });
    const runs = await Promise.allSettled([
      handleSubmitOrder({ orderId: result.orderId }, { ...context }, fakeSubmitJob(result.orderId, 1)),
      handleSubmitOrder({ orderId: result.orderId }, { ...context }, fakeSubmitJob(result.orderId, 1)),
    ]);
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 0 } });
    expect(runs.some((r) => r.status === 'fulfilled' && (r.value as { state: string }).state === 'submitted')).toBe(true);

    const ledger = await sandboxAdmin<Ledger>(world.admin, '/submissions');
    expect(ledger.duplicates).toBe(0);
    // The failed first attempt and exactly one send of the two overlapping runs.
    expect((await requestsFor(result.orderId)).map((s) => s.requests)).toEqual([2]);
    expect((await row(result.orderId)).state).toBe('submitted');
  }, 120_000);

  it('a run whose send lease lapsed while it waited for a send slot neither sends on the next holder\'s lease nor clears it', async () => {
    const orderId = await orderAfterAnUnknownOutcome();
    // Run A, in a process with one send slot that something else holds: A takes the lease, looks
    // the order up (not found), and waits for the slot.
    const contextA = { ...context, config: { ...context.config, worker: { ...context.config.worker, concurrency: 1 } } };
    const slotsA = perContext(contextA, 'submit.slots', () => new Slots(1));
    let freeTheSlot!: () => void;
    const blocker = slotsA.hold(() => new Promise<void>((resolve) => (freeTheSlot = resolve)));
    const runA = handleSubmitOrder({ orderId }, contextA, fakeSubmitJob(orderId, 1));
    await eventually(async () => slotsA.queued === 1, { timeoutMs: 30_000, intervalMs: 10, what: 'run A waiting for a send slot' });
    expect(await row(orderId)).toMatchObject({ submit_attempts: 1, leased: true });

    // A waits longer than its lease (bank timeout + margin): the lease lapses, and run B (a
    // re-delivered job in another process) takes it, passes its last look and is at the bank.
    await context.orm.em.fork().execute("update payment_order set send_lease_until = now() - interval '1 second' where id = ?", [orderId]);
    // The bank answers B slowly (as under load): long enough for A to finish while B waits for it.
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 3_000 } });
    try {
      const runB = handleSubmitOrder({ orderId }, { ...context }, fakeSubmitJob(orderId, 1));
      await eventually(async () => (await row(orderId)).submit_attempts === 2, { timeoutMs: 30_000, intervalMs: 10, what: 'run B to pass its last look' });

      // A gets its slot while B is still waiting for the bank: A must not send, nor free B's lease.
      freeTheSlot();
      await blocker;
      await expect(runA).resolves.toEqual({ state: 'moved-on' });
      expect(await row(orderId)).toEqual({ state: 'submitting', submit_attempts: 2, leased: true });

      await expect(runB).resolves.toEqual({ state: 'submitted' });
    } finally {
      await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 0 } });
    }
    // The 500 and B's send; nothing from A.
    expect((await requestsFor(orderId)).map((s) => s.requests)).toEqual([2]);
    expect(await row(orderId)).toEqual({ state: 'submitted', submit_attempts: 2, leased: false });
  }, 120_000);

  it('accepted by the bank, its answer lost, then failed (its lookups answered outside the contract): orders retry looks it up and never sends it again', async () => {
    const orderId = await signedOrder();
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { timeoutAfterAcceptNext: 1 } });
    // The bank registers it and never answers: an unknown outcome, the order waits (no attempt spent).
    await expect(handleSubmitOrder({ orderId }, context, fakeSubmitJob(orderId, 0))).rejects.toThrow(DelayedError);
    expect(await row(orderId)).toMatchObject({ state: 'submitting', submit_attempts: 1 });
    // Its last try: the lookup is answered outside the contract; the order ends failed.
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { offContractNext: 1 } });
    await handleSubmitOrder({ orderId }, context, fakeSubmitJob(orderId, 0, 1));
    expect((await row(orderId)).state).toBe('failed');
    // The operator retries: the bank holds it, so it is found by its external id, never sent a second time.
    expect(await retryFailedOrder(context.orm.em.fork(), context.queues, orderId, 'test')).toBe('submitting');
    await expect(handleSubmitOrder({ orderId }, context, fakeSubmitJob(orderId, 0))).resolves.toEqual({ state: 'submitted', via: 'lookup' });
    expect((await requestsFor(orderId)).map((s) => [s.requests, s.accepted, s.afterAccepted])).toEqual([[1, true, 0]]);
  }, 120_000);

  it('a run whose lookup outlasted its send lease gives up without failing the order another sender holds now (that send may be at the bank)', async () => {
    const orderId = await orderAfterAnUnknownOutcome();
    const bank = context.services.bank();
    const slow = Object.create(bank) as typeof bank;
    slow.lookup = async () => {
      // While this run waited for the bank's answer (a 429's Retry-After, a slow bank), its lease lapsed
      // and another sender (the job delivered again after a stall) took the order and is sending it.
      await context.orm.em.fork().execute("update payment_order set send_lease_until = now() + interval '1 minute', send_lease_owner = ? where id = ?", [randomUUID(), orderId]);
      throw new BankError('CONTRACT_VIOLATION', "the bank's lookup answer does not follow the contract", { operation: 'lookup', httpStatus: 200 });
    };
    // This run's last attempt: it gives up.
    await expect(handleSubmitOrder({ orderId }, { ...context, services: { ...context.services, bank: () => slow } }, fakeSubmitJob(orderId, 7, 8))).resolves.toEqual({ state: 'moved-on' });
    // Failed now, the other sender's acceptance would find it failed: its reference lost, 1C told of a technical error.
    expect(await row(orderId)).toEqual({ state: 'submitting', submit_attempts: 1, leased: true });
  }, 120_000);

  it('an order the bank will not take for 8 hours (its 500s, every time) ends failed with the reason, for an operator; before that it waits', async () => {
    const orderId = await signedOrder();
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { errorRate: 1 } });
    try {
      const now = context.clock.now().getTime();
      await expect(handleSubmitOrder({ orderId }, context, fakeSubmitJob(orderId, 0, 8, { outageSince: now - 7 * 3_600_000 }))).rejects.toThrow(DelayedError);
      expect((await row(orderId)).state).toBe('submitting');
      await expect(handleSubmitOrder({ orderId }, context, fakeSubmitJob(orderId, 0, 8, { outageSince: now - 8 * 3_600_000 - 1_000 }))).resolves.toEqual({ state: 'failed' });
      const [failed] = await context.orm.em.fork().execute<Array<{ state: string; failed_from: string; last_error: string }>>('select state, failed_from, last_error from payment_order where id = ?', [orderId]);
      expect(failed).toMatchObject({ state: 'failed', failed_from: 'submitting', last_error: expect.stringMatching(/^(TRANSIENT|OUTCOME_UNKNOWN): /) });
    } finally {
      await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { errorRate: 0 } });
    }
  }, 120_000);

  it('a run held up after its last look for longer than its send lease (a new token fetched slowly) sends nothing', async () => {
    const orderId = await signedOrder();
    // The lease of a bank timeout of 1 s (the client keeps its own timeout): 6 s, renewed at the last
    // look; the send must be over 2 s before it ends.
    const short = { ...context, config: { ...context.config, bank: { ...context.config.bank, timeoutMs: 1_000 } } };
    // The bank forgot our token and answers slowly: the send gets a 401 after 3 s, the new token
    // comes 3 s later, past the time the lease left for the send. Another holder could have the
    // order by then, look it up, not find it, and send it too: this run must not send it again.
    await sandboxAdmin(world.admin, '/tokens/expire', { method: 'POST' });
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 3_000 } });
    try {
      // Not sent (TRANSIENT): the run waits for the bank like any outage, spending no attempt.
      await expect(handleSubmitOrder({ orderId }, short, fakeSubmitJob(orderId, 0))).rejects.toThrow(/movedToDelayed/);
    } finally {
      await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 0 } });
    }
    // The bank saw the request its 401 refused (not processed, by the contract), and nothing after the new token.
    expect((await requestsFor(orderId)).map((s) => [s.requests, s.accepted])).toEqual([[1, false]]);
    // Nothing of it can be at the bank: the attempt counted for it is given back (the order is one never
    // sent: withdrawable, its signers judged again at the next send), and the lease too.
    expect(await row(orderId)).toEqual({ state: 'submitting', submit_attempts: 0, leased: false });
    await expect(handleSubmitOrder({ orderId }, { ...context }, fakeSubmitJob(orderId, 1))).resolves.toEqual({ state: 'submitted' });
    expect((await requestsFor(orderId)).map((s) => [s.requests, s.accepted])).toEqual([[2, true]]);
  }, 120_000);

  it('two runs in one process, the stale lease holder and the current one, reaching the last look together: only the current one sends', async () => {
    const orderId = await orderAfterAnUnknownOutcome();
    // One process with two send slots, both held: run A takes the lease and waits for a slot.
    const process1 = { ...context, config: { ...context.config, worker: { ...context.config.worker, concurrency: 2 } } };
    const slots = perContext(process1, 'submit.slots', () => new Slots(2));
    const free: Array<() => void> = [];
    const blockers = [0, 1].map(() => slots.hold(() => new Promise<void>((resolve) => free.push(resolve))));
    const runA = handleSubmitOrder({ orderId }, process1, fakeSubmitJob(orderId, 1));
    await eventually(async () => slots.queued === 1, { timeoutMs: 30_000, intervalMs: 10, what: 'run A waiting for a send slot' });
    // A's lease lapses; run B (the same job delivered again to this process) takes a new one and waits too.
    await context.orm.em.fork().execute("update payment_order set send_lease_until = now() - interval '1 second' where id = ?", [orderId]);
    const runB = handleSubmitOrder({ orderId }, process1, fakeSubmitJob(orderId, 1));
    await eventually(async () => slots.queued === 2, { timeoutMs: 30_000, intervalMs: 10, what: 'run B waiting for a send slot' });

    // Both slots free at once: A and B pass to the last look in the same batch, A first.
    for (const f of free) f();
    await Promise.all(blockers);
    await expect(runA).resolves.toEqual({ state: 'moved-on' });
    await expect(runB).resolves.toEqual({ state: 'submitted' });
    expect((await requestsFor(orderId)).map((s) => s.requests)).toEqual([2]);
    expect(await row(orderId)).toEqual({ state: 'submitted', submit_attempts: 2, leased: false });
  }, 120_000);

  it('R-24: a bank answering 503 without a Retry-After is asked again later each time, up to a minute, not every 2 s, and no attempt is spent', async () => {
    const orderId = await signedOrder();
    const data: Record<string, unknown> = { orderId };
    const delays: number[] = [];
    const job = {
      ...fakeSubmitJob(orderId, 0),
      data,
      updateData: async (next: Record<string, unknown>) => void Object.assign(data, next),
      moveToDelayed: async (at: number) => void delays.push(at - Date.now()),
    } as unknown as Job;
    let sends = 0;
    const bank = context.services.bank();
    const down = Object.create(bank) as typeof bank;
    down.submit = async () => {
      sends += 1;
      throw new BankError('MAINTENANCE', 'the bank is not serving requests (HTTP 503); the request was not processed', { httpStatus: 503, operation: 'submit' });
    };
    const downContext = { ...context, services: { ...context.services, bank: () => down } };
    for (let i = 0; i < 8; i += 1) await expect(handleSubmitOrder({ orderId }, downContext, job)).rejects.toBeInstanceOf(DelayedError);
    expect(sends).toBe(8);
    const { backoffMs } = context.config.queue;
    expect(delays.slice(0, 4).map((d) => Math.round(d / backoffMs))).toEqual([1, 2, 4, 8]);
    expect(Math.max(...delays)).toBeLessThanOrEqual(60_000 + 50);
    expect(delays[7]).toBeGreaterThan(59_000);
    // Still the bank's to take, once it serves again.
    expect((await row(orderId)).state).toBe('submitting');
    await expect(handleSubmitOrder({ orderId }, context, job)).resolves.toEqual({ state: 'submitted' });
  }, 120_000);
});
