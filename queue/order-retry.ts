import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder } from '../connector/persistence/entities';
import { IllegalTransitionError, transitionOrder } from '../connector/orders/order-state.machine';
import { failedAfterSendBegan, WITHDRAWABLE_STATES, type OrderState } from '../connector/orders/order-state';
import { ConnectorError } from '../connector/shared/errors';
import { isLockdownRecorded } from '../connector/lockdown/lockdown.flag';
import type { QueueSet } from './queue.factory';
import { requeueOrder } from './jobs/sweep-orders.job';
import { enqueueWriteBack } from './jobs/write-back.job';
import { isUuid } from '../connector/shared/uuid';

/** The order an operator names by its id: NOT_FOUND for an id that is none (or no UUID at all). */
async function orderNamed(em: EntityManager, orderId: string): Promise<PaymentOrder> {
  const order = isUuid(orderId) ? await em.findOne(PaymentOrder, { id: orderId }) : null;
  if (!order) throw new ConnectorError('NOT_FOUND', `no order ${orderId}`);
  return order;
}

/** An operator's reason as it is stored and the ERP's user reads it: one line, at most 500 characters; REASON_REQUIRED (exit 2) when blank. */
function operatorReason(reason: string, ask: string): string {
  const text = reason.trim().replace(/\s+/g, ' ').slice(0, 500);
  if (!text) throw new ConnectorError('REASON_REQUIRED', ask, 2);
  return text;
}

/**
 * `connector orders retry ID`: a failed order goes back to the stage it failed in and is queued
 * again. From `submitting` the submit job starts with a lookup by external id, so a retry never
 * makes a second submission.
 */
export async function retryFailedOrder(em: EntityManager, queues: QueueSet, orderId: string, actor: string): Promise<OrderState> {
  const order = await orderNamed(em, orderId);
  if (order.state !== 'failed') throw new ConnectorError('NOT_FAILED', `order ${orderId} is ${order.state}; only failed orders can be retried`);
  // Under lockdown nothing goes on to be signed or sent (issue 16): the resolve decides first which
  // of its signatures still count (those made before it by a key in scope do not).
  if (await isLockdownRecorded(em)) {
    throw new ConnectorError('LOCKED_DOWN', `order ${orderId} is not retried: the connector is locked down after a suspected compromise (R-29); resolve it first (connector lockdown status)`);
  }
  await refuseIfDebited(em, orderId, 'retried');
  const target = (order.failedFrom ?? 'received') as OrderState;
  await transitionOrder(em, orderId, target, { actor, from: 'failed', reason: 'operator retry', patch: { lastError: null } });
  // At once, even where a delayed look at an order waiting for people is pending (up to 10 min away).
  await requeueOrder(queues, target, orderId, { now: true });
  // The ERP was told the order failed: it hears now that it goes on (not at the next statement fetch).
  await enqueueWriteBack(queues);
  return target;
}

/**
 * Never a second payment: a booked debit reconciliation matched to this order (by its reference,
 * or by all its requisites) means the money left, through this connector or by hand. Not a
 * `mismatch`: a line sharing only its number and date may be another payment altogether. An
 * `unexplained` line linked to the order is the debit of one that failed before it was sent
 * (reconciliation.ts): paid nonetheless, whoever paid it. Neither retried nor withdrawn (the ERP
 * would be told it was not paid).
 */
async function refuseIfDebited(em: EntityManager, orderId: string, what: 'retried' | 'withdrawn' | 'settled as rejected'): Promise<void> {
  const [debit] = await em.execute<Array<{ bank_line_id: string; booking_date: string }>>(
    `select bank_line_id, booking_date::text as booking_date from statement_line
      where order_id = ? and direction = 'debit' and status = 'booked' and match_kind in ('order', 'unexplained') order by booking_date limit 1`,
    [orderId],
  );
  if (debit) {
    throw new ConnectorError(
      'ALREADY_DEBITED',
      `order ${orderId} is not ${what}: statement line ${debit.bank_line_id} of ${debit.booking_date} shows its debit, so it was paid; once you have checked that, record it with connector orders settle ${orderId} --as executed --reason TEXT`,
    );
  }
}

/** What an operator may settle an order as, once the bank told them (its final status never came through the API). */
export const SETTLE_TARGETS = ['executed', 'rejected'] as const;
export type SettleTarget = (typeof SETTLE_TARGETS)[number];

/**
 * `connector orders settle ID --as executed|rejected --reason TEXT`: an order the bank never gave a
 * final status the connector knows (a status it does not know, answers about another document,
 * a refusal after it was deemed executed) is settled by a person who asked the bank. From
 * `submitted`, `deemed_executed` to `rejected` (a late notice of non-execution), `failed` to
 * `executed` (paid by hand, or its debit is in a statement: `orders retry` refuses it), or `failed`
 * after a send began to `rejected` (the bank says it refused or never got it; not with its debit in a
 * statement). The reason is
 * the order's event and, for a refusal, what the ERP's user reads (R-23); the change is audited
 * (its event names the operator) and written back to the ERP like any other.
 */
