import { IsolationLevel } from '@mikro-orm/core';
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { Client } from 'pg';
import type { ConnectorConfig } from '../../config/config.schema';
import { ENTITIES } from './entities';
import { MIGRATIONS } from './migrations';

/** Advisory lock id held while migrating, so several processes starting at once migrate once. */
const MIGRATION_LOCK_ID = 0x636f6e6e; // "conn"

export type Orm = MikroORM;

/**
 * Options of a transaction that reads one consistent, read-only view of the database however long
 * it takes (an archive export, an audit walk, a report over years of orders), e.g.
 * `em.transactional(work, READ_ONLY_SNAPSHOT)`.
 */
export const READ_ONLY_SNAPSHOT = { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true } as const;

export function ormOptions(config: Pick<ConnectorConfig, 'database'>): Options {
  return {
    driver: PostgreSqlDriver,
    clientUrl: config.database.url,
    entities: ENTITIES,
    extensions: [Migrator],
    pool: { min: 0, max: config.database.poolMax },
    // A PostgreSQL that takes the connection but never answers (a hung server, a wrong port behind a
    // proxy) fails a connect within 5 s instead of hanging a command, or a worker under PM2, for
    // good. A wait for a pooled connection keeps knex's 60 s (a busy worker's jobs wait their turn),
    // and queries are not bounded: an archive export may rightly run for minutes. TCP keepalive
    // finds a connection whose server vanished without a word (a host crash, a dropped NAT entry)
    // instead of leaving a pooled connection, and the job that takes it, waiting for good.
    driverOptions: { connection: { connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000 }, acquireConnectionTimeout: 60_000 },
    migrations: {
      migrationsList: MIGRATIONS,
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      tableName: 'mikro_orm_migrations',
    },
    // Only `connector migrate` creates the database (INTERFACES.md). MikroORM would otherwise create
    // an empty one at any command's start, and every command after would fail on missing tables.
    ensureDatabase: false,
    discovery: { warnWhenNoEntities: false },
    allowGlobalContext: false,
    debug: false,
    // The connector logs through pino with redaction; MikroORM's own logger stays quiet.
    logger: () => undefined,
  };
}

export async function openOrm(config: Pick<ConnectorConfig, 'database'>): Promise<Orm> {
  return MikroORM.init(ormOptions(config));
}

function databaseName(url: string): string {
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) {
    throw new Error(`database name "${name}" in CONNECTOR_DATABASE_URL must be letters, digits, "_" or "-"`);
  }
  return name;
}

/** Creates the configured database when it does not exist (INTERFACES.md: `migrate` creates it). */
export async function ensureDatabase(url: string): Promise<boolean> {
  const name = databaseName(url);
  for (const maintenance of ['postgres', 'template1']) {
    const admin = new URL(url);
    admin.pathname = `/${maintenance}`;
    const client = new Client({ connectionString: admin.toString(), connectionTimeoutMillis: 10_000 });
    try {
      await client.connect();
    } catch (err) {
      if (maintenance === 'template1') throw err;
      continue;
    }
    try {
      const found = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (found.rowCount) return false;
      try {
        await client.query(`create database "${name}"`);
      } catch (err) {
        // Another process created it between our check and our create.
        if ((err as { code?: string }).code !== '42P04') throw err;
        return false;
      }
      return true;
    } finally {
      await client.end();
    }
  }
  return false;
}

export interface MigrateResult {
  created: boolean;
  applied: string[];
}

/** Creates the database if missing and applies pending migrations; safe to repeat and to run concurrently. */
export async function migrate(config: Pick<ConnectorConfig, 'database'>): Promise<MigrateResult> {
  const created = await ensureDatabase(config.database.url);
  const lock = new Client({ connectionString: config.database.url, connectionTimeoutMillis: 10_000 });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    const orm = await openOrm(config);
    try {
      const applied = await orm.getMigrator().up();
      return { created, applied: applied.map((m) => m.name) };
    } finally {
      await orm.close(true);
    }
  } finally {
    await lock.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => undefined);
    await lock.end();
  }
}

/**
 * The migrations of this release the database lacks. MikroORM's getPendingMigrations creates a
 * missing database first (Migrator.ensureDatabase, whatever `ensureDatabase: false` says), so a
 * plain query goes before it: on a missing database it fails as every other command's first query
 * does (SQLSTATE 3D000, which describeServiceError names "has no such database"), and only
 * `connector migrate` creates one (INTERFACES.md).
 */
export async function pendingMigrations(orm: Orm): Promise<string[]> {
  await orm.em.getConnection().execute('select 1');
  const pending = await orm.getMigrator().getPendingMigrations();
  return pending.map((m) => m.name);
}

