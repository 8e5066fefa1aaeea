import type { IntakeQueuePort } from '../connector/intake/order-intake';
import type { QueueSet } from './queue.factory';
import { validateOrderJob } from './jobs/validate-order.job';
import { signOrderJob } from './jobs/sign-order.job';

/** The domain's intake port, implemented on BullMQ. */
export function bullmqIntakePort(queues: QueueSet): IntakeQueuePort {
  return {
    enqueueValidate: (orderIds) => queues.addBulk(validateOrderJob, orderIds.map((orderId) => ({ orderId }))),
    enqueueValidated: (orderIds) => queues.addBulk(signOrderJob, orderIds.map((orderId) => ({ orderId }))),
  };
}
