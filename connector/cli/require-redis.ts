import type { AppContext } from '../app/app-context';
import { withTimeout } from '../shared/timeout';
import { describeServiceError, redisUnreachable } from './service-error.mapper';

/** How long a one-shot command waits for Redis before it says so (a loaded machine answers well within it). */
const REDIS_WAIT_MS = 5_000;

/**
 * A one-shot command that queues work (or resumes queues) first makes sure Redis answers: BullMQ
 * waits for its connection for ever, so `orders retry` or `lockdown resolve` with Redis down hung,
 * printing warnings, after changing PostgreSQL. Checked before anything changes; out of reach, it
 * is REDIS_UNREACHABLE (exit 1) naming where and what to check.
 */
export async function requireRedis(context: Pick<AppContext, 'redis' | 'config'>, timeoutMs = REDIS_WAIT_MS): Promise<void> {
  let last: unknown;
  const remember = (err: unknown) => {
    last = err;
  };
  context.redis.on('error', remember);
  try {
    await withTimeout(context.redis.ping(), timeoutMs, 'Redis');
  } catch (err) {
    throw describeServiceError(last ?? err, context.config) ?? redisUnreachable(context.config, `did not answer within ${timeoutMs} ms`);
  } finally {
    context.redis.off('error', remember);
  }
}
