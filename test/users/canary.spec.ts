import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { base32Decode, totp } from '../../connector/users/totp';
import { createUser, enrollTotp, showUser } from '../../connector/users/user.service';
import { SecretBox } from '../../connector/vault/secret-box';
import { listIncidents } from '../../connector/incidents/incident.service';
import { credentialStatus, markCredentialsRevoked, rotateSecret, setCredentials } from '../../connector/vault/credential.vault';
import { VaultBankCredentials } from '../../connector/app/vault-bank-credentials';
import { Browser, usersTestEnvOfFile } from './users-test.env';

/**
 * a canary password, Client Secret and TOTP seed go through every path that handles them
 * (API, service, vault, logs at debug level), then the logs, every Redis key and value under the
 * prefix, and every row of every PostgreSQL table (as text) are searched for them in clear.
 */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

const PASSWORD = 'Canary-Pw-7f3a9e';
const NEW_PASSWORD = 'Canary-Pw2-c41d0b';
const WRONG = 'Canary-Wrong-55e1';
const CLIENT_SECRET = 'Canary-Client-Secret-91b2d7';
const ROTATED_SECRET = 'Canary-Client-Secret-2-aa80';
/** Logins are confidential too: never in the logs (the audit log in PostgreSQL keeps them). */
const LOGIN = 'kanareyka.b7';

