import type { Job } from 'bullmq';
import { eventually, type TestEnv } from '../support/test-env';
import type { AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { REGISTERED_JOBS } from '../../queue/jobs';
import { handleSubmitOrder } from '../../queue/jobs/submit-order.job';
import type { World } from '../../connector/demo/pipeline-world';
import { proofOrders, sandboxAdmin, startProofWorld, statesOf, type Ledger } from '../support/pipeline-world';

/**
 * "Runs twice, one effect" for the submit job, when the two runs overlap: BullMQ is at-least-once
 * (LESSONS.md 10): a job whose lock lapses on a live worker runs again elsewhere while the first
 * run is still talking to the bank, and after Redis lost its data the sweeper re-queues an order
 * whose job may still be running. Both runs find the order `submitting` after an earlier attempt
 * with an unknown outcome; the bank must still receive the order once.
 */
const SOURCE = 'proof-twice';

function fakeJob(orderId: string, attemptsMade: number): Job {
  return {
    id: `submit-${orderId}`,
    name: 'order.submit',
    data: { orderId },
    attemptsMade,
    opts: { attempts: 8 },
    token: 'test',
    moveToDelayed: async () => undefined,
    updateData: async () => undefined,
  } as unknown as Job;
}

describe('two overlapping runs of the submit job (a lapsed lock, a sweeper re-queue)', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    ({ env, context, world } = await startProofWorld('twice'));
  }, 120_000);

  afterAll(async () => {
    await workers?.close(5_000);
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  it('sends the order to the bank once', async () => {
    // Every stage but submission runs; the submit job is driven by hand below.
    workers = startWorkers(context, context.redis, REGISTERED_JOBS.filter((j) => j.definition.queue !== 'submit'));
    const [result] = await intakeOrders(context.orm.em.fork(), SOURCE, proofOrders(`T${Date.now().toString(36)}`, 1).map((order) => ({ order })), bullmqIntakePort(context.queues), { actor: 'proof' });
    await eventually(async () => (await statesOf(context.orm, SOURCE)).signed === 1, { timeoutMs: 30_000, what: 'the order to be signed' });

    // A first attempt whose answer is a 500: the outcome is unknown, the order stays `submitting`.
    await context.services.bank().lookup('warm-up-the-token').catch(() => undefined);
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { fail5xxNext: 1 } });
    await expect(handleSubmitOrder({ orderId: result.orderId }, context, fakeJob(result.orderId, 0))).rejects.toThrow();
    const [row] = await context.orm.em.fork().execute<Array<{ state: string; submit_attempts: number }>>('select state, submit_attempts from payment_order where id = ?', [result.orderId]);
    expect(row).toEqual({ state: 'submitting', submit_attempts: 1 });

    // The retry runs twice at once (the bank answers slowly, as under load), as in two worker
    // processes: each run gets its own context, so the submit stage's batcher (one per context
    // and stage) cannot fold the two into one batch; the send lease alone must keep them apart.
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 300 } });
    const runs = await Promise.allSettled([
      handleSubmitOrder({ orderId: result.orderId }, { ...context }, fakeJob(result.orderId, 1)),
      handleSubmitOrder({ orderId: result.orderId }, { ...context }, fakeJob(result.orderId, 1)),
    ]);
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { slowMs: 0 } });
    expect(runs.some((r) => r.status === 'fulfilled' && (r.value as { state: string }).state === 'submitted')).toBe(true);

    const ledger = await sandboxAdmin<Ledger>(world.admin, '/submissions');
    expect(ledger.total).toBe(1);
    expect(ledger.duplicates).toBe(0);
    // The failed first attempt and exactly one send of the two overlapping runs.
    expect(ledger.submissions[0].requests).toBe(2);
    const [after] = await context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]);
    expect(after.state).toBe('submitted');
  }, 120_000);
});
