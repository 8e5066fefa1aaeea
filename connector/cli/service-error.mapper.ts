import type { ConnectorConfig } from '../../config/config.schema';
import { ConnectorError } from '../shared/errors';
import { PASSWORD_NOT_GIVEN, PASSWORD_NOT_GIVEN_HINT } from '../shared/pg-errors';
import { redactedUrl } from '../../config/load-config';

/**
 * PostgreSQL or Redis that cannot be reached (or refuses our login), as an operator reads it: which
 * service, where (its URL without the password), what happened and what to check. The drivers say
 * only `connect ECONNREFUSED 127.0.0.1:5432`, which names neither the service nor the setting.
 */
export type Service = 'postgresql' | 'redis';

const SERVICES: Record<Service, { name: string; code: string; setting: string; defaultPort: number; start: string }> = {
  postgresql: {
    name: 'PostgreSQL',
    code: 'POSTGRESQL_UNREACHABLE',
    setting: 'CONNECTOR_DATABASE_URL (config database.url)',
    defaultPort: 5432,
    start: 'pg_ctlcluster <version> main start',
  },
  redis: { name: 'Redis', code: 'REDIS_UNREACHABLE', setting: 'CONNECTOR_REDIS_URL (config redis.url)', defaultPort: 6379, start: 'redis-server --daemonize yes' },
};

/** Errors of the network itself (Node's errno codes), whoever the peer. */
const NETWORK: Record<string, string> = {
  ECONNREFUSED: 'refused the connection (ECONNREFUSED)',
  ETIMEDOUT: 'did not answer in time (ETIMEDOUT)',
  EHOSTUNREACH: 'cannot be reached over the network (EHOSTUNREACH)',
  ENETUNREACH: 'cannot be reached over the network (ENETUNREACH)',
  ECONNRESET: 'closed the connection (ECONNRESET)',
  EPIPE: 'closed the connection (EPIPE)',
  ENOTFOUND: 'has a host name that does not resolve (ENOTFOUND)',
  EAI_AGAIN: 'has a host name that does not resolve now (EAI_AGAIN)',
};

/** PostgreSQL's own refusals at connection time (SQLSTATE), never those of a statement: what happened, what to do. */
const POSTGRES_STATES: Record<string, (message: string) => [string, string]> = {
  '28000': (m) => [`refused our login (${m})`, `check the user in ${SERVICES.postgresql.setting}`],
  '28P01': () => ['refused our login (wrong password)', `check the user and password in ${SERVICES.postgresql.setting}`],
  '3D000': (m) => [`has no such database (${m})`, `run \`connector migrate\` (it creates it), or fix ${SERVICES.postgresql.setting}`],
  '57P03': (m) => [`cannot take connections now (${m})`, 'it is starting up or shutting down: wait for it'],
  '53300': () => ['has no free connection slot (too many connections)', 'lower database.poolMax or raise max_connections'],
};

/** PostgreSQL's driver words for a connection lost or never made (pg, knex). */
const POSTGRES_WORDS = [/^Connection terminated/i, /^timeout expired$/i, /Timeout acquiring a connection/i];

interface Endpoint {
  host: string;
  port: number;
}

function endpointOf(url: string, defaultPort: number): Endpoint | null {
  try {
    const parsed = new URL(url);
    if (!parsed.hostname) return null;
    return { host: parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase(), port: parsed.port ? Number(parsed.port) : defaultPort };
  } catch {
    return null;
  }
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.') || address === 'localhost' || address === '::ffff:127.0.0.1';
}

/** Whether the configured host is the address a socket error names (a name is taken as a match: we cannot resolve it here). */
function sameHost(configured: string, address: string): boolean {
  const a = address.replace(/^\[|\]$/g, '').toLowerCase();
  if (configured === a) return true;
  if (isLoopback(configured) && isLoopback(a)) return true;
  return !/^[\d.]+$/.test(configured) && !configured.includes(':');
}

interface NetworkFailure {
  code: string;
  address?: string;
  port?: number;
  hostname?: string;
}

/** The socket error inside `err` (Node wraps the tries of every address of a name in an AggregateError). */
function networkFailure(err: unknown): NetworkFailure | null {
  const e = err as { code?: unknown; address?: unknown; port?: unknown; hostname?: unknown; errors?: unknown[] } | null;
  if (!e || typeof e !== 'object') return null;
  if (typeof e.code === 'string' && NETWORK[e.code]) {
    const inner = Array.isArray(e.errors) ? networkFailure(e.errors[0]) : null;
    return {
      code: e.code,
      address: typeof e.address === 'string' ? e.address : inner?.address,
      port: typeof e.port === 'number' ? e.port : inner?.port,
      hostname: typeof e.hostname === 'string' ? e.hostname : inner?.hostname,
    };
  }
  return null;
}