async function redisDump(): Promise<string> {
  const redis = env.context.redis;
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${env.prefix}:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      out.push(key);
      const type = await redis.type(key);
      if (type === 'string') out.push((await redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await redis.hgetall(key)));
      else if (type === 'set') out.push(...(await redis.smembers(key)));
      else if (type === 'list') out.push(...(await redis.lrange(key, 0, -1)));
      else if (type === 'zset') out.push(...(await redis.zrange(key, 0, -1)));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

async function postgresDump(): Promise<string> {
  const em = env.context.orm.em.fork();
  const tables = await em.execute<Array<{ table_name: string }>>("select table_name from information_schema.tables where table_schema = 'public'");
  const out: string[] = [];
  for (const { table_name } of tables) {
    const rows = await em.execute<Array<{ row: string }>>(`select t::text as row from "${table_name}" t`);
    out.push(...rows.map((r) => r.row));
  }
  expect(tables.map((t) => t.table_name)).toEqual(expect.arrayContaining(['app_user', 'password_history', 'credential_vault', 'audit_event']));
  return out.join('\n');
}

test('canary secrets never appear in clear in logs, Redis or PostgreSQL', async () => {
  // A password through the admin API, a wrong login, a forced change, a voluntary change refused.
  await createUser(env.deps(), { login: 'boss', role: 'admin', password: 'Boss-Start-1', actor: 'test' });
  const boss = new Browser(env);
  await boss.login('boss', 'Boss-Start-1');
  expect((await boss.changePassword('Boss-Start-1', 'Boss-Own-22')).statusCode).toBe(204);
  expect((await boss.request('POST', '/api/v1/users', { login: LOGIN, role: 'signer', password: PASSWORD })).statusCode).toBe(201);
  const user = new Browser(env);
  expect((await user.login(LOGIN, WRONG)).statusCode).toBe(401);
  expect((await user.login(LOGIN, PASSWORD)).statusCode).toBe(200);
  expect((await user.changePassword(PASSWORD, NEW_PASSWORD)).statusCode).toBe(204);
  expect((await user.changePassword(NEW_PASSWORD, PASSWORD)).statusCode).toBe(422);
  // A malformed login body carrying the secret.
  expect((await user.request('POST', '/api/v1/auth/login', { login: LOGIN, password: PASSWORD, extra: PASSWORD })).statusCode).toBe(400);
  // A body that is not JSON at all, the password unquoted: the 400 says where, never what (JSON.parse's message quotes it).
  const unquoted = await user.request('POST', '/api/v1/auth/login', `{"login":"canary","password":${PASSWORD}}`);
  expect([unquoted.statusCode, unquoted.json().code]).toEqual([400, 'INVALID_REQUEST']);
  expect(unquoted.json().message).toMatch(/^the body is not valid JSON/);
  expect(unquoted.body).not.toContain(PASSWORD.slice(0, 6));

  // TOTP seed.
  const { secret: seedBase32, uri } = await enrollTotp(env.deps(), { login: LOGIN, actor: 'test' });
  const seed = base32Decode(seedBase32);
  expect((await new Browser(env).login(LOGIN, NEW_PASSWORD, totp(seed, env.clock.now()))).statusCode).toBe(200);
  expect((await new Browser(env).login(LOGIN, NEW_PASSWORD, '123456')).statusCode).toBe(401);

  // Client Secret through the vault and the provider the bank client uses.
  const box = SecretBox.fromConfig(env.context.config);
  const vault = { em: env.context.orm.em.fork(), box, clock: env.context.clock };
  await setCredentials(vault, { clientId: 'client-canary', clientSecret: CLIENT_SECRET, actor: 'test' });
  const provider = new VaultBankCredentials(env.context.config, env.context.orm, env.context.clock);
  const first = await provider.getCredentials();
  expect(first).toMatchObject({ clientId: 'client-canary', clientSecret: CLIENT_SECRET });
  await provider.onTokenIssued(first.version);
  expect((await credentialStatus(vault)).lastUsedAt).not.toBeNull();
  await rotateSecret(vault, { clientSecret: ROTATED_SECRET, actor: 'test' });
  expect((await provider.getCredentials()).clientSecret).toBe(ROTATED_SECRET);
  // A log line that carries a secret by mistake is redacted by the logger.
  env.context.logger.info({ event: 'test.redaction', password: PASSWORD, clientSecret: CLIENT_SECRET, totpSecret: seedBase32 });

  const canaries = [PASSWORD, NEW_PASSWORD, WRONG, CLIENT_SECRET, ROTATED_SECRET, seedBase32, seed.toString('hex'), seed.toString('base64'), uri];
  const logs = env.logLines.join('');
  const redis = await redisDump();
  const pg = await postgresDump();
  expect(logs).toContain('auth.login.failed');
  expect(logs).toContain('[REDACTED]');
  expect(redis).toMatch(/:session:/);
  expect(pg).toMatch(/scrypt\$/);
  expect(logs).toContain('auth.login.succeeded');
  expect({ where: 'logs', found: logs.includes(LOGIN) || logs.includes('"boss"'), canary: LOGIN }).toEqual({ where: 'logs', found: false, canary: LOGIN });
  // The logs name the user by the id `users show --json` gives.
  const { id } = await showUser(env.deps(), LOGIN);
  expect(logs).toContain(`"event":"auth.login.succeeded","userId":"${id}"`);
  // Logged by mistake: redacted too.
  env.context.logger.info({ event: 'test.redaction.login', login: LOGIN, user: { login: LOGIN } });
  expect(env.logLines.join('').includes(LOGIN)).toBe(false);
  for (const canary of canaries) {
    expect({ where: 'logs', found: logs.includes(canary), canary }).toEqual({ where: 'logs', found: false, canary });
    expect({ where: 'redis', found: redis.includes(canary), canary }).toEqual({ where: 'redis', found: false, canary });
    expect({ where: 'postgresql', found: pg.includes(canary), canary }).toEqual({ where: 'postgresql', found: false, canary });
  }
});

test('before the vault holds a pair, the provider uses bank.clientId + bank.clientSecretFile from config', async () => {
  await env.context.orm.em.fork().execute('delete from credential_vault');
  const file = join(env.dir, 'client.secret');
  writeFileSync(file, 'File-Secret-123\n', { mode: 0o600 });
  const deps = { em: env.context.orm.em.fork(), box: SecretBox.fromConfig(env.context.config), clock: env.context.clock };
  const { config, orm, clock } = env.context;
  const bare = new VaultBankCredentials({ ...config, bank: { ...config.bank, clientId: undefined, clientSecretFile: undefined } }, orm, clock);
  await expect(bare.getCredentials()).rejects.toMatchObject({ code: 'AUTH', message: expect.stringMatching(/no bank Client ID configured/) });
  const withConfig = new VaultBankCredentials({ ...config, bank: { ...config.bank, clientId: 'dev-client', clientSecretFile: file } }, orm, clock);
  expect(await withConfig.problem()).toBeNull();
  const fromFile = await withConfig.getCredentials();
  expect(fromFile).toMatchObject({ clientId: 'dev-client', clientSecret: 'File-Secret-123' });
  // The config's pair has no clock of its own to restart.
  await withConfig.onTokenIssued(fromFile.version);
  await setCredentials(deps, { clientId: 'vault-client', clientSecret: 'Vault-Secret-123', actor: 'test' });
  const fromVault = await withConfig.getCredentials();
  expect(fromVault.clientId).toBe('vault-client');
  // The vault's first pair is a change of version: a token got with the config's pair is dropped.
  expect(fromVault.version).not.toBe(fromFile.version);
  expect(await withConfig.version()).toBe(fromVault.version);
});

test('a revoked pair stops the provider and says what to do (R-2); nothing is handed out for the bank', async () => {
  const box = SecretBox.fromConfig(env.context.config);
  const vault = { em: env.context.orm.em.fork(), box, clock: env.context.clock };
  const provider = new VaultBankCredentials(env.context.config, env.context.orm, env.context.clock);
  expect(await provider.problem()).toBeNull();
  const before = (await provider.getCredentials()).version;
  await markCredentialsRevoked(vault, { reason: 'bank answered 401 invalid_client', actor: 'test' });
  expect(await provider.problem()).toMatchObject({ code: 'CREDENTIALS_REVOKED', message: expect.stringMatching(/credentials rotate --secret-stdin/) });
  await expect(provider.getCredentials()).rejects.toMatchObject({ code: 'CREDENTIALS_REVOKED', message: expect.stringMatching(/credentials rotate --secret-stdin/) });
  // Reported twice by the bank: one incident.
  await provider.onRevoked();
  const incidents = (await listIncidents(env.context.orm.em.fork(), { status: 'open' })).filter((i) => i.kind === 'credentials_revoked');
  expect(incidents).toHaveLength(1);
  expect(incidents[0].title).toMatch(/2\.1\.1-2\.1\.2/);
  // Rotation makes the pair usable again, under a new version (a new token).
  await rotateSecret(vault, { clientSecret: 'After-Revoke-Secret', actor: 'test' });
  expect(await provider.problem()).toBeNull();
  const after = await provider.getCredentials();
  expect(after.clientSecret).toBe('After-Revoke-Secret');
  expect(after.version).not.toBe(before);
});
