import { DriverException } from '@mikro-orm/core';
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
  '57P02': 'the server crashed and is restarting (crash shutdown)',
  '57P03': 'the server is starting up, shutting down or recovering, and takes no connection yet',
  '08001': 'PostgreSQL could not be connected to',
  '08006': 'the connection to PostgreSQL failed',
};

/**
 * A connection PostgreSQL did not take or dropped, as the operating system says it: the server down
 * or restarting (a package upgrade, a reboot), or the network to it. Only as MikroORM wraps it (a
 * DriverException of a statement): the same errno from another service (Redis, a mail server) is not
 * the database's.
 */
const TRANSIENT_CONNECT_ERRNOS: Readonly<Record<string, string>> = {
  ECONNREFUSED: 'PostgreSQL refused the connection: it is down or restarting',
  ECONNRESET: 'the connection to PostgreSQL was reset',
  ETIMEDOUT: 'the connection to PostgreSQL timed out',
  EHOSTUNREACH: 'the host of PostgreSQL cannot be reached',
  ENETUNREACH: 'the network of PostgreSQL cannot be reached',
  EPIPE: 'the connection to PostgreSQL was ended',
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
  if (err instanceof DriverException && typeof code === 'string' && Object.hasOwn(TRANSIENT_CONNECT_ERRNOS, code)) return TRANSIENT_CONNECT_ERRNOS[code];
  // knex puts the SQL before the driver's words ("<sql> - Query read timeout").
  for (const [pattern, why] of TRANSIENT_CLIENT_MESSAGES) if (pattern.test(err.message)) return why;
  return null;
}

/**
 * The statement's verb and table, read from the SQL before its first quoted literal (so no value
 * MikroORM inlined can be taken for a name): `update credential_vault`, `insert into password_history`,
 * `select from app_user`, `set`.
 */
export function statementSummary(sql: string): string {
  const head = sql.replace(/^\s*(?:\/\*[\s\S]*?\*\/\s*)*/, '').split(/['$]/)[0];
  const verb = /^\s*(\w+)/.exec(head)?.[1]?.toLowerCase() ?? 'statement';
  const table = /\b(into|update|from)\s+"?([A-Za-z_][\w.]*)"?/i.exec(head);
  if (!table) return verb;
  const via = table[1].toLowerCase();
  return via === 'update' || verb === 'delete' ? `${verb} ${table[2]}` : `${verb} ${via} ${table[2]}`;
}

/**
 * PostgreSQL's words that quote a value: a bad input (class 22: `invalid input syntax for type uuid:
 * "..."`, `value "..." is out of range`) and a syntax error near a token of the statement.
 */
function withheldValues(code: string | undefined, message: string): string {
  if (code?.startsWith('22') || code === '42601') return message.replace(/"[^"]*"/g, '"..."');
  return message;
}

/**
 * A unique, foreign key or check violation's detail names the values (`Key (login)=(alice) already
 * exists.`, `Failing row contains (...)`): the columns and the kind of conflict stay.
 */
function withheldDetail(detail: string): string {
  const key = /^Key \(([^)]*)\)=\(/.exec(detail);
  if (key) {
    const tail = /(already exists|is not present in table "[^"]*"|is still referenced from table "[^"]*")\.$/.exec(detail)?.[1];
    return `Key (${key[1]})=(...)${tail ? ` ${tail}.` : ''}`;
  }
  if (detail.startsWith('Failing row contains')) return 'Failing row contains (...).';
  return detail;
}

/**
 * The statement with every quoted literal, and every number that is not a placeholder's index,
 * replaced by `?`: `select id from app_user where login = ? and id in ()`. The values MikroORM
 * inlined (a password hash, a ciphertext, an amount) are gone; the structure that a syntax error
 * is about stays. At most 500 characters.
 */
export function sqlShape(sql: string): string {
  const shape = sql
    .replace(/[Ee]?'(?:[^']|'')*'/g, '?')
    .replace(/(?<![$\w])-?\d+(?:\.\d+)?(?![\w])/g, '?')
    .replace(/\s+/g, ' ')
    .trim();
  return shape.length > 500 ? `${shape.slice(0, 500)}...` : shape;
}

/**
 * Removes from a failed statement's error everything that carries the values it bound. knex writes
 * `<the SQL> - <pg message>` into the message (the connector sets compileSqlOnError: false, but
 * MikroORM inlines the values into the SQL itself, so the SQL still holds them), and MikroORM copies
 * message and properties into its DriverException: the Client Secret's ciphertext, a password hash
 * or a TOTP seed went to the log, to BullMQ's failedReason and stacktrace in Redis, to an order's
 * last error and to the CLI's stderr whenever such a statement hit a lock or statement timeout.
 * Kept: the statement's verb and table, PostgreSQL's message (which limit, which constraint), its
 * SQLSTATE (`code`), `constraint`, `table`, `column`; `detail` keeps its columns, not their values.
 * Called by knex's `query-error` event, before the error is thrown (connector/persistence/database.ts).
 */
export function withholdStatementValues(err: unknown, sql: string | undefined): void {
  if (!(err instanceof Error)) return;
  const e = err as Error & { code?: string; detail?: unknown; internalQuery?: unknown };
  const prefix = `${sql ?? ''} - `;
  const pgMessage = sql !== undefined && e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message.split(' - ').pop() ?? '';
  const before = e.message;
  e.message = `${sql === undefined ? 'statement' : statementSummary(sql)} - ${withheldValues(e.code, pgMessage)}`;
  // A syntax error is a fault of the connector's own SQL: its shape, without a value, is what finds it.
  if (e.code === '42601' && sql !== undefined) e.message += ` [${sqlShape(sql)}]`;
  // The stack's first line is the message as it was when first read: read it now and replace.
  if (typeof e.stack === 'string') e.stack = e.stack.split(before).join(e.message);
  if (typeof e.detail === 'string') e.detail = withheldDetail(e.detail);
  delete e.internalQuery;
}
