import { join } from 'node:path';
import type { Job } from 'bullmq';
import { createTestEnv, eventually, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { submitBatch } from '../../queue/jobs/submit-order.job';
import { createLogger } from '../../connector/logging/logger';
import { prepareSigning, signAs } from '../../queue/order-signing';
import { SignerDirectory } from '../../queue/jobs/pipeline.helpers';
import { blockUser, grantRight, unblockUser } from '../../connector/users/user.service';
import { userDeps } from '../../connector/app/user-context';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { validSignatures } from '../../connector/signing/order-signatures';
import type { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import type { AppContext } from '../../connector/app/app-context';
import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * R-17 (terms 6.1.2, 6.2.5, 7.2.3): the EDS of a user who lost authority is no longer accepted, at
 * once. A block (or a right taken away) voids that user's signatures on every order not yet sent
 * when it is made: an order already `signed`, or claimed and waiting for its send, goes back to
 * `awaiting_signatures` and nothing reaches the bank with that signature, however the block falls
 * between the submit stage's checks, its claim and its send. Real sandbox, signer agent, Redis, PostgreSQL.
 */
describe('R-17 at the send: a signer disabled after signing stops an order that is not yet sent', () => {
  let env: TestEnv;
  let world: DemoWorld;
  let workers: RunningWorkers;

  beforeAll(async () => {
    env = await createTestEnv('signauth', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }), { config: (c) => ({ ...c, queue: { ...c.queue, attempts: 2, backoffMs: 100 } }) });
    workers = startWorkers(world.context, world.context.redis);
    // The submit stage is run by hand here: the workers sign, nobody submits behind the test's back.
    await world.context.queues.get('submit').pause();
  });
  afterAll(async () => {
    await workers?.close(5_000);
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();
  const stateOf = async (id: string) => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0].state;
  const sentToBank = async (externalId: string) => {
    const ledger = (await (await fetch(`${world.config.bank.url}/_sandbox/submissions`)).json()) as { submissions: Array<{ externalId: string; requests: number }> };
    return ledger.submissions.find((s) => s.externalId === externalId)?.requests ?? 0;
  };
  const signatureRows = async (id: string) =>
    db().execute<Array<{ login: string; valid: boolean; invalidated_reason: string | null }>>('select login, valid, invalidated_reason from order_signature where order_id = ? order by id', [id]);
  const fakeJob = (orderId: string) => ({ id: `submit-${orderId}`, attemptsMade: 0, opts: { attempts: 2 }, data: { orderId }, updateData: async () => undefined }) as unknown as Job;

  /** A 2,500,000 KZT order (first + second signature) signed by the standing mandates; not submitted. */
  async function signedLargeOrder(source: string): Promise<{ orderId: string; externalId: string }> {
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const order = demoOrder(demoDocuments(String(Date.now()).slice(-7))[2], today);
    const [result] = await intakeOrders(db(), source, [{ order }], bullmqIntakePort(world.context.queues), { actor: 'test' });
    await eventually(async () => (await stateOf(result.orderId)) === 'signed', { what: 'signed', timeoutMs: 45_000 });
    return result;
  }

  /** The accountant, blocked by a test, is let in again with the key unlocked, as after a login. */
  async function restoreAccountant(): Promise<void> {
    await unblockUser(userDeps(world.context), { login: 'demo.accountant', actor: 'admin:test' });
    const accountant = (await new SignerDirectory(db()).signerByLogin('demo.accountant'))!.user;
    const keystore = world.pki.keystores.find((k) => k.name === 'gost-accountant')!;
    expect(await userDeps(world.context).signerAgent!.unlockKey(accountant.id, keystore.password)).toMatchObject({ ok: true });
  }

  /** The world's context whose database statements run `before` once, just before the first statement `when` picks. */
  function contextBefore(when: (sql: string, params: unknown[]) => boolean, before: () => Promise<void>): AppContext {
    const real = world.context.orm.em;
    let done = false;
    const fork = (...args: Parameters<EntityManager['fork']>) => {
      const em = real.fork(...args);
      const execute = em.execute.bind(em);
      em.execute = (async (sql: string, params: unknown[] = [], ...rest: unknown[]) => {
        if (!done && typeof sql === 'string' && when(sql, params)) {
          done = true;
          await before();
        }
        return (execute as (...a: unknown[]) => Promise<unknown>)(sql, params, ...rest);
      }) as EntityManager['execute'];
      return em;
    };
    const em = Object.assign(Object.create(real) as EntityManager, { fork });
    return { ...world.context, orm: Object.assign(Object.create(world.context.orm) as AppContext['orm'], { em }) };
  }

  it('a block voids the signatures at once: the signed order waits for signatures again, and an unblock before the next look does not bring them back', async () => {
    const { orderId, externalId } = await signedLargeOrder('erp-r17-now');
    try {
      await blockUser(userDeps(world.context), { login: 'demo.accountant', actor: 'admin:test' });
      // No stage has looked yet: the block itself sent the order back (its sign stage is queued, and
      // the CEO's standing mandate may sign afresh meanwhile: only the first round is looked at).
      expect(await stateOf(orderId)).toBe('awaiting_signatures');
      expect((await signatureRows(orderId)).slice(0, 2).map((r) => [r.login, r.valid, r.invalidated_reason])).toEqual([
        ['demo.ceo', false, 'signer lost authority (demo.accountant: USER_DISABLED)'],
        ['demo.accountant', false, 'signer lost authority (demo.accountant: USER_DISABLED)'],
      ]);
    } finally {
      await restoreAccountant();
    }
    // Unblocked before the submit stage looked: the old signatures stay void; nothing was sent with them.
    expect((await signatureRows(orderId)).slice(0, 2).map((r) => r.valid)).toEqual([false, false]);
    expect(await sentToBank(externalId)).toBe(0);
    // Signed afresh by both mandates (the accountant's key unlocked again), the order goes on with the new round.
    await eventually(async () => (await stateOf(orderId)) === 'signed', { what: 'signed afresh', timeoutMs: 45_000 });
    expect((await validSignatures(db(), orderId)).map((s) => s.login)).toEqual(['demo.ceo', 'demo.accountant']);
  });

  it('a block landing between the submit stage\'s look at the signers and its claim: the order is not claimed, not sent', async () => {
    const { orderId, externalId } = await signedLargeOrder('erp-r17-claim');
    try {
      // The claim `signed -> submitting` (transitionOrders' statement), after the signers were judged.
      const context = contextBefore(
        (sql, params) => sql.startsWith('with prev as') && params.includes('submitting') && params.includes(orderId),
        () => blockUser(userDeps(world.context), { login: 'demo.accountant', actor: 'admin:test' }).then(() => undefined),
      );
      const [outcome] = await submitBatch(context, [{ orderId, job: fakeJob(orderId) }]);
      expect(outcome).toMatchObject({ state: 'moved-on' });
      expect(await stateOf(orderId)).toBe('awaiting_signatures');
      expect(await sentToBank(externalId)).toBe(0);
    } finally {
      await restoreAccountant();
    }
  });

  it('a right taken away between the claim and the send: the claimed order goes back to be signed and nothing reaches the bank', async () => {
    const { orderId, externalId } = await signedLargeOrder('erp-r17-send');
    const account = (await db().execute<Array<{ payer_iban: string }>>('select payer_iban from payment_order where id = ?', [orderId]))[0].payer_iban;
    const before = (await new SignerDirectory(db()).signerByLogin('demo.accountant'))!.rights.find((r) => r.account === account || r.account === '*')!;
    try {
      // The send's last look (the gate counting the attempt), after the claim: the accountant may now sign for the account as information only.
      const context = contextBefore(
        (sql) => sql.startsWith('with flag as'),
        () => grantRight(userDeps(world.context), { login: 'demo.accountant', account, rights: 'info', actor: 'admin:test' }).then(() => undefined),
      );
      const [outcome] = await submitBatch(context, [{ orderId, job: fakeJob(orderId) }]);
      expect(outcome).toMatchObject({ state: 'moved-on' });
      expect(await stateOf(orderId)).toBe('awaiting_signatures');
      expect((await signatureRows(orderId)).map((r) => r.invalidated_reason)).toEqual([
        'signer lost authority (demo.accountant: INFO_ONLY)',
        'signer lost authority (demo.accountant: INFO_ONLY)',
      ]);
      expect(await sentToBank(externalId)).toBe(0);
    } finally {
      await grantRight(userDeps(world.context), { login: 'demo.accountant', account, rights: 'manage', limitTiyn: before.signLimitTiyn, level: before.signLevel, actor: 'admin:test' });
    }
  });

  it('a signature made while the order was withdrawn is not recorded: the person is told the order no longer waits', async () => {
    const context = world.context;
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    // Taken in without a job (the workers' mandates would sign it first); validated by hand.
    const [result] = await intakeOrders(db(), 'erp-r17-withdrawn', [{ order: demoOrder(demoDocuments(String(Date.now()).slice(-7))[2], today) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await transitionOrder(db(), result.orderId, 'validated', { actor: 'test', from: 'received' });
    const ceo = (await new SignerDirectory(db()).signerByLogin('demo.ceo'))!.user;
    // While the agent signs, the order is withdrawn (awaiting_signatures -> invalid).
    const agent = context.services.signer();
    const withdrawing: SignerAgentClient = Object.assign(Object.create(agent) as SignerAgentClient, {
      signMany: async (userId: string, inputs: Parameters<SignerAgentClient['signMany']>[1]) => {
        const made = await agent.signMany(userId, inputs);
        await transitionOrder(db(), result.orderId, 'invalid', { actor: 'test', from: 'awaiting_signatures', reason: 'withdrawn' });
        return made;
      },
    });
    const racing: AppContext = { ...context, services: Object.assign(Object.create(context.services) as AppContext['services'], { signer: () => withdrawing }) };
    const state = await prepareSigning(racing, result.orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    await expect(signAs(racing, state, ceo, { mandate: false })).resolves.toEqual({ refused: 'NOT_AWAITING_SIGNATURES' });
    expect(await stateOf(result.orderId)).toBe('invalid');
    expect(await signatureRows(result.orderId)).toEqual([]);
  });
});
