import { lockdownKey } from '../../connector/lockdown/lockdown.flag';
import { sessionStoreFor } from '../../connector/users/session.store';
import { runCli } from '../support/cli';
import { eventually, freePort } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * `connector lockdown on` in an emergency where PostgreSQL is down, on the built CLI with the real
 * Redis, signer agent, bank sandbox and workers: what needs only Redis and the agent is done all the
 * same (flag, queues, keys, sessions), the command exits 1 saying what held and what did not, and the
 * Redis flag alone keeps every order from the bank.
 */
describe('lockdown on with PostgreSQL out of reach', () => {
  let world: LockdownWorld;
  let downUrl: string;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown_nodb');
    downUrl = `postgresql://postgres:pg-pass-4417@127.0.0.1:${await freePort()}/connector`;
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  const cli = (args: string[], databaseUrl: string) =>
    runCli(args, {
      env: { ...world.env.env, CONNECTOR_DATABASE_URL: databaseUrl, CONNECTOR_SIGNER_URL: world.config.signer.url, CONNECTOR_SIGNER_TOKEN_FILE: world.config.signer.tokenFile },
      cwd: world.env.workDir,
      timeoutMs: 60_000,
    });
  const recorded = async () => (await world.context.orm.em.fork().execute<Array<{ state: string }>>('select state from lockdown_state where id = 1'))[0].state;

  it('sets the Redis flag, pauses every queue, wipes the keys, ends the sessions; exits 1 naming what is not done; a second run once PostgreSQL answers records it', async () => {
    const { context } = world;
    await world.unlock('ceo');
    const sessions = sessionStoreFor(context);
    await sessions.create({ id: world.users.ceo, login: 'ceo' }, new Date());

    const run = await cli(['lockdown', 'on', '--reason', 'CEO EDS token lost'], downUrl);
    expect(run.code).toBe(1);
    // No incident, so no id: a script must not take anything on stdout for one.
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/^LOCKDOWN_NOT_RECORDED: the lockdown holds for submission \(Redis flag set\) but PostgreSQL did not record it: PostgreSQL at 127\.0\.0\.1:\d+ .*refused the connection/m);
    expect(run.stderr).toMatch(/held: the Redis lockdown flag is set/);
    expect(run.stderr).toMatch(/held: queues paused: intake, validate, sign, submit/);
    expect(run.stderr).toMatch(/held: signer agent wiped every unlocked key \(1 users\)/);
    expect(run.stderr).toMatch(/held: 1 sessions ended/);
    expect(run.stderr).toMatch(/not done \(needs PostgreSQL\): the lockdown record in PostgreSQL .*no incident id yet/);
    expect(run.stderr).toMatch(/not done \(needs PostgreSQL\): the Client Secret marked compromised/);
    expect(run.stderr).toMatch(/not done \(needs PostgreSQL\): orders not yet at the bank moved to held/);
    expect(run.stderr).toMatch(/Run connector lockdown on again .* as soon as PostgreSQL answers/);
    expect(run.stderr).toMatch(/\+7 7172 770 622/);
    expect(run.stderr).not.toContain('pg-pass-4417');

    // What it says held, holds.
    expect(await context.redis.exists(lockdownKey(world.config.redis.prefix))).toBe(1);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
    expect(await world.unlocked('ceo')).toBe(false);
    expect(await sessions.countForUser(world.users.ceo)).toBe(0);
    expect(await recorded()).toBe('normal');

    // Status says the lock is Redis' only, and what to do.
    const status = await cli(['lockdown', 'status', '--json'], world.env.env.CONNECTOR_DATABASE_URL!);
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'locked', incidentId: null, warnings: [expect.stringMatching(/PostgreSQL has no lockdown recorded .* run connector lockdown on/)] });
    // So does doctor (it used to read PostgreSQL only and say `lockdown normal`).
    const doctor = JSON.parse((await cli(['doctor', '--json'], world.env.env.CONNECTOR_DATABASE_URL!)).stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> };
    expect(doctor.checks.find((c) => c.name === 'lockdown-redis')).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/the Redis lockdown flag is set/) });

    // PostgreSQL answers again: the same command records it and prints the incident id.
    const again = await cli(['lockdown', 'on', '--reason', 'CEO EDS token lost'], world.env.env.CONNECTOR_DATABASE_URL!);
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toMatch(/^[0-9a-f-]{36}$/);
    expect(await recorded()).toBe('locked');
    await world.reset();
  }, 120_000);

  it('the Redis flag it leaves is enough: an order signed before it is held by the worker, never sent', async () => {
    const { context } = world;
    await world.reset();
    await world.unlock('ceo');
    // The order is signed and waits for submission when the lock lands.
    await context.queues.get('submit').pause();
    world.startWorkers();
    const before = (await world.ledger()).total;
    const [id] = await world.intake(['LD-NODB-1']);
    await eventually(async () => (await world.states([id]))[id] === 'signed', { timeoutMs: 30_000, what: 'the order signed, its submission queued' });

    expect((await cli(['lockdown', 'on', '--reason', 'test: PostgreSQL down in an emergency'], downUrl)).code).toBe(1);
    expect(await recorded()).toBe('normal');
    // Only the Redis flag stands in the way now: the queues run again.
    await Promise.all(context.queues.all().map((q) => q.resume()));
    await eventually(async () => (await world.states([id]))[id] === 'held', { timeoutMs: 30_000, what: 'the submit stage holding the order on the Redis flag' });
    expect((await world.ledger()).total).toBe(before);
    await world.stopWorkers();
    await world.reset();
  }, 120_000);
});
