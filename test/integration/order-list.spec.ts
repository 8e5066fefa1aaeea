import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { orderIdsPage, type OrderListFilter } from '../../connector/orders/order-list';
import { sampleOrder } from '../support/orders.fixture';

/** The API's order pages (GET /api/v1/orders): newest first, keyset cursors, per-account keys, on real PostgreSQL. */
describe('orderIdsPage', () => {
  const world = appWorld('order-list');
  const ACCOUNTS = ['KZ-LIST-A', 'KZ-LIST-B', 'KZ-LIST-C'];
  const orders: Array<{ id: string; account: string; state: string; createdAt: Date }> = [];

  beforeAll(async () => {
    const start = Date.parse('2026-11-20T04:00:00Z');
    for (let i = 0; i < 24; i += 1) {
      const account = ACCOUNTS[(i * 7) % 3];
      // Two orders share each creation time: the id breaks the tie, on every page.
      const createdAt = new Date(start + Math.floor(i / 2) * 60_000);
      const order = sampleOrder({ number: `L-${i}`, payer: { ...sampleOrder().payer, iban: account } });
      const [r] = await intakeOrders(world.db(), 'list', [{ order }], { enqueueValidate: async () => undefined }, { actor: 't', now: createdAt });
      const state = i % 4 === 0 ? 'invalid' : 'received';
      if (state === 'invalid') await transitionOrder(world.db(), r.orderId, 'invalid', { actor: 't', now: createdAt });
      orders.push({ id: r.orderId, account, state, createdAt });
    }
  });

  /** What a page must be: the matching orders, newest first, ties by id descending. */
  const expected = (f: OrderListFilter) =>
    orders
      .filter((o) => (f.accounts === 'all' || f.accounts.includes(o.account)) && (!f.state || o.state === f.state))
      .filter((o) => !f.before || o.createdAt.getTime() < f.before.createdAt.getTime() || (o.createdAt.getTime() === f.before.createdAt.getTime() && o.id < f.before.id))
      .sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || (a.id < b.id ? 1 : -1))
      .slice(0, f.limit)
      .map((o) => o.id);

  /** Every page of a filter, following the cursor from the last id of each. */
  async function walk(filter: Omit<OrderListFilter, 'before'>): Promise<string[]> {
    const seen: string[] = [];
    let before: OrderListFilter['before'];
    for (;;) {
      const page = await orderIdsPage(world.db(), { ...filter, before });
      expect(page).toEqual(expected({ ...filter, before }));
      seen.push(...page);
      if (page.length < filter.limit) return seen;
      const last = orders.find((o) => o.id === page[page.length - 1])!;
      before = { createdAt: last.createdAt, id: last.id };
    }
  }

  it.each<[string, Omit<OrderListFilter, 'before'>]>([
    ['every account', { accounts: 'all', limit: 5 }],
    ['every account, one state', { accounts: 'all', state: 'invalid', limit: 2 }],
    ['one account', { accounts: ['KZ-LIST-B'], limit: 3 }],
    ['two accounts', { accounts: ['KZ-LIST-A', 'KZ-LIST-C'], limit: 4 }],
    ['two accounts, one state', { accounts: ['KZ-LIST-A', 'KZ-LIST-C'], state: 'invalid', limit: 2 }],
    ['an account with no orders', { accounts: ['KZ-LIST-NONE'], limit: 3 }],
  ])('%s: newest first, each page right, the pages together all of them once', async (_what, filter) => {
    const all = await walk(filter);
    expect(new Set(all).size).toBe(all.length);
    expect(all).toEqual(expected({ ...filter, limit: 1_000 }));
  });

  it('a key with no accounts sees nothing', async () => {
    expect(await orderIdsPage(world.db(), { accounts: [], limit: 10 })).toEqual([]);
  });
});
