import type { EntityManager } from '@mikro-orm/postgresql';
import type IORedis from 'ioredis';
import { isLockedDown } from './lockdown.flag';

/**
 * The flag check asks Redis and PostgreSQL at once. Fail closed: PostgreSQL failing while Redis has
 * not answered yet is the caller's error (the job retries), never an unhandled rejection that would
 * end the worker process. (The real stores are exercised by test/lockdown; here the two answers
 * are timed on purpose.)
 */
describe('isLockedDown', () => {
  const later = <T>(ms: number, value: T) => new Promise<T>((resolve) => setTimeout(() => resolve(value), ms));
  const failingEm = { execute: () => Promise.reject(new Error('connection refused')) } as unknown as EntityManager;

  it('rejects with the PostgreSQL error, handled, when PostgreSQL fails before Redis answers "not locked"', async () => {
    const unhandled: unknown[] = [];
    const listener = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', listener);
    try {
      const redis = { exists: () => later(30, 0) } as unknown as IORedis;
      await expect(isLockedDown({ em: failingEm, redis, prefix: 't' })).rejects.toThrow('connection refused');
      await later(20, undefined);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', listener);
    }
  });

  it('says locked when Redis says so, whatever PostgreSQL does', async () => {
    const redis = { exists: () => later(10, 1) } as unknown as IORedis;
    await expect(isLockedDown({ em: failingEm, redis, prefix: 't' })).resolves.toBe(true);
  });
});
