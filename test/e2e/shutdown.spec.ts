import { spawn } from 'node:child_process';
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
  ])('connector %s closes and exits 0', async (command, startedEvent) => {
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
      // The close itself completed, well before the worker's 20 s bound on waiting for BullMQ (the
      // bug: the bound ran out and BullMQ's timers kept the process alive). A blocking read's
      // watchdog timer of BullMQ, at most 11 s and then gone, may still be armed after the close;
      // the process then ends by the last resort of the lifecycle, exit 0 all the same.
      const at = (event: string) => Date.parse((JSON.parse(child.output().split('\n').find((line) => line.includes(`"event":"${event}"`)) as string) as { time: string }).time);
      expect(at(`${command}.shutdown.done`) - at(`${command}.shutdown.started`)).toBeLessThan(15_000);
      expect(child.output()).not.toContain('worker.close.timeout');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);

  it('connector scheduler started while Redis is already down still stops on SIGTERM with exit 0', async () => {
    await redis.stop('SIGKILL');
    const child = startCli(['scheduler'], { env: env.env, cwd: env.workDir });
    try {
      // (Its start used to wait for Redis for good, before the signals were handled: SIGTERM killed it, exit 143.)
      await eventually(async () => child.output().includes('"event":"scheduler.started"'), { timeoutMs: 30_000, what: 'the scheduler to start without Redis' });
      child.kill('SIGTERM');
      expect(await waitForExit(child, 60_000)).toBe(0);
      expect(child.output()).toContain('"event":"scheduler.shutdown.done"');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 120_000);
});

/**
 * The last resort: a shutdown that is done ends the process even when some library left a handle
 * on the event loop, without cutting short what close() awaits.
 */
describe('a finished graceful shutdown ends the process (real child process)', () => {
  it('exits 0 after the close, naming what was left', async () => {
    const lifecycle = join(__dirname, '..', '..', 'dist', 'connector', 'cli', 'lifecycle.js');
    const logger = join(__dirname, '..', '..', 'dist', 'connector', 'logging', 'logger.js');
    const script = `
      const { untilSignal } = require(${JSON.stringify(lifecycle)});
      const { createLogger } = require(${JSON.stringify(logger)});
      setInterval(() => undefined, 1000); // a handle nobody clears
      untilSignal(createLogger({ name: 't' }), 't', () => new Promise((r) => setTimeout(() => { console.error('CLOSED'); r(); }, 1500)))
        .then((code) => { process.exitCode = code; });
      console.error('READY');
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    await eventually(async () => output.includes('READY'), { what: 'the script to start' });
    child.kill('SIGTERM');
    expect(await waitForExit(child, 30_000)).toBe(0);
    expect(output).toContain('CLOSED');
    expect(output.indexOf('"event":"t.shutdown.done"')).toBeGreaterThan(output.indexOf('CLOSED'));
    expect(output).toMatch(/"event":"t\.shutdown\.lingering","exitCode":0,"resources":\[[^\]]*"Timeout"/);
  });
});