export async function settleOrder(em: EntityManager, queues: QueueSet, orderId: string, as: SettleTarget, reason: string, actor: string): Promise<{ from: OrderState; to: SettleTarget }> {
  const order = await orderNamed(em, orderId);
  const from = order.state;
  // A failed order as executed: paid by hand, or at the bank after all (its statement line says so).
  // As rejected: one that failed after a send began, which the bank says it refused or never got (a
  // recall, a refusal code the release did not know): no retry can end it, and `withdraw` refuses it,
  // as the bank may have it; asked, the bank says it has not. One never sent is withdrawn instead.
  const failedAtTheBank = from === 'failed' && failedAfterSendBegan(order);
  const settleable = from === 'submitted' || (from === 'deemed_executed' && as === 'rejected') || (from === 'failed' && (as === 'executed' || failedAtTheBank));
  if (!settleable) {
    throw new ConnectorError(
      'NOT_SETTLEABLE',
      from === 'failed'
        ? `order ${orderId} failed before anything of it was sent: it is not settled as rejected; withdraw it (connector orders withdraw ${orderId} --reason TEXT) or retry it`
        : `order ${orderId} is ${from}; only a submitted order, a deemed executed one as rejected, or a failed one (as executed, or as rejected once a send began) is settled by hand`,
    );
  }
  // Its debit in a statement: it was paid, whatever anyone says.
  if (from === 'failed' && as === 'rejected') await refuseIfDebited(em, orderId, 'settled as rejected');
  const text = operatorReason(reason, 'say what the bank said, and who confirmed it (--reason)');
  try {
    await transitionOrder(em, orderId, as, {
      actor,
      from,
      reason: `settled by an operator: ${text}`,
      patch: as === 'rejected' ? { bankStatus: 'rejected', bankReasonCode: 'SETTLED_BY_OPERATOR', bankReasonText: text, failedFrom: null } : { bankStatus: 'executed', failedFrom: null },
    });
  } catch (err) {
    // The bank's own answer settled it meanwhile (a poll, a statement): that one stands.
    if (err instanceof IllegalTransitionError) throw new ConnectorError('NOT_SETTLEABLE', `order ${orderId} moved on from ${from} meanwhile; look at it again (connector orders show)`);
    throw err;
  }
  await enqueueWriteBack(queues);
  return { from, to: as };
}

/**
 * `connector orders withdraw ID --reason TEXT`: the ERP's user changed their mind about a document
 * the connector took in (a wrong amount, a payment made another way) before anything of it reached
 * the bank. There is no other way to stop such an order: intake refuses a changed body under the
 * same number (LESSONS.md 2), and a corrected one under a new number is a second payment unless the
 * first is withdrawn. It ends `invalid` with the reason (code WITHDRAWN), which the ERP reads; one
 * never signed may then be sent again corrected under the same number, as any invalid one.
 * Refused for an order claimed for submission or beyond (the bank may have it), and for a failed one
 * an attempt of which was sent. Audited (its event names the operator), written back to the ERP.
 */
export async function withdrawOrder(em: EntityManager, queues: QueueSet, orderId: string, reason: string, actor: string): Promise<{ from: OrderState }> {
  const order = await orderNamed(em, orderId);
  const text = operatorReason(reason, "say why the order is withdrawn and who asked (--reason); the ERP's user reads it");
  const from = order.state;
  // Attempts are counted before each send, and an order sent once is never unsent (it may be back in
  // an earlier state only through a retry, its lookup first): one attempt is enough to refuse.
  const sentOnce = order.submitAttempts > 0;
  if (!WITHDRAWABLE_STATES.includes(from) || sentOnce) {
    throw new ConnectorError(
      'NOT_WITHDRAWABLE',
      `order ${orderId} is ${from}${sentOnce ? ` after ${order.submitAttempts} attempt(s) to send it` : ''}: the bank may have it, so it is not withdrawn here; ask the bank to recall the document, then settle it (connector orders settle)`,
    );
  }
  await refuseIfDebited(em, orderId, 'withdrawn');
  try {
    await transitionOrder(em, orderId, 'invalid', {
      actor,
      from,
      reason: `withdrawn by an operator: ${text}`,
      patch: { errors: [{ field: 'order', code: 'WITHDRAWN', message: `Документ отозван: ${text}`, messageEn: `withdrawn: ${text}` }], lastError: null },
    });
  } catch (err) {
    // Claimed for submission meanwhile (or signed, validated...): looked at again by a person.
    if (err instanceof IllegalTransitionError) throw new ConnectorError('NOT_WITHDRAWABLE', `order ${orderId} moved on from ${from} meanwhile; look at it again (connector orders show)`);
    throw err;
  }
  await enqueueWriteBack(queues);
  return { from };
}