/** Which configured service a socket error is about: by port and address, or by the host name that did not resolve. */
function serviceOf(failure: NetworkFailure, config: Pick<ConnectorConfig, 'database' | 'redis'>): Service | null {
  const endpoints: Array<[Service, Endpoint | null]> = [
    ['postgresql', endpointOf(config.database.url, SERVICES.postgresql.defaultPort)],
    ['redis', endpointOf(config.redis.url, SERVICES.redis.defaultPort)],
  ];
  const matches = endpoints.filter(([, ep]) => {
    if (!ep) return false;
    if (failure.hostname !== undefined) return ep.host === failure.hostname.toLowerCase();
    return failure.port === ep.port && (failure.address === undefined || sameHost(ep.host, failure.address));
  });
  return matches.length === 1 ? matches[0][0] : null;
}

function isPostgresStateError(err: unknown): err is Error & { code: string } {
  const e = err as { code?: unknown; severity?: unknown } | null;
  return !!e && typeof e === 'object' && typeof e.code === 'string' && typeof e.severity === 'string' && POSTGRES_STATES[e.code] !== undefined;
}

function isRedisFailure(err: Error): boolean {
  // ioredis: a command given up after maxRetriesPerRequest tries while disconnected; a connection
  // that ended; the server refusing our password.
  return err.name === 'MaxRetriesPerRequestError' || err.message === 'Connection is closed.' || /^(NOAUTH|WRONGPASS)\b/.test(err.message);
}

function build(service: Service, config: Pick<ConnectorConfig, 'database' | 'redis'>, what: string, tail?: string): ConnectorError {
  const s = SERVICES[service];
  const url = service === 'postgresql' ? config.database.url : config.redis.url;
  const ep = endpointOf(url, s.defaultPort);
  const where = ep ? `${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}` : 'the configured address';
  const next = tail ?? `is ${s.name} running there? Start it (${s.start}) or fix ${s.setting}`;
  return new ConnectorError(s.code, `${s.name} at ${where} (${redactedUrl(url)}) ${what}; ${next}; \`connector doctor\` checks every service`);
}

/**
 * The coded error for PostgreSQL or Redis being unreachable (or refusing us), or null when `err` is
 * something else or cannot be told apart (then the caller reports it as it is).
 */
export function describeServiceError(err: unknown, config: Pick<ConnectorConfig, 'database' | 'redis'>): ConnectorError | null {
  if (!(err instanceof Error) && !(err && typeof err === 'object')) return null;
  const failure = networkFailure(err);
  if (failure) {
    const service = serviceOf(failure, config);
    if (!service) return null;
    const misnamed = failure.code === 'ENOTFOUND' || failure.code === 'EAI_AGAIN';
    return build(service, config, NETWORK[failure.code], misnamed ? `fix the host in ${SERVICES[service].setting}` : undefined);
  }
  if (isPostgresStateError(err)) {
    const [what, next] = POSTGRES_STATES[err.code](err.message);
    return build('postgresql', config, what, next);
  }
  if (err instanceof Error && PASSWORD_NOT_GIVEN.test(err.message)) return build('postgresql', config, 'asks for a password and the URL gives none', PASSWORD_NOT_GIVEN_HINT);
  if (err instanceof Error && POSTGRES_WORDS.some((re) => re.test(err.message))) return build('postgresql', config, `lost or never made the connection (${err.message})`);
  if (err instanceof Error && isRedisFailure(err)) {
    if (/^(NOAUTH|WRONGPASS)\b/.test(err.message)) return build('redis', config, `refused our login (${err.message.split(' ')[0]})`, `check the password in ${SERVICES.redis.setting}`);
    return build('redis', config, 'did not answer (not running, not reachable, or the connection was lost)');
  }
  return describeMissingTable(err, config);
}

/** What an operator reads when the database lacks this release's schema: which database, which migrations, what to run. */
export function migrationsPendingError(url: string, pending: readonly string[]): ConnectorError {
  const shown = pending.length > 3 ? `${pending.slice(0, 3).join(', ')}, ... (${pending.length} in all)` : pending.join(', ');
  return new ConnectorError(
    'MIGRATIONS_PENDING',
    `the database ${redactedUrl(url)} lacks ${pending.length} migration(s) of this release (${shown}): run \`connector migrate\` (to upgrade: stop the processes, update, \`npm ci && npm run build && npx connector migrate\`, start them again)`,
  );
}

/**
 * A statement that found no table of ours (SQLSTATE 42P01): the database was never migrated, or
 * is older than this release. Named as MIGRATIONS_PENDING instead of the driver's SQL text.
 */
function describeMissingTable(err: unknown, config: Pick<ConnectorConfig, 'database'>): ConnectorError | null {
  const e = err as { code?: unknown; name?: unknown; message?: unknown };
  if (e?.code !== '42P01' && e?.name !== 'TableNotFoundException') return null;
  const table = typeof e.message === 'string' ? /relation "([^"]+)" does not exist/.exec(e.message)?.[1] : undefined;
  return new ConnectorError(
    'MIGRATIONS_PENDING',
    `the database ${redactedUrl(config.database.url)} has no table ${table ? `"${table}" ` : ''}that this release needs: it was never migrated, or is older than this release; run \`connector migrate\``,
  );
}

/** Redis named as out of reach for what a one-shot command needs it for, when no driver error says more. */
export function redisUnreachable(config: Pick<ConnectorConfig, 'database' | 'redis'>, what: string): ConnectorError {
  return build('redis', config, what);
}
