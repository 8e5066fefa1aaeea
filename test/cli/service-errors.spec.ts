import { runCli } from '../support/cli';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';

/**
 * PostgreSQL or Redis down, on the built CLI: the operator reads which service, where (the URL
 * without its password) and what to check, not the driver's bare "connect ECONNREFUSED 127.0.0.1:1".
 */
describe('CLI with PostgreSQL or Redis out of reach', () => {
  let env: TestEnv;
  let closedPort = 0;

  beforeAll(async () => {
    env = await createTestEnv('service_errors');
    closedPort = await freePort();
  }, 60_000);
  afterAll(async () => {
    await env?.cleanup();
  });

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}, input?: string) => runCli(args, { env: { ...env.env, ...extra }, cwd: env.workDir, input, timeoutMs: 60_000 });

  it('names PostgreSQL, its address and `connector doctor`, never the password', async () => {
    const run = await cli(['orders', 'list'], { CONNECTOR_DATABASE_URL: `postgresql://postgres:pg-pass-7731@127.0.0.1:${closedPort}/connector` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^POSTGRESQL_UNREACHABLE: PostgreSQL at 127\\.0\\.0\\.1:${closedPort} \\(postgresql://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/connector\\) refused the connection \\(ECONNREFUSED\\)`));
    expect(run.stderr).toMatch(/CONNECTOR_DATABASE_URL/);
    expect(run.stderr).toMatch(/connector doctor/);
    expect(run.stderr + run.stdout).not.toContain('pg-pass-7731');
  }, 90_000);

  it('names Redis, its address and `connector doctor`, never the password', async () => {
    // A user to block: blocking ends their sessions, which live in Redis. (The connection's own
    // warnings come first on stderr, as log lines.)
    expect((await cli(['users', 'add', 'blockme', '--role', 'viewer', '--password-stdin'], {}, 'Correct-Horse-9\n')).code).toBe(0);
    const run = await cli(['users', 'block', 'blockme'], { CONNECTOR_REDIS_URL: `redis://:redis-pass-5521@127.0.0.1:${closedPort}` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^REDIS_UNREACHABLE: Redis at 127\\.0\\.0\\.1:${closedPort} \\(redis://:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}\\) did not answer`, 'm'));
    expect(run.stderr).toMatch(/CONNECTOR_REDIS_URL/);
    expect(run.stderr).toMatch(/connector doctor/);
    expect(run.stderr + run.stdout).not.toContain('redis-pass-5521');
  }, 90_000);
});
