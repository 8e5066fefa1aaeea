import { jsonFault } from '../../config/json-fault';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import type { AppContext } from '../app/app-context';
import { ApiError } from '../api/api-errors';
import { appendAudit } from '../audit/audit.log';
import { bearerCredentials, principalOf } from '../api/auth.hooks';
import { Incident } from '../persistence/entities';
import { ConnectorError } from '../shared/errors';
import { parseAmount } from '../shared/money';
import { credentialStatus } from '../vault/credential.vault';
import { isLockedDown } from '../lockdown/lockdown.flag';
import { accountsVisibleTo } from './authority';
import { passwordExpiresInDays } from './password.policy';
import { clearSessionCookie, sessionOf, setSessionCookie, type SessionContext } from './session.authenticator';
import { usersWiring, userDeps, type UsersWiring } from '../app/user-context';
import { MESSAGES, UserError, userError } from './user.errors';
import { blockUser, changePassword, checkLogin, createUser, grantRight, listUsers, logoutEverywhere, recordKeystoreFailure, resetPassword, revokeRight, rightView, showUser, unblockUser } from './user.service';

/**
 * People's HTTP API (INTERFACES.md "HTTP API"): login, change-password, logout, logout-all, me,
 * and the admin's user endpoints. Also the request guards every session relies on: CSRF
 * (JSON content type + Origin check; SameSite=Strict cookie; no token) and the per-IP login rate
 * limit (>= 30 a minute, 429 RATE_LIMITED with Retry-After).
 */

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

function isJson(contentType: string | undefined): boolean {
  if (!contentType) return false;
  const media = contentType.split(';')[0].trim().toLowerCase();
  return media === 'application/json' || /^application\/[a-z0-9.+-]+\+json$/.test(media);
}

/** The API's own origins: the Host it was reached at, and the configured listen address. */
function ownOrigins(request: FastifyRequest, context: AppContext): Set<string> {
  const origins = new Set<string>(context.config.api.consoleOrigins.map((o) => new URL(o).origin));
  if (request.headers.host) origins.add(`${request.protocol}://${request.headers.host}`);
  origins.add(`http://${context.config.api.host}:${context.config.api.port}`);
  return origins;
}

const LOOPBACK_HOST = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|\[::1\]|localhost)$/i;
/** A Host header: a name or an IPv4 address, or an IPv6 address in brackets, then an optional port. */
const HOST_HEADER = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9-]+(?:\.[a-z0-9-]+)*\.?))(?::\d{1,5})?$/i;
/** Monitors' probes: they carry nothing a rebinding page could use. */
const UNGUARDED_PATHS = new Set(['/health', '/ready']);

/** The names an API configuration is known by, and whether it takes any name: worked out once per configuration. */
const namesOfConfig = new WeakMap<object, { known: Set<string>; anyName: boolean }>();

function namesOf(api: AppContext['config']['api']): { known: Set<string>; anyName: boolean } {
  let names = namesOfConfig.get(api);
  if (!names) {
    const known = new Set([api.host, hostname(), ...api.allowedHosts, ...api.consoleOrigins.map((o) => new URL(o).hostname)].map((h) => h.toLowerCase()));
    names = { known, anyName: api.allowedHosts.length === 0 && !LOOPBACK_HOST.test(api.host) };
    namesOfConfig.set(api, names);
  }
  return names;
}

/** One name the API is reached by (a Host or X-Forwarded-Host value) is known to it. */
function knownHost(host: string, context: Pick<AppContext, 'config'>): boolean {
  const m = HOST_HEADER.exec(host.trim());
  if (!m) return false;
  const name = (m[1] ?? m[2]).toLowerCase().replace(/\.$/, '');
  if (isIP(name) || name === 'localhost') return true;
  const { known, anyName } = namesOf(context.config.api);
  return anyName || known.has(name);
}

