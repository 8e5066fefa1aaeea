import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder } from '../connector/persistence/entities';
import { transitionOrder } from '../connector/orders/order-state.machine';
import type { OrderState } from '../connector/orders/order-state';
import { ConnectorError } from '../connector/shared/errors';
import type { QueueSet } from './queue.factory';
import { requeueOrder } from './jobs/sweep-orders.job';

/**
 * `connector orders retry ID`: a failed order goes back to the stage it failed in and is queued
 * again. From `submitting` the submit job starts with a lookup by external id, so a retry never
 * makes a second submission.
 */
export async function retryFailedOrder(em: EntityManager, queues: QueueSet, orderId: string, actor: string): Promise<OrderState> {
  const order = /^[0-9a-f-]{36}$/i.test(orderId) ? await em.findOne(PaymentOrder, { id: orderId }) : null;
  if (!order) throw new ConnectorError('NOT_FOUND', `no order ${orderId}`);
  if (order.state !== 'failed') throw new ConnectorError('NOT_FAILED', `order ${orderId} is ${order.state}; only failed orders can be retried`);
  const target = (order.failedFrom ?? 'received') as OrderState;
  await transitionOrder(em, orderId, target, { actor, from: 'failed', reason: 'operator retry', patch: { lastError: null } });
  // At once, even where a delayed look at an order waiting for people is pending (up to 10 min away).
  await requeueOrder(queues, target, orderId, { now: true });
  return target;
}
