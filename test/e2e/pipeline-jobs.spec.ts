import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { createTestEnv, eventually, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { signOrderJob } from '../../queue/jobs/sign-order.job';
import { submitOrderJob } from '../../queue/jobs/submit-order.job';
import { trackOrderJob } from '../../queue/jobs/track-order.job';
import { validateOrderJob } from '../../queue/jobs/validate-order.job';
import { createLogger } from '../../connector/logging/logger';
import type { AnyJobDefinition } from '../../queue/job-definition';

/** Every pipeline job delivered again after it finished (same job id) has no second effect. */
describe('pipeline jobs: runs twice, one effect (real sandbox, signer agent, Redis, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;
  let workers: RunningWorkers;
  let events: Map<string, QueueEvents>;

  beforeAll(async () => {
    env = await createTestEnv('jobstwice', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }));
    workers = startWorkers(world.context, world.context.redis);
    events = new Map();
    for (const q of ['validate', 'sign', 'submit', 'track']) {
      const e = new QueueEvents(q, { connection: world.context.redis.duplicate(), prefix: env.config.redis.prefix });
      await e.waitUntilReady();
      events.set(q, e);
    }
  });
  afterAll(async () => {
    await workers?.close(5_000);
    for (const e of events?.values() ?? []) await e.close();
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();
  const count = async (sql: string, params: unknown[]) => Number((await db().execute<Array<{ n: string }>>(sql, params))[0].n);
  const ledger = async () => (await (await fetch(`${world.config.bank.url}/_sandbox/submissions`)).json()) as { total: number; duplicates: number; submissions: Array<{ externalId: string; requests: number }> };

  async function runAgain(definition: AnyJobDefinition, orderId: string): Promise<unknown> {
    const job = await world.context.queues.get(definition.queue).add(definition.name, { orderId }, { jobId: definition.jobId({ orderId }) });
    return job.waitUntilFinished(events.get(definition.queue) as QueueEvents, 20_000);
  }

  it('validate, sign (two signatures), submit and track again change nothing once the order is executed', async () => {
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const doc = demoDocuments(String(Date.now()).slice(-7))[2]; // 2,500,000 KZT: first + second signature
    const [result] = await intakeOrders(db(), 'erp-twice', [{ order: demoOrder(doc, today) }], bullmqIntakePort(world.context.queues), { actor: 'test' });
    const id = result.orderId;
    const stateOf = async () => (await db().execute<Array<{ state: string; external_id: string }>>('select state, external_id from payment_order where id = ?', [id]))[0];
    await eventually(async () => (await stateOf()).state === 'executed', { what: 'executed', timeoutMs: 45_000 });

    const before = {
      events: await count('select count(*) as n from order_event where order_id = ?', [id]),
      signatures: await count('select count(*) as n from order_signature where order_id = ?', [id]),
      attempts: await count('select submit_attempts as n from payment_order where id = ?', [id]),
      ledger: (await ledger()).submissions.find((s) => s.externalId === result.externalId),
    };
    expect(before.signatures).toBe(2);
    expect(before.attempts).toBe(1);
    expect(before.ledger?.requests).toBe(1);

    for (const definition of [validateOrderJob, signOrderJob, submitOrderJob, trackOrderJob]) await runAgain(definition, id);

    expect((await stateOf()).state).toBe('executed');
    expect(await count('select count(*) as n from order_event where order_id = ?', [id])).toBe(before.events);
    expect(await count('select count(*) as n from order_signature where order_id = ?', [id])).toBe(2);
    expect(await count('select submit_attempts as n from payment_order where id = ?', [id])).toBe(1);
    const after = await ledger();
    expect(after.submissions.find((s) => s.externalId === result.externalId)?.requests).toBe(1);
    expect(after.duplicates).toBe(0);
  });

  it('two deliveries of the submit job racing on one order send it once (claim + send lease)', async () => {
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
      const doc = demoDocuments(String(Date.now()).slice(-7))[0];
      const [result] = await intakeOrders(db(), 'erp-race', [{ order: demoOrder(doc, today) }], bullmqIntakePort(world.context.queues), { actor: 'test' });
      const stateOf = async () => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state;
      await eventually(async () => (await stateOf()) === 'signed', { what: 'signed', timeoutMs: 45_000 });
      // A lapsed lock hands the same work to a second worker: two jobs for one order, at once.
      await submitQueue.add(submitOrderJob.name, { orderId: result.orderId }, { jobId: `submit-${result.orderId}-second` });
      await submitQueue.resume();
      await eventually(async () => ['submitted', 'executed'].includes(await stateOf()), { what: 'submitted', timeoutMs: 45_000 });
      const entry = (await ledger()).submissions.find((s) => s.externalId === result.externalId);
      expect(entry?.requests).toBe(1);
      expect(await count('select submit_attempts as n from payment_order where id = ?', [result.orderId])).toBe(1);
      expect(await count("select count(*) as n from order_event where order_id = ? and to_state = 'submitting'", [result.orderId])).toBe(1);
      expect((await ledger()).duplicates).toBe(0);
    } finally {
      await submitQueue.resume();
    }
  });
});
