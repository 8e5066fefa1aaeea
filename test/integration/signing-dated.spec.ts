import { createTestEnv, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { validateBatch } from '../../queue/jobs/validate-order.job';
import { prepareSigning } from '../../queue/order-signing';
import { intakeOrders } from '../../connector/intake/order-intake';
import { sampleOrder } from '../support/orders.fixture';

/**
 * An order that waits for people's signatures longer than a payment order is valid (10 days from
 * its date) becomes `invalid` before anyone signs it, with the validator's reason for the ERP,
 * instead of being signed and then refused by the bank.
 */
describe('an order whose date goes past the rules while it waits for signatures (real PostgreSQL and Redis)', () => {
  let env: TestEnv;
  let context: AppContext;
  const DAY = 86_400_000;

  beforeAll(async () => {
    env = await createTestEnv('signdated');
    context = await createAppContext({ config: env.config, role: 'worker' });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  const at = (ms: number): AppContext => ({ ...context, clock: { now: () => new Date(ms) } });
  const rowOf = async (id: string) =>
    (await context.orm.em.fork().execute<Array<{ state: string; errors: Array<{ code: string; field: string; message: string }> | null }>>('select state, errors from payment_order where id = ?', [id]))[0];

  async function waiting(number: string): Promise<string> {
    const [r] = await intakeOrders(context.orm.em.fork(), 'dated', [{ order: sampleOrder({ number }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    await validateBatch(context, [r.orderId]);
    expect(await prepareSigning(context, r.orderId)).not.toBeNull();
    expect((await rowOf(r.orderId)).state).toBe('awaiting_signatures');
    return r.orderId;
  }

  it('11 days on, the document is stale: invalid with DATE_STALE, not offered for signing, and the ERP is told', async () => {
    const id = await waiting('DATED-1');
    const writeBacks = await context.queues.get('writeback').count();
    // Nine days on (its value date long gone: the bank's to judge), it still waits.
    expect(await prepareSigning(at(Date.now() + 9 * DAY), id)).not.toBeNull();
    expect((await rowOf(id)).state).toBe('awaiting_signatures');
    expect(await prepareSigning(at(Date.now() + 11 * DAY), id)).toBeNull();
    const row = await rowOf(id);
    expect(row.state).toBe('invalid');
    expect(row.errors).toEqual([expect.objectContaining({ field: 'date', code: 'DATE_STALE', message: expect.stringMatching(/оформите новый документ/) })]);
    const [event] = await context.orm.em.fork().execute<Array<{ reason: string; actor: string }>>("select reason, actor from order_event where order_id = ? and to_state = 'invalid'", [id]);
    expect(event).toMatchObject({ actor: 'worker', reason: expect.stringContaining('went stale while it waited for signatures') });
    expect(await context.queues.get('writeback').count()).toBeGreaterThan(writeBacks);
    // A second look changes nothing.
    expect(await prepareSigning(at(Date.now() + 12 * DAY), id)).toBeNull();
    expect((await rowOf(id)).state).toBe('invalid');
  });

  it('one still validated when its signing starts (its first look at signatures already stale) goes invalid too', async () => {
    const [r] = await intakeOrders(context.orm.em.fork(), 'dated', [{ order: sampleOrder({ number: 'DATED-2' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    await validateBatch(context, [r.orderId]);
    expect((await rowOf(r.orderId)).state).toBe('validated');
    expect(await prepareSigning(at(Date.now() + 11 * DAY), r.orderId)).toBeNull();
    expect(await rowOf(r.orderId)).toMatchObject({ state: 'invalid', errors: [expect.objectContaining({ code: 'DATE_STALE' })] });
  });
});
