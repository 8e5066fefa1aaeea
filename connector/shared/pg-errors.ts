/**
 * pg's words when the server asks for a password (SCRAM, as a stock Debian PostgreSQL does over
 * TCP) and the URL gives none: not a server that is down. Told the same by every command
 * (cli/service-error.mapper.ts) and by doctor.
 */
export const PASSWORD_NOT_GIVEN = /client password must be a string/;

export const PASSWORD_NOT_GIVEN_HINT =
  'put the password in CONNECTOR_DATABASE_URL (postgresql://user:password@host:5432/connector), or let this user in by a trust or peer line of pg_hba.conf';

/**
 * SQLSTATEs of a statement that was ended by a bound or by concurrency control, not refused for
 * what it is: the same statement later, once the other session has moved on, succeeds.
 */
const TRANSIENT_SQLSTATES: Readonly<Record<string, string>> = {
  '55P03': 'lock_timeout (database.lockTimeoutMs) ran out waiting for a lock another session holds',
  '57014': 'statement_timeout (database.statementTimeoutMs) ran out, or the statement was cancelled',
  '25P03': 'the session sat idle inside a transaction past idle_in_transaction_session_timeout (database.idleInTransactionTimeoutMs) and the server ended it',
  '40001': 'a serialization failure: a concurrent transaction changed the same rows',
  '40P01': 'a deadlock with another session, which PostgreSQL broke by cancelling this statement',
  '57P01': 'the server is shutting down (admin shutdown)',
};

/**
 * node-postgres' and knex's own words, which carry no SQLSTATE: pg's client-side query_timeout
 * (database.queryTimeoutMs), a connection the server or the network dropped, a pool with no
 * connection free in time. Fixed literals of those libraries, matched as a whole line (or after
 * knex's "<sql> - "), never as a part of some other message.
 */
const TRANSIENT_CLIENT_MESSAGES: ReadonlyArray<[RegExp, string]> = [
  [/(?:^|\s-\s)Query read timeout$/m, 'the server did not answer within the client-side query_timeout (database.queryTimeoutMs)'],
  [/(?:^|\s-\s)Connection terminated( unexpectedly| due to connection timeout)?$/m, 'the connection to PostgreSQL was ended'],
  [/(?:^|\s-\s)Client has encountered a connection error and is not queryable$/m, 'the connection to PostgreSQL was ended'],
  [/^Knex: Timeout acquiring a connection\b/m, 'no pooled PostgreSQL connection became free in time'],
];

/**
 * Why a database error is transient (a timeout, a lock or deadlock, a dropped connection), or null
 * when it is not one. Reads the SQLSTATE as pg gives it (`code`) and as MikroORM's exceptions keep it
 * (they copy the driver error's own properties).
 */
export function transientDatabaseError(err: unknown): string | null {
  if (!(err instanceof Error)) return null;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && Object.hasOwn(TRANSIENT_SQLSTATES, code)) return TRANSIENT_SQLSTATES[code];
  // knex puts the SQL before the driver's words ("<sql> - Query read timeout").
  for (const [pattern, why] of TRANSIENT_CLIENT_MESSAGES) if (pattern.test(err.message)) return why;
  return null;
}
