import { createTestEnv, dropDatabase, type TestEnv } from '../support/test-env';
import { migrate } from '../../connector/persistence/database';

/**
 * `connector migrate` is "safe to repeat" (INTERFACES.md) and run by whoever starts first: two hosts
 * set up against one new PostgreSQL, a deploy script beside an admin. Each call below opens sessions
 * of its own, as separate processes do, so their CREATE DATABASE statements meet in PostgreSQL.
 */
describe('connector migrate run by several processes at once on a new server', () => {
  let env: TestEnv;

  beforeAll(async () => {
    env = await createTestEnv('migrate_concurrent', {}, { migrate: false });
  });
  afterAll(async () => {
    await env?.cleanup();
  });

  it('creates the missing database once and none of them fails', async () => {
    await dropDatabase(env.name);
    const outcomes = await Promise.allSettled([1, 2, 3, 4].map(() => migrate(env.config)));
    expect(outcomes.map((o) => (o.status === 'rejected' ? String((o.reason as Error).message) : 'ok'))).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(outcomes.filter((o) => o.status === 'fulfilled' && o.value.created)).toHaveLength(1);
    // Migrated once: the others found nothing pending.
    expect(outcomes.filter((o) => o.status === 'fulfilled' && o.value.applied.length > 0)).toHaveLength(1);
  }, 120_000);
});
