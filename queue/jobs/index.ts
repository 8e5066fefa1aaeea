import { registerJob, type RegisteredJob } from '../job-definition';
import { handleValidateOrder, validateOrderJob } from './validate-order.job';
import { handleSweepOrders, sweepOrdersJob } from './sweep-orders.job';
import { handleRefreshCrls, refreshCrlsJob } from './refresh-crls.job';
import { handleSignOrder, signOrderJob } from './sign-order.job';
import { handleSubmitOrder, submitOrderJob } from './submit-order.job';
import { handleTrackOrder, trackOrderJob } from './track-order.job';
import { handleScanOnecOutbox, scanOnecOutboxJob } from './scan-onec-outbox.job';
import { dispatchWebhooksJob, handleDispatchWebhooks } from './dispatch-webhooks.job';
import { fetchStatementJob, handleFetchStatement, handleScheduleStatements, scheduleStatementsJob } from './fetch-statement.job';
import { handleWriteBack, writeBackJob } from './write-back.job';

/** Every job the connector runs, each with its handler. One line per job. */
export const REGISTERED_JOBS: RegisteredJob[] = [
  registerJob(validateOrderJob, handleValidateOrder),
  registerJob(sweepOrdersJob, handleSweepOrders),
  registerJob(refreshCrlsJob, handleRefreshCrls),
  registerJob(signOrderJob, handleSignOrder),
  registerJob(submitOrderJob, handleSubmitOrder),
  registerJob(trackOrderJob, handleTrackOrder),
  registerJob(scanOnecOutboxJob, handleScanOnecOutbox),
  registerJob(dispatchWebhooksJob, handleDispatchWebhooks),
  registerJob(fetchStatementJob, handleFetchStatement),
  registerJob(scheduleStatementsJob, handleScheduleStatements),
  registerJob(writeBackJob, handleWriteBack),
];
