import { rotateSecret } from '../../connector/vault/credential.vault';
import { SecretBox } from '../../connector/vault/secret-box';
import { lockdownStatusOf, resolveLockdownIn, triggerLockdown } from '../../queue/lockdown.trigger';
import { eventually } from '../support/test-env';
import { ROTATED, startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * Issue 16 "Proof": a 1,000-order run, the lockdown mid-way. The sandbox's submission log shows
 * nothing submitted after the trigger except requests already on the wire (listed), every other
 * order waits as `held` (or claimed and not sent), and after resolution every order reaches the
 * bank exactly once.
 */
const ORDERS = Number(process.env.LOCKDOWN_RUN_ORDERS ?? 1000);
const AT_BANK = new Set(['submitted', 'executed', 'rejected', 'deemed_executed']);

describe('lockdown in the middle of a 1,000-order run', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown_run');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  const stateCounts = async () => {
    const rows = await world.context.orm.em.fork().execute<Array<{ state: string; n: string }>>("select state, count(*) as n from payment_order where source = 'test' group by state");
    return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)])) as Record<string, number>;
  };

  it('stops submission at the trigger, holds the rest, and completes every order exactly once after resolution', async () => {
    const { context } = world;
    await world.unlock('ceo');
    world.startWorkers();
    const ids: string[] = [];
    for (let i = 0; i < ORDERS; i += 250) ids.push(...(await world.intake(Array.from({ length: Math.min(250, ORDERS - i) }, (_, j) => `RUN-${i + j + 1}`))));
    expect(ids).toHaveLength(ORDERS);

    // Mid-way: a few hundred at the bank, the rest on their way.
    await eventually(async () => (await world.ledger()).total >= Math.floor(ORDERS / 5), { timeoutMs: 90_000, intervalMs: 20, what: 'a fifth of the run at the bank' });
    const result = await triggerLockdown(context, { trigger: 'manual', reason: 'test: EDS token lost mid-run', scope: 'all', actor: 'cli:tester' });
    const since = new Date(result.since!).getTime();
    const lockHeld = Date.now();
    expect(result.warnings).toEqual([]);

    // Let every worker finish what it holds, then look at the bank's log.
    await new Promise((r) => setTimeout(r, 2_000));
    const during = await world.ledger();
    const late = during.submissions.filter((s) => new Date(s.firstAt).getTime() > since);
    // Requests already on the wire when the flag landed: at most one per concurrent submit worker.
    process.stderr.write(`lockdown run: ${during.total} at the bank when locked; on the wire at the trigger (${late.length}): ${late.map((s) => `${s.externalId}@${s.firstAt}`).join(', ') || 'none'}\n`);
    expect(late.length).toBeLessThanOrEqual(world.config.worker.concurrency);
    expect(during.submissions.filter((s) => new Date(s.firstAt).getTime() > lockHeld)).toEqual([]);
    // Nothing more arrives while locked.
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await world.ledger()).total).toBe(during.total);

    const counts = await stateCounts();
    const atBank = Object.entries(counts).filter(([s]) => AT_BANK.has(s)).reduce((a, [, n]) => a + n, 0);
    expect(atBank).toBe(during.total);
    // Everything else waits: held, or claimed and not sent (attempt not counted).
    expect((counts.held ?? 0) + (counts.submitting ?? 0)).toBe(ORDERS - during.total);
    const sentClaims = await context.orm.em.fork().execute<Array<{ n: string }>>("select count(*) as n from payment_order where state = 'submitting' and submit_attempts > 0");
    expect(Number(sentClaims[0].n)).toBe(0);
    expect((await lockdownStatusOf(context)).heldOrders).toBe(counts.held ?? 0);

    // The admin does what the terms require, then resolves.
    await rotateSecret({ em: context.orm.em.fork(), clock: context.clock, box: SecretBox.fromConfig(world.config) }, { clientId: ROTATED.clientId, clientSecret: ROTATED.clientSecret, actor: 'cli:tester' });
    await world.unlock('ceo');
    const resolved = await resolveLockdownIn(context, { incidentId: result.incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-RUN-1', actor: 'cli:tester', isAdmin: true });
    expect(resolved.released).toBe(counts.held ?? 0);

    await eventually(async () => {
      const now = await stateCounts();
      return Object.entries(now).every(([s]) => AT_BANK.has(s));
    }, { timeoutMs: 180_000, intervalMs: 250, what: 'every order at the bank after resolution' });
    const after = await world.ledger();
    expect(after.total).toBe(ORDERS);
    expect(after.duplicates).toBe(0);
    expect(after.submissions.every((s) => s.accepted)).toBe(true);
    await world.stopWorkers();
  }, 400_000);
});
