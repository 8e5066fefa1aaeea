import { createServer, type AddressInfo } from 'node:net';
import { DeadlockException, DriverException, LockWaitTimeoutException } from '@mikro-orm/core';
import { sqlShape, statementSummary, transientDatabaseError, withholdStatementValues } from '../../connector/shared/pg-errors';

/** Which database errors a job retries rather than fails an order on (queue/worker.runner.ts). */
describe('transientDatabaseError', () => {
  const pgError = (code: string, message: string) => Object.assign(new Error(message), { code });
  const cases: Array<[string, unknown, RegExp | null]> = [
    ['lock_timeout (55P03)', pgError('55P03', 'canceling statement due to lock timeout'), /lock_timeout \(database\.lockTimeoutMs\)/],
    ['statement_timeout (57014)', pgError('57014', 'canceling statement due to statement timeout'), /statement_timeout \(database\.statementTimeoutMs\)/],
    ['idle in transaction (25P03)', pgError('25P03', 'terminating connection due to idle-in-transaction timeout'), /idle_in_transaction_session_timeout/],
    ['deadlock (40P01), as MikroORM converts it', new DeadlockException(pgError('40P01', 'deadlock detected')), /deadlock/],
    ['lock timeout as MikroORM wraps it', new LockWaitTimeoutException(pgError('55P03', 'update x - canceling statement due to lock timeout')), /lock_timeout/],
    ['serialization failure (40001)', pgError('40001', 'could not serialize access'), /serialization/],
    ["pg's client-side query_timeout", new Error('Query read timeout'), /query_timeout \(database\.queryTimeoutMs\)/],
    ["pg's query_timeout behind knex's SQL", new Error('select pg_sleep(10) - Query read timeout'), /query_timeout/],
    ['a dropped connection', new Error('Connection terminated unexpectedly'), /ended/],
    ['knex pool exhausted', new Error('Knex: Timeout acquiring a connection. The pool is probably full.'), /pooled/],
    ['the server starting up or recovering (57P03), as it refuses a connection', new DriverException(pgError('57P03', 'the database system is starting up')), /starting up/],
    ['the server restarting after a crash (57P02)', pgError('57P02', 'terminating connection because of crash of another server process'), /crash/],
    ['a connection the server refused, as MikroORM wraps it', new DriverException(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })), /refused the connection/],
    ["the same errno from another service (Redis's client) is not the database's", Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' }), null],
    ['a unique violation is not transient', new DriverException(pgError('23505', 'duplicate key value violates unique constraint')), null],
    ['a syntax error is not transient', pgError('42601', 'syntax error at or near "selec"'), null],
    ['a message that only mentions a timeout is not transient', new Error('the bank said: Query read timeout was configured'), null],
    ['not an error at all', 'Query read timeout', null],
  ];
  it.each(cases)('%s', (_name, err, expected) => {
    const why = transientDatabaseError(err);
    if (expected === null) expect(why).toBeNull();
    else expect(why).toMatch(expected);
  });
});

