import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import { validateStoredOrder } from '../../connector/orders/order-validation';
import { testPausePoint } from '../test-hooks';
import { signOrderJob } from './sign-order.job';
import { isLockedDown } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';

export const validateOrderJob = defineJob({
  name: 'order.validate',
  queue: 'validate',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `validate-${p.orderId}`,
});

/** Stage 2 (DESIGN.md): KZ requisites. Reloads the order; does nothing when it is already past `received`. */
export const handleValidateOrder: JobHandler<typeof validateOrderJob.payload> = async (payload, context, job) => {
  const log = context.logger.child({ orderId: payload.orderId, jobId: job.id, attempt: job.attemptsMade + 1 });
  await testPausePoint(context, 'order.validate');
  const em = context.orm.em.fork();
  // Issue 16: intake stays open under lockdown; the order waits as `held` and is validated on resolution.
  if (await isLockedDown(context)) {
    const held = await holdPendingOrders(em, 'worker', 'lockdown in force', context.clock.now(), [payload.orderId]);
    return { state: held.length ? 'held' : 'unchanged', changed: held.length > 0 };
  }
  const result = await validateStoredOrder(em, payload.orderId, context.validator, { actor: 'worker', now: context.clock.now() });
  log.info({ event: 'order.validate.done', state: result.state, changed: result.changed });
  // Also when this is a re-run that found the order validated: the next stage must be queued.
  if (result.state === 'validated') await context.queues.add(signOrderJob, { orderId: payload.orderId });
  return result;
};
