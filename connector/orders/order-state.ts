/**
 * Order states (DESIGN.md "The flow of one payment order") and the transitions allowed between
 * them. Every transition is applied as one conditional database update that records an
 * OrderEvent (order-state.machine.ts); the queue only carries ids.
 */
export const ORDER_STATES = [
  'received',
  'validated',
  'invalid',
  'awaiting_signatures',
  'signed',
  'submitting',
  'submitted',
  'executed',
  'rejected',
  'deemed_executed',
  'held',
  'failed',
] as const;

export type OrderState = (typeof ORDER_STATES)[number];

export function isOrderState(value: string): value is OrderState {
  return (ORDER_STATES as readonly string[]).includes(value);
}

/**
 * from -> allowed targets. Notes on the less obvious edges:
 * - `held` (lockdown) is reachable only from states where nothing has gone to the bank yet;
 *   an order in `submitting` may already be at the bank, so it is never held: it is resolved
 *   by lookup first.
 * - `signed -> awaiting_signatures`: a signer lost authority before submission, or the newest CMS does not name exactly the valid signers.
 * - `submitting -> awaiting_signatures`: the same, found at the send of an order claimed earlier
 *   that was never sent (no attempt counted); one sent once is never unsent, only sent again.
 * - `deemed_executed -> executed|rejected`: the statement or a late notice confirms or
 *   overturns the R-22 presumption; statuses otherwise only move forward (LESSONS.md 3).
 * - `failed -> *`: an admin retry returns the order to the stage it failed in (recorded as
 *   failedFrom); from `submitting` that means lookup-before-resend, never a second submission.
 * - `failed -> executed`: a statement line shows the debit of an order that failed after it was
 *   sent (reconciliation.ts); the ERP must not go on showing it as failed.
 * - `failed -> rejected`: settled by an operator after the bank said it refused or never got an
 *   order that failed after a send began (`connector orders settle --as rejected`).
 * - `validated | awaiting_signatures | signed | held | failed -> invalid`: withdrawn by an operator
 *   before anything of it reached the bank (`connector orders withdraw`; a failed one only when no
 *   attempt to send it was made); `awaiting_signatures -> invalid` also when the document went stale
 *   (older than `requisites.staleAfterDays`) while it waited for people's signatures.
 * - `invalid -> received`: only intake takes it, when the ERP sends the same document (payer
 *   account, number, date) again corrected, as the error report asks; an invalid order was never
 *   signed nor sent, so it is validated again with the new requisites (order-intake.ts).
 */
export const TRANSITIONS: Readonly<Record<OrderState, readonly OrderState[]>> = {
  received: ['validated', 'invalid', 'held', 'failed'],
  validated: ['awaiting_signatures', 'held', 'failed', 'invalid'],
  invalid: ['received'],
  awaiting_signatures: ['signed', 'held', 'failed', 'invalid'],
  signed: ['submitting', 'awaiting_signatures', 'held', 'failed', 'invalid'],
  submitting: ['submitted', 'rejected', 'failed', 'awaiting_signatures'],
  submitted: ['executed', 'rejected', 'deemed_executed', 'failed'],
  executed: [],
  rejected: [],
  deemed_executed: ['executed', 'rejected'],
  held: ['received', 'invalid'],
  failed: ['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed', 'rejected', 'invalid'],
};

/** States an operator may withdraw an order from (`connector orders withdraw`): nothing of it is at the bank, nor on its way; a failed one only when no attempt to send it was made. */
export const WITHDRAWABLE_STATES: readonly OrderState[] = ['received', 'validated', 'awaiting_signatures', 'signed', 'held', 'failed'];

/**
 * Whether a `failed` order may be at the bank: it failed once the bank had accepted it
 * (`submitted`), or while sending (`submitting`) after a send began. Attempts are counted before each
 * send, so 0 means nothing of it left (the claim's lease lapsed, a lockdown shut the gate); failed in
 * an earlier stage, it was never sent. Reconciliation and the ERP's status report both read it so.
 */
export function failedAfterSendBegan(order: { failedFrom?: OrderState | string | null; submitAttempts: number | string }): boolean {
  return order.failedFrom === 'submitted' || (order.failedFrom === 'submitting' && Number(order.submitAttempts) > 0);
}

export const FINAL_STATES: readonly OrderState[] = ['invalid', 'executed', 'rejected', 'deemed_executed'];


export function canTransition(from: OrderState, to: OrderState): boolean {
  return TRANSITIONS[from].includes(to);
}

/** States from which `to` is reachable. */
export function sourcesOf(to: OrderState): OrderState[] {
  return ORDER_STATES.filter((from) => TRANSITIONS[from].includes(to));
}