/**
 * DNS rebinding: a page whose own name (evil.example) is made to resolve to this machine reaches
 * the API with `Host: evil.example`, and its Origin is that same name, so the Origin check alone
 * lets it in. No session cookie of ours goes with it, but it could guess logins and lock users out
 * from the victim's own address. So the Host, and an X-Forwarded-Host a proxy added, must be names
 * the API is known by: an IP address, `localhost`, `api.host`, this machine's own name, a console
 * origin's host, or one of `api.allowedHosts`. An API listening beyond loopback with no
 * `api.allowedHosts` takes any name: which names the LAN uses is not known.
 */
export function hostAllowed(headers: { host?: string; 'x-forwarded-host'?: string | string[] }, context: Pick<AppContext, 'config'>): boolean {
  const forwarded = ([] as string[]).concat(headers['x-forwarded-host'] ?? []).flatMap((v) => v.split(','));
  return [...(headers.host === undefined ? [] : [headers.host]), ...forwarded].every((h) => knownHost(h, context));
}

/** Keys that reach an object's prototype when a parsed body is merged or assigned somewhere. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

class ForbiddenKeyError extends Error {
  constructor(readonly key: string) {
    super('forbidden key');
  }
}

/** JSON.parse's reviver: called for every own key of every object at any depth (array indexes too). */
function refuseForbiddenKeys(key: string, value: unknown): unknown {
  if (FORBIDDEN_KEYS.has(key)) throw new ForbiddenKeyError(key);
  return value;
}

/** Decodes UTF-8 strictly: a byte that is not UTF-8 is an error, never U+FFFD. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The body's text, or why it is refused. JSON is UTF-8 (RFC 8259 section 8.1). The bytes used to be
 * read as UTF-8 whatever they were: an ERP that sent windows-1251 (with or without
 * `charset=windows-1251`) had every Cyrillic letter of the names and the purpose turned into U+FFFD,
 * and the order was taken in as valid, to be signed and paid with those. Now another charset is 415
 * and bytes that are not UTF-8 are 400 naming where, and nothing is stored. A leading BOM is dropped.
 */
function utf8Body(contentType: string | undefined, body: Buffer): string | ApiError {
  const charset = /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType ?? '')?.[1];
  if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
    return new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', `the body says charset=${charset}: JSON is sent as UTF-8 (RFC 8259); send it as UTF-8 (charset=utf-8 or none); nothing was stored`);
  }
  try {
    return STRICT_UTF8.decode(body);
  } catch {
    const at = firstNonUtf8Byte(body);
    return new ApiError(400, 'INVALID_REQUEST', `the body is not UTF-8: byte 0x${body[at].toString(16).padStart(2, '0')} at offset ${at} is not a UTF-8 character (a text in windows-1251?); JSON is sent as UTF-8 (RFC 8259); nothing was stored`, { offset: at });
  }
}

/** The offset of the first byte that begins no well-formed UTF-8 sequence (Unicode Table 3-7). */
function firstNonUtf8Byte(body: Buffer): number {
  for (let i = 0; i < body.length; ) {
    const c = body[i];
    if (c < 0x80) {
      i += 1;
      continue;
    }
    // The length of the sequence and the range of its second byte; the later ones are 80..BF.
    const [length, low, high] =
      c >= 0xc2 && c <= 0xdf ? [2, 0x80, 0xbf] : c === 0xe0 ? [3, 0xa0, 0xbf] : c === 0xed ? [3, 0x80, 0x9f] : c >= 0xe1 && c <= 0xef ? [3, 0x80, 0xbf]
      : c === 0xf0 ? [4, 0x90, 0xbf] : c >= 0xf1 && c <= 0xf3 ? [4, 0x80, 0xbf] : c === 0xf4 ? [4, 0x80, 0x8f] : [0, 0, 0];
    if (length === 0 || i + length > body.length || body[i + 1] < low || body[i + 1] > high) return i;
    for (let k = 2; k < length; k += 1) if (body[i + k] < 0x80 || body[i + k] > 0xbf) return i;
    i += length;
  }
  return 0;
}