/** What is left of a failed statement's error once its values are withheld (connector/persistence/database.ts). */
describe('withholdStatementValues', () => {
  const failed = (sql: string, code: string, pgMessage: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(`${sql} - ${pgMessage}`), { code, ...extra });

  test.each([
    ["update credential_vault set last_used_at = '2026-01-01' where id = 1 and secret_enc = 'v1:SECRET'", 'update credential_vault'],
    ["insert into password_history (user_id, password_hash, created_at) values ('u', 'scrypt$SECRET', now())", 'insert into password_history'],
    ['insert into "app_user" ("id", "password_hash") values ($1, $2)', 'insert into app_user'],
    ["delete from password_history where user_id = 'u'", 'delete password_history'],
    ["select id from app_user where login = 'SECRET from x'", 'select from app_user'],
    ["select current_setting('x from SECRET')", 'select'],
    ['set local lock_timeout = 5000', 'set'],
  ])('%s -> %s', (sql, summary) => {
    expect(statementSummary(sql)).toBe(summary);
  });

  it('keeps the verb, the table, the limit and the SQLSTATE, and drops every bound value', () => {
    const sql = "update app_user set password_hash = 'scrypt$14$8$1$SECRET' where id = 'u'";
    const err = failed(sql, '55P03', 'canceling statement due to lock timeout', { internalQuery: sql });
    void err.stack;
    withholdStatementValues(err, sql);
    expect(err.message).toBe('update app_user - canceling statement due to lock timeout');
    expect(err.stack?.split('\n')[0]).toBe('Error: update app_user - canceling statement due to lock timeout');
    expect((err as { code?: string }).code).toBe('55P03');
    expect(transientDatabaseError(err)).toMatch(/lock_timeout/);
    expect(`${err.stack}${JSON.stringify(err)}`).not.toContain('SECRET');
  });

  test.each([
    ['23505', 'duplicate key value violates unique constraint "api_key_hash_key"', 'Key (key_hash)=(SECRET) already exists.', 'Key (key_hash)=(...) already exists.'],
    ['23503', 'insert or update on table "password_history" violates foreign key constraint "x"', 'Key (user_id)=(SECRET) is not present in table "app_user".', 'Key (user_id)=(...) is not present in table "app_user".'],
    ['23514', 'new row for relation "credential_vault" violates check constraint "credential_vault_id_check"', 'Failing row contains (2, c, SECRET, ...).', 'Failing row contains (...).'],
  ])('%s keeps the constraint and the columns, not the values', (code, pgMessage, detail, kept) => {
    const sql = "insert into x values ('SECRET')";
    const err = failed(sql, code, pgMessage, { detail });
    withholdStatementValues(err, sql);
    expect(err.message).toBe(`insert into x - ${pgMessage}`);
    expect((err as { detail?: string }).detail).toBe(kept);
  });

  it('a syntax error keeps the shape of the statement, without its values, so the SQL fault can be found', () => {
    const sql = "select id from payment_order where payer_iban = 'KZ86SECRET' and amount_tiyn = 150000 and id in ()";
    const err = failed(sql, '42601', 'syntax error at or near ")"');
    withholdStatementValues(err, sql);
    expect(err.message).toBe('select from payment_order - syntax error at or near "..." [select id from payment_order where payer_iban = ? and amount_tiyn = ? and id in ()]');
    expect(err.message).not.toMatch(/SECRET|150000/);
  });

  test.each([
    ["update t set h = E'\\\\xDEADBEEF', n = 'it''s' where id = $1", 'update t set h = ?, n = ? where id = $1'],
    ['select a1, b from t2 where x = -12.5', 'select a1, b from t2 where x = ?'],
  ])('sqlShape(%s)', (sql, shape) => {
    expect(sqlShape(sql)).toBe(shape);
  });

  it("withholds the value PostgreSQL quotes in a bad input's message", () => {
    const sql = "select * from app_user where id = 'SECRET'";
    const err = failed(sql, '22P02', 'invalid input syntax for type uuid: "SECRET"');
    withholdStatementValues(err, sql);
    expect(err.message).toBe('select from app_user - invalid input syntax for type uuid: "..."');
  });
});

/** A PostgreSQL that is down (restarting): what the connector's statements then meet is transient. */
describe('a statement while PostgreSQL is away', () => {
  it('is a transient database error, as MikroORM gives it (a port nobody listens on)', async () => {
    const { openOrm } = await import('../../connector/persistence/database');
    const { loadConfig } = await import('../../config/load-config');
    const port = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, '127.0.0.1', () => {
        const { port: free } = server.address() as AddressInfo;
        server.close(() => resolve(free));
      });
    });
    const orm = await openOrm(loadConfig({ env: { CONNECTOR_DATABASE_URL: `postgresql://postgres@127.0.0.1:${port}/test` } }));
    try {
      const err = await orm.em.fork().execute('select 1').then(() => null, (e: unknown) => e);
      expect(transientDatabaseError(err)).toMatch(/refused the connection/);
    } finally {
      await orm.close(true);
    }
  });
});
