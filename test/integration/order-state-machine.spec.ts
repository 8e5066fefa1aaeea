import { createTestEnv, type TestEnv } from '../support/test-env';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder, IllegalTransitionError } from '../../connector/orders/order-state.machine';
import { sampleOrder } from '../support/orders.fixture';

describe('order transitions on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const enqueued: string[] = [];
  const port = { enqueueValidate: async (ids: string[]) => void enqueued.push(...ids), enqueueValidated: async () => undefined };

  beforeAll(async () => {
    env = await createTestEnv('statemachine');
    orm = await openOrm(env.config);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  async function newOrder(number: string): Promise<string> {
    const [result] = await intakeOrders(orm.em.fork(), 'test', [{ order: sampleOrder({ number }) }], port, { actor: 'test' });
    return result.orderId;
  }

  async function events(orderId: string) {
    return orm.em.fork().execute<Array<{ from_state: string | null; to_state: string; actor: string }>>('select from_state, to_state, actor from order_event where order_id = ? order by id', [orderId]);
  }

  it('applies an allowed transition once, records the event, bumps the version', async () => {
    const id = await newOrder('A1');
    const result = await transitionOrder(orm.em.fork(), id, 'validated', { actor: 'tester', reason: 'ok' });
    expect(result).toMatchObject({ changed: true, from: 'received', to: 'validated', version: 2 });
    expect(await events(id)).toEqual([
      { from_state: null, to_state: 'received', actor: 'test' },
      { from_state: 'received', to_state: 'validated', actor: 'tester' },
    ]);
  });

  it('treats a repeated transition as a no-op without a second event', async () => {
    const id = await newOrder('A2');
    await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't' });
    const again = await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't' });
    expect(again.changed).toBe(false);
    expect((await events(id)).length).toBe(2);
  });

  it('refuses an illegal transition with a coded error and changes nothing', async () => {
    const id = await newOrder('A3');
    await expect(transitionOrder(orm.em.fork(), id, 'executed', { actor: 't' })).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(transitionOrder(orm.em.fork(), id, 'submitting', { actor: 't' })).rejects.toThrow(/received -> submitting is not an allowed transition/);
    const [row] = await orm.em.fork().execute<Array<{ state: string; version: number }>>('select state, version from payment_order where id = ?', [id]);
    expect(row).toEqual({ state: 'received', version: 1 });
  });

  it('lets exactly one of many concurrent claims win (the submit guard)', async () => {
    const id = await newOrder('A4');
    for (const to of ['validated', 'awaiting_signatures', 'signed'] as const) await transitionOrder(orm.em.fork(), id, to, { actor: 't' });
    const claims = await Promise.all(Array.from({ length: 8 }, () => transitionOrder(orm.em.fork(), id, 'submitting', { actor: 'w', from: 'signed' })));
    expect(claims.filter((c) => c.changed)).toHaveLength(1);
    expect((await events(id)).filter((e) => e.to_state === 'submitting')).toHaveLength(1);
  });

  it('honours an expected version (optimistic lock)', async () => {
    const id = await newOrder('A5');
    await expect(transitionOrder(orm.em.fork(), id, 'validated', { actor: 't', expectVersion: 7 })).rejects.toBeInstanceOf(IllegalTransitionError);
    expect((await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't', expectVersion: 1 })).changed).toBe(true);
  });

  it('makes the same document delivered twice one order (natural key)', async () => {
    const first = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'N1' }) }], port, { actor: 't' });
    const second = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'N1' }) }], port, { actor: 't' });
    expect(second[0]).toMatchObject({ orderId: first[0].orderId, created: false, externalId: first[0].externalId });
    const [{ count }] = await orm.em.fork().execute<Array<{ count: string }>>("select count(*) from payment_order where number = 'N1'");
    expect(Number(count)).toBe(1);
    expect(enqueued.filter((id) => id === first[0].orderId)).toHaveLength(1);
  });

  it('records an order whose amount cannot be stored, with the reason, instead of dropping it', async () => {
    const [result] = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'BAD1', amount: '12,3456' }) }], port, { actor: 't' });
    const [row] = await orm.em.fork().execute<Array<{ errors: Array<{ field: string; code: string }> }>>('select errors from payment_order where id = ?', [result.orderId]);
    expect(row.errors).toEqual([expect.objectContaining({ field: 'amount', code: 'AMOUNT_FORMAT' })]);
  });
});
