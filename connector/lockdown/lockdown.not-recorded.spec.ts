import type { EntityManager } from '@mikro-orm/postgresql';
import type IORedis from 'ioredis';
import type { ConnectorConfig } from '../../config/config.schema';
import { engageLockdown, LockdownNotRecordedError, type LockdownDeps } from './lockdown.service';

/**
 * PostgreSQL answering the connection but failing the record (a read-only standby after a failover,
 * a full disk): the steps that need only Redis and the agent are done, and the caller learns what
 * held and what did not instead of a bare database error. (The CLI with PostgreSQL down, on the real
 * stores, is test/lockdown/lockdown-no-database.spec.ts.)
 */
describe('engageLockdown when PostgreSQL does not record it', () => {
  const config = { redis: { prefix: 't' }, lockdown: { agentTimeoutMs: 200, triggers: {} } } as unknown as ConnectorConfig;
  const done: string[] = [];
  const deps = (): LockdownDeps => ({
    em: { transactional: () => Promise.reject(new Error('cannot execute UPDATE in a read-only transaction')) } as unknown as EntityManager,
    redis: { set: async (key: string) => void done.push(`set ${key}`) } as unknown as IORedis,
    config,
    clock: { now: () => new Date('2026-11-26T10:00:00Z') },
    ports: {
      queues: { pauseAll: async () => ['submit'], resumeAll: async () => [], requeueValidate: async () => undefined, requeueSubmit: async () => undefined },
      agent: { wipeAll: async () => ({ wipedUsers: ['u1'] }) },
      sessions: { endAll: async () => 2, blockUser: async () => ({ sessionsEnded: 0, warnings: [] }) },
      notifier: { notify: async () => ({ delivered: [], warnings: [] }) },
    },
  });

  it('throws LockdownNotRecordedError saying what held (flag, queues, keys, sessions) and what did not', async () => {
    const err = await engageLockdown(deps(), { trigger: 'manual', reason: 'token lost', scope: 'all', actor: 'cli:test' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LockdownNotRecordedError);
    const { lockdown } = err as LockdownNotRecordedError;
    expect(done).toEqual(['set t:lockdown']);
    expect(lockdown.holdsForSubmission).toBe(true);
    expect(lockdown.held).toEqual([expect.stringMatching(/^the Redis lockdown flag is set/), 'queues paused: submit', 'signer agent wiped every unlocked key (1 users)', '2 sessions ended']);
    expect(lockdown.notDone.join('\n')).toMatch(/lockdown record in PostgreSQL[\s\S]*Client Secret[\s\S]*held/);
    expect((lockdown.cause as Error).message).toMatch(/read-only/);
  });
});
