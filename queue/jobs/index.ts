import { registerJob, type RegisteredJob } from '../job-definition';
import { handleValidateOrder, validateOrderJob } from './validate-order.job';
import { handleSweepOrders, sweepOrdersJob } from './sweep-orders.job';

/** Every job the connector runs, each with its handler. One line per job. */
export const REGISTERED_JOBS: RegisteredJob[] = [
  registerJob(validateOrderJob, handleValidateOrder),
  registerJob(sweepOrdersJob, handleSweepOrders),
];
