import { eventually, type TestEnv } from '../support/test-env';
import type { AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { sweepOrders } from '../../queue/jobs/sweep-orders.job';
import type { World } from '../../connector/demo/pipeline-world';
import { finalCount, FUNDED_ACCOUNTS, proofOrders, sandboxAdmin, startProofWorld, statesOf, type Ledger } from '../support/pipeline-world';

/**
 * Issue 15 "Proof / Bank faults": with the sandbox answering 20% of contract requests with 500,
 * accepting submissions and then never answering (again and again), and answering 429 with
 * Retry-After, every order still reaches its final state and the bank accepts each exactly once.
 * Workers run in this process; the crash proof (pipeline-crash.spec.ts) runs them as children.
 */
const ORDERS = Number(process.env.PROOF_FAULT_ORDERS ?? 100);
const SOURCE = 'proof-faults';

describe('the pipeline against a faulty bank (sandbox: 20% 5xx, timeouts after acceptance, 429)', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    ({ env, context, world } = await startProofWorld('faults', {
      tune: (base) => ({
        ...base,
        // The bank client gives up on a hung answer after 1.5 s (OUTCOME_UNKNOWN -> lookup next).
        bank: { ...base.bank, timeoutMs: 1_500 },
        // Enough attempts that 20% errors never exhaust them; short backoff to keep the run short.
        queue: { ...base.queue, attempts: 30, backoffMs: 100 },
        tracking: { pollEveryMs: 200, maxPollEveryMs: 1_000 },
        signing: { ...base.signing, pollEveryMs: 300 },
        sweeper: { everyMs: 1_000, staleAfterMs: 5_000 },
        worker: { ...base.worker, concurrency: 16 },
      }),
      logLevel: process.env.PROOF_LOG_LEVEL,
      sandbox: { hangMs: 500, accounts: FUNDED_ACCOUNTS, clock: { acceptedToProcessingMs: 200, processingToFinalMs: 200, tickMs: 50 } },
    }));
  }, 120_000);

  afterAll(async () => {
    await workers?.close(5_000);
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  it(`brings ${ORDERS} orders to a final state with each accepted exactly once`, async () => {
    await sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: { errorRate: 0.2, rateLimitNext: 5, retryAfterSeconds: 1, timeoutAfterAcceptNext: 3 } });
    workers = startWorkers(context, context.redis);
    // Faults again and again while the orders flow; the scheduler's sweeper runs as in production.
    let rearmed = 0;
    const rearm = setInterval(() => {
      rearmed += 1;
      // A hung answer every 2 s, a burst of three 429s every 6 s.
      void sandboxAdmin(world.admin, '/faults', { method: 'PUT', body: rearmed % 3 === 0 ? { timeoutAfterAcceptNext: 1, rateLimitNext: 3 } : { timeoutAfterAcceptNext: 1 } }).catch(() => undefined);
    }, 2_000);
    const sweeper = setInterval(() => void sweepOrders(context, context.clock.now()).catch(() => undefined), 1_000);
    try {
      const results = await intakeOrders(context.orm.em.fork(), SOURCE, proofOrders(`F${Date.now().toString(36)}`, ORDERS).map((order) => ({ order })), bullmqIntakePort(context.queues), { actor: 'proof' });
      expect(results.filter((r) => r.created)).toHaveLength(ORDERS);
      let last: Record<string, number> = {};
      const states = await eventually(
        async () => {
          last = await statesOf(context.orm, SOURCE);
          return finalCount(last) === ORDERS ? last : undefined;
        },
        { timeoutMs: 240_000, intervalMs: 500, what: 'every order to reach a final state' },
      ).catch((err: Error) => {
        throw new Error(`${err.message}; states: ${JSON.stringify(last)}`);
      });
      // The bank executes every one (funds are ample): nothing rejected, nothing failed.
      expect(states).toEqual({ executed: ORDERS });
    } finally {
      if (process.env.PROOF_LOG_LEVEL) process.stderr.write(`stats ${JSON.stringify(await sandboxAdmin(world.admin, '/stats'))} faults ${JSON.stringify(await sandboxAdmin(world.admin, '/faults'))}\n`);
      clearInterval(rearm);
      clearInterval(sweeper);
    }
    const faults = await sandboxAdmin<{ errorRate: number }>(world.admin, '/faults');
    expect(faults.errorRate).toBe(0.2);
    expect(rearmed).toBeGreaterThan(0);

    const ledger = await sandboxAdmin<Ledger>(world.admin, '/submissions');
    expect(ledger.duplicates).toBe(0);
    expect(ledger.total).toBe(ORDERS);
    expect(ledger.submissions.every((s) => s.accepted && s.afterAccepted === 0)).toBe(true);
    const { documents } = await sandboxAdmin<{ documents: Array<{ externalId: string; status: string }> }>(world.admin, '/documents');
    const externalIds = (await context.orm.em.fork().execute<Array<{ external_id: string }>>('select external_id from payment_order where source = ?', [SOURCE])).map((r) => r.external_id).sort();
    // One bank document per order, under the order's own external id.
    expect(documents.map((d) => d.externalId).sort()).toEqual(externalIds);
    expect(documents.every((d) => d.status === 'executed')).toBe(true);

    // The faults really hit the submissions: some answers were lost after acceptance and the
    // order was found by its external id instead of being sent again.
    const [{ n: foundByLookup }] = await context.orm.em
      .fork()
      .execute<Array<{ n: string }>>("select count(*) as n from order_event e join payment_order o on o.id = e.order_id where o.source = ? and e.to_state = 'submitted' and e.reason like 'found by external id%'", [SOURCE]);
    expect(Number(foundByLookup)).toBeGreaterThan(0);
    const retried = ledger.submissions.filter((s) => s.requests > 1).length;
    expect(retried).toBeGreaterThan(0);
  }, 300_000);
});
