import { appWorld } from '../support/app-world';
import { intakeOrders, type IntakeQueuePort } from '../../connector/intake/order-intake';
import * as machine from '../../connector/orders/order-state.machine';
import { validateStoredOrder } from '../../connector/orders/order-validation';
import { kzOrderValidator } from '../../connector/requisites/payment-order.validator';
import { sampleOrder } from '../support/orders.fixture';

/**
 * The validate stage applies a verdict only to the version of the order it judged, on real
 * PostgreSQL: BullMQ is at-least-once (LESSONS.md 10), so a duplicate validate job may load an
 * order, then apply its verdict after the order was judged and corrected under it.
 */
describe('validate stage: a verdict for the version judged', () => {
  const world = appWorld('order-validation');
  const queue: IntakeQueuePort = { enqueueValidate: async () => undefined };
  const validator = kzOrderValidator();
  const row = async (id: string) =>
    (await world.db().execute<Array<{ state: string; version: number; errors: unknown; beneficiary_iban: string }>>('select state, version, errors, beneficiary_iban from payment_order where id = ?', [id]))[0];
  afterEach(() => jest.restoreAllMocks());

  it('a stale verdict (judged on version N) is not applied to the corrected order (N+2): it moved on, no error, and its own run judges it', async () => {
    const broken = sampleOrder({ number: 'VAL-1', beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ00722S000000067890' } });
    const [first] = await intakeOrders(world.db(), 'api:erp', [{ order: broken }], queue, { actor: 't' });
    const loaded = (await row(first.orderId)).version;
    const corrected = sampleOrder({ number: 'VAL-1' });
    // Between this run's load and its verdict: another run marks the order invalid, and the ERP
    // sends the corrected document, which puts it back to `received` with the new body.
    const original = machine.transitionOrders;
    jest.spyOn(machine, 'transitionOrders').mockImplementationOnce(async (...args) => {
      await original(world.db(), [first.orderId], 'invalid', { actor: 'other-run', from: 'received', reason: 'beneficiary.iban: checksum' });
      const [again] = await intakeOrders(world.db(), 'api:erp', [{ order: corrected }], queue, { actor: 't' });
      expect(again.corrected).toBe(true);
      return original(...args);
    });
    const stale = await validateStoredOrder(world.db(), first.orderId, validator, { actor: 'worker' });
    expect(stale).toEqual({ state: 'received', changed: false });
    expect(await row(first.orderId)).toEqual({ state: 'received', version: loaded + 2, errors: null, beneficiary_iban: corrected.beneficiary.iban });
    // The run for the corrected version judges the corrected body.
    expect(await validateStoredOrder(world.db(), first.orderId, validator, { actor: 'worker' })).toEqual({ state: 'validated', changed: true });
  });

  it('a verdict whose order is still the version judged is applied as before; run again, it changes nothing', async () => {
    const [order] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'VAL-2' }) }], queue, { actor: 't' });
    expect(await validateStoredOrder(world.db(), order.orderId, validator, { actor: 'worker' })).toEqual({ state: 'validated', changed: true });
    expect(await validateStoredOrder(world.db(), order.orderId, validator, { actor: 'worker' })).toEqual({ state: 'validated', changed: false });
  });
});
