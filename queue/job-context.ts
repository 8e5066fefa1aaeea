import type { Logger } from 'pino';
import type { ConnectorConfig } from '../config/config.schema';
import type { Orm } from '../connector/persistence/database';
import type { Clock } from '../connector/shared/clock';
import type { OrderValidator } from '../connector/orders/order-validation';
import type { QueueSet } from './queue.factory';
import type { PipelineServices } from './pipeline-services';

/** What every job handler gets; built once per process by the entry point. */
export interface JobContext {
  config: ConnectorConfig;
  orm: Orm;
  queues: QueueSet;
  logger: Logger;
  clock: Clock;
  validator: OrderValidator;
  services: PipelineServices;
}
