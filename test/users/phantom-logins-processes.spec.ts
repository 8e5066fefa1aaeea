import { randomInt } from 'node:crypto';
import IORedis from 'ioredis';
import { startCli, waitForExit } from '../support/cli';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { SecretBox } from '../../connector/vault/secret-box';

/**
 * R-12 for a login nobody has, with two API processes (PM2 can run several) and a restart: the
 * 5th wrong password in a row answers 423 whichever process got the attempts, and the lock-out
 * outlives a restart, as a real login's count (in PostgreSQL) does. Counted in each process's
 * memory, the 5th answered 401, and a restart forgot the lock: a login that does not lock after
 * five tries is known not to exist.
 */
describe('wrong passwords for a login nobody has, across API processes', () => {
  let env: TestEnv;
  const apis: Array<ReturnType<typeof startCli> & { port: number }> = [];

  async function startApi(): Promise<ReturnType<typeof startCli> & { port: number }> {
    const port = randomInt(20_000, 40_000);
    const child = Object.assign(startCli(['api'], { env: { ...env.env, CONNECTOR_API_PORT: String(port), CONNECTOR_LOG_LEVEL: 'info' }, cwd: env.workDir }), { port });
    await eventually(async () => child.output().includes('"event":"api.listening"'), { timeoutMs: 30_000, what: `the API on port ${port} to start` });
    return child;
  }

  async function tryLogin(api: { port: number }, login: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${api.port}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login, password: 'Wrong-Pass-1' }) });
    return res.status;
  }

  beforeAll(async () => {
    env = await createTestEnv('phantom-procs');
    // The installation's master key file (made by `credentials set`): the processes share it.
    SecretBox.fromConfig(env.config);
    apis.push(await startApi(), await startApi());
  }, 90_000);
  afterAll(async () => {
    for (const api of apis) if (api.exitCode === null && api.signalCode === null) api.kill('SIGKILL');
    await env?.cleanup();
  });

  test('the 5th wrong password locks the login whichever process answers; a restart keeps the lock', async () => {
    const [a, b] = apis;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i += 1) statuses.push(await tryLogin(i % 2 === 0 ? a : b, 'ghost.login'));
    expect(statuses).toEqual([401, 401, 401, 401, 423]);
    expect(await tryLogin(b, 'ghost.login')).toBe(423);
    // Another login nobody has is not touched.
    expect(await tryLogin(b, 'other.ghost')).toBe(401);

    a.kill('SIGTERM');
    await waitForExit(a, 60_000);
    apis[0] = await startApi();
    expect(await tryLogin(apis[0], 'ghost.login')).toBe(423);
    // Nothing of the typed text is kept in the log.
    for (const api of apis) expect(api.output()).not.toContain('ghost.login');
    // Nor in Redis: the count is under a keyed hash of the login, in the connector's keys.
    const redis = new IORedis(env.config.redis.url);
    try {
      const fields = await redis.hkeys(`${env.config.redis.prefix}:phantom-login:counts`);
      expect(fields).toHaveLength(2);
      expect(fields.join(' ')).not.toMatch(/ghost/);
      expect((await redis.keys(`*ghost*`)).filter((k) => k.startsWith(env.config.redis.prefix))).toEqual([]);
    } finally {
      redis.disconnect();
    }
  }, 120_000);
});
