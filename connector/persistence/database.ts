import { IsolationLevel } from '@mikro-orm/core';
import { MikroORM, type EntityManager, type Options } from '@mikro-orm/postgresql';
import { PostgreSqlDriver } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import { Client } from 'pg';
import type { ConnectorConfig } from '../../config/config.schema';
import { withholdStatementValues } from '../shared/pg-errors';
import { ConnectorError } from '../shared/errors';
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

/**
 * What a connection of the connector is bounded by (config `database.*TimeoutMs`). `bounded`: every
 * process's pool (API, worker, scheduler, CLI). `unbounded`: `connector migrate` only, an operator's
 * command watched as it runs, where an index or a rewrite of a table of years of rows may rightly
 * take minutes and a timeout half-way would roll the whole run back (allOrNothing) to hit the same
 * wall at the next try.
 */
export type TimeoutProfile = 'bounded' | 'unbounded';

/**
 * node-postgres' own connection settings (pg >= 8.5 sends `statement_timeout`, `lock_timeout` and
 * `idle_in_transaction_session_timeout` as startup parameters, like `options=-c ...`; a 0 is not sent,
 * so the server's value applies) and its client-side `query_timeout`. MikroORM hands
 * `driverOptions.connection` to knex, which hands it to every `new pg.Client()` of its pool.
 * A pooler in transaction mode (PgBouncer) refuses unknown startup parameters unless told to ignore
 * them: set these to 0 there and give the role its bounds with `ALTER ROLE ... SET` instead.
 */
export function pgTimeouts(config: Pick<ConnectorConfig, 'database'>, profile: TimeoutProfile = 'bounded') {
  if (profile === 'unbounded') return {};
  const db = config.database;
  return {
    statement_timeout: db.statementTimeoutMs || undefined,
    lock_timeout: db.lockTimeoutMs || undefined,
    idle_in_transaction_session_timeout: db.idleInTransactionTimeoutMs || undefined,
    query_timeout: db.queryTimeoutMs || undefined,
  };
}