function registerGuards(app: FastifyInstance, context: AppContext): void {
  // A state-changing request without a body (logout) still says application/json (the CSRF rule);
  // Fastify's default parser refuses an empty JSON body, so this one reads it as {}.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    const text = utf8Body(request.headers['content-type'], typeof body === 'string' ? Buffer.from(body, 'utf8') : body);
    if (text instanceof ApiError) return done(text, undefined);
    if (text.trim() === '') return done(null, {});
    try {
      // Prototype pollution: refuse keys that could reach Object.prototype in a later merge. Judged
      // on the parsed keys, not the text: JSON escapes ("\u005f_proto__") spell the same key, and
      // JSON.parse makes "__proto__" a real own key of the object it returns.
      done(null, JSON.parse(text, refuseForbiddenKeys));
    } catch (err) {
      // Not JSON.parse's own words: Node quotes the input around the fault, and these bodies carry
      // passwords (a password sent unquoted came back in the 400). Only where it broke.
      // The words as before this guard also took constructor; that one is named on its own.
      const forbidden = err instanceof ForbiddenKeyError ? (err.key === 'constructor' ? 'a key named constructor is not accepted' : 'a key named __proto__ or prototype is not accepted') : undefined;
      const why = forbidden ?? jsonFault(text);
      const error = new Error(`the body is not valid JSON: ${why}`) as Error & { statusCode: number };
      error.statusCode = 400;
      done(error, undefined);
    }
  });

  app.addHook('onRequest', async (request) => {
    // A monitor's probe, or a call with an ERP's API key: a page of another name has no key, and
    // with a wrong one gets 401. Not on the people's own endpoints (login above all), which take no
    // key: a page may add any header to its own requests, a Bearer one included.
    // The route the router matched, not the raw URL: the router decodes %XX first, so `/%61pi/v1/...`
    // reaches the `/api/v1/...` handlers and a test of the raw URL would wave it through.
    const path = guardedPath(request);
    const unguarded = UNGUARDED_PATHS.has(path) || (bearerCredentials(request.headers.authorization) !== undefined && !path.startsWith('/api/v1/auth/'));
    if (!unguarded && !hostAllowed(request.headers, context)) {
      context.logger.warn({ event: 'api.host.refused', host: request.headers.host, forwardedHost: request.headers['x-forwarded-host'], url: request.routeOptions.url ?? '(no route)' });
      const names = [request.headers.host, request.headers['x-forwarded-host']].flat().filter(Boolean).join(', ');
      throw new ApiError(403, 'HOST_NOT_ALLOWED', `this API is not known by the name ${names}; if it is yours (a reverse proxy passes it on), add it to api.allowedHosts`);
    }
    if (!STATE_CHANGING.has(request.method) || !path.startsWith('/api/')) return;
    // For every caller, an ERP's API key included (INTERFACES.md names no exception): an ERP's
    // server sends JSON and no Origin; a page that holds a key is held to the console's origins.
    if (!isJson(request.headers['content-type'])) {
      throw new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'state-changing requests must be sent with Content-Type: application/json');
    }
    const origin = request.headers.origin;
    if (origin !== undefined && !ownOrigins(request, context).has(origin)) {
      context.logger.warn({ event: 'api.csrf.refused', origin, url: request.routeOptions.url ?? '(no route)' });
      throw new ApiError(403, 'ORIGIN_NOT_ALLOWED', `requests from origin ${origin} are not allowed; add it to api.consoleOrigins if it is your console`);
    }
    if (origin === undefined && request.headers['sec-fetch-site'] === 'cross-site') {
      throw new ApiError(403, 'ORIGIN_NOT_ALLOWED', 'cross-site requests are not allowed');
    }
  });
}

