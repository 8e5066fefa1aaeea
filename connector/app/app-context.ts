import type IORedis from 'ioredis';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { loadConfig } from '../../config/load-config';
import { openOrm, type Orm } from '../persistence/database';
import { createLogger } from '../logging/logger';
import { clockFromConfig, type Clock } from '../shared/clock';
import { kzCalendarFromConfig } from '../calendar/kz-business-calendar';
import { QueueSet, redisConnection } from '../../queue/queue.factory';
import type { JobContext } from '../../queue/job-context';
import type { OrderValidator } from '../orders/order-validation';
import { createPipelineServices } from './pipeline-services.factory';
import { kzOrderValidator } from '../requisites/payment-order.validator';

/**
 * What an entry point (CLI command, API, worker, scheduler) needs, built once per process and
 * closed once. Entry points sit on top of the layers (DESIGN.md) and may wire everything.
 */
export interface AppContext extends JobContext {
  redis: IORedis;
  close(): Promise<void>;
}

/** The Kazakhstan requisite rules (connector/requisites), with the config's limits and strictness. */
export function defaultValidator(config?: ConnectorConfig): OrderValidator {
  return kzOrderValidator(config?.requisites);
}

export async function createAppContext(options: { config?: ConnectorConfig; logger?: Logger; name?: string; role?: 'worker' | 'producer'; service?: boolean } = {}): Promise<AppContext> {
  const config = options.config ?? loadConfig();
  const logger = options.logger ?? createLogger({ level: config.log.level, name: options.name });
  const clock: Clock = clockFromConfig(config);
  // A long-running process does not start on a wrong file in calendar.dataDir (named with the rule
  // it breaks): found at the first deadline, it would fail the track and statement jobs one by one.
  // A one-shot command does not check: a lockdown must never fail for want of a calendar.
  if (options.service) kzCalendarFromConfig(config);
  const orm = await openOrm(config);
  const redis = redisConnection(config, options.role ?? 'worker');
  redis.on('error', (err) => logger.warn({ event: 'redis.error', err: err.message }));
  const queues = new QueueSet(config, redis, (queue, err) => logger.warn({ event: 'queue.error', queue, err: err.message }));
  const services = createPipelineServices(config, orm, clock, logger);
  let closed = false;
  return {
    config,
    logger,
    clock,
    orm,
    redis,
    queues,
    services,
    validator: defaultValidator(config),
    async close() {
      if (closed) return;
      closed = true;
      services.close();
      await queues.close().catch(() => undefined);
      redis.disconnect();
      await orm.close(true).catch(() => undefined);
    },
  };
}

/**
 * The context of a one-shot CLI command: its own output says what happened, and its log lines
 * (a Redis reconnect warning every few hundred ms while Redis is down, `user.created`, ...) would
 * bury the one line an operator needs. They are logged at `error` and above unless
 * CONNECTOR_LOG_LEVEL is set (then at that level, as INTERFACES.md has it; everything with
 * CONNECTOR_DEBUG=1, which also prints a failure's stack). The long-running processes log as configured.
 */
export function createCliContext(): Promise<AppContext> {
  const config = loadConfig();
  const level = process.env.CONNECTOR_DEBUG === '1' ? 'debug' : process.env.CONNECTOR_LOG_LEVEL ? config.log.level : 'error';
  return createAppContext({ config, logger: createLogger({ level, name: 'connector-cli' }), name: 'connector-cli', role: 'producer' });
}

/** Open orm only (commands that need no Redis). */
export async function withOrm<T>(config: ConnectorConfig, fn: (orm: Orm) => Promise<T>): Promise<T> {
  const orm = await openOrm(config);
  try {
    return await fn(orm);
  } finally {
    await orm.close(true);
  }
}
