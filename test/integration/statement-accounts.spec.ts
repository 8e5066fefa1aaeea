import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import type { OrderState } from '../../connector/orders/order-state';
import { statementAccounts } from '../../connector/statements/statement.schedule';
import { sampleOrder } from '../support/orders.fixture';

/**
 * Which accounts' statements are fetched when `pipeline.accounts` names none: those with an order
 * still on its way, or taken in during the last 3 days (its lines are still arriving); never for
 * an order that failed validation. Read by two index lookups (migration 20261126040000).
 */
describe('statementAccounts', () => {
  const world = appWorld('stmt-accounts');
  const now = new Date('2026-11-26T06:00:00Z');
  const old = new Date('2026-11-16T06:00:00Z');
  const recent = new Date('2026-11-25T06:00:00Z');

  const db = () => world.db();
  let n = 0;
  async function orderOf(iban: string, path: OrderState[], at: Date): Promise<void> {
    n += 1;
    const order = sampleOrder({ number: `SA-${n}`, payer: { ...sampleOrder().payer, iban } });
    const [r] = await intakeOrders(db(), 'accounts', [{ order }], { enqueueValidate: async () => undefined }, { actor: 't', now: at });
    for (const to of path) await transitionOrder(db(), r.orderId, to, { actor: 't', now: at });
  }

  it('follows accounts with orders on their way or taken in lately, not those with only old final or invalid ones', async () => {
    const toExecuted: OrderState[] = ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed'];
    await orderOf('KZ-OPEN-OLD', ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'], old);
    await orderOf('KZ-EXECUTED-RECENT', toExecuted, recent);
    await orderOf('KZ-EXECUTED-OLD', toExecuted, old);
    await orderOf('KZ-INVALID-RECENT', ['invalid'], recent);
    await orderOf('KZ-HELD-OLD', ['held'], old);
    await orderOf('KZ-FAILED-OLD', ['validated', 'failed'], old);
    // An account with an old executed order and an open one is followed once.
    await orderOf('KZ-OPEN-OLD', toExecuted, old);

    expect(await statementAccounts(db(), [], now)).toEqual(['KZ-EXECUTED-RECENT', 'KZ-FAILED-OLD', 'KZ-HELD-OLD', 'KZ-OPEN-OLD']);
    // Configured accounts are followed as given, whatever the orders say.
    expect(await statementAccounts(db(), ['KZ-CONFIGURED'], now)).toEqual(['KZ-CONFIGURED']);
  });
});
