import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import type { OrderState } from '../../connector/orders/order-state';
import { statementAccounts } from '../../connector/statements/statement.schedule';
import { sampleOrder } from '../support/orders.fixture';

/**
 * Which accounts' statements are fetched when `pipeline.accounts` names none: those with an order
 * still on its way, or that became final during the last 3 days (its lines are still arriving);
 * never for an order that failed validation. Read by two lookups of the (state, state_changed_at) index.
 */
describe('statementAccounts', () => {
  const world = appWorld('stmt-accounts');
  const now = new Date('2026-11-26T06:00:00Z');
  const old = new Date('2026-11-16T06:00:00Z');
  const recent = new Date('2026-11-25T06:00:00Z');

  const db = () => world.db();
  let n = 0;
  async function orderOf(iban: string, path: OrderState[], at: Date): Promise<string> {
    n += 1;
    const order = sampleOrder({ number: `SA-${n}`, payer: { ...sampleOrder().payer, iban } });
    const [r] = await intakeOrders(db(), 'accounts', [{ order }], { enqueueValidate: async () => undefined }, { actor: 't', now: at });
    for (const to of path) await transitionOrder(db(), r.orderId, to, { actor: 't', now: at });
    return r.orderId;
  }

  it('follows accounts with orders on their way or final lately (however long ago taken in), not those with only old final or invalid ones', async () => {
    const toExecuted: OrderState[] = ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed'];
    await orderOf('KZ-OPEN-OLD', ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'], old);
    await orderOf('KZ-EXECUTED-RECENT', toExecuted, recent);
    await orderOf('KZ-EXECUTED-OLD', toExecuted, old);
    await orderOf('KZ-INVALID-RECENT', ['invalid'], recent);
    await orderOf('KZ-HELD-OLD', ['held'], old);
    await orderOf('KZ-FAILED-OLD', ['validated', 'failed'], old);
    // An account with an old executed order and an open one is followed once.
    await orderOf('KZ-OPEN-OLD', toExecuted, old);
    // Taken in and sent long ago, final only lately (executed, or deemed executed, R-22): its
    // closed day is yet to be fetched and checked.
    const slow = await orderOf('KZ-EXECUTED-LATE', toExecuted.slice(0, -1), old);
    await transitionOrder(db(), slow, 'executed', { actor: 't', now: recent });
    const deemed = await orderOf('KZ-DEEMED-LATE', toExecuted.slice(0, -1), old);
    await transitionOrder(db(), deemed, 'deemed_executed', { actor: 't', now: recent });

    expect(await statementAccounts(db(), [], now)).toEqual(['KZ-DEEMED-LATE', 'KZ-EXECUTED-LATE', 'KZ-EXECUTED-RECENT', 'KZ-FAILED-OLD', 'KZ-HELD-OLD', 'KZ-OPEN-OLD']);
    // Configured accounts are followed as given, whatever the orders say.
    expect(await statementAccounts(db(), ['KZ-CONFIGURED'], now)).toEqual(['KZ-CONFIGURED']);
  });
});
