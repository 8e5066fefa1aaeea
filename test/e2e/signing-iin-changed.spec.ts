import { join } from 'node:path';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { ensureSigners } from '../../connector/demo/pipeline-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { createLogger } from '../../connector/logging/logger';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { validSignatures } from '../../connector/signing/order-signatures';
import { userDeps } from '../../connector/app/user-context';
import { setUserIin } from '../../connector/users/user.service';
import { SignerDirectory } from '../../queue/jobs/pipeline.helpers';
import { prepareSigning, signAs } from '../../queue/order-signing';

/**
 * The IIN a user's certificate must carry is the user's IIN now (R-16: a signature is the
 * person's, their EDS). `users set-iin` changes it and locks the key that was enrolled for the old
 * IIN; the agent's enrolment still names the old one, so the old keystore can be unlocked again.
 * The pipeline must then not sign with it: a signature of the person of the old IIN would be
 * recorded under the login of the person of the new one.
 */
describe('a signature is refused when the certificate is not of the user\'s current IIN (real signer agent, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;

  beforeAll(async () => {
    env = await createTestEnv('iinchanged', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }));
  });
  afterAll(async () => {
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();

  it('after set-iin, the old keystore unlocked again does not sign as the user', async () => {
    const context = world.context;
    const ceoKeystore = world.pki.keystores.find((k) => k.name === 'rsa-ceo');
    const otherIin = world.pki.keystores.find((k) => k.name === 'gost-accountant')?.iin;
    if (!ceoKeystore || !otherIin) throw new Error('the world has no demo keystores');
    await ensureSigners(context, world.pki, [{ login: 'demo.reassigned', keystore: 'rsa-ceo', level: 'first' }]);
    const user = (await new SignerDirectory(db()).signerByLogin('demo.reassigned'))?.user;
    if (!user) throw new Error('no such user');

    // The login now belongs to the person of another IIN; the key enrolled for the old one is locked...
    await expect(setUserIin(userDeps(context), { login: 'demo.reassigned', iin: otherIin, actor: 'test' })).resolves.toMatchObject({ changed: true });
    // ...and unlocked again with its own password (the agent still holds the old enrolment).
    await expect(userDeps(context).signerAgent?.unlockKey(user.id, ceoKeystore.password)).resolves.toMatchObject({ ok: true });

    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const doc = demoDocuments(String(Date.now()).slice(-7))[0];
    const [result] = await intakeOrders(db(), 'erp-iin-changed', [{ order: demoOrder(doc, today) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await transitionOrder(db(), result.orderId, 'validated', { actor: 'test', from: 'received' });
    const state = await prepareSigning(context, result.orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    const reloaded = (await new SignerDirectory(db()).signerByLogin('demo.reassigned'))?.user;
    expect(reloaded?.iin).toBe(otherIin);

    await expect(signAs(context, state, user, { mandate: false })).rejects.toMatchObject({ code: 'IDENTITY_MISMATCH' });
    expect(await validSignatures(db(), result.orderId)).toEqual([]);
  });
});
