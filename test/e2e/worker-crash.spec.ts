import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { startCli, waitForExit } from '../support/cli';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { sampleOrder } from '../support/orders.fixture';

describe('a worker killed mid-job (real child process, SIGKILL)', () => {
  let env: TestEnv;
  let context: AppContext;

  beforeAll(async () => {
    env = await createTestEnv('crash');
    // Short BullMQ locks so the next worker takes the stalled job over within seconds.
    const configFile = join(env.workDir, 'connector.config.json');
    writeFileSync(configFile, JSON.stringify({ queue: { lockDurationMs: 1500, stalledIntervalMs: 1000 } }));
    env.env.CONNECTOR_CONFIG = configFile;
    context = await createAppContext({ config: env.config, role: 'producer' });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  it('leaves the order in a state the next worker resumes, with one effect', async () => {
    const pauseFile = join(env.workDir, 'paused');
    const doomed = startCli(['worker'], { env: { ...env.env, CONNECTOR_TEST_PAUSE_AT: 'order.validate', CONNECTOR_TEST_PAUSE_FILE: pauseFile }, cwd: env.workDir });
    const [result] = await intakeOrders(context.orm.em.fork(), 'crash', [{ order: sampleOrder({ number: 'CRASH-1' }) }], bullmqIntakePort(context.queues), { actor: 't' });
    await eventually(async () => existsSync(pauseFile), { what: 'the worker to hold the job', timeoutMs: 30_000 });
    doomed.kill('SIGKILL');
    await waitForExit(doomed);
    const state = async () => (await context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state;
    expect(await state()).toBe('received');

    const heir = startCli(['worker'], { env: env.env, cwd: env.workDir });
    try {
      await eventually(async () => ['validated', 'awaiting_signatures'].includes(await state()), { what: 'the next worker to finish the job', timeoutMs: 45_000 });
      const [{ n }] = await context.orm.em.fork().execute<Array<{ n: string }>>("select count(*) as n from order_event where order_id = ? and to_state = 'validated'", [result.orderId]);
      expect(Number(n)).toBe(1);
    } finally {
      heir.kill('SIGTERM');
      expect(await waitForExit(heir)).toBe(0);
    }
  });
});
