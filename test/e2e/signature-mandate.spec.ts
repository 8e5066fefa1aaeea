import type { FastifyInstance } from 'fastify';
import { buildApiWithExtensions } from '../../connector/api/api.extensions';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { sampleOrder } from '../support/orders.fixture';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from '../lockdown/lockdown.harness';

/**
 * Who answers for a signature (R-15, R-16): one applied by the worker under a standing mandate
 * (config `signing.mandates`) is recorded as such, in the order's signature and in the audit log,
 * and one a person gave through `POST /api/v1/orders/:id/sign` is not. An auditor (and a dispute
 * with the bank) reads "ceo signed" differently when nobody pressed a button. Real signer agent
 * (child process), bank sandbox, PostgreSQL and Redis (the lockdown tests' world: `ceo` holds
 * the standing mandate there).
 */
describe('signatures under a standing mandate are recorded as mandates, a person\'s are not', () => {
  let world: LockdownWorld;
  let api: FastifyInstance;

  beforeAll(async () => {
    world = await startLockdownWorld('signature_mandate');
    api = buildApiWithExtensions(world.context, { users: { signerAgent: { lockUser: async () => ({ locked: true }), unlockKey: async () => ({ ok: false, code: 'X', message: 'x', wrongPassword: false, httpStatus: 502 }), enrollKey: async () => ({}) } } });
    await api.ready();
    // As if ceo had set their own password already (an admin-set one must be changed first, R-10).
    await world.context.orm.em.fork().execute("update app_user set must_change_password = false where login = 'ceo'");
    await world.unlock('ceo');
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await world?.close();
  });

  const signatureOf = (orderId: string) =>
    world.context.orm.em.fork().execute<Array<{ login: string; level: string; mandate: boolean }>>('select login, level, mandate from order_signature where order_id = ? order by id', [orderId]);
  const auditOf = (orderId: string) =>
    world.context.orm.em.fork().execute<Array<{ actor: string; details: { level: string; mandate: boolean } }>>("select actor, details from audit_event where action = 'order.signed' and subject = ? order by seq", [orderId]);

  it('the worker signing under the mandate: order_signature.mandate true, audit order.signed with mandate true', async () => {
    world.startWorkers();
    try {
      const [id] = await world.intake(['MD-AUTO']);
      await eventually(async () => (['signed', 'submitting', 'submitted', 'executed'].includes((await world.states([id]))[id]) ? true : null), { timeoutMs: 30_000, what: 'signed by the mandate' });
      expect(await signatureOf(id)).toEqual([{ login: 'ceo', level: 'first', mandate: true }]);
      expect(await auditOf(id)).toEqual([{ actor: 'user:ceo', details: expect.objectContaining({ level: 'first', mandate: true }) }]);
    } finally {
      await world.stopWorkers();
    }
  }, 60_000);

  it('a person signing through POST /api/v1/orders/:id/sign: order_signature.mandate false, audit order.signed with mandate false', async () => {
    // Taken in without a job, no worker running: nothing but the person signs it.
    const payer = { name: 'ТОО "ДЕМО КОМПАНИЯ"', iinBin: DEMO.payerBin, iban: DEMO.payerIban, bic: 'TSESKZKA', kod: '17' };
    const [taken] = await intakeOrders(world.context.orm.em.fork(), 'test', [{ order: sampleOrder({ number: 'MD-PERSON', payer, amount: '1000.00' }) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    const id = taken.orderId as string;
    await transitionOrder(world.context.orm.em.fork(), id, 'validated', { actor: 'test', from: 'received' });

    const login = await api.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: { login: 'ceo', password: 'Correct-Horse-9' } });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    const signed = await api.inject({ method: 'POST', url: `/api/v1/orders/${id}/sign`, headers: { 'content-type': 'application/json', cookie }, payload: {} });
    expect([signed.statusCode, signed.json()]).toEqual([200, { id, signed: 'first', missing: [], state: 'signed' }]);

    expect(await signatureOf(id)).toEqual([{ login: 'ceo', level: 'first', mandate: false }]);
    expect(await auditOf(id)).toEqual([{ actor: 'user:ceo', details: expect.objectContaining({ level: 'first', mandate: false }) }]);
  }, 60_000);
});
