import { ConnectorError } from '../../connector/shared/errors';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { retryFailedOrder } from '../../queue/order-retry';
import { submitOrderJob } from '../../queue/jobs/submit-order.job';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { enrollKey, grantRight, revokeRight, unblockUser } from '../../connector/users/user.service';
import { holdPendingOrders, resolveLockdown } from '../../connector/lockdown/lockdown.service';
import { bruteForceKey } from '../../connector/lockdown/brute-force.detector';
import { userDeps } from '../../connector/app/user-context';
import { rotateSecret } from '../../connector/vault/credential.vault';
import { SecretBox } from '../../connector/vault/secret-box';
import { sessionStoreFor } from '../../connector/users/session.store';
import { getIncident } from '../../connector/incidents/incident.service';
import { isLockedDown, lockdownDepsFor, lockdownStatusOf, resolveLockdownIn, triggerLockdown } from '../../queue/lockdown.trigger';
import { eventually } from '../support/test-env';
import { ROTATED, startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * Issue 16 on real PostgreSQL, Redis, the bank sandbox and the signer agent: what `lockdown on`
 * does, what resolution demands, and that held orders complete exactly once afterwards.
 */
describe('lockdown: engage, hold, resolve, exactly once', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  const SUBMITTED = new Set(['submitted', 'executed']);

  /** One order signed by ceo and claimed for submission (`submitting`, `attempts` sends counted), no worker running, the submit queue paused. */
  async function claimedOrder(number: string, attempts: number, why: string): Promise<string> {
    const { context } = world;
    await world.reset();
    await world.unlock('ceo');
    await context.queues.get('submit').pause();
    world.startWorkers();
    const [id] = await world.intake([number]);
    await eventually(async () => (await world.states([id]))[id] === 'signed', { timeoutMs: 30_000, what: 'signed' });
    await world.stopWorkers();
    await transitionOrder(context.orm.em.fork(), id, 'submitting', { actor: 'test', from: 'signed', reason: `test: ${why}` });
    await context.orm.em.fork().execute('update payment_order set submit_attempts = ? where id = ?', [attempts, id]);
    return id;
  }

  /** A resolve of a lockdown naming the Client Secret needs a new one: the sandbox knows two pairs. */
  async function rotateToTheOtherPair(): Promise<void> {
    const em = world.context.orm.em.fork();
    const [{ client_id: current }] = await em.execute<Array<{ client_id: string }>>('select client_id from credential_vault where id = 1');
    const next = current === ROTATED.clientId ? { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret } : ROTATED;
    await rotateSecret({ em, clock: world.context.clock, box: SecretBox.fromConfig(world.config) }, { ...next, actor: 'cli:tester' });
  }

  it('pauses every queue, wipes the keys, ends sessions, holds orders; status JSON is exact; resolve names every missing step, then orders complete once', async () => {
    const { context } = world;
    await world.unlock('ceo');
    expect(await world.unlocked('ceo')).toBe(true);
    const sessions = sessionStoreFor(context);
    await sessions.create({ id: world.users.ceo, login: 'ceo' }, new Date());
    await sessions.create({ id: world.users.revoked, login: 'revoked' }, new Date());
    expect(await sessions.countForUser(world.users.ceo)).toBe(1);

    const ids = await world.intake(Array.from({ length: 12 }, (_, i) => `LD-${i + 1}`));
    const result = await triggerLockdown(context, { trigger: 'manual', reason: 'test: Client Secret seen in a chat', scope: 'all', actor: 'cli:tester' });

    expect(result.engaged).toBe(true);
    // Every queue paused with BullMQ's own pause under the prefix (what any operator tool sees).
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
    expect(await world.unlocked('ceo')).toBe(false);
    expect(await sessions.countForUser(world.users.ceo)).toBe(0);
    expect(await sessions.countForUser(world.users.revoked)).toBe(0);
    expect(Object.values(await world.states(ids))).toEqual(ids.map(() => 'held'));
    // What the ERP hears of each held order (its event's reason, sent in status webhooks): the trigger
    // and the incident, not the lockdown's reason, which may name people.
    const heldReasons = await context.orm.em.fork().execute<Array<{ reason: string }>>("select distinct reason from order_event where to_state = 'held' and order_id in (select jsonb_array_elements_text(?::jsonb)::uuid)", [JSON.stringify(ids)]);
    expect(heldReasons).toEqual([{ reason: `lockdown (manual): incident ${result.incidentId}` }]);
    expect(await isLockedDown(context)).toBe(true);

    const status = await lockdownStatusOf(context);
    expect(Object.keys(status)).toEqual(['state', 'since', 'reason', 'scope', 'incidentId', 'heldOrders', 'warnings']);
    expect(status).toEqual({ state: 'locked', since: result.since, reason: 'test: Client Secret seen in a chat', scope: 'all', incidentId: result.incidentId, heldOrders: 12, warnings: [] });

    // The incident carries the checklist: phones, deadline, what to ask; and the audit log has the entry.
    const incident = await getIncident(context.orm.em.fork(), result.incidentId);
    const checklist = incident!.evidence.checklist as { phones: string[]; deadline: string; ask: string[] };
    expect(checklist.phones).toEqual(['+7 7172 770 622', '+7 800 080 0711', '7711']);
    expect(new Date(checklist.deadline).getTime()).toBeGreaterThan(Date.now());
    expect(checklist.ask.join(' ')).toMatch(/block access/);
    expect(incident!.deadlineAt?.toISOString()).toBe(checklist.deadline);
    const audit = await context.orm.em.fork().execute<Array<{ action: string }>>("select action from audit_event where action = 'lockdown.engaged' and subject = ?", [result.incidentId]);
    expect(audit).toHaveLength(1);

    // Idempotent: a second trigger adds to the same incident.
    const again = await triggerLockdown(context, { trigger: 'manual', reason: 'test: again', scope: 'all', actor: 'cli:tester' });
    expect(again.incidentId).toBe(result.incidentId);
    expect(again.alreadyLocked).toBe(true);

    // Intake stays open: a new order is stored and waits as held.
    const [late] = await world.intake(['LD-LATE']);
    expect((await world.states([late]))[late]).toBe('held');

    // Resolution refuses, naming every missing step.
    let refusal: ConnectorError | undefined;
    await resolveLockdownIn(context, { incidentId: result.incidentId, actor: 'cli:tester', isAdmin: true }).catch((err) => (refusal = err));
    expect(refusal?.code).toBe('LOCKDOWN_STEPS_MISSING');
    expect(refusal?.exitCode).toBe(1);
    expect(refusal?.message).toMatch(/--bank-notified-at/);
    expect(refusal?.message).toMatch(/--bank-reference/);
    expect(refusal?.message).toMatch(/Client Secret rotation/);
    await expect(resolveLockdownIn(context, { incidentId: result.incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-42', actor: 'user:op', isAdmin: false })).rejects.toMatchObject({ code: 'FORBIDDEN' });
    // Still missing the rotation after the bank was told. A time without an offset is Kazakhstan
    // time (UTC+5), whatever the zone of the machine: now in Almaty is neither in the future nor
    // before the lockdown (read in UTC it would be 5 hours ahead).
    const kzWall = (ms: number) => new Date(ms + 5 * 3_600_000).toISOString().slice(0, 19);
    const toldAtMs = Math.floor(context.clock.now().getTime() / 1000) * 1000;
    await expect(resolveLockdownIn(context, { incidentId: result.incidentId, bankNotifiedAt: kzWall(toldAtMs), bankReference: 'ACB-42', actor: 'cli:tester', isAdmin: true })).rejects.toMatchObject({
      code: 'LOCKDOWN_STEPS_MISSING',
      details: { missing: [expect.stringMatching(/Client Secret rotation/)] },
    });
    await expect(resolveLockdownIn(context, { incidentId: result.incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-42', actor: 'cli:tester', isAdmin: true })).rejects.toMatchObject({
      code: 'LOCKDOWN_STEPS_MISSING',
      details: { missing: [expect.stringMatching(/Client Secret rotation/)] },
    });

    await rotateSecret({ em: context.orm.em.fork(), clock: context.clock, box: SecretBox.fromConfig(world.config) }, { clientId: ROTATED.clientId, clientSecret: ROTATED.clientSecret, actor: 'cli:tester' });
    const resolved = await resolveLockdownIn(context, { incidentId: result.incidentId, bankNotifiedAt: kzWall(toldAtMs), bankReference: 'ACB-42', notifiedBy: 'A. Admin', actor: 'cli:tester', isAdmin: true });
    expect(resolved.released).toBe(13);
    // The holds (the engage's and the intake's) and the release keep the order as it was with each
    // event, as every transition does: the status webhook tells it, not the order as it is later.
    const events = await context.orm.em.fork().execute<Array<{ to_state: string; number: string; kept: string | null }>>(
      `select e.to_state, o.number, e.order_snapshot->>'number' as kept from order_event e join payment_order o on o.id = e.order_id
        where e.order_id in (${[...ids, late].map(() => '?').join(', ')}) order by e.id`,
      [...ids, late],
    );
    expect(new Set(events.map((e) => e.to_state))).toEqual(new Set(['received', 'held']));
    expect(events.filter((e) => e.kept !== e.number)).toEqual([]);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(false);
    expect((await lockdownStatusOf(context)).state).toBe('normal');
    const closed = await getIncident(context.orm.em.fork(), result.incidentId);
    expect(closed?.status).toBe('resolved');
    expect(closed?.evidence.bankNotification).toMatchObject({ reference: 'ACB-42', notifiedAt: new Date(toldAtMs).toISOString() });

    // The key was wiped: its owner unlocks it again; held orders are validated, signed and submitted once.
    await world.unlock('ceo');
    world.startWorkers();
    const all = [...ids, late];
    await eventually(async () => Object.values(await world.states(all)).every((s) => SUBMITTED.has(s)), { timeoutMs: 60_000, what: 'every held order submitted after resolution' });
    const ledger = await world.ledger();
    expect(ledger.duplicates).toBe(0);
    expect(ledger.total).toBe(all.length);
    await world.stopWorkers();
  }, 120_000);

  it('a worker that holds a submit job when the lock lands does not submit it; after resolution it is submitted once', async () => {
    const { context } = world;
    await world.reset();
    await world.unlock('ceo');
    // The earlier test's orders may still be tracked, and a status poll asks for the bank client
    // too: only this test's submit may meet the wrapper below.
    await context.queues.get('track').obliterate({ force: true });
    const before = (await world.ledger()).total;
    // The lock lands while the submit worker is inside its job, after its claim (`signed ->
    // submitting`, which can no longer be held) and before the bank call: when it asks for the bank client.
    let landed = false;
    let incidentId = '';
    const bankCalls: string[] = [];
    const original = context.services;
    const services = {
      ...original,
      bank: () => {
        const bank = original.bank();
        const wrapped = new Proxy(bank, {
          get(target, prop, receiver) {
            const value = Reflect.get(target, prop, receiver);
            if (prop === 'submit' || prop === 'lookup') bankCalls.push(String(prop));
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
        if (landed) return wrapped;
        landed = true;
        // Synchronous getter: the lock is engaged before the job's next step runs.
        pending = triggerLockdown(context, { trigger: 'manual', reason: 'test: lock lands mid-job', scope: 'user:revoked', actor: 'test' }).then((r) => {
          incidentId = r.incidentId;
        });
        return wrapped;
      },
    };
    let pending: Promise<void> = Promise.resolve();
    world.startWorkers({ ...context, services });
    const [id] = await world.intake(['LD-INFLIGHT']);
    await eventually(async () => landed && incidentId !== '' && (await world.states([id]))[id] === 'submitting', { timeoutMs: 15_000, what: 'the submit job ran into the lock after its claim' }).catch(async (err) => { throw new Error(`${err.message}; landed=${landed}; state=${(await world.states([id]))[id]}; events=${JSON.stringify(await context.orm.em.fork().execute('select from_state, to_state, reason from order_event where order_id = ? order by id', [id]))}`); });
    await pending;
    // Give the worker time to do what it would do next: it must not call the bank.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(bankCalls).toEqual([]);
    expect((await world.ledger()).total).toBe(before);
    const attempts = await context.orm.em.fork().execute<Array<{ submit_attempts: number }>>('select submit_attempts from payment_order where id = ?', [id]);
    expect(Number(attempts[0].submit_attempts)).toBe(0);
    await world.stopWorkers();

    // Scope user:revoked: `revoked` holds no signing rights, so the bank record is the only step.
    const resolved = await resolveLockdownIn(context, { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-43', actor: 'cli:tester', isAdmin: true });
    expect(resolved.requeuedSubmissions).toBe(1);
    world.startWorkers();
    await eventually(async () => SUBMITTED.has((await world.states([id]))[id]), { what: 'submitted after resolution' });
    const ledger = await world.ledger();
    expect(ledger.total).toBe(before + 1);
    expect(ledger.duplicates).toBe(0);
    await world.stopWorkers();
  }, 90_000);

  it('a failed order is not retried under lockdown; resolved, it is validated and signed again, never sent with a signature from before the lock', async () => {
    const { context } = world;
    await world.reset();
    await world.unlock('ceo');
    const submit = context.queues.get('submit');
    await submit.pause();
    world.startWorkers();
    const [id] = await world.intake(['LD-FAILED']);
    await eventually(async () => (await world.states([id]))[id] === 'signed', { timeoutMs: 30_000, what: 'signed' });
    await world.stopWorkers();
    const em = () => context.orm.em.fork();
    await transitionOrder(em(), id, 'failed', { actor: 'test', from: 'signed', reason: 'test: the stage gave up', patch: { failedFrom: 'signed', lastError: 'test' } });
    const signedBefore = await em().execute<Array<{ id: string }>>('select id from order_signature where order_id = ? and valid', [id]);
    expect(signedBefore).toHaveLength(1);

    const { incidentId } = await triggerLockdown(context, { trigger: 'manual', reason: 'test: a key may have leaked', scope: 'all', actor: 'cli:tester' });
    await expect(retryFailedOrder(em(), context.queues, id, 'cli:tester')).rejects.toMatchObject({ code: 'LOCKED_DOWN' });
    expect((await world.states([id]))[id]).toBe('failed');

    // The pair is rotated (back to the first one) and the bank told: resolved.
    await rotateSecret({ em: em(), clock: context.clock, box: SecretBox.fromConfig(world.config) }, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'cli:tester' });
    const resolved = await resolveLockdownIn(context, { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-44', actor: 'cli:tester', isAdmin: true });
    expect(resolved.signaturesInvalidated).toBeGreaterThanOrEqual(1);
    expect(await em().execute('select id from order_signature where order_id = ? and valid', [id])).toEqual([]);

    // Retried now, it starts again at validation and gets a fresh signature before it is sent.
    expect(await retryFailedOrder(em(), context.queues, id, 'cli:tester')).toBe('received');
    await world.unlock('ceo');
    world.startWorkers();
    await eventually(async () => SUBMITTED.has((await world.states([id]))[id]), { timeoutMs: 60_000, what: 'submitted after the retry' });
    const valid = await em().execute<Array<{ id: string }>>('select id from order_signature where order_id = ? and valid', [id]);
    expect(valid).toHaveLength(1);
    expect(valid[0].id).not.toBe(signedBefore[0].id);
    expect((await world.ledger()).duplicates).toBe(0);
    await world.stopWorkers();
  }, 120_000);

  it('an order claimed but never sent when the lock of every key lands is signed again before it is sent (R-17, R-30)', async () => {
    const { context } = world;
    // Claimed, and stopped by the lock at the last look before the bank call: no attempt counted.
    const id = await claimedOrder('LD-CLAIMED', 0, 'claimed when the lock landed');
    const em = () => context.orm.em.fork();
    const signedBefore = await em().execute<Array<{ id: string }>>('select id from order_signature where order_id = ? and valid', [id]);
    expect(signedBefore).toHaveLength(1);
    const before = (await world.ledger()).total;

    const { incidentId } = await triggerLockdown(context, { trigger: 'manual', reason: 'test: every key may have leaked', scope: 'all', actor: 'cli:tester' });
    await rotateToTheOtherPair();
    const resolved = await resolveLockdownIn(context, { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-46', actor: 'cli:tester', isAdmin: true });
    expect(resolved.requeuedSubmissions).toBe(1);
    expect(resolved.signaturesInvalidated).toBeGreaterThanOrEqual(1);
    expect(await em().execute('select id from order_signature where order_id = ? and valid', [id])).toEqual([]);

    await world.unlock('ceo');
    world.startWorkers();
    await eventually(async () => SUBMITTED.has((await world.states([id]))[id]), { timeoutMs: 60_000, what: 'submitted after the resolve' });
    const events = await em().execute<Array<{ from_state: string; to_state: string }>>('select from_state, to_state from order_event where order_id = ? order by id', [id]);
    expect(events.map((e) => `${e.from_state}->${e.to_state}`)).toContain('submitting->awaiting_signatures');
    const valid = await em().execute<Array<{ id: string }>>('select id from order_signature where order_id = ? and valid', [id]);
    expect(valid).toHaveLength(1);
    expect(valid[0].id).not.toBe(signedBefore[0].id);
    const ledger = await world.ledger();
    expect([ledger.total, ledger.duplicates]).toEqual([before + 1, 0]);
    await world.stopWorkers();
  }, 120_000);

  it.each([
    ['never sent: it is not sent, its round goes back to be signed (R-17)', 0, 'awaiting_signatures'],
    // A lookup that finds nothing after a timed-out send does not prove it is not at the bank.
    ['sent once, its outcome unknown: it is sent again under its external id, never unsent', 1, 'submitted'],
  ])('an order waiting in submitting whose signer lost the right to sign since, %s', async (_what, attempts, after) => {
    const { context } = world;
    const id = await claimedOrder(`LD-R17-${attempts}`, attempts, 'claimed, waiting for the bank');
    const em = () => context.orm.em.fork();
    const before = (await world.ledger()).total;
    await em().execute("update app_user set blocked_reason = 'admin', blocked_at = now() where login = 'ceo'");
    try {
      await context.queues.get('submit').resume();
      await context.queues.add(submitOrderJob, { orderId: id });
      world.startWorkers();
      await eventually(async () => [after, 'executed'].includes((await world.states([id]))[id]), { timeoutMs: 30_000, what: after });
      await new Promise((r) => setTimeout(r, 500));
      const events = await em().execute<Array<{ to_state: string; reason: string }>>("select to_state, reason from order_event where order_id = ? and from_state = 'submitting'", [id]);
      if (after === 'awaiting_signatures') {
        expect((await world.ledger()).total).toBe(before);
        expect(await em().execute('select id from order_signature where order_id = ? and valid', [id])).toEqual([]);
        expect(events).toEqual([{ to_state: 'awaiting_signatures', reason: expect.stringMatching(/^not sent: signer lost authority \(ceo: /) }]);
      } else {
        expect((await world.ledger()).total).toBe(before + 1);
        expect(events.map((e) => e.to_state)).toEqual(['submitted']);
      }
    } finally {
      await world.stopWorkers();
      await em().execute("update app_user set blocked_reason = null, blocked_at = null where login = 'ceo'");
    }
  }, 90_000);

  it("a user's EDS step is still asked when a second trigger widens the lockdown to all", async () => {
    const { context } = world;
    await world.reset();
    const first = await triggerLockdown(context, { trigger: 'manual', reason: "test: ceo's key may have leaked", scope: 'user:ceo', actor: 'cli:tester' });
    const second = await triggerLockdown(context, { trigger: 'manual', reason: 'test: the Client Secret too', scope: 'credentials', actor: 'cli:tester' });
    expect([second.incidentId, second.scope]).toEqual([first.incidentId, 'all']);
    await rotateToTheOtherPair();
    const resolve = () => resolveLockdownIn(context, { incidentId: first.incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-45', actor: 'cli:tester', isAdmin: true });
    await expect(resolve()).rejects.toMatchObject({ code: 'LOCKDOWN_STEPS_MISSING', details: { missing: [expect.stringMatching(/^EDS of ceo: /)] } });
    // The step done (here: ceo's signing rights revoked), it resolves.
    await revokeRight(userDeps(context), { login: 'ceo', account: DEMO.payerIban, actor: 'cli:tester' });
    await expect(resolve()).resolves.toMatchObject({ incidentId: first.incidentId });
  }, 60_000);

  it("brute force's scope `users` and a user's reported key merge to `users`: the bank is still asked to revoke that EDS, and no Client Secret rotation is asked", async () => {
    const { context } = world;
    await world.reset();
    const first = await triggerLockdown(context, { trigger: 'brute_force', reason: 'test: 3 login attempts on a blocked account', scope: 'users', actor: 'system:auth' });
    expect(first.checklist?.ask.join('\n')).not.toMatch(/revoke the EDS|Client Secret pair/);
    const second = await triggerLockdown(context, { trigger: 'user_report', reason: "test: ceo's key may have leaked", scope: 'user:ceo', actor: 'user:ceo' });
    expect([second.incidentId, second.scope]).toEqual([first.incidentId, 'users']);
    expect(second.checklist?.ask).toContain('revoke the EDS (NCA RK certificates) of: ceo');
    expect(second.checklist?.afterwards).toContainEqual(expect.stringMatching(/^re-enroll ceo's new EDS key/));
    expect(second.checklist?.ask.join('\n')).not.toMatch(/Client Secret pair/);
    const [vault] = await context.orm.em.fork().execute<Array<{ usable: boolean }>>('select (revoked_at is null) as usable from credential_vault where id = 1');
    expect(vault.usable).toBe(true);
    // ceo's rights were revoked by the test before: the bank's reference is the only step; no rotation.
    await expect(resolveLockdownIn(context, { incidentId: first.incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-47', actor: 'cli:tester', isAdmin: true })).resolves.toMatchObject({ incidentId: first.incidentId });
  }, 60_000);

  it('a resolve Redis fails in the middle of changes nothing: still locked, queues paused, orders held; run again, it resolves', async () => {
    const { context } = world;
    await world.reset();
    const { incidentId } = await triggerLockdown(context, { trigger: 'manual', reason: 'test: Redis fails at the resolve', scope: 'user:revoked', actor: 'cli:tester' });
    const [id] = await world.intake(['LD-REDIS']);
    expect((await world.states([id]))[id]).toBe('held');
    // Redis answers everything but the flag's delete.
    const failing = new Proxy(context.queues.connection, {
      get(target, prop, receiver) {
        if (prop === 'del') return async () => Promise.reject(new Error('Connection is closed.'));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const input = { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-46', actor: 'cli:tester', isAdmin: true };
    await expect(resolveLockdown({ ...lockdownDepsFor(context), redis: failing }, input)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE', message: expect.stringMatching(/still holds, nothing changed: run the resolve again/) });
    expect((await lockdownStatusOf(context)).state).toBe('locked');
    expect(await isLockedDown(context)).toBe(true);
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(true);
    expect((await world.states([id]))[id]).toBe('held');
    // Run again with Redis well: resolved, the order released, and the lock-outs counted before
    // (seen by the admin) no longer add up with the next one into a new lockdown.
    const lockouts = bruteForceKey(world.config.redis.prefix, 'lockout');
    await context.queues.connection.zadd(lockouts, Date.now(), 'someone');
    await expect(resolveLockdownIn(context, input)).resolves.toMatchObject({ incidentId });
    expect(await context.queues.connection.exists(lockouts)).toBe(0);
    expect((await world.states([id]))[id]).toBe('received');
    for (const queue of context.queues.all()) expect(await queue.isPaused()).toBe(false);
  }, 60_000);

  it('an order seen under the lock a moment before the resolve committed is not held after it', async () => {
    const { context } = world;
    await world.reset();
    const [id] = await world.intake(['LD-AFTER']);
    // As the intake or a stage does once it saw the lock: the resolve committed in between.
    expect(await holdPendingOrders(context.orm.em.fork(), 'onec-outbox', 'lockdown in force: held on arrival', new Date(), [id])).toBeNull();
    expect((await world.states([id]))[id]).not.toBe('held');
  });

  it("R-30: the very keystore enrolled again after a lockdown does not pass for the user's new key; another keystore does", async () => {
    const { context } = world;
    await world.reset();
    const deps = userDeps(context);
    const keystore = (name: string) => world.pki.keystores.find((k) => k.name === name)!.path;
    await grantRight(deps, { login: 'ceo', account: DEMO.payerIban, rights: 'manage', level: 'first', limitTiyn: null, actor: 'cli:tester' });
    await enrollKey(deps, { login: 'ceo', keystorePath: keystore('rsa-ceo'), actor: 'cli:tester' });
    const { incidentId } = await triggerLockdown(context, { trigger: 'manual', reason: "test: ceo's key may have leaked", scope: 'user:ceo', actor: 'cli:tester' });
    const resolve = () => resolveLockdownIn(context, { incidentId, bankNotifiedAt: new Date().toISOString(), bankReference: 'ACB-48', actor: 'cli:tester', isAdmin: true });
    try {
      await unblockUser(deps, { login: 'ceo', actor: 'cli:tester' });
      await enrollKey(deps, { login: 'ceo', keystorePath: keystore('rsa-ceo'), actor: 'cli:tester' });
      await expect(resolve()).rejects.toMatchObject({
        code: 'LOCKDOWN_STEPS_MISSING',
        details: { missing: [expect.stringMatching(/^EDS of ceo: .*the keystore enrolled since the lockdown is the very file ceo had enrolled before it: the compromised key/)] },
      });
      // The new key NCA issued (here: another keystore file of this test PKI) is the step done.
      await enrollKey(deps, { login: 'ceo', keystorePath: keystore('rsa-revoked'), actor: 'cli:tester' });
      await expect(resolve()).resolves.toMatchObject({ incidentId });
    } finally {
      // Later tests sign as ceo with the RSA key, without a right of ceo's that this test gave.
      await context.orm.em.fork().execute("update app_user set blocked_reason = null, blocked_at = null where login = 'ceo'");
      await enrollKey(deps, { login: 'ceo', keystorePath: keystore('rsa-ceo'), actor: 'cli:tester' });
      await revokeRight(deps, { login: 'ceo', account: DEMO.payerIban, actor: 'cli:tester' });
    }
  }, 60_000);
});
