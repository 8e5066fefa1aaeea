import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { validateStoredOrders } from '../../connector/orders/order-validation';
import { testPausePoint } from '../test-hooks';
import { signOrderJob } from './sign-order.job';
import { isLockedDown, isLockedDownInRedis } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';
import { pipelineStageBatcher } from '../stage-batcher';
import { enqueueWriteBack } from './write-back.job';

export const validateOrderJob = defineJob({
  name: 'order.validate',
  queue: 'validate',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `validate-${p.orderId}`,
});

type ValidateResult = { state: string; changed: boolean };

/**
 * Stage 2 (DESIGN.md): KZ requisites, for a batch of orders at once (queue/stage-batcher.ts).
 * Each order is reloaded; one already past `received` is left as it is.
 */
export async function validateBatch(context: JobContext, orderIds: string[]): Promise<Array<ValidateResult | Error>> {
  const em = context.orm.em.fork();
  const now = context.clock.now();
  // Issue 16: intake stays open under lockdown; the orders wait as `held` and are validated on resolution.
  if (await isLockedDown(context)) {
    const held = await holdPendingOrders(em, 'worker', 'lockdown in force', now, orderIds, { lockedInRedis: () => isLockedDownInRedis(context) });
    // null: resolved while this waited for the resolve; they go on now.
    if (held) return orderIds.map((id) => ({ state: held.includes(id) ? 'held' : 'unchanged', changed: held.includes(id) }));
  }
  const results = await validateStoredOrders(em, orderIds, context.validator, { actor: 'worker', now });
  // Also when a re-run finds an order validated: the next stage must be queued.
  const next = orderIds.filter((_, i) => !(results[i] instanceof Error) && (results[i] as ValidateResult).state === 'validated');
  await context.queues.addBulk(signOrderJob, next.map((orderId) => ({ orderId })));
  // An invalid order's reasons go back to the ERP now (1C's status report), not at the next statement fetch.
  if (results.some((r) => !(r instanceof Error) && r.state === 'invalid' && r.changed)) await enqueueWriteBack(context.queues);
  context.logger.info({ event: 'order.validate.batch', orders: orderIds.length, validated: next.length });
  return results;
}

export const handleValidateOrder: JobHandler<typeof validateOrderJob.payload> = async (payload, context) => {
  await testPausePoint(context, 'order.validate');
  const batcher = pipelineStageBatcher<string, ValidateResult>(context, 'validate', (ids) => validateBatch(context, ids));
  return batcher.run(payload.orderId);
};
