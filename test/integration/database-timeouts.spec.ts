import { Writable } from 'node:stream';
import { Client } from 'pg';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { loadConfig } from '../../config/load-config';
import { DATABASE_WAITS_BEFORE_INCIDENT, startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { validateBatch } from '../../queue/jobs/validate-order.job';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transientDatabaseError } from '../../connector/shared/pg-errors';
import { openOrm, takeAdvisoryLockWaiting } from '../../connector/persistence/database';
import { sampleOrder } from '../support/orders.fixture';

/**
 * PostgreSQL's bounds on the connector's connections (database.*TimeoutMs): a statement behind a
 * lock another session holds fails within lockTimeoutMs instead of waiting for ever, and the job it
 * ran in is retried, never turned into a failed order, then succeeds once the lock is released.
 */
describe('database timeouts on real PostgreSQL', () => {
  let env: TestEnv;
  let context: AppContext;
  let workers: RunningWorkers | undefined;
  let holder: Client | undefined;
  const events: Array<Record<string, unknown>> = [];
  const LOCK_TIMEOUT_MS = 700;

  beforeAll(async () => {
    env = await createTestEnv('dbtimeouts');
    // One attempt only: a transient database error must not spend it and fail the order.
    const config = loadConfig({
      env: env.env,
      cwd: env.workDir,
      overrides: { 'database.lockTimeoutMs': LOCK_TIMEOUT_MS, 'queue.attempts': 1, 'queue.backoffMs': 100, 'worker.batchWaitMs': 0 },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) events.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    context = await createAppContext({ config, role: 'worker', logger: createLogger({ level: 'warn' }, sink) });
  });
  afterEach(async () => {
    await holder?.query('rollback').catch(() => undefined);
    await holder?.end().catch(() => undefined);
    holder = undefined;
    await workers?.close(5_000);
    workers = undefined;
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  const stateOf = async (id: string) => (await context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0]?.state;

  /** A second session takes the order's row lock and keeps its transaction open (a stuck session). */
  async function lockRow(orderId: string): Promise<Client> {
    const client = new Client({ connectionString: env.config.database.url });
    await client.connect();
    await client.query('begin');
    await client.query('select id from payment_order where id = $1 for update', [orderId]);
    return client;
  }

  it('sets the configured bounds on every pooled connection, and none on the migration connection', async () => {
    const [row] = await context.orm.em.fork().execute<Array<{ s: string; l: string; i: string }>>(
      "select current_setting('statement_timeout') as s, current_setting('lock_timeout') as l, current_setting('idle_in_transaction_session_timeout') as i",
    );
    expect(row).toEqual({ s: '1min', l: `${LOCK_TIMEOUT_MS}ms`, i: '1min' });
    const unbounded = await openOrm(context.config, 'unbounded');
    try {
      const [m] = await unbounded.em.fork().execute<Array<{ s: string; l: string }>>("select current_setting('statement_timeout') as s, current_setting('lock_timeout') as l");
      expect(m).toEqual({ s: '0', l: '0' });
    } finally {
      await unbounded.close(true);
    }
  });

  it('fails a statement behind a held row lock within the lock timeout, with a clear transient error', async () => {
    const [order] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'LOCKED-1' }) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 't' });
    holder = await lockRow(order.orderId);
    const started = Date.now();
    const outcome = await validateBatch(context, [order.orderId]).then(
      (results) => results[0],
      (err: unknown) => err,
    );
    const elapsed = Date.now() - started;
    expect(outcome).toBeInstanceOf(Error);
    expect((outcome as Error).message).toMatch(/canceling statement due to lock timeout/);
    expect(transientDatabaseError(outcome)).toMatch(/lock_timeout \(database\.lockTimeoutMs\)/);
    // Well within the bounded wait: the lock timeout, not the holder, decided when it ended.
    expect(elapsed).toBeLessThan(LOCK_TIMEOUT_MS + 5_000);
    expect(await stateOf(order.orderId)).toBe('received');
  });

  it('a database error that keeps coming is said once by a database_trouble incident; the job goes on waiting and passes once it clears', async () => {
    const [order] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'LOCKED-3' }) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 't' });
    holder = await lockRow(order.orderId);
    await bullmqIntakePort(context.queues).enqueueValidate([order.orderId]);
    workers = startWorkers(context, context.redis);
    const troubles = () => context.orm.em.fork().execute<Array<{ status: string; evidence: { jobId: string; inARow: number; why: string } }>>("select status, evidence from incident where kind = 'database_trouble'");
    const opened = await eventually(async () => ((await troubles()).length > 0 ? troubles() : null), { what: 'a database_trouble incident', timeoutMs: 60_000 });
    expect(opened).toEqual([{ status: 'open', evidence: expect.objectContaining({ jobId: `validate-${order.orderId}`, inARow: DATABASE_WAITS_BEFORE_INCIDENT, why: expect.stringMatching(/lock_timeout/) }) }]);
    expect(events.filter((e) => e.event === 'job.database_transient' && e.jobId === `validate-${order.orderId}`).length).toBeGreaterThanOrEqual(DATABASE_WAITS_BEFORE_INCIDENT);
    expect(await stateOf(order.orderId)).toBe('received');
    await holder.query('commit');
    await holder.end();
    holder = undefined;
    await eventually(async () => ['validated', 'awaiting_signatures'].includes((await stateOf(order.orderId)) ?? ''), { what: 'the order validated', timeoutMs: 30_000 });
    expect(await troubles()).toHaveLength(1);
  }, 90_000);

  it('an advisory lock allowed a longer wait gets it past statementTimeoutMs and queryTimeoutMs; past its own wait it fails as a transient lock timeout', async () => {
    // Bounds far below the holder's time: a single blocking wait would be cancelled by them.
    const orm = await openOrm({ database: { ...context.config.database, statementTimeoutMs: 800, queryTimeoutMs: 1_200, lockTimeoutMs: 300 } });
    holder = new Client({ connectionString: env.config.database.url });
    await holder.connect();
    await holder.query('begin');
    await holder.query("select pg_advisory_xact_lock(hashtext('timeouts-spec'))");
    try {
      const started = Date.now();
      const release = setTimeout(() => void holder?.query('commit'), 2_000);
      await orm.em.fork().transactional(async (tx) => takeAdvisoryLockWaiting(tx, 10_000, 'hashtext(?)', ['timeouts-spec']));
      clearTimeout(release);
      expect(Date.now() - started).toBeGreaterThanOrEqual(1_900);

      await holder.query('begin');
      await holder.query("select pg_advisory_xact_lock(hashtext('timeouts-spec'))");
      const refused = await orm.em.fork().transactional(async (tx) => takeAdvisoryLockWaiting(tx, 500, 'hashtext(?)', ['timeouts-spec'])).then(() => null, (err: unknown) => err);
      expect(refused).toBeInstanceOf(Error);
      expect(transientDatabaseError(refused)).toMatch(/lock_timeout/);
    } finally {
      await orm.close(true);
    }
  });

  it('retries the job while the lock is held, without failing the order, and validates it once the lock is released', async () => {
    const [order] = await intakeOrders(context.orm.em.fork(), 'q', [{ order: sampleOrder({ number: 'LOCKED-2' }) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 't' });
    holder = await lockRow(order.orderId);
    await bullmqIntakePort(context.queues).enqueueValidate([order.orderId]);
    workers = startWorkers(context, context.redis);
    const transient = () => events.filter((e) => e.event === 'job.database_transient' && e.jobId === `validate-${order.orderId}`);
    const failed = () => events.filter((e) => e.event === 'job.failed' && e.jobId === `validate-${order.orderId}`);
    // Two tries met the lock (the first one's error did not end the job, its only attempt), or the job failed.
    await eventually(async () => transient().length >= 2 || failed().length > 0, { what: 'the job to meet the lock twice', timeoutMs: 30_000 });
    expect(failed().map((e) => e.err)).toEqual([]);
    expect(transient()[0].why).toMatch(/lock_timeout/);
    expect(await stateOf(order.orderId)).toBe('received');
    await holder.query('commit');
    await holder.end();
    holder = undefined;
    await eventually(async () => ['validated', 'awaiting_signatures'].includes((await stateOf(order.orderId)) ?? ''), { what: 'the order validated', timeoutMs: 30_000 });
  });
});
