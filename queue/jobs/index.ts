import { registerJob, type RegisteredJob } from '../job-definition';
import { handleValidateOrder, validateOrderJob } from './validate-order.job';
import { handleSweepOrders, sweepOrdersJob } from './sweep-orders.job';
import { fetchStatementJob, handleFetchStatement, handleScheduleStatements, scheduleStatementsJob } from './fetch-statement.job';
import { handleWriteBack, writeBackJob } from './write-back.job';

/** Every job the connector runs, each with its handler. One line per job. */
export const REGISTERED_JOBS: RegisteredJob[] = [
  registerJob(validateOrderJob, handleValidateOrder),
  registerJob(sweepOrdersJob, handleSweepOrders),
  registerJob(fetchStatementJob, handleFetchStatement),
  registerJob(scheduleStatementsJob, handleScheduleStatements),
  registerJob(writeBackJob, handleWriteBack),
];
