import { openIncident } from '../../connector/incidents/incident.service';
import { engageLockdown, resolveLockdown } from '../../connector/lockdown/lockdown.service';
import { lockdownKey } from '../../connector/lockdown/lockdown.flag';
import { lockdownDepsFor, lockdownStatusOf, resolveLockdownIn, triggerLockdown } from '../../queue/lockdown.trigger';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * The resolve as a responder meets it: what it must still ask for when something else happened
 * around the lockdown (on real PostgreSQL, Redis, the sandbox and the signer agent).
 */
describe('lockdown resolve: nothing found around the lockdown is swallowed', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown-resolve-review');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('an unexplained debit found just before a narrower lockdown (not yet escalated by the paused sweep) widens it: the resolve asks for the Client Secret rotation', async () => {
    const { context } = world;
    await world.reset();
    // The statement fetch found it a moment ago; the maintenance sweep that escalates it had not run yet.
    const { incident: debit } = await openIncident(context.orm.em.fork(), {
      kind: 'unexplained_debit',
      severity: 'critical',
      title: 'Debit of 9 999 999.00 from the payer account matches no order: possible unauthorised payment',
      dedupeKey: `unexplained_debit:review:${Date.now()}`,
      evidence: { bankLineId: 'REVIEW-1' },
      actor: 'reconciliation',
    });
    // The responder locks down one user's EDS (a password reported stolen): every queue paused, the sweep too.
    const { incidentId, scope } = await triggerLockdown(context, { trigger: 'manual', reason: 'test: a password reported stolen', scope: 'user:revoked', actor: 'cli:tester' });
    expect(scope).toBe('user:revoked');
    const resolve = () => resolveLockdownIn(context, { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-R1', actor: 'cli:tester', isAdmin: true });
    // Not lifted with a Client Secret that may have made that debit: the step is asked, the lock holds.
    await expect(resolve()).rejects.toMatchObject({ code: 'LOCKDOWN_STEPS_MISSING', details: { missing: expect.arrayContaining([expect.stringMatching(/^Client Secret rotation/)]) } });
    const status = await lockdownStatusOf(context);
    expect([status.state, status.scope, status.incidentId]).toEqual(['locked', 'all', incidentId]);
    const [row] = await context.orm.em.fork().execute<Array<{ linked: string | null }>>("select evidence->>'lockdownIncidentId' as linked from incident where id = ?", [debit.id]);
    expect(row.linked).toBe(incidentId);
  }, 60_000);

  /** `deps.em` whose first `transactional` (the resolve's, or the engage's record) runs `first` before it. */
  function raceAtTransaction(deps: ReturnType<typeof lockdownDepsFor>, first: () => Promise<void>): { em: typeof deps.em; raced: () => boolean } {
    let raced = false;
    const em = new Proxy(deps.em, {
      get(target, prop, receiver) {
        if (prop === 'transactional' && !raced) {
          return async (work: Parameters<typeof target.transactional>[0]) => {
            raced = true;
            await first();
            return target.transactional(work);
          };
        }
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    return { em, raced: () => raced };
  }

  /** A fresh world locked down for one user's EDS (a password reported stolen), and a resolve's input for it. */
  async function userLockdown() {
    const { context } = world;
    await world.reset();
    const { incidentId } = await triggerLockdown(context, { trigger: 'manual', reason: 'test: a password reported stolen', scope: 'user:revoked', actor: 'cli:tester' });
    const resolveInput = (bankReference: string) => ({ incidentId, bankNotifiedAt: new Date().toISOString(), bankReference, actor: 'cli:tester', isAdmin: true });
    return { context, incidentId, deps: lockdownDepsFor(context), resolveInput };
  }

  /** The resolve, with `trigger` seen again (same user, already locked down) between its look at the steps and its transaction. */
  async function resolveRetriggered(trigger: 'user_report' | 'manual', actor: string) {
    const { context, incidentId, deps, resolveInput } = await userLockdown();
    const race = raceAtTransaction(deps, async () => {
      const again = await triggerLockdown(context, { trigger, reason: 'test: the same key used from an unknown host', scope: 'user:revoked', actor });
      expect([again.incidentId, again.alreadyLocked]).toEqual([incidentId, true]);
    });
    const input = resolveInput('ACB-R3');
    const outcome = await resolveLockdown({ ...deps, em: race.em }, input).then((r) => r, (err: unknown) => err);
    expect(race.raced()).toBe(true);
    return { context, incidentId, input, outcome };
  }

  it('a trigger that widens the lockdown while the resolve is under way (after its steps were judged) is judged too: not lifted without the Client Secret rotation', async () => {
    const { context, incidentId, deps, resolveInput } = await userLockdown();
    // The bank refuses a call for a compromise (another worker) right as the admin resolves: its
    // record lands between the resolve's look at the steps and the resolve's own transaction.
    const race = raceAtTransaction(deps, async () => {
      const widened = await triggerLockdown(context, { trigger: 'bank_refused_compromise', reason: 'test: the bank refused the token with CREDENTIALS_COMPROMISED', scope: 'credentials', actor: 'worker' });
      expect([widened.incidentId, widened.scope]).toEqual([incidentId, 'all']);
    });
    await expect(resolveLockdown({ ...deps, em: race.em }, resolveInput('ACB-R2'))).rejects.toMatchObject({ code: 'LOCKDOWN_STEPS_MISSING', details: { missing: expect.arrayContaining([expect.stringMatching(/^Client Secret rotation/)]) } });
    expect(race.raced()).toBe(true);
    const status = await lockdownStatusOf(context);
    expect([status.state, status.scope, status.incidentId]).toEqual(['locked', 'all', incidentId]);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
  }, 60_000);

  it('a trigger of the same scope recorded while the resolve is under way leaves the connector locked down, the trigger on the open incident', async () => {
    // Another report of the same user lands between the resolve's judgement and its transaction: it
    // asks for no step the resolve has not judged, yet nobody has seen it.
    const { context, incidentId, input, outcome } = await resolveRetriggered('user_report', 'system:user_report');
    expect(outcome).toMatchObject({ code: 'LOCKDOWN_RETRIGGERED', exitCode: 1, message: expect.stringContaining(`connector incidents show ${incidentId}`) });
    const status = await lockdownStatusOf(context);
    expect([status.state, status.incidentId]).toEqual(['locked', incidentId]);
    expect(await context.queues.connection.exists(lockdownKey(world.config.redis.prefix))).toBe(1);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
    // Seen, it is resolved as usual.
    await expect(resolveLockdownIn(context, input)).resolves.toMatchObject({ incidentId });
  }, 60_000);

  it('the same trigger of the same scope seen again while the resolve is under way is no news: the resolve goes through (a brute force cannot keep it refused)', async () => {
    const { context, incidentId, outcome } = await resolveRetriggered('manual', 'cli:tester');
    expect(outcome).toMatchObject({ incidentId });
    expect((await lockdownStatusOf(context)).state).toBe('normal');
  }, 60_000);

  it('a trigger whose record lands after a resolve committed (the resolve cleared the flag it had set) is a new lockdown with its own incident, held in Redis too', async () => {
    const { context, incidentId, deps, resolveInput } = await userLockdown();
    // The trigger set the Redis flag and paused the queues, then waited for the lock the resolve held.
    const race = raceAtTransaction(deps, async () => {
      await resolveLockdownIn(context, resolveInput('ACB-R4'));
    });
    const late = await engageLockdown({ ...deps, em: race.em }, { trigger: 'manual', reason: 'test: the key used again from an unknown host', scope: 'user:revoked', actor: 'cli:tester' });
    expect(race.raced()).toBe(true);
    expect(late.alreadyLocked).toBe(false);
    expect(late.incidentId).not.toBe(incidentId);
    expect(late.redisHeld).toBe(true);
    const status = await lockdownStatusOf(context);
    expect([status.state, status.incidentId]).toEqual(['locked', late.incidentId]);
    expect(await context.queues.connection.exists(lockdownKey(world.config.redis.prefix))).toBe(1);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
  }, 60_000);
});
