import { describeServiceError, migrationsPendingError } from './service-error.mapper';
import { redactedUrl } from '../../config/load-config';

/** The errors the drivers really throw (shapes recorded from pg, knex, ioredis and Node 20), table-style. */
describe('describeServiceError', () => {
  const config = {
    database: { url: 'postgresql://connector:pg-s3cret@127.0.0.1:5433/connector' },
    redis: { url: 'redis://:r3dis-s3cret@localhost:6380' },
  } as Parameters<typeof describeServiceError>[1];

  const socketError = (code: string, fields: Record<string, unknown>) => Object.assign(new Error(`connect ${code} ${String(fields.address)}:${String(fields.port)}`), { code, syscall: 'connect', ...fields });

  const cases: Array<[string, unknown, string | null, RegExp[]]> = [
    ['PostgreSQL refusing', socketError('ECONNREFUSED', { address: '127.0.0.1', port: 5433 }), 'POSTGRESQL_UNREACHABLE', [/^PostgreSQL at 127\.0\.0\.1:5433 /, /refused the connection \(ECONNREFUSED\)/, /CONNECTOR_DATABASE_URL/, /connector doctor/]],
    ['Redis refusing (localhost configured, 127.0.0.1 tried)', socketError('ECONNREFUSED', { address: '127.0.0.1', port: 6380 }), 'REDIS_UNREACHABLE', [/^Redis at localhost:6380 /, /CONNECTOR_REDIS_URL/]],
    ['Redis on ::1 (localhost configured)', socketError('ECONNREFUSED', { address: '::1', port: 6380 }), 'REDIS_UNREACHABLE', [/^Redis at localhost:6380 /]],
    [
      'every address of a name refused (Node wraps them, with an empty message)',
      Object.assign(new AggregateError([socketError('ECONNREFUSED', { address: '::1', port: 5433 }), socketError('ECONNREFUSED', { address: '127.0.0.1', port: 5433 })], ''), { code: 'ECONNREFUSED' }),
      'POSTGRESQL_UNREACHABLE',
      [/^PostgreSQL at 127\.0\.0\.1:5433 /],
    ],
    ['a host name that does not resolve', Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND', hostname: 'db.invalid' }), null, []],
    ['PostgreSQL not answering in time', socketError('ETIMEDOUT', { address: '127.0.0.1', port: 5433 }), 'POSTGRESQL_UNREACHABLE', [/did not answer in time/]],
    ['PostgreSQL refusing the password', Object.assign(new Error('password authentication failed for user "connector"'), { code: '28P01', severity: 'FATAL' }), 'POSTGRESQL_UNREACHABLE', [/refused our login \(wrong password\)/, /check the user and password in CONNECTOR_DATABASE_URL/]],
    ['PostgreSQL asking for a password the URL does not give', new Error('SASL: SCRAM-SERVER-FIRST-MESSAGE: client password must be a string'), 'POSTGRESQL_UNREACHABLE', [/asks for a password and the URL gives none/, /put the password in CONNECTOR_DATABASE_URL/]],
    ['no such database', Object.assign(new Error('database "connector" does not exist'), { code: '3D000', severity: 'FATAL' }), 'POSTGRESQL_UNREACHABLE', [/connector migrate/]],
    ['pg connection timeout', new Error('Connection terminated due to connection timeout'), 'POSTGRESQL_UNREACHABLE', [/lost or never made the connection/]],
    ['ioredis giving a command up', Object.assign(new Error('Reached the max retries per request limit (which is 3). Refer to "maxRetriesPerRequest" option for details.'), { name: 'MaxRetriesPerRequestError' }), 'REDIS_UNREACHABLE', [/^Redis at localhost:6380 /, /did not answer/]],
    ['Redis refusing the password', new Error('WRONGPASS invalid username-password pair or user is disabled.'), 'REDIS_UNREACHABLE', [/refused our login \(WRONGPASS\)/]],
    ['a table of ours missing (never migrated)', Object.assign(new Error('relation "payment_order" does not exist'), { code: '42P01', severity: 'ERROR' }), 'MIGRATIONS_PENDING', [/^the database postgresql:\/\/connector:\*\*\*@127\.0\.0\.1:5433\/connector has no table "payment_order"/]],
    // Not a connection problem, or another peer: reported as it is.
    ['a statement error', Object.assign(new Error('duplicate key value violates unique constraint "x"'), { code: '23505', severity: 'ERROR' }), null, []],
    ['another service refusing (the bank on 8900)', socketError('ECONNREFUSED', { address: '127.0.0.1', port: 8900 }), null, []],
    ['any other error', new Error('something else'), null, []],
    ['not an error at all', 'text', null, []],
  ];

  it.each(cases)('%s', (_, err, code, patterns) => {
    const mapped = describeServiceError(err, config);
    expect(mapped?.code ?? null).toBe(code);
    for (const pattern of patterns) expect(mapped?.message).toMatch(pattern);
    // The URL is shown, its password never.
    if (mapped) {
      expect(mapped.message).toMatch(/:\*\*\*@/);
      expect(mapped.message).not.toMatch(/s3cret/);
      expect(mapped.exitCode).toBe(1);
    }
  });

  it('MIGRATIONS_PENDING names the database without its password', () => {
    const pending = migrationsPendingError(config.database.url, ['Migration1', 'Migration2']);
    expect(pending.message).toMatch(/^the database postgresql:\/\/connector:\*\*\*@127\.0\.0\.1:5433\/connector lacks 2 migration\(s\)/);
    expect(pending.message).not.toMatch(/s3cret/);
  });

  it('names the host a name lookup failed for, when it is one of the configured ones', () => {
    const named = { database: { url: 'postgresql://connector@db.invalid/connector' }, redis: { url: 'redis://127.0.0.1:6379' } } as Parameters<typeof describeServiceError>[1];
    const mapped = describeServiceError(Object.assign(new Error('getaddrinfo ENOTFOUND db.invalid'), { code: 'ENOTFOUND', hostname: 'db.invalid' }), named);
    expect(mapped?.code).toBe('POSTGRESQL_UNREACHABLE');
    expect(mapped?.message).toMatch(/^PostgreSQL at db\.invalid:5432 .*does not resolve \(ENOTFOUND\); fix the host in CONNECTOR_DATABASE_URL/);
  });
});

describe('redactedUrl', () => {
  it.each([
    ['postgresql://u:p4ss@h:5432/db', 'postgresql://u:***@h:5432/db'],
    ['postgresql://u@h/db?password=p4ss&sslmode=require', 'postgresql://u@h/db?password=***&sslmode=***'],
    ['redis://:p4ss@127.0.0.1:6379', 'redis://:***@127.0.0.1:6379'],
    ['redis://127.0.0.1:6379', 'redis://127.0.0.1:6379'],
    // A bank or webhook URL: a lone user name is often the token itself; any query value may be one.
    ['https://bank-user:p4ss@bank.example.kz/base?token=t0k3n&x=1#frag', 'https://***:***@bank.example.kz/base?token=***&x=***'],
    ['https://t0k3n@bank.example.kz/', 'https://***@bank.example.kz/'],
    // Nothing to hide: exactly as configured (the operator searches for that text).
    ['https://bank.example.kz', 'https://bank.example.kz'],
    ['http://127.0.0.1:8900', 'http://127.0.0.1:8900'],
    // A query part with no "=" may be the token itself.
    ['https://gw.bank.example.kz/api?Zx9-SECRET-TOKEN', 'https://gw.bank.example.kz/api?***'],
    ['https://gw.bank.example.kz/api?a=1&Zx9-SECRET-TOKEN&b=', 'https://gw.bank.example.kz/api?a=***&***&b=***'],
    ['not a url?Zx9-SECRET-TOKEN', 'not a url?***'],
    ['unix:/run/connector/agent.sock', 'unix:/run/connector/agent.sock'],
    ['not a url //u:p4ss@h?token=t0k3n', 'not a url //***@h?token=***'],
  ])('%s', (url, shown) => {
    expect(redactedUrl(url)).toBe(shown);
  });
});
