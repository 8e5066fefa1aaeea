import { registerJob, type RegisteredJob } from '../job-definition';
import { handleValidateOrder, validateOrderJob } from './validate-order.job';
import { handleSweepOrders, sweepOrdersJob } from './sweep-orders.job';
import { handleSignOrder, signOrderJob } from './sign-order.job';
import { handleSubmitOrder, submitOrderJob } from './submit-order.job';
import { handleTrackOrder, trackOrderJob } from './track-order.job';
import { handleScanOnecOutbox, scanOnecOutboxJob } from './scan-onec-outbox.job';
import { dispatchWebhooksJob, handleDispatchWebhooks } from './dispatch-webhooks.job';

/** Every job the connector runs, each with its handler. One line per job. */
export const REGISTERED_JOBS: RegisteredJob[] = [
  registerJob(validateOrderJob, handleValidateOrder),
  registerJob(sweepOrdersJob, handleSweepOrders),
  registerJob(signOrderJob, handleSignOrder),
  registerJob(submitOrderJob, handleSubmitOrder),
  registerJob(trackOrderJob, handleTrackOrder),
  registerJob(scanOnecOutboxJob, handleScanOnecOutbox),
  registerJob(dispatchWebhooksJob, handleDispatchWebhooks),
];