/** The path the guards judge: the matched route's pattern, or for no route the decoded path (a 404 either way). */
function guardedPath(request: FastifyRequest): string {
  if (request.routeOptions.url !== undefined) return request.routeOptions.url;
  const raw = request.url.split('?')[0];
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** Per-IP fixed one-minute window in Redis: `<prefix>:ratelimit:login:<ip>`. */
async function chargeLoginAttempt(context: AppContext, ip: string): Promise<void> {
  const key = `${context.config.redis.prefix}:ratelimit:login:${ip}`;
  const [[, count], [, ttl]] = (await context.redis.multi().incr(key).pttl(key).exec()) as [[Error | null, number], [Error | null, number]];
  if (ttl < 0) await context.redis.pexpire(key, 60_000);
  if (count > context.config.users.loginRateLimitPerMinute) {
    const retryAfter = Math.max(1, Math.ceil((ttl > 0 ? ttl : 60_000) / 1000));
    context.logger.warn({ event: 'auth.rate_limited', ip, count });
    throw userError('RATE_LIMITED', 429, { retryAfterSeconds: retryAfter }, { 'retry-after': String(retryAfter) });
  }
}

/** Service refusals in the API's error shape; English reason to the log, Russian message to the person. */
export function toApiError(err: unknown, context: AppContext): unknown {
  if (err instanceof UserError) {
    context.logger.info({ event: 'auth.refused', code: err.code, reason: err.logMessage });
    return new ApiError(err.httpStatus, err.code, err.message, err.details, err.headers);
  }
  if (err instanceof ConnectorError) {
    const status = err.code === 'USER_NOT_FOUND' || err.code === 'NO_SUCH_RIGHT' ? 404 : err.code === 'LOGIN_TAKEN' ? 409 : err.exitCode === 2 ? 400 : 422;
    return new ApiError(status, err.code, err.message, err.details);
  }
  return err;
}

async function mapped<T>(context: AppContext, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApiError(err, context);
  }
}

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const result = schema.safeParse(body);
  if (!result.success) {
    throw new ApiError(400, 'INVALID_REQUEST', 'bad request body', result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  }
  return result.data;
}

function requireSession(request: FastifyRequest): SessionContext {
  principalOf(request);
  const session = sessionOf(request);
  if (!session) throw new ApiError(403, 'SESSION_REQUIRED', 'this endpoint is for people with a session, not API keys');
  return session;
}

