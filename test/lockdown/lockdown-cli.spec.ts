import { Queue, type Job } from 'bullmq';
import { createAppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { lockdownKey } from '../../connector/lockdown/lockdown.flag';
import { sessionStoreFor } from '../../connector/users/session.store';
import { handleSweepOrders } from '../../queue/jobs/sweep-orders.job';
import { reapplyRedisLock } from '../../connector/lockdown/lockdown.service';
import { lockdownDepsFor, lockdownPortsFor } from '../../queue/lockdown.trigger';
import IORedis from 'ioredis';
import { QUEUE_NAMES } from '../../queue/queue-names';
import { runCli } from '../support/cli';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';

/** The CLI contract of INTERFACES.md, on the built CLI, with no signer agent running. */
describe('connector lockdown (CLI)', () => {
  let env: TestEnv;
  let cliEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    env = await createTestEnv('lockdown_cli');
    // Nothing listens here: the agent is "not running".
    cliEnv = { ...env.env, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9' };
  }, 60_000);
  afterAll(async () => {
    await env?.cleanup();
  });

  const cli = (args: string[], input?: string) => runCli(args, { env: cliEnv, cwd: env.workDir, input });

  it('on -> status -> resolve refuses naming every step -> resolve succeeds', async () => {
    const normal = await cli(['lockdown', 'status', '--json']);
    expect(normal.code).toBe(0);
    expect(JSON.parse(normal.stdout)).toEqual({ state: 'normal', since: null, reason: null, scope: null, incidentId: null, heldOrders: 0, warnings: [] });
    // With Redis silent, "normal" says what it could not see (a lockdown held by the Redis flag alone).
    const blind = await runCli(['lockdown', 'status', '--json'], { env: { ...cliEnv, CONNECTOR_REDIS_URL: `redis://127.0.0.1:${await freePort()}` }, cwd: env.workDir, timeoutMs: 60_000 });
    expect(JSON.parse(blind.stdout)).toMatchObject({ state: 'normal', warnings: [expect.stringMatching(/^Redis did not answer .*cannot be seen/)] });

    expect((await cli(['lockdown', 'on', '--reason', 'x', '--scope', 'everything'])).code).toBe(2);
    // A mistyped login locks nobody's EDS: refused before anything is engaged.
    const typo = await cli(['lockdown', 'on', '--reason', 'EDS token lost', '--scope', 'user:nobody']);
    expect([typo.code, typo.stdout]).toEqual([1, '']);
    expect(typo.stderr).toMatch(/^USER_NOT_FOUND: no user "nobody" in this connector, so scope user:nobody would lock nobody's EDS/m);
    expect(JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout).state).toBe('normal');

    const on = await cli(['lockdown', 'on', '--reason', 'Client Secret left on a shared drive', '--scope', 'credentials']);
    expect(on.code).toBe(0);
    const incidentId = on.stdout.trim();
    expect(incidentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(on.stderr).toMatch(/warning: signer agent not reached/);
    // The headline does not say what did not happen.
    expect(on.stderr).toMatch(/lockdown in force since .*: queues paused \(keys NOT wiped: see the warning\) in \d+ ms/);
    expect(on.stderr).not.toMatch(/keys wiped in/);
    expect(on.stderr).toMatch(/\+7 7172 770 622/);

    const redis = new IORedis(env.config.redis.url, { maxRetriesPerRequest: 3 });
    try {
      for (const name of QUEUE_NAMES) {
        const queue = new Queue(name, { connection: redis, prefix: env.config.redis.prefix });
        expect(await queue.isPaused()).toBe(true);
        await queue.close();
      }
    } finally {
      redis.disconnect();
    }

    const locked = JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout);
    expect(Object.keys(locked)).toEqual(['state', 'since', 'reason', 'scope', 'incidentId', 'heldOrders', 'warnings']);
    expect(locked).toMatchObject({ state: 'locked', reason: 'Client Secret left on a shared drive', scope: 'credentials', incidentId, heldOrders: 0 });
    expect(locked.warnings.join(' ')).toMatch(/signer agent not reached/);

    const doctor = JSON.parse((await cli(['doctor', '--json'])).stdout) as { checks: Array<{ name: string; verdict: string; hint?: string }> };
    expect(doctor.checks.find((c) => c.name === 'lockdown')).toMatchObject({ verdict: 'WARN', hint: expect.stringContaining(incidentId) });

    // A notice to the bank before the lockdown (a call made before the engage, even days before) is
    // taken: only the steps still missing are named. One in the future is a missing step (INTERFACES:
    // exit 1 naming every missing step); the lockdown holds.
    const since = locked.since as string;
    const daysBefore = new Date(new Date(since).getTime() - 8 * 24 * 3_600_000).toISOString();
    const called = await cli(['lockdown', 'resolve', '--incident', incidentId, '--bank-notified-at', daysBefore, '--bank-reference', 'ACB-CALLED']);
    expect(called.code).toBe(1);
    expect(called.stderr).toMatch(/^LOCKDOWN_STEPS_MISSING: /);
    expect(called.stderr).not.toMatch(/bank notification/);
    const late = new Date(Date.now() + 3_600_000).toISOString();
    const future = await cli(['lockdown', 'resolve', '--incident', incidentId, '--bank-notified-at', late, '--bank-reference', 'ACB-LATE']);
    expect(future.code).toBe(1);
    expect(future.stderr).toMatch(/^LOCKDOWN_STEPS_MISSING: /);
    expect(future.stderr).toContain(`bank notification: --bank-notified-at ${late} is in the future`);
    expect(JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout)).toMatchObject({ state: 'locked', incidentId });

    const refused = await cli(['lockdown', 'resolve', '--incident', incidentId]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^LOCKDOWN_STEPS_MISSING: /);
    expect(refused.stderr).toMatch(/--bank-notified-at/);
    expect(refused.stderr).toMatch(/--bank-reference/);
    // No pair stored in this installation: the step says to store one (`set`), not to rotate one.
    expect(refused.stderr).toMatch(/Client Secret rotation: generate a new Client ID \/ Client Secret pair .* connector credentials set --client-id ID --secret-stdin \(none is stored/);

    // A new pair generated after the lockdown satisfies the rotation step.
    expect((await cli(['credentials', 'set', '--client-id', 'new-client', '--secret-stdin'], 'a-brand-new-secret-123\n')).code).toBe(0);
    const resolved = await cli(['lockdown', 'resolve', '--incident', incidentId, '--bank-notified-at', new Date().toISOString(), '--bank-reference', 'ACB-2026-77', '--notified-by', 'Chief Accountant', '--note', 'new pair generated in Internet-banking']);
    expect(resolved.stderr).toMatch(/lockdown resolved/);
    expect(resolved.code).toBe(0);
    expect(JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout).state).toBe('normal');
    // The note (as the API's `note`) is on the incident's timeline.
    const shown = JSON.parse((await cli(['incidents', 'show', incidentId, '--json'])).stdout) as { timeline: Array<{ text: string }> };
    expect(shown.timeline.map((t) => t.text)).toContainEqual(expect.stringMatching(/^resolved: new pair generated in Internet-banking; 0 held orders back to validation/));
  }, 120_000);

  it('the compromised Client Secret stored again with credentials set is refused (SECRET_UNCHANGED): the rotation step stays missing, the pair stays revoked', async () => {
    // The pair the previous test stored is the one that leaked now.
    const LEAKED = 'a-brand-new-secret-123';
    const on = await cli(['lockdown', 'on', '--reason', 'Client Secret pasted in a chat', '--scope', 'credentials']);
    expect(on.code).toBe(0);
    const incidentId = on.stdout.trim();

    const same = await cli(['credentials', 'set', '--client-id', 'new-client', '--secret-stdin'], `${LEAKED}\n`);
    expect(same.code).toBe(1);
    expect(same.stderr).toMatch(/^SECRET_UNCHANGED: this is the Client Secret already stored; .*Generate a new Client ID \/ Client Secret pair in the bank's Internet-banking/m);
    // Another Client ID with the leaked secret is the same leaked secret.
    expect((await cli(['credentials', 'set', '--client-id', 'other-client', '--secret-stdin'], `${LEAKED}\n`)).stderr).toMatch(/^SECRET_UNCHANGED: /m);
    for (const out of [same.stdout, same.stderr]) expect(out).not.toContain(LEAKED);
    expect(JSON.parse((await cli(['credentials', 'status', '--json'])).stdout)).toMatchObject({ clientId: 'new-client', usable: false, revokedBy: 'lockdown' });

    const resolve = () => cli(['lockdown', 'resolve', '--incident', incidentId, '--bank-notified-at', new Date().toISOString(), '--bank-reference', 'ACB-2026-78']);
    const refused = await resolve();
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Client Secret rotation: generate a new Client Secret/);

    expect((await cli(['credentials', 'set', '--client-id', 'new-client', '--secret-stdin'], 'another-new-secret-456\n')).code).toBe(0);
    expect((await resolve()).code).toBe(0);
    expect(JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout).state).toBe('normal');
  }, 120_000);

  it('with Redis out of reach, records the lock in PostgreSQL, says truly what did not hold (exit 1, not "queues paused"); the maintenance sweep re-applies it once Redis answers', async () => {
    const redisDown = { ...cliEnv, CONNECTOR_REDIS_URL: `redis://127.0.0.1:${await freePort()}` };
    // The bound is generous (a loaded machine): BullMQ's pause used to wait for Redis for good.
    const on = await runCli(['lockdown', 'on', '--reason', 'Redis down and a token lost', '--scope', 'credentials'], { env: redisDown, cwd: env.workDir, timeoutMs: 60_000 });
    // INTERFACES.md: exit 0 once the lock holds, flag set and queues paused; neither did here.
    expect(on.code).toBe(1);
    const incidentId = on.stdout.trim();
    expect(incidentId).toMatch(/^[0-9a-f-]{36}$/);
    expect(on.stderr).toMatch(/recorded in PostgreSQL, which every stage checks before a side effect/);
    expect(on.stderr).not.toMatch(/queues paused and keys wiped/);
    expect(on.stderr).toMatch(/warning: the Redis lockdown flag could not be set \(Redis did not answer: not running or not reachable\); workers still see the PostgreSQL flag/);
    expect(on.stderr).toMatch(/warning: queues could not be paused \(Redis did not answer within 5000 ms\)/);
    expect(on.stderr).toMatch(/^LOCKDOWN_INCOMPLETE: Redis did not take the lockdown flag/m);
    expect(on.stderr).toMatch(/\+7 7172 770 622/);
    expect(on.stderr).toMatch(/warning: sessions not ended/);
    expect(JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout)).toMatchObject({ state: 'locked', incidentId, scope: 'credentials' });

    // Redis answers again (here: the machine's own, which never had the flag): the worker's maintenance sweep re-applies it.
    const context = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    try {
      // A console session the lockdown could not end (a stolen cookie, say): it must not outlive the lockdown.
      const sessions = sessionStoreFor({ redis: context.redis, config: env.config });
      const { sessionId } = await sessions.create({ id: '00000000-0000-0000-0000-0000000000aa', login: 'someone' }, new Date());
      expect(await context.redis.exists(lockdownKey(env.config.redis.prefix))).toBe(0);
      // Ending the sessions fails once (Redis flapping): nothing is paused yet, so the sweep, which
      // runs only while its queue is not paused, tries again; the warning stays until it holds.
      const ports = lockdownPortsFor(context);
      const flapping = { ...ports, sessions: { ...ports.sessions, endAll: () => Promise.reject(new Error('Connection is closed.')) } };
      await expect(reapplyRedisLock(lockdownDepsFor(context, flapping))).rejects.toThrow('Connection is closed.');
      for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(false);
      expect((JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout) as { warnings: string[] }).warnings).toContainEqual(expect.stringMatching(/^sessions not ended/));
      const swept = await handleSweepOrders({}, context, { id: 'sweep' } as unknown as Job);
      expect(swept).toMatchObject({ lockdownReapplied: true });
      expect(await context.redis.exists(lockdownKey(env.config.redis.prefix))).toBe(1);
      for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
      expect(await sessions.touch(sessionId, new Date())).toEqual({ state: 'missing' });
      // Status no longer says the Redis parts did not hold; the audit log says the worker put them back.
      const status = JSON.parse((await cli(['lockdown', 'status', '--json'])).stdout) as { warnings: string[] };
      expect(status.warnings.filter((w) => /Redis lockdown flag could not be set|queues could not be paused|sessions not ended/.test(w))).toEqual([]);
      expect(await context.orm.em.fork().execute("select action from audit_event where action = 'lockdown.redis_reapplied' and subject = ?", [incidentId])).toHaveLength(1);
      // A later sweep while it is still locked applies it again (idempotent), and leaves the sessions of
      // people who logged in since (to resolve it) alone: those the lockdown missed were ended once.
      const later = await sessions.create({ id: '00000000-0000-0000-0000-0000000000bb', login: 'admin' }, new Date());
      expect(await handleSweepOrders({}, context, { id: 'sweep' } as unknown as Job)).toMatchObject({ lockdownReapplied: true });
      expect(await sessions.touch(later.sessionId, new Date())).toMatchObject({ state: 'active' });
    } finally {
      await context.close();
    }
  }, 120_000);
});
