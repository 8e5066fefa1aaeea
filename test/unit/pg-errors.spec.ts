import { DeadlockException, DriverException, LockWaitTimeoutException } from '@mikro-orm/core';
import { transientDatabaseError } from '../../connector/shared/pg-errors';

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
