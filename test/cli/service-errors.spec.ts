import { runCli } from '../support/cli';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { openOrm } from '../../connector/persistence/database';

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
  /** As an operator runs it: no CONNECTOR_LOG_LEVEL of the test environment's. */
  const operatorCli = (args: string[], extra: NodeJS.ProcessEnv = {}, input?: string) => {
    const { CONNECTOR_LOG_LEVEL: _level, ...rest } = { ...process.env, ...env.env, ...extra };
    return runCli(args, { env: rest, cwd: env.workDir, input, timeoutMs: 60_000, replaceEnv: true });
  };

  it('names PostgreSQL, its address and `connector doctor`, never the password', async () => {
    const run = await cli(['orders', 'list'], { CONNECTOR_DATABASE_URL: `postgresql://postgres:pg-pass-7731@127.0.0.1:${closedPort}/connector` });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`^POSTGRESQL_UNREACHABLE: PostgreSQL at 127\\.0\\.0\\.1:${closedPort} \\(postgresql://postgres:\\*\\*\\*@127\\.0\\.0\\.1:${closedPort}/connector\\) refused the connection \\(ECONNREFUSED\\)`));
    expect(run.stderr).toMatch(/CONNECTOR_DATABASE_URL/);
    expect(run.stderr).toMatch(/connector doctor/);
    expect(run.stderr + run.stdout).not.toContain('pg-pass-7731');
  }, 90_000);

  it('users block with Redis down blocks all the same and names Redis, its address and `connector doctor` in its warning, never the password', async () => {
    // A user to block: blocking ends their sessions, which live in Redis. With Redis down the block
    // still happens (R-17: disabled at once, key locked, bank reminder); the sessions, unusable
    // without Redis and refused at their next request, are a warning (test/users/block-without-redis.spec.ts).
    const added = await operatorCli(['users', 'add', 'blockme', '--role', 'viewer', '--password-stdin'], {}, 'Correct-Horse-9\n');
    expect(added.code).toBe(0);
    // A one-shot command's own words only: no log lines (pino JSON) around them.
    expect(added.stderr.split('\n').filter((line) => line.startsWith('{'))).toEqual([]);
    const run = await operatorCli(['users', 'block', 'blockme'], { CONNECTOR_REDIS_URL: `redis://:redis-pass-5521@127.0.0.1:${closedPort}` });
    expect(run.code).toBe(0);
    // The Redis reconnect warnings no longer bury the one line the operator needs (36 of them before).
    expect(run.stderr.split('\n').filter((line) => line.includes('"event":"redis.error"') || line.includes('"event":"queue.error"'))).toEqual([]);
    expect(run.stderr).toMatch(/^user blockme blocked; 0 session\(s\) ended$/m);
    expect(run.stderr).toMatch(/^WARNING: sessions were not ended: Redis could not be reached \(.+; check Redis and CONNECTOR_REDIS_URL, connector doctor says which\); they end at their next request because the user is blocked$/m);
    expect(run.stderr + run.stdout).not.toContain('redis-pass-5521');
    // Blocked in PostgreSQL: the block holds whatever Redis does.
    const orm = await openOrm(env.config);
    try {
      const [row] = await orm.em.fork().execute<Array<{ blocked_reason: string | null }>>('select blocked_reason from app_user where login = ?', ['blockme']);
      expect(row.blocked_reason).toBe('admin');
    } finally {
      await orm.close(true);
    }
  }, 90_000);

  it('orders retry and lockdown resolve with Redis down say REDIS_UNREACHABLE at once and change nothing (BullMQ waited for ever)', async () => {
    const orm = await openOrm(env.config);
    try {
      const [{ id }] = await orm.em.fork().execute<Array<{ id: string }>>(
        `insert into payment_order (id, source, number, doc_date, value_date, amount_tiyn, currency, payer_name, payer_iin_bin, payer_iban, payer_bic, payer_kod,
           beneficiary_name, beneficiary_iin_bin, beneficiary_iban, beneficiary_bic, beneficiary_kbe, knp, purpose, state, failed_from, last_error, external_id, created_at, updated_at, state_changed_at)
         values (gen_random_uuid(), 'erp', '77', '2026-11-26', '2026-11-26', 100, 'KZT', 'A', '123456789012', 'KZ000000000000000000', 'AAAAKZKA', '17',
           'B', '123456789012', 'KZ000000000000000001', 'AAAAKZKA', '17', '119', 'p', 'failed', 'received', 'TRANSIENT: test', 'ext-77', now(), now(), now())
         returning id`,
      );
      const down = { CONNECTOR_REDIS_URL: `redis://127.0.0.1:${closedPort}` };
      const retried = await cli(['orders', 'retry', id], down);
      expect(retried.code).toBe(1);
      expect(retried.stderr).toMatch(new RegExp(`^REDIS_UNREACHABLE: Redis at 127\\.0\\.0\\.1:${closedPort} .*refused the connection`, 'm'));
      const [row] = await orm.em.fork().execute<Array<{ state: string; last_error: string }>>('select state, last_error from payment_order where id = ?', [id]);
      expect(row).toEqual({ state: 'failed', last_error: 'TRANSIENT: test' });

      const resolved = await cli(['lockdown', 'resolve', '--incident', id, '--bank-notified-at', '2026-11-26T10:00:00Z', '--bank-reference', 'REF-1'], down);
      expect(resolved.code).toBe(1);
      expect(resolved.stderr).toMatch(/^REDIS_UNREACHABLE: Redis at /m);

      // With Redis up the same retry goes through.
      const ok = await cli(['orders', 'retry', id]);
      expect(ok.code).toBe(0);
      expect(ok.stderr + ok.stdout).toMatch(/failed -> received, queued/);
    } finally {
      await orm.close(true);
    }
  }, 90_000);
});