export function ormOptions(config: Pick<ConnectorConfig, 'database'>, profile: TimeoutProfile = 'bounded'): Options {
  return {
    driver: PostgreSqlDriver,
    clientUrl: config.database.url,
    entities: ENTITIES,
    extensions: [Migrator],
    pool: { min: 0, max: config.database.poolMax },
    // A PostgreSQL that takes the connection but never answers (a hung server, a wrong port behind a
    // proxy) fails a connect within 5 s instead of hanging a command, or a worker under PM2, for
    // good. A wait for a pooled connection keeps knex's 60 s (a busy worker's jobs wait their turn).
    // TCP keepalive finds a connection whose server vanished without a word (a host crash, a dropped
    // NAT entry) instead of leaving a pooled connection, and the job that takes it, waiting for good.
    // The statement, lock and idle-in-transaction bounds (pgTimeouts) end a statement stuck behind
    // a hung session's lock, or a session itself hung inside a transaction: the job's error is a
    // transient one and it is retried (queue/worker.runner.ts).
    driverOptions: {
      connection: { connectionTimeoutMillis: 5_000, keepAlive: true, keepAliveInitialDelayMillis: 10_000, ...pgTimeouts(config, profile) },
      acquireConnectionTimeout: 60_000,
      // A failed statement's message is `<sql> - <pg message>`, never with knex's own inlining of the
      // bindings; openOrm strips the SQL itself (withholdStatementValues).
      compileSqlOnError: false,
    },
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

/**
 * Every process's ORM. A failed statement's error leaves with the values it bound withheld (the
 * Client Secret's ciphertext, a password hash, a TOTP seed, a login): knex's `query-error` event
 * runs before the error is thrown, so before MikroORM wraps it, anything logs it, BullMQ records it
 * in Redis or an order keeps it as its last error (withholdStatementValues says what is kept).
 */
export async function openOrm(config: Pick<ConnectorConfig, 'database'>, profile: TimeoutProfile = 'bounded'): Promise<Orm> {
  const orm = await MikroORM.init(ormOptions(config, profile));
  orm.em.getConnection().getKnex().on('query-error', (err: unknown, query: { sql?: string }) => withholdStatementValues(err, query?.sql));
  return orm;
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
        // Another process created it between our check and our create: 42P04 when its create had
        // committed before ours began; 23505 (pg_database_datname_index) when both ran at once, as
        // two `connector migrate` started together on a new machine do.
        const code = (err as { code?: string }).code;
        if (code === INSUFFICIENT_PRIVILEGE) {
          const user = databaseUser(url);
          throw new ConnectorError(
            'MIGRATE_PERMISSION_DENIED',
            `the database "${name}" does not exist and PostgreSQL user "${user}" may not create databases (${(err as Error).message}): create it once as a superuser, owned by that user (sudo -u postgres createdb -O ${user} ${name}), or give the user the right (ALTER ROLE "${user}" CREATEDB), then run connector migrate again`,
          );
        }
        if (code !== '42P04' && code !== '23505') throw err;
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

/** SQLSTATE of a right PostgreSQL refuses (a database or a table the user may not create). */
const INSUFFICIENT_PRIVILEGE = '42501';

function databaseUser(url: string): string {
  return decodeURIComponent(new URL(url).username) || 'postgres';
}

/**
 * A migration PostgreSQL refused for want of a right, as an admin reads it. The usual cause: the
 * database was created by postgres for a separate login, and PostgreSQL 15 and later let only the
 * database's owner create tables in its schema public (before 15 every user could). The driver said
 * only "create - permission denied for schema public", neither the user nor the database nor the fix.
 */
function migrationRefused(url: string, err: unknown): unknown {
  if ((err as { code?: string } | null)?.code !== INSUFFICIENT_PRIVILEGE) return err;
  const user = databaseUser(url);
  const name = databaseName(url);
  return new ConnectorError(
    'MIGRATE_PERMISSION_DENIED',
    `PostgreSQL user "${user}" may not create the connector's tables in the database "${name}" (${(err as Error).message}; PostgreSQL 15 and later let only the database's owner create in schema public): as a superuser, make the user its owner (sudo -u postgres psql -c 'ALTER DATABASE "${name}" OWNER TO "${user}"'), or grant it (GRANT CREATE ON SCHEMA public TO "${user}" in that database), then run connector migrate again`,
  );
}

/** Creates the database if missing and applies pending migrations; safe to repeat and to run concurrently. */
export async function migrate(config: Pick<ConnectorConfig, 'database'>): Promise<MigrateResult> {
  const created = await ensureDatabase(config.database.url);
  // No statement or lock bound on either connection: this one waits, as long as it takes, for
  // another process's migration to finish (pg_advisory_lock), and the migrations themselves may
  // rightly run for minutes (TimeoutProfile 'unbounded').
  const lock = new Client({ connectionString: config.database.url, connectionTimeoutMillis: 10_000, keepAlive: true });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    const orm = await openOrm(config, 'unbounded');
    try {
      const applied = await orm.getMigrator().up().catch((err: unknown) => {
        throw migrationRefused(config.database.url, err);
      });
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


interface Executes {
  execute(sql: string, params?: unknown[]): Promise<unknown>;
}

/**
 * For a transaction that does work of its own between its statements while it holds its snapshot
 * (writing an archive file, hashing the audit chain, a report streamed to disk): the server does not
 * end it as idle in transaction (database.idleInTransactionTimeoutMs). This transaction only (SET
 * LOCAL); each statement in it keeps the statement and lock bounds.
 */
export async function allowWorkBetweenStatements(tx: Executes): Promise<void> {
  await tx.execute('set local idle_in_transaction_session_timeout = 0');
}

/** An advisory lock not had within `waitMs`, said as PostgreSQL says a lock timeout (SQLSTATE 55P03, transient). */
function advisoryLockTimeout(waitMs: number): Error {
  return Object.assign(new Error(`canceling statement due to lock timeout (advisory lock waited ${waitMs} ms)`), { code: '55P03' });
}

/** An advisory lock not taken this time: asked again (askForLock). */
const NOT_TAKEN = Symbol('not taken');

/** pg_try_advisory_xact_lock of `key` (an SQL expression of `params`): whether it was taken. */
async function tryLock(tx: Executes, key: string, params: unknown[]): Promise<boolean> {
  const rows = (await tx.execute(`select pg_try_advisory_xact_lock(${key}) as taken`, params)) as Array<{ taken: boolean }>;
  return rows[0]?.taken === true;
}

/** Calls `ask` every 10-250 ms until it gives anything but NOT_TAKEN; past `waitMs` a lock timeout. */
async function askForLock<T>(waitMs: number, ask: () => Promise<T | typeof NOT_TAKEN>): Promise<T> {
  const deadline = Date.now() + Math.max(0, waitMs);
  for (let pause = 10; ; pause = Math.min(pause * 2, 250)) {
    const got = await ask();
    if (got !== NOT_TAKEN) return got;
    if (Date.now() >= deadline) throw advisoryLockTimeout(waitMs);
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(1, deadline - Date.now()))));
  }
}

/**
 * Takes the transaction-scoped advisory lock of `key` (an SQL expression of `params`, e.g.
 * `hashtext(?)`), waiting up to `waitMs` for it: for a lock whose holder legitimately keeps it longer
 * than a row lock is ever held (a statement of months of lines being stored, a file being written).
 * Asked again and again with pg_try_advisory_xact_lock, every 10-250 ms: one blocking wait would be
 * ended by database.statementTimeoutMs (PostgreSQL counts a lock wait as the statement's time) and
 * by the client's queryTimeoutMs, whatever lock_timeout says. Still bounded: a holder that hangs is
 * ended by idle_in_transaction_session_timeout, and past `waitMs` this fails as a lock timeout
 * (SQLSTATE 55P03, a transient error: the job is retried).
 */
export async function takeAdvisoryLockWaiting(tx: Executes, waitMs: number, key: string, params: unknown[]): Promise<void> {
  await askForLock(waitMs, async () => ((await tryLock(tx, key, params)) ? undefined : NOT_TAKEN));
}

/**
 * Runs `work` while holding the transaction-scoped advisory lock of `key` (an SQL expression of
 * `params`) on a connection of its own: a mutex across processes and hosts, let go when `work`
 * ends, or by PostgreSQL when the process dies. `work` runs on its own connections, so its
 * statements commit as they would without the lock. The holder is a knex transaction, not a
 * MikroORM one: MikroORM would make it the transaction context of every EntityManager inside
 * `work` that follows the context. A waiter holds no connection: it asks with
 * pg_try_advisory_xact_lock every 10-250 ms, in a transaction of its own each time, so waiters
 * never starve `work` of the pool; past `waitMs` this fails as a lock timeout (SQLSTATE 55P03, a
 * transient error: the job is retried).
 */
export async function withAdvisoryMutex<T>(em: EntityManager, waitMs: number, key: string, params: unknown[], work: () => Promise<T>): Promise<T> {
  return askForLock(waitMs, async () => {
    const trx = await em.getKnex().transaction();
    const holder: Executes = { execute: async (sql, values) => ((await trx.raw(sql, (values ?? []) as never[])) as { rows: unknown[] }).rows };
    try {
      if (!(await tryLock(holder, key, params))) return NOT_TAKEN;
      // The holder sits idle in its transaction while `work` runs elsewhere, for as long as that takes.
      await allowWorkBetweenStatements(holder);
      const result = await work();
      await trx.commit();
      return result;
    } finally {
      if (!trx.isCompleted()) await trx.rollback().catch(() => undefined);
    }
  });
}
