import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';

/**
 * ioredis takes Redis's password from the URL's query as well as from its authority
 * (`redis://host:6379/0?password=...`), and `redactedUrl` hides both. Doctor's line for a Redis that
 * answers hid only the authority's: the password in the query went to doctor's stdout, where an
 * operator pastes it into a ticket or a monitoring job keeps it.
 */
describe('connector doctor names Redis without its password, however the URL gives it', () => {
  const PASSWORD = 'Canary-Redis-Pw-8d02fe';
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('doctor_redis_pw');
  });
  afterAll(async () => {
    await env.cleanup();
  });

  it('a Redis that answers: OK, its URL with the query password replaced by ***', async () => {
    // The local Redis asks for no password: ioredis warns and goes on, as with a server that does.
    const url = `${env.config.redis.url.replace(/\/$/, '')}/0?password=${PASSWORD}`;
    const res = await runCli(['doctor', '--json'], {
      env: { ...env.env, CONNECTOR_REDIS_URL: url, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' },
      cwd: env.workDir,
      timeoutMs: 60_000,
    });
    const redis = (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks.find((c) => c.name === 'redis')!;
    expect(redis.verdict).toBe('OK');
    expect(redis.detail).toMatch(/^redis:\/\/127\.0\.0\.1:\d+\/0\?password=\*\*\* version /);
    expect(`${res.stdout}\n${res.stderr}`).not.toContain(PASSWORD);
  }, 90_000);
});
