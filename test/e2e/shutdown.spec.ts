import { join } from 'node:path';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { startCli, waitForExit } from '../support/cli';
import { freePort, PrivateRedis } from '../support/pipeline-world';

/**
 * INTERFACES.md: SIGINT/SIGTERM stop the long-running processes gracefully with exit 0. Here Redis
 * (a private server: the machine's is never stopped) goes away first, as in an outage, and the
 * process is then asked to stop. Before the fix the worker logged `worker.shutdown.done` 20 s later
 * and stayed alive for good (BullMQ's close waited for an ioredis `end` event that never comes
 * while a connection waits to reconnect, and its lock-renewal timer held the event loop), and the
 * scheduler never finished its shutdown (the lease release waited for Redis).
 */
describe('long-running processes stop on SIGTERM while Redis is down (real child processes)', () => {
  let env: TestEnv;
  let redis: PrivateRedis;

  beforeAll(async () => {
    redis = new PrivateRedis(await freePort(), '');
    env = await createTestEnv('shutdown', {
      CONNECTOR_REDIS_URL: redis.url,
      CONNECTOR_LOG_LEVEL: 'info',
      CONNECTOR_API_PORT: String(await freePort()),
      CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`,
      CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}`,
    });
    redis.dir = join(env.workDir, 'redis');
  });
  afterAll(async () => {
    await redis?.stop('SIGKILL');
    await env?.cleanup();
  });

  it.each([
    ['worker', 'worker.started'],
    ['scheduler', 'scheduler.started'],
    ['api', 'api.listening'],
  ])('connector %s exits 0 and leaves nothing behind', async (command, startedEvent) => {
    await redis.start();
    const child = startCli([command], { env: env.env, cwd: env.workDir });
    try {
      await eventually(async () => child.output().includes(`"event":"${startedEvent}"`), { timeoutMs: 30_000, what: `${command} to start` });
      await redis.stop('SIGKILL');
      // The process has noticed: its connections are between two reconnection attempts.
      const before = child.output().length;
      await eventually(async () => child.output().slice(before).includes('ECONNREFUSED'), { timeoutMs: 30_000, what: `${command} to see Redis gone` });

      const signalled = Date.now();
      child.kill('SIGTERM');
      const code = await waitForExit(child, 60_000).catch((err: Error) => {
        throw new Error(`${err.message} (${Math.round((Date.now() - signalled) / 1000)} s after SIGTERM)\n${child.output().slice(-3000)}`);
      });
      expect(code).toBe(0);
      expect(child.output()).toContain(`"event":"${command}.shutdown.done"`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});

