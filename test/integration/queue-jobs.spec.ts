import { QueueEvents } from 'bullmq';
import { createTestEnv, eventually, deleteRedisPrefix, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { validateBatch, validateOrderJob } from '../../queue/jobs/validate-order.job';
import { requeueOrder, sweepOrders } from '../../queue/jobs/sweep-orders.job';
import { retryFailedOrder } from '../../queue/order-retry';
import { idleLookJobId, signOrderJob } from '../../queue/jobs/sign-order.job';
import { intakeOrders } from '../../connector/intake/order-intake';
import { markOrderFailed, transitionOrder } from '../../connector/orders/order-state.machine';
import { buildJobRegistry, JobRegistryError } from '../../queue/job.registry';
import { REGISTERED_JOBS } from '../../queue/jobs';
import { registerJob } from '../../queue/job-definition';
import { sampleOrder } from '../support/orders.fixture';

describe('queue topology on real Redis and PostgreSQL', () => {
  let env: TestEnv;
  let context: AppContext;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    env = await createTestEnv('queue');
    context = await createAppContext({ config: env.config, role: 'worker' });
  });
  afterEach(async () => {
    await workers?.close(5_000);
    workers = undefined;
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  const stateOf = async (id: string) => (await context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0]?.state;
  /** Validation done: the order went on to the signing stage (no signer is configured here). */
  const pastValidation = async (id: string) => ['validated', 'awaiting_signatures'].includes((await stateOf(id)) ?? '');
  const eventCount = async (id: string, to: string) =>
    Number((await context.orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from order_event where order_id = ? and to_state = ?', [id, to]))[0].n);

  it('uses CONNECTOR_REDIS_PREFIX as the prefix of every queue key', async () => {
    await context.queues.get('validate').add('probe', {}, { jobId: 'probe-1' });
    const keys = await context.redis.keys(`${env.config.redis.prefix}:validate:*`);
    expect(keys.length).toBeGreaterThan(0);
    await context.queues.get('validate').obliterate({ force: true });
  });

  it('carries ids only in job payloads', async () => {
    const [result] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'P-1' }) }], bullmqIntakePort(context.queues), { actor: 't' });
    const job = await context.queues.get('validate').getJob(`validate-${result.orderId}`);
    expect(job?.data).toEqual({ orderId: result.orderId });
    await context.queues.get('validate').obliterate({ force: true });
  });

  it('runs a job delivered twice (same id re-added after completion) with one effect', async () => {
    workers = startWorkers(context, context.redis);
    const [result] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'TWICE-1' }) }], bullmqIntakePort(context.queues), { actor: 't' });
    await eventually(() => pastValidation(result.orderId), { what: 'validated' });
    // removeOnComplete frees the id: the same job runs again (LESSONS.md 11). The database guard holds.
    const eventsConnection = context.redis.duplicate();
    const events = new QueueEvents('validate', { connection: eventsConnection, prefix: env.config.redis.prefix });
    await events.waitUntilReady();
    try {
      const job = await context.queues.get('validate').add(validateOrderJob.name, { orderId: result.orderId }, { jobId: `validate-${result.orderId}` });
      const outcome = await job.waitUntilFinished(events, 15_000);
      expect(outcome).toEqual({ state: await stateOf(result.orderId), changed: false });
    } finally {
      await events.close();
      eventsConnection.disconnect();
    }
    expect(await eventCount(result.orderId, 'validated')).toBe(1);
    expect(await pastValidation(result.orderId)).toBe(true);
  });

  it('rebuilds lost queue work from PostgreSQL (sweeper after Redis lost the data)', async () => {
    const [result] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'LOST-1' }) }], bullmqIntakePort(context.queues), { actor: 't' });
    await deleteRedisPrefix(env.config.redis.prefix); // Redis lost everything
    expect(await stateOf(result.orderId)).toBe('received');
    const requeued = await sweepOrders({ ...context, config: { ...context.config, sweeper: { ...context.config.sweeper, staleAfterMs: 0 } } }, new Date(Date.now() + 1000));
    expect(requeued).toBeGreaterThanOrEqual(1);
    workers = startWorkers(context, context.redis);
    await eventually(() => pastValidation(result.orderId), { what: 'validated after sweep' });
    // Sweeping again and again moves nothing twice: one event per transition, whatever the sweeps.
    for (let i = 0; i < 3; i += 1) {
      await sweepOrders({ ...context, config: { ...context.config, sweeper: { ...context.config.sweeper, staleAfterMs: 0 } } }, new Date(Date.now() + 1000));
    }
    await eventually(async () => (await stateOf(result.orderId)) === 'awaiting_signatures', { what: 'awaiting signatures' });
    await new Promise((r) => setTimeout(r, 300));
    expect(await eventCount(result.orderId, 'validated')).toBe(1);
    expect(await eventCount(result.orderId, 'awaiting_signatures')).toBe(1);
  });

  it('orders waiting for people keep one delayed look that sweeps leave alone, and never crowd out a stuck send', async () => {
    const db = () => context.orm.em.fork();
    const old = new Date(Date.now() - 3_600_000);
    const waiting: string[] = [];
    for (const n of [1, 2, 3]) {
      const [r] = await intakeOrders(db(), 'q', [{ order: sampleOrder({ number: `WAIT-${n}` }) }], { enqueueValidate: async () => undefined }, { actor: 't', now: old });
      for (const to of ['validated', 'awaiting_signatures'] as const) await transitionOrder(db(), r.orderId, to, { actor: 't', now: new Date(old.getTime() + n) });
      waiting.push(r.orderId);
    }
    const [stuck] = await intakeOrders(db(), 'q', [{ order: sampleOrder({ number: 'STUCK-1' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting'] as const) await transitionOrder(db(), stuck.orderId, to, { actor: 't' });
    const sweep = (limit: number) => sweepOrders({ ...context, config: { ...context.config, sweeper: { ...context.config.sweeper, staleAfterMs: 0 } } }, new Date(Date.now() + 1000), limit);

    // Two per state: the older waiting orders do not take the stuck send's place.
    expect(await sweep(2)).toBe(3);
    const send = await context.queues.get('submit').getJob(`submit-${stuck.orderId}`);
    expect(send).toBeDefined();
    await send!.remove();
    await transitionOrder(db(), stuck.orderId, 'rejected', { actor: 't' });

    // Without a mandate the sign stage leaves each waiting order a delayed look of its own (every 10 min)...
    workers = startWorkers(context, context.redis, REGISTERED_JOBS.filter((j) => j.definition.name === 'order.sign'));
    const jobState = async (jobId: string) => (await (await context.queues.get('sign').getJob(jobId))?.getState()) ?? 'gone';
    await eventually(async () => ((await jobState(idleLookJobId(waiting[0]))) === 'delayed' && (await jobState(idleLookJobId(waiting[1]))) === 'delayed' ? true : null), {
      what: 'delayed looks',
    });
    // ...so the next sweep only picks up the one without any job, and none of them moved.
    expect(await sweep(5)).toBe(1);
    expect(await jobState(idleLookJobId(waiting[0]))).toBe('delayed');
    for (const id of waiting) expect(await stateOf(id)).toBe('awaiting_signatures');
    // The stage's own job id stays free: an order sent back to this stage is looked at at once.
    expect(await jobState(`sign-${waiting[0]}`)).toBe('gone');
    await context.queues.add(signOrderJob, { orderId: waiting[0] });
    await eventually(async () => ((await jobState(`sign-${waiting[0]}`)) === 'gone' ? true : null), { what: 'the stage job ran at once' });
    expect(await jobState(idleLookJobId(waiting[0]))).toBe('delayed');
  });

  it("an operator's retry of an order that failed waiting for signatures looks at it at once, whatever delayed look is pending", async () => {
    const db = () => context.orm.em.fork();
    const [r] = await intakeOrders(db(), 'q', [{ order: sampleOrder({ number: 'RETRY-WAIT-1' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures'] as const) await transitionOrder(db(), r.orderId, to, { actor: 't' });
    await context.queues.add(signOrderJob, { orderId: r.orderId }, { jobId: idleLookJobId(r.orderId), delay: 600_000 });
    expect(await markOrderFailed(db(), r.orderId, 'signer agent unreachable after 5 attempts', 'worker', 'order.sign')).toBe(true);
    expect(await retryFailedOrder(db(), context.queues, r.orderId, 'cli:op')).toBe('awaiting_signatures');
    const sign = context.queues.get('sign');
    expect(await (await sign.getJob(`sign-${r.orderId}`))?.getState()).toBe('waiting');
    expect(await (await sign.getJob(idleLookJobId(r.orderId)))?.getState()).toBe('delayed');
    // The sweeper, unlike the operator, leaves an order waiting for people to its delayed look.
    await (await sign.getJob(`sign-${r.orderId}`))?.remove();
    expect(await requeueOrder(context.queues, 'awaiting_signatures', r.orderId)).toBe(false);
    for (const id of [`sign-${r.orderId}`, idleLookJobId(r.orderId)]) await (await sign.getJob(id))?.remove();
    await transitionOrder(db(), r.orderId, 'failed', { actor: 't' });
  });

  it('reaches every stuck order over successive sweeps, not the same oldest few each time', async () => {
    const db = () => context.orm.em.fork();
    const old = new Date(Date.now() - 3_600_000);
    const ids: string[] = [];
    for (const n of [1, 2, 3, 4, 5]) {
      const [r] = await intakeOrders(db(), 'q', [{ order: sampleOrder({ number: `STALE-${n}` }) }], { enqueueValidate: async () => undefined }, { actor: 't', now: new Date(old.getTime() + n) });
      ids.push(r.orderId);
    }
    const validate = context.queues.get('validate');
    const queued = async () => (await Promise.all(ids.map((id) => validate.getJob(`validate-${id}`)))).filter(Boolean).length;
    // One context, as the worker's sweep job has: it remembers where each state's walk stopped.
    const sweepContext = { ...context, config: { ...context.config, sweeper: { ...context.config.sweeper, staleAfterMs: 0 } } };
    const sweep = () => sweepOrders(sweepContext, new Date(Date.now() + 1000), 2);
    // No worker runs: each sweep re-queues at most 2 of the 5 lost ones, and goes on where it stopped.
    await sweep();
    expect(await queued()).toBe(2);
    await sweep();
    expect(await queued()).toBe(4);
    await sweep();
    expect(await queued()).toBe(5);
    for (const id of ids) await (await validate.getJob(`validate-${id}`))?.remove();
    for (const id of ids) await transitionOrder(db(), id, 'invalid', { actor: 't' });
  });

  it('an order found invalid asks for a write-back at once (the ERP hears of it now, not at the next statement fetch)', async () => {
    const writebacks = async () => (await context.queues.get('writeback').getJobs(['delayed', 'waiting'])).filter((j) => j.name === 'erp.writeback').length;
    await context.queues.get('writeback').obliterate({ force: true });
    const bad = sampleOrder({ number: 'WB-1' });
    bad.beneficiary.iinBin = '123456789010';
    const [taken] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: bad }], { enqueueValidate: async () => undefined }, { actor: 't' });
    expect(await writebacks()).toBe(0);
    await validateBatch(context, [taken.orderId as string]);
    expect(await stateOf(taken.orderId as string)).toBe('invalid');
    expect(await writebacks()).toBe(1);

  });

  it("an operator's retry asks for a write-back at once: the ERP stops showing a technical error for an order that goes on", async () => {
    const writebacks = async () => (await context.queues.get('writeback').getJobs(['delayed', 'waiting'])).filter((j) => j.name === 'erp.writeback').length;
    const db = () => context.orm.em.fork();
    const [r] = await intakeOrders(db(), 'q', [{ order: sampleOrder({ number: 'WB-RETRY-1' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    expect(await markOrderFailed(db(), r.orderId, 'order.validate: the database refused the batch', 'worker', 'order.validate')).toBe(true);
    await context.queues.get('writeback').obliterate({ force: true });
    expect(await retryFailedOrder(db(), context.queues, r.orderId, 'cli:op')).toBe('received');
    expect(await writebacks()).toBe(1);
    await (await context.queues.get('validate').getJob(`validate-${r.orderId}`))?.remove();
    await transitionOrder(db(), r.orderId, 'invalid', { actor: 't' });
  });

  it('fails at boot when a job has two handlers or none', () => {
    expect(() => buildJobRegistry(REGISTERED_JOBS)).not.toThrow();
    const dup = [...REGISTERED_JOBS, registerJob(validateOrderJob, async () => undefined)];
    expect(() => buildJobRegistry(dup)).toThrow(new JobRegistryError('job order.validate has two handlers'));
    expect(() => buildJobRegistry(REGISTERED_JOBS.slice(1), REGISTERED_JOBS.map((j) => j.definition))).toThrow(/order\.validate has no handler/);
  });

  it('refuses job ids BullMQ cannot take', async () => {
    const bad = { ...validateOrderJob, jobId: () => 'validate:1' };
    await expect(context.queues.add(bad, { orderId: '5f0c7b8e-6c36-4a53-8f0b-2f3a8c1d9e10' })).rejects.toThrow(/not allowed by BullMQ/);
    await expect(context.queues.add(validateOrderJob, { orderId: 'not-a-uuid' })).rejects.toThrow();
  });
});