function requireAdmin(request: FastifyRequest): SessionContext {
  const session = requireSession(request);
  if (session.user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only an admin may manage users');
  return session;
}

/**
 * What an admin must act on, shown at every `GET /api/v1/me`: the Client ID / Secret clocks (R-1,
 * from day 75, urgent at day 85), bank notices still owed for users who lost authority
 * within 1 business day), and every other open incident that has a deadline.
 */
async function adminNotices(context: AppContext): Promise<Array<{ level: string; code: string; message: string; deadline?: string }>> {
  const em = context.orm.em.fork();
  const status = await credentialStatus({ em, clock: context.clock });
  const notices: Array<{ level: string; code: string; message: string; deadline?: string }> = status.warnings.map((w) => ({ level: w.level, code: w.code, message: w.message }));
  // Issue 16: a lockdown in force comes first: the bank must be told within 1 business day.
  const lockdown = await em.find(Incident, { kind: 'lockdown', status: 'open' });
  for (const incident of lockdown) {
    notices.push({ level: 'urgent', code: 'LOCKDOWN', message: `${incident.title}. Call the bank (+7 7172 770 622, +7 800 080 0711, 7711), then resolve incident ${incident.id}`, ...(incident.deadlineAt ? { deadline: incident.deadlineAt.toISOString() } : {}) });
  }
  const open = await em.find(Incident, { kind: 'authority_revoked', status: 'open' }, { orderBy: { deadlineAt: 'asc' } });
  for (const incident of open) {
    notices.push({ level: 'urgent', code: 'BANK_NOTICE_DUE', message: incident.title, ...(incident.deadlineAt ? { deadline: incident.deadlineAt.toISOString() } : {}) });
  }
  // Every other open incident with a deadline (R-27 erroneous execution: 3 operational days; R-29
  // unexplained debit: 1 business day; statements missing an executed order, ...), soonest first.
  const due = await em.find(
    Incident,
    { status: 'open', deadlineAt: { $ne: null }, kind: { $nin: [...NOTICED_ELSEWHERE] } },
    { orderBy: { deadlineAt: 'asc' }, limit: MAX_INCIDENT_NOTICES },
  );
  for (const incident of due) {
    notices.push({
      level: incident.severity === 'critical' || incident.severity === 'high' ? 'urgent' : 'warning',
      code: 'INCIDENT_DEADLINE',
      message: `${incident.title} (connector incidents show ${incident.id})`,
      deadline: (incident.deadlineAt as Date).toISOString(),
    });
  }
  return notices;
}

/** Incidents shown above in their own words (the lockdown, authority) or as the credential clocks' warnings. */
const NOTICED_ELSEWHERE = ['lockdown', 'authority_revoked', 'credentials_aging', 'credentials_idle'];
const MAX_INCIDENT_NOTICES = 20;

const loginBody = z.object({ login: z.string().min(1).max(200), password: z.string().min(1).max(1024), totp: z.string().max(16).optional() }).strict();
const changeBody = z.object({ currentPassword: z.string().min(1).max(1024), newPassword: z.string().min(1).max(1024) }).strict();
// The IIN's rules (12 digits, check digit, birth date) are the service's, the same as the CLI's: 422 naming the rule.
const createBody = z
  .object({ login: z.string().min(1).max(64), role: z.enum(['admin', 'signer', 'operator', 'viewer']), iin: z.string().max(32).nullish(), password: z.string().min(1).max(1024) })
  .strict();
const resetBody = z.object({ password: z.string().min(1).max(1024) }).strict();
const blockBody = z.object({ reason: z.string().max(500).optional() }).strict();
const grantBody = z
  .object({
    account: z.string().min(1).max(34),
    rights: z.enum(['info', 'manage']),
    /** Tenge as a decimal string ("1000000.00"); money is never a float. */
    limit: z.string().max(32).nullish(),
    level: z.enum(['first', 'second']).nullish(),
  })
  .strict();
const revokeBody = z.object({ account: z.string().min(1).max(34) }).strict();

export function userRoutes(overrides: Partial<UsersWiring> = {}) {
  return (app: FastifyInstance, context: AppContext): void => {
    registerGuards(app, context);
    const wiring = usersWiring(context, overrides);

    app.post('/api/v1/auth/login', async (request, reply) => {
      const body = parse(loginBody, request.body);
      const deps = userDeps(context, wiring);
      const result = await mapped(context, () => checkLogin(deps, { login: body.login, password: body.password, totp: body.totp, ip: request.ip }, () => chargeLoginAttempt(context, request.ip)));
      const now = context.clock.now();
      // Fixation: a login always starts a new session id.
      const { sessionId, record } = await wiring.sessions.create(result.user, now);
      setSessionCookie(reply, request, context, sessionId, Math.floor((record.expiresAt - now.getTime()) / 1000));
      reply.header('cache-control', 'no-store');
      if (result.expired) {
        const error = userError('PASSWORD_EXPIRED', 403);
        return reply.status(403).send({ code: error.code, message: error.message, details: null, mustChangePassword: true, passwordExpiresInDays: 0 });
      }
      return { mustChangePassword: result.mustChangePassword, passwordExpiresInDays: result.passwordExpiresInDays, ...(result.warning ? { warning: result.warning } : {}) };
    });

    app.post('/api/v1/auth/change-password', async (request, reply) => {
      const session = requireSession(request);
      const body = parse(changeBody, request.body);
      await mapped(context, () => changePassword(userDeps(context, wiring), { userId: session.user.id, currentPassword: body.currentPassword, newPassword: body.newPassword, keepSessionId: session.sessionId }));
      return reply.status(204).send();
    });

    app.post('/api/v1/auth/logout', async (request, reply) => {
      const session = requireSession(request);
      await wiring.sessions.destroy(session.sessionId);
      clearSessionCookie(reply, request, context);
      return reply.status(204).send();
    });

    app.post('/api/v1/auth/logout-all', async (request, reply) => {
      const session = requireSession(request);
      // Every session, and the unlock of the user's key in the signer agent.
      await logoutEverywhere(userDeps(context, wiring), session.user);
      clearSessionCookie(reply, request, context);
      return reply.status(204).send();
    });

    app.get('/api/v1/me', async (request) => {
      const principal = principalOf(request);
      const session = sessionOf(request);
      if (!session) return { kind: principal.kind, actor: principal.actor, accounts: principal.accounts };
      const now = context.clock.now();
      const { user } = session;
      return {
        kind: 'session',
        login: user.login,
        role: user.role,
        iin: user.iin ?? null,
        mustChangePassword: session.changeDue,
        passwordExpiresInDays: Math.max(0, passwordExpiresInDays(user.passwordChangedAt, now)),
        totpEnabled: Boolean(user.totpSecretEnc),
        accounts: accountsVisibleTo(user, session.rights),
        rights: session.rights.map(rightView),
        sessionExpiresAt: new Date(session.expiresAt).toISOString(),
        idleTimeoutMinutes: context.config.users.sessionIdleMinutes,
        ...(user.role === 'admin' ? { notices: await adminNotices(context) } : {}),
      };
    });

    // ---- the user's own EDS key in the signer agent ----
    app.post('/api/v1/me/key/unlock', async (request) => {
      const session = requireSession(request);
      const body = parse(z.object({ password: z.string().min(1).max(1024) }).strict(), request.body);
      if (session.user.role !== 'signer' && session.user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only signers unlock a signing key');
      // Issue 16: the lockdown wiped every key; none is unlocked again until an admin resolves it.
      const lockedDown = () => isLockedDown({ em: context.orm.em.fork(), redis: context.redis, prefix: context.config.redis.prefix });
      const refused = () => new ApiError(423, 'LOCKED_DOWN', 'the connector is locked down after a suspected compromise (R-29); keys stay locked until an admin resolves it (connector lockdown status)');
      if (await lockedDown()) throw refused();
      const result = await wiring.signerAgent.unlockKey(session.user.id, body.password);
      const deps = userDeps(context, wiring);
      // Looked at again once the key is unlocked: a lockdown engaged by another process (the worker,
      // `connector lockdown on`), a block of this user (`connector users block`, R-17), or the end of
      // this session (logout everywhere, a password reset) after the looks above locked the agent's
      // key before this unlock reached it, and the key would stay unlocked under them. Each records
      // itself (the flag, the blocked row, the sessions gone) before it locks the agent, so an unlock
      // that ends before is locked by it, and one that ends after sees it here.
      if (result.ok) {
        const now = context.clock.now();
        const look = async () =>
          (await lockedDown())
            ? 'unlocked_during_lockdown'
            : (await noLongerActive(deps.em, session.user.id, now))
              ? 'unlocked_while_blocked'
              : (await wiring.sessions.touch(session.sessionId, now)).state !== 'active'
                ? 'unlocked_after_session_ended'
                : null;
        // Fail closed: a look that cannot be made (PostgreSQL or Redis away) leaves no key unlocked.
        const why = await look().catch(async (err: unknown) => {
          await wiring.signerAgent.lockUser(session.user.id);
          throw err;
        });
        if (why) {
          const relock = await wiring.signerAgent.lockUser(session.user.id);
          await appendAudit(deps.em, { actor: why === 'unlocked_during_lockdown' ? 'system:lockdown' : 'system:auth', action: 'signer.key_locked', subject: session.user.login, details: { confirmed: relock.locked, reason: why }, at: now });
          if (!relock.locked) context.logger.error({ event: 'signer.unlock.relock_failed', alert: true, userId: session.user.id, reason: why, warning: relock.warning });
          throw why === 'unlocked_during_lockdown' ? refused() : new ApiError(401, 'UNAUTHENTICATED', 'the session has ended (logged out everywhere, or the account was blocked or locked); log in again');
        }
      }
      if (result.ok) {
        await appendAudit(deps.em, { actor: `user:${session.user.login}`, action: 'signer.key_unlocked', subject: session.user.login, at: context.clock.now() });
        return { unlocked: true, key: result.status };
      }
      if (result.wrongPassword) {
        // the agent counts, the users module decides: wrong keystore passwords lock the user too.
        const { locked } = await mapped(context, () => recordKeystoreFailure(deps, session.user.login, result.wrongInARow));
        if (locked) throw new ApiError(423, 'LOCKED_TEMPORARILY', MESSAGES.LOCKED_TEMPORARILY[0]);
        throw new ApiError(403, 'WRONG_PASSWORD', 'Неверный пароль ключа ЭЦП.');
      }
      throw new ApiError(result.httpStatus, result.code, result.message);
    });

    // ---- admin ----
    app.get('/api/v1/users', async (request) => {
      requireAdmin(request);
      return { users: await listUsers(userDeps(context, wiring)) };
    });

    app.get('/api/v1/users/:login', async (request) => {
      requireAdmin(request);
      return mapped(context, () => showUser(userDeps(context, wiring), (request.params as { login: string }).login));
    });

    app.post('/api/v1/users', async (request, reply) => {
      const admin = requireAdmin(request);
      const body = parse(createBody, request.body);
      const deps = userDeps(context, wiring);
      const view = await mapped(context, async () => {
        const user = await createUser(deps, { ...body, actor: `user:${admin.user.login}` });
        return showUser(deps, user.login);
      });
      return reply.status(201).send(view);
    });

    app.post('/api/v1/users/:login/reset-password', async (request, reply) => {
      const admin = requireAdmin(request);
      const body = parse(resetBody, request.body);
      await mapped(context, () => resetPassword(userDeps(context, wiring), { login: (request.params as { login: string }).login, password: body.password, actor: `user:${admin.user.login}` }));
      return reply.status(204).send();
    });

    app.post('/api/v1/users/:login/block', async (request) => {
      const admin = requireAdmin(request);
      const body = parse(blockBody, request.body ?? {});
      return mapped(context, () => blockUser(userDeps(context, wiring), { login: (request.params as { login: string }).login, reason: body.reason, actor: `user:${admin.user.login}` }));
    });

    app.post('/api/v1/users/:login/grant', async (request) => {
      const admin = requireAdmin(request);
      const body = parse(grantBody, request.body);
      const login = (request.params as { login: string }).login;
      let limitTiyn: number | null = null;
      if (body.limit != null) {
        try {
          limitTiyn = parseAmount(body.limit);
        } catch (err) {
          throw new ApiError(400, 'INVALID_REQUEST', `limit: ${(err as Error).message}`);
        }
      }
      return mapped(context, async () => {
        const deps = userDeps(context, wiring);
        await grantRight(deps, { login, account: body.account, rights: body.rights, limitTiyn, level: body.level ?? null, actor: `user:${admin.user.login}` });
        return showUser(deps, login);
      });
    });

    app.post('/api/v1/users/:login/revoke', async (request) => {
      const admin = requireAdmin(request);
      const body = parse(revokeBody, request.body);
      const login = (request.params as { login: string }).login;
      return mapped(context, async () => {
        const deps = userDeps(context, wiring);
        if (!(await revokeRight(deps, { login, account: body.account, actor: `user:${admin.user.login}` }))) {
          throw new ConnectorError('NO_SUCH_RIGHT', `${login} has no right on ${body.account}`);
        }
        return showUser(deps, login);
      });
    });

    app.post('/api/v1/users/:login/unblock', async (request, reply) => {
      const admin = requireAdmin(request);
      await mapped(context, () => unblockUser(userDeps(context, wiring), { login: (request.params as { login: string }).login, actor: `user:${admin.user.login}` }));
      return reply.status(204).send();
    });
  };
}

/** The user is blocked or locked out now (the session authenticator's rule), read afresh. */
async function noLongerActive(em: EntityManager, userId: string, now: Date): Promise<boolean> {
  const [row] = await em.execute<Array<{ blocked_reason: string | null; locked_until: Date | null }>>('select blocked_reason, locked_until from app_user where id = ?', [userId]);
  return !row || row.blocked_reason !== null || (row.locked_until !== null && new Date(row.locked_until) > now);
}
