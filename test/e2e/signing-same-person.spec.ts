import { join } from 'node:path';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { ensureSigners } from '../../connector/demo/pipeline-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { createLogger } from '../../connector/logging/logger';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { validSignatures } from '../../connector/signing/order-signatures';
import { dropSignaturesThatNoLongerCount, SignerDirectory } from '../../queue/jobs/pipeline.helpers';
import { prepareSigning, signAs } from '../../queue/order-signing';

/**
 * R-16 (terms 3.6, 6.1.11): an order that needs a first and a second signature needs two
 * people. A person is their EDS (the certificate's IIN, the certificate itself), not a login: the
 * same person under a second login (an admin's slip, or a signer who asked for a "spare" account)
 * must not give the second signature over their own first one.
 */
describe('R-16: one person gives one signature on an order, whatever login they sign under (real signer agent, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;

  beforeAll(async () => {
    env = await createTestEnv('sameperson', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }));
  });
  afterAll(async () => {
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();

  it('the CEO signs first as demo.ceo; the same CEO (same IIN, same key) under a second login with the second level is refused', async () => {
    const context = world.context;
    // The same person's second login: the CEO's IIN and keystore, the second level on the accounts.
    await ensureSigners(context, world.pki, [{ login: 'demo.ceo.spare', keystore: 'rsa-ceo', level: 'second' }]);
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const doc = demoDocuments(String(Date.now()).slice(-7))[2]; // 2,500,000 KZT: first + second signature
    // Taken in without a job (no mandate signs it), validated by hand.
    const [result] = await intakeOrders(db(), 'erp-same-person', [{ order: demoOrder(doc, today) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await transitionOrder(db(), result.orderId, 'validated', { actor: 'test', from: 'received' });
    const directory = new SignerDirectory(db());
    const ceo = (await directory.signerByLogin('demo.ceo'))?.user;
    const spare = (await directory.signerByLogin('demo.ceo.spare'))?.user;
    if (!ceo || !spare) throw new Error('the world has no CEO logins');
    expect(spare.iin).toBe(ceo.iin);

    const state = await prepareSigning(context, result.orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    await expect(signAs(context, state, ceo, { mandate: false })).resolves.toEqual({ signed: 'first' });
    await expect(signAs(context, state, spare, { mandate: false })).resolves.toEqual({ refused: 'ALREADY_SIGNED' });

    const signatures = await validSignatures(db(), result.orderId);
    expect(signatures.map((s) => [s.login, s.level])).toEqual([['demo.ceo', 'first']]);
    expect((await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state).toBe('awaiting_signatures');

    // An order the same person signed twice before this check existed (its second signature is
    // written here as the spare login would have recorded it): before the claim, the round stops
    // counting, as for a signer who lost authority, and the order waits for two people again.
    const [first] = signatures;
    const twice = await context.services.signer().sign(spare.id, { orderId: result.orderId, document: state.document.bytes, cosign: first.cms, expectedBin: state.order.payerIinBin });
    await db().execute(
      `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, iin, signing_time, document_sha256, cms, mandate, cosigned_id, created_at)
       values (?, ?, 'demo.ceo.spare', 'second', ?, ?, ?, ?, ?, ?, ?, false, ?, now())`,
      [result.orderId, spare.id, twice.algorithm, twice.serial, twice.subject, twice.iin, new Date(twice.signingTime), twice.documentSha256, twice.cmsDer, first.id],
    );
    expect((await validSignatures(db(), result.orderId)).map((s) => s.login)).toEqual(['demo.ceo', 'demo.ceo.spare']);
    const why = await dropSignaturesThatNoLongerCount(context, state.order);
    expect(why).toMatch(/demo\.ceo\.spare: SAME_PERSON/);
    expect(await validSignatures(db(), result.orderId)).toEqual([]);
  });
});
