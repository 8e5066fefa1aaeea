import { join } from 'node:path';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { DEMO_SIGNER_ACCOUNTS } from '../../connector/demo/pipeline-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { createLogger } from '../../connector/logging/logger';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { validSignatures } from '../../connector/signing/order-signatures';
import { grantRight } from '../../connector/users/user.service';
import { MAX_AMOUNT, parseAmount } from '../../connector/shared/money';
import { userDeps } from '../../connector/app/user-context';
import { dropSignaturesThatNoLongerCount, SignerDirectory } from '../../queue/jobs/pipeline.helpers';
import { completeSigning, prepareSigning, signAs, signWithMandates } from '../../queue/order-signing';
import { submitBatch } from '../../queue/jobs/submit-order.job';

/**
 * An insider's paths around the signatures an order needs, on the demo world: a real
 * signer agent, PostgreSQL, the demo's policy (first + second from 1,000,000 KZT) and the demo
 * signers (demo.ceo first, demo.accountant second, both under a standing mandate).
 */
describe('an insider cannot make a signature count beyond the authority it was given with (real signer agent, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;

  beforeAll(async () => {
    env = await createTestEnv('insider', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    // An installation that pays in US dollars too (requisites.currencies); the signing rules, the
    // signers' limits and the mandates are amounts in tenge.
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }), {
      config: (c) => ({ ...c, requisites: { ...c.requisites, currencies: ['KZT', 'USD'] } }),
    });
  });
  afterAll(async () => {
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();
  const today = () => new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
  let run = 0;

  /** A demo document taken in from `source` without a job and validated by hand: only what the test does signs it. */
  async function validatedOrder(index: number, source = 'erp-insider', currency = 'KZT'): Promise<string> {
    const doc = demoDocuments(`${String(Date.now()).slice(-6)}${run++}`)[index];
    const [result] = await intakeOrders(db(), source, [{ order: { ...demoOrder(doc, today()), currency } }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await transitionOrder(db(), result.orderId, 'validated', { actor: 'test', from: 'received' });
    return result.orderId;
  }

  it('a second signature stops counting once its signer holds the first level only (R-17: the right it was given with is gone)', async () => {
    const context = world.context;
    const orderId = await validatedOrder(2); // 2,500,000 KZT: first + second
    const directory = new SignerDirectory(db());
    const accountant = (await directory.signerByLogin('demo.accountant'))?.user;
    if (!accountant) throw new Error('the world has no accountant');
    const state = await prepareSigning(context, orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    await expect(signAs(context, state, accountant, { mandate: false })).resolves.toEqual({ signed: 'second' });

    // The accountant no longer gives second signatures: her right on the accounts now carries the first level.
    try {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.accountant', account, rights: 'manage', level: 'first', limitTiyn: null, actor: 'test' });
      // Voided by the change of the right itself (R-17: at once, not at the pipeline's next look).
      expect(await validSignatures(db(), orderId)).toEqual([]);
      const [row] = await db().execute<Array<{ invalidated_reason: string }>>('select invalidated_reason from order_signature where order_id = ?', [orderId]);
      expect(row.invalidated_reason).toMatch(/^signer lost authority \(demo\.accountant: LEVEL_CHANGED/);
      // Nothing is left for the pipeline's look to drop.
      expect(await dropSignaturesThatNoLongerCount(context, state.order)).toBeNull();
    } finally {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.accountant', account, rights: 'manage', level: 'second', limitTiyn: null, actor: 'test' });
    }
  }, 60_000);

  it('a standing mandate signs ERP orders, not one a person typed into the console (an operator cannot have their own order paid without a signer)', async () => {
    const context = world.context;
    // 150,000 KZT: one signature, well under the demo mandates (demo.ceo and demo.accountant, every account, up to 100,000,000).
    const fromErp = await validatedOrder(0);
    const fromConsole = await validatedOrder(0, 'console');
    const refused: string[] = [];
    const outcomes = await signWithMandates(context, [fromErp, fromConsole], (_orderId, login, err) => refused.push(`${login}: ${err.message}`));
    expect(refused).toEqual([]);
    expect(outcomes.get(fromErp)).toEqual({ state: 'signed' });
    expect(outcomes.get(fromConsole)).toEqual({ state: 'awaiting_signatures', missing: ['first'], mandated: false });
    expect(await validSignatures(db(), fromConsole)).toEqual([]);
  }, 60_000);

  it('an order in another currency than tenge is judged above every tenge threshold, limit and mandate (150,000 USD is no order under 1,000,000 KZT)', async () => {
    const context = world.context;
    // 150,000.00: under the demo's 1,000,000 threshold and its mandates' 100,000,000 as tenge; as dollars, some 70 million tenge.
    const usd = await validatedOrder(0, 'erp-insider', 'USD');
    const refused: string[] = [];
    const outcomes = await signWithMandates(context, [usd], (_orderId, login, err) => refused.push(`${login}: ${err.message}`));
    expect(refused).toEqual([]);
    // No mandate signs it, and it needs what the account's rules ask of the largest amounts: two people.
    expect(outcomes.get(usd)).toEqual({ state: 'awaiting_signatures', missing: ['first', 'second'], mandated: false });
    expect(await validSignatures(db(), usd)).toEqual([]);

    // A signer whose right stops at a tenge limit cannot sign it: the limit says nothing of dollars.
    const state = await prepareSigning(context, usd);
    if (!state) throw new Error('the order is not waiting for signatures');
    const ceo = (await new SignerDirectory(db()).signerByLogin('demo.ceo'))?.user;
    if (!ceo) throw new Error('the world has no CEO');
    try {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.ceo', account, rights: 'manage', level: 'first', limitTiyn: 1_000_000_00, actor: 'test' });
      await expect(signAs(context, state, ceo, { mandate: false })).resolves.toEqual({ refused: 'OVER_LIMIT' });
    } finally {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.ceo', account, rights: 'manage', level: 'first', limitTiyn: null, actor: 'test' });
    }
  }, 60_000);

  it('a dollar order stays above a tenge limit written as the largest amount (90071992547409.91): the signer is refused OVER_LIMIT', async () => {
    const context = world.context;
    const usd = await validatedOrder(0, 'erp-insider', 'USD');
    const state = await prepareSigning(context, usd);
    if (!state) throw new Error('the order is not waiting for signatures');
    const ceo = (await new SignerDirectory(db()).signerByLogin('demo.ceo'))?.user;
    if (!ceo) throw new Error('the world has no CEO');
    try {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.ceo', account, rights: 'manage', level: 'first', limitTiyn: parseAmount(MAX_AMOUNT), actor: 'test' });
      await expect(signAs(context, state, ceo, { mandate: false })).resolves.toEqual({ refused: 'OVER_LIMIT' });
      expect(await validSignatures(db(), usd)).toEqual([]);
    } finally {
      for (const account of DEMO_SIGNER_ACCOUNTS) await grantRight(userDeps(context), { login: 'demo.ceo', account, rights: 'manage', level: 'first', limitTiyn: null, actor: 'test' });
    }
  }, 60_000);

  it('an order signed under a one-signature rule is not sent once the rules ask two: it goes back for the second signature', async () => {
    const context = world.context;
    const orderId = await validatedOrder(0); // 150,000 KZT: one signature under the demo's rules
    const ceo = (await new SignerDirectory(db()).signerByLogin('demo.ceo'))?.user;
    if (!ceo) throw new Error('the world has no CEO');
    const state = await prepareSigning(context, orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    await expect(signAs(context, state, ceo, { mandate: false })).resolves.toEqual({ signed: 'first' });
    await expect(completeSigning(context, state)).resolves.toBe(true);

    // The company asks two signatures for every payment now (the one signer's orders still waiting must not go out alone).
    const rules = context.config.signing.rules;
    context.config.signing.rules = [{ account: '*', fromAmount: '0', signatures: 2 }];
    try {
      const job = { id: `submit-${orderId}`, data: { orderId }, attemptsMade: 0, opts: { attempts: 8 }, moveToDelayed: async () => undefined, updateData: async () => undefined };
      const [outcome] = await submitBatch(context, [{ orderId, job: job as never }]);
      expect(outcome).toEqual({ state: 'awaiting_signatures' });
      const [row] = await db().execute<Array<{ state: string; submit_attempts: number }>>('select state, submit_attempts from payment_order where id = ?', [orderId]);
      expect(row).toEqual({ state: 'awaiting_signatures', submit_attempts: 0 });
      // The first signature still counts: only the missing level is asked for.
      expect((await validSignatures(db(), orderId)).map((s) => [s.login, s.level])).toEqual([['demo.ceo', 'first']]);
    } finally {
      context.config.signing.rules = rules;
    }
  }, 60_000);
});
