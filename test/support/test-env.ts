import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import type { ConnectorConfig } from '../../config/config.schema';
import { loadConfig } from '../../config/load-config';
import { migrate } from '../../connector/persistence/database';
import { deleteKeysWithPrefix } from '../../queue/redis-keys';

/**
 * An isolated world for one test file: its own PostgreSQL database and Redis key prefix (so runs
 * never collide with each other or with a developer's data), a temp working directory, and the
 * environment a child process needs to use the same. `cleanup()` drops both.
 */
export interface TestEnv {
  name: string;
  config: ConnectorConfig;
  env: NodeJS.ProcessEnv;
  workDir: string;
  cleanup(): Promise<void>;
}

const SERVER = process.env.CONNECTOR_TEST_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432';
const REDIS = process.env.CONNECTOR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function createTestEnv(label: string, extraEnv: NodeJS.ProcessEnv = {}, options: { migrate?: boolean } = {}): Promise<TestEnv> {
  const suffix = randomBytes(4).toString('hex');
  const name = `connector_test_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${suffix}`;
  const workDir = mkdtempSync(join(tmpdir(), `connector-${label}-`));
  const env: NodeJS.ProcessEnv = {
    CONNECTOR_DATABASE_URL: `${SERVER}/${name}`,
    CONNECTOR_REDIS_URL: REDIS,
    CONNECTOR_REDIS_PREFIX: `t-${label}-${suffix}`,
    CONNECTOR_TEST_MODE: '1',
    CONNECTOR_LOG_LEVEL: 'warn',
    CONNECTOR_SIGNER_TOKEN_FILE: join(workDir, 'signer.token'),
    CONNECTOR_MASTER_KEY_FILE: join(workDir, 'master.key'),
    ...extraEnv,
  };
  const config = loadConfig({ env, cwd: workDir });
  if (options.migrate !== false) await migrate(config);
  return {
    name,
    config,
    env,
    workDir,
    async cleanup() {
      await dropDatabase(name);
      await deleteRedisPrefix(config.redis.prefix);
      rmSync(workDir, { recursive: true, force: true });
    },
  };
}

export async function dropDatabase(name: string): Promise<void> {
  const client = new Client({ connectionString: `${SERVER}/postgres` });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  await deleteKeysWithPrefix(REDIS, prefix);
}

/** Polls until `check` returns a truthy value (Twenty's expectEventually): no fixed sleeps in tests. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, options: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'condition'}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/**
 * Waits until `progress()` reaches `target`, failing only when it stops moving for `stallMs`: on a
 * shared, loaded machine slow progress is not a defect, a stall is (tests assert outcomes, not speed).
 */
export async function untilDoneOrStalled(progress: () => Promise<number>, target: number, options: { stallMs: number; intervalMs?: number; what: string }): Promise<void> {
  let best = -1;
  let movedAt = Date.now();
  for (;;) {
    const now = await progress();
    if (now >= target) return;
    if (now > best) {
      best = now;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > options.stallMs) {
      throw new Error(`${options.what}: no progress for ${Math.round(options.stallMs / 1000)} s, stuck at ${now} of ${target}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 500));
  }
}

/** A TCP port free on loopback right now (the OS picks it), for a sandbox or agent of one test. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as import('node:net').AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
