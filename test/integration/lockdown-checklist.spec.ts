import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import type { OrderState } from '../../connector/orders/order-state';
import { formatBankChecklist } from '../../connector/lockdown/bank-checklist';
import { engageLockdown, type LockdownDeps } from '../../connector/lockdown/lockdown.service';
import { sampleOrder } from '../support/orders.fixture';

/**
 * the checklist of a lockdown lists the documents the bank may have received, for the person
 * who calls the bank: each as it was sent, its amount in its own currency. On the real PostgreSQL
 * and Redis; the queues, the signer agent, the sessions and the notifier are the lockdown's ports.
 */
describe('lockdown checklist: the documents the bank is told of (R-29)', () => {
  const world = appWorld('lockdown-checklist', {}, { quiet: true });

  it('names each recent document with its amount in its own currency (a dollar payment is not read out as tenge)', async () => {
    const sentAt = new Date();
    const date = new Date(sentAt.getTime() + 5 * 3600_000).toISOString().slice(0, 10);
    const [tenge, dollars] = await intakeOrders(
      world.db(),
      'checklist',
      [{ order: sampleOrder({ number: 'T-1', amount: '1500.00', date, valueDate: date }) }, { order: sampleOrder({ number: 'U-1', amount: '2500.00', date, valueDate: date }) }],
      { enqueueValidate: async () => undefined },
      { actor: 't' },
    );
    // requisites.currencies may allow dollars; the order is set so directly (the boundary here is the lockdown).
    await world.db().execute("update payment_order set currency = 'USD' where id = ?", [dollars.orderId]);
    for (const id of [tenge.orderId, dollars.orderId]) {
      for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as OrderState[]) await transitionOrder(world.db(), id, to, { actor: 't', now: sentAt });
    }
    const deps: LockdownDeps = {
      em: world.db(),
      redis: world.context.redis,
      config: world.env.config,
      clock: { now: () => new Date() },
      ports: {
        queues: { pauseAll: async () => [], resumeAll: async () => [], requeueValidate: async () => undefined, requeueSubmit: async () => undefined },
        agent: { wipeAll: async () => ({ wipedUsers: [] }) },
        sessions: { endAll: async () => 0, blockUser: async () => ({ sessionsEnded: 0, warnings: [] }) },
        notifier: { notify: async () => ({ delivered: [], warnings: [] }) },
      },
    };
    const result = await engageLockdown(deps, { trigger: 'manual', reason: 'a token was lost', scope: 'credentials', actor: 'cli:test' });

    const text = formatBankChecklist(result.checklist!);
    expect(text).toMatch(/document U-1 of \d{4}-\d{2}-\d{2}, 2500\.00 USD from /);
    expect(text).toMatch(/document T-1 of \d{4}-\d{2}-\d{2}, 1500\.00 KZT from /);
    // The incident keeps the same data for `incidents show --json`.
    const [incident] = await world.db().execute<Array<{ evidence: { checklist: { data: { recentDocuments: Array<{ number: string; currency?: string }> } } } }>>('select evidence from incident where id = ?', [result.incidentId]);
    expect(incident.evidence.checklist.data.recentDocuments).toEqual(
      expect.arrayContaining([expect.objectContaining({ number: 'U-1', amount: '2500.00', currency: 'USD' }), expect.objectContaining({ number: 'T-1', amount: '1500.00', currency: 'KZT' })]),
    );
  });
});
