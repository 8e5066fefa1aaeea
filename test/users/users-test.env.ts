import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Client } from 'pg';
import { loadConfig } from '../../config/load-config';
import { buildApiWithExtensions } from '../../connector/api/api.extensions';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { migrate } from '../../connector/persistence/database';
import { OffsetClock } from '../../connector/shared/clock';
import type { SignerAgentPort } from '../../connector/users/signer-agent.port';
import { userDeps, usersWiring } from '../../connector/app/user-context';
import { base32Decode } from '../../connector/users/totp';
import { createUser, enrollTotp, grantRight, type UserDeps } from '../../connector/users/user.service';

/**
 * An isolated connector for one test file: its own database `connector_test_<random>` (dropped
 * WITH (FORCE) afterwards), its own Redis prefix (keys deleted afterwards), its own master key
 * file, a clock the test moves, and a logger whose every line is kept (canary checks).
 */
export interface UsersTestEnv {
  context: AppContext;
  app: FastifyInstance;
  baseUrl: string;
  clock: OffsetClock;
  logLines: string[];
  prefix: string;
  dbUrl: string;
  dir: string;
  lockedAgentUsers: string[];
  deps(): UserDeps;
  close(): Promise<void>;
}

const BASE_URL = process.env.CONNECTOR_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export async function startUsersTestEnv(options: { start?: string; overrides?: Record<string, unknown> } = {}): Promise<UsersTestEnv> {
  const suffix = randomBytes(6).toString('hex');
  const url = new URL(BASE_URL);
  url.pathname = `/connector_test_${suffix}`;
  const dbUrl = url.toString();
  const prefix = `ctest_${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'connector-users-'));
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: {
      'database.url': dbUrl,
      'redis.prefix': prefix,
      testMode: true,
      masterKeyFile: join(dir, 'master.key'),
      'users.scryptLogN': 14,
      'signer.tokenFile': join(dir, 'signer.token'),
      // The tests play a reverse proxy on loopback: Browser names each client in X-Forwarded-For.
      'api.trustedProxies': ['127.0.0.1'],
      ...(options.overrides ?? {}),
    },
  });
  await migrate(config);
  const logLines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logLines.push(String(chunk));
      done();
    },
  });
  const logger = createLogger({ level: 'debug', name: 'test' }, sink);
  const base = await createAppContext({ config, logger, role: 'producer' });
  const clock = new OffsetClock(new Date(options.start ?? '2026-03-02T04:00:00Z'));
  const context: AppContext = { ...base, clock };
  const lockedAgentUsers: string[] = [];
  // A stand-in agent: every key's password is "Key-Pass-1"; like the real one it counts wrong
  // passwords in a row per user, until a right one.
  const wrongInARow = new Map<string, number>();
  const signerAgent: SignerAgentPort = {
    lockUser: async (userId) => {
      lockedAgentUsers.push(userId);
      return { locked: true };
    },
    unlockKey: async (userId, password) => {
      if (password === 'Key-Pass-1') {
        wrongInARow.set(userId, 0);
        return { ok: true, status: { userId, unlocked: true } };
      }
      wrongInARow.set(userId, (wrongInARow.get(userId) ?? 0) + 1);
      return { ok: false, code: 'WRONG_PASSWORD', message: 'wrong keystore password', wrongPassword: true, httpStatus: 403, wrongInARow: wrongInARow.get(userId) };
    },
    enrollKey: async (userId) => ({ userId }),
  };
  usersWiring(context, { signerAgent });
  const app = buildApiWithExtensions(context, { users: { signerAgent } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    context,
    app,
    baseUrl,
    clock,
    logLines,
    prefix,
    dbUrl,
    dir,
    lockedAgentUsers,
    deps: () => userDeps(context),
    async close() {
      await app.close();
      let cursor = '0';
      do {
        const [next, keys] = await context.redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        if (keys.length) await context.redis.del(...keys);
      } while (cursor !== '0');
      await base.close();
      const admin = new Client({ connectionString: BASE_URL });
      await admin.connect();
      try {
        await admin.query(`drop database if exists "connector_test_${suffix}" with (force)`);
      } finally {
        await admin.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A test file's own users world (startUsersTestEnv), made before its tests and closed and dropped
 * after. Call it at the top of the file; the object it returns stands for the world once made.
 */
export function usersTestEnvOfFile(options: Parameters<typeof startUsersTestEnv>[0] = {}): UsersTestEnv {
  let env: UsersTestEnv | undefined;
  beforeAll(async () => {
    env = await startUsersTestEnv(options);
  });
  afterAll(async () => {
    await env?.close();
  });
  const made = (): UsersTestEnv => {
    if (!env) throw new Error('usersTestEnvOfFile: the world is made in beforeAll; use it inside a test or hook');
    return env;
  };
  return {
    get context() { return made().context; },
    get app() { return made().app; },
    get baseUrl() { return made().baseUrl; },
    get clock() { return made().clock; },
    get logLines() { return made().logLines; },
    get prefix() { return made().prefix; },
    get dbUrl() { return made().dbUrl; },
    get dir() { return made().dir; },
    get lockedAgentUsers() { return made().lockedAgentUsers; },
    deps: () => made().deps(),
    close: () => made().close(),
  };
}

/** Enrolls a second factor for `login` (as its admin would) and gives the seed its authenticator app holds. */
export async function enrollTotpSeed(env: UsersTestEnv, login: string): Promise<Buffer> {
  return base32Decode((await enrollTotp(env.deps(), { login, actor: 'test' })).secret);
}

let uniqSeq = 0;
/** A login no other test of the file uses (each test file has its own module registry, so its own count). */
export const uniq = (base: string): string => `${base}${++uniqSeq}`;

export interface HttpResponse {
  statusCode: number;
  headers: Headers;
  body: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * A tiny cookie-keeping HTTP client against the real listening API. Its address is given in
 * X-Forwarded-For (the test env lists 127.0.0.1 in api.trustedProxies, as behind a reverse proxy), so tests can
 * play several clients.
 */
export class Browser {
  cookie: string | undefined;
  constructor(
    private readonly env: UsersTestEnv,
    readonly ip = `10.${(Math.random() * 250) | 0}.${(Math.random() * 250) | 0}.${(Math.random() * 250) | 0}`,
  ) {}

  async request(method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}): Promise<HttpResponse> {
    const res = await fetch(`${this.env.baseUrl}${url}`, {
      method,
      headers: {
        'x-forwarded-for': this.ip,
        ...(method === 'POST' ? { 'content-type': 'application/json' } : {}),
        ...(this.cookie ? { cookie: `connector_session=${this.cookie}` } : {}),
        ...headers,
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    for (const line of res.headers.getSetCookie()) {
      const m = /^connector_session=([^;]*)/.exec(line);
      if (m) this.cookie = m[1] || undefined;
    }
    return { statusCode: res.status, headers: res.headers, body: text, json: () => JSON.parse(text) };
  }

  login(login: string, password: string, totp?: string) {
    return this.request('POST', '/api/v1/auth/login', { login, password, ...(totp ? { totp } : {}) });
  }

  changePassword(currentPassword: string, newPassword: string) {
    return this.request('POST', '/api/v1/auth/change-password', { currentPassword, newPassword });
  }
}

/** Creates a user and completes the forced first change, so the user is in normal use. */
export async function activeUser(env: UsersTestEnv, login: string, role: 'admin' | 'signer' | 'operator' | 'viewer', password: string, options: { iin?: string } = {}): Promise<Browser> {
  await createUser(env.deps(), { login, role, password: `Tmp-${password}`, actor: 'test', iin: options.iin });
  const browser = new Browser(env);
  const first = await browser.login(login, `Tmp-${password}`);
  if (first.statusCode !== 200) throw new Error(`first login of ${login}: ${first.statusCode} ${first.body}`);
  const changed = await browser.changePassword(`Tmp-${password}`, password);
  if (changed.statusCode !== 204) throw new Error(`forced change of ${login}: ${changed.statusCode} ${changed.body}`);
  return browser;
}

export async function grantAll(env: UsersTestEnv, login: string): Promise<void> {
  await grantRight(env.deps(), { login, account: 'all', rights: 'manage', level: 'first', actor: 'test' });
}

export const DAY = 86_400_000;
