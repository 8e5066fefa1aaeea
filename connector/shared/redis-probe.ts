import IORedis from 'ioredis';

/**
 * A connection for one look at Redis (doctor, a check before acting): it connects when asked, and
 * a command fails at once instead of waiting in a queue or being retried while Redis is away, so it
 * never runs later, when what it was for no longer holds. Errors come back from the commands only.
 */
export function probeRedis(url: string, connectTimeoutMs: number): IORedis {
  const redis = new IORedis(url, { lazyConnect: true, connectTimeout: connectTimeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  redis.on('error', () => undefined);
  return redis;
}
