import { runDoctor } from '../../connector/doctor/doctor.checks';
import { getIncident } from '../../connector/incidents/incident.service';
import { engageLockdown } from '../../connector/lockdown/lockdown.service';
import { lockdownDepsFor, lockdownStatusOf } from '../../queue/lockdown.trigger';
import { startScheduler } from '../../queue/scheduler.runner';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * a lockdown whose key wipe did not reach the signer agent (down, hung or restarting at
 * that moment) does not leave the keys unlocked for good: the scheduler asks again until the agent
 * answers; until then `lockdown status` and `doctor` say so. Real PostgreSQL, Redis, signer agent.
 */
describe('lockdown: keys the signer agent could not wipe at the lock', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown-key-wipe');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('are wiped by the scheduler once the agent answers; until then status and doctor say they are not', async () => {
    const { context } = world;
    await world.reset();
    await world.unlock('ceo');
    expect(await world.unlocked('ceo')).toBe(true);
    const deps = lockdownDepsFor(context);
    // The agent does not answer at the moment of the lock: the wipe is refused at the connection.
    const unreachable = { wipeAll: () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:9')) };
    const result = await engageLockdown({ ...deps, ports: { ...deps.ports, agent: unreachable } }, { trigger: 'manual', reason: 'test: the agent was down at the lock', scope: 'all', actor: 'cli:tester' });
    expect(result.keysWiped).toBe(false);
    expect(await world.unlocked('ceo')).toBe(true);

    const notWiped = /^signer agent not reached .*NOT wiped; the scheduler tries again/;
    expect((await lockdownStatusOf(context)).warnings).toEqual([expect.stringMatching(notWiped)]);
    const doctor = await runDoctor({ env: world.env.env, cwd: world.env.workDir });
    expect(doctor.checks.find((c) => c.name === 'lockdown')).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining('keys unlocked in the signer agent are NOT wiped yet') });

    // The agent answers again: the scheduler's leader, running while every queue is paused, wipes them.
    const scheduler = await startScheduler(context, context.redis, { leaseMs: 3_000 });
    try {
      await eventually(async () => ((await world.unlocked('ceo')) ? null : true), { timeoutMs: 30_000, what: "ceo's key wiped by the scheduler" });
      await eventually(async () => ((await lockdownStatusOf(context)).warnings.length === 0 ? true : null), { timeoutMs: 10_000, what: 'the warning cleared' });
    } finally {
      await scheduler.close();
    }
    const status = await lockdownStatusOf(context);
    expect([status.state, status.incidentId]).toEqual(['locked', result.incidentId]);
    const incident = await getIncident(context.orm.em.fork(), result.incidentId);
    expect(incident!.timeline.map((e) => e.text)).toEqual(expect.arrayContaining([expect.stringMatching(/^signer agent reached again: it wiped every unlocked key \(\d+ users\)$/)]));
    const audit = await context.orm.em.fork().execute<Array<{ action: string }>>("select action from audit_event where action = 'lockdown.keys_wiped' and subject = ?", [result.incidentId]);
    expect(audit).toHaveLength(1);
    const after = await runDoctor({ env: world.env.env, cwd: world.env.workDir });
    expect(after.checks.find((c) => c.name === 'lockdown')?.detail).not.toContain('NOT wiped');
  }, 120_000);
});
