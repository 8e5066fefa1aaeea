import { canTransition, FINAL_STATES, ORDER_STATES, TRANSITIONS, type OrderState } from '../../connector/orders/order-state';

/** The full table, written out independently of TRANSITIONS so a slip in either is caught. */
const ALLOWED: Array<[OrderState, OrderState]> = [
  ['received', 'validated'], ['received', 'invalid'], ['received', 'held'], ['received', 'failed'],
  ['invalid', 'received'],
  ['validated', 'awaiting_signatures'], ['validated', 'held'], ['validated', 'failed'], ['validated', 'invalid'],
  ['awaiting_signatures', 'signed'], ['awaiting_signatures', 'held'], ['awaiting_signatures', 'failed'], ['awaiting_signatures', 'invalid'],
  ['signed', 'submitting'], ['signed', 'awaiting_signatures'], ['signed', 'held'], ['signed', 'failed'], ['signed', 'invalid'],
  ['submitting', 'submitted'], ['submitting', 'rejected'], ['submitting', 'failed'], ['submitting', 'awaiting_signatures'],
  ['submitted', 'executed'], ['submitted', 'rejected'], ['submitted', 'deemed_executed'], ['submitted', 'failed'],
  ['deemed_executed', 'executed'], ['deemed_executed', 'rejected'],
  ['held', 'received'], ['held', 'invalid'],
  ['failed', 'received'], ['failed', 'validated'], ['failed', 'awaiting_signatures'], ['failed', 'signed'], ['failed', 'submitting'], ['failed', 'submitted'], ['failed', 'executed'], ['failed', 'rejected'], ['failed', 'invalid'],
];

describe('order state machine (pure table)', () => {
  const allowed = new Set(ALLOWED.map(([a, b]) => `${a}->${b}`));
  const pairs = ORDER_STATES.flatMap((from) => ORDER_STATES.map((to) => [from, to] as const));

  it.each(pairs)('%s -> %s is allowed exactly when the table says so', (from, to) => {
    expect(canTransition(from, to)).toBe(allowed.has(`${from}->${to}`));
  });

  it('has the same number of edges as the written table', () => {
    expect(Object.values(TRANSITIONS).reduce((n, t) => n + t.length, 0)).toBe(ALLOWED.length);
  });

  it('never holds an order that may already be at the bank', () => {
    expect(canTransition('submitting', 'held')).toBe(false);
    expect(canTransition('submitted', 'held')).toBe(false);
  });

  it('moves statuses only forward from final states', () => {
    // invalid -> received: a corrected document taken again at intake (it never reached the bank).
    for (const state of FINAL_STATES.filter((s) => s !== 'deemed_executed' && s !== 'invalid')) expect(TRANSITIONS[state]).toEqual([]);
    expect(TRANSITIONS.invalid).toEqual(['received']);
    expect(canTransition('executed', 'submitted')).toBe(false);
    expect(canTransition('rejected', 'executed')).toBe(false);
  });
});
