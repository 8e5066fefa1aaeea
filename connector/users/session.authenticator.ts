import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AppContext } from '../app/app-context';
import { ApiError } from '../api/api-errors';
import type { Authenticator, Principal } from '../api/auth.hooks';
import { AppUser, type UserAccountRight } from '../persistence/entities';
import { accountsManageableBy, accountsNarrowedFrom, accountsVisibleTo, loadRights } from './authority';
import { isPasswordExpired } from './password.policy';
import { usersWiring, userDeps, type UsersWiring } from '../app/user-context';
import { touchActivity } from './user.service';
import { MESSAGES } from './user.errors';
import { CONSOLE_SOURCE } from '../orders/payment-order';

/** The session cookie: HttpOnly, SameSite=Strict, Secure over TLS (R-13, INTERFACES.md CSRF). */
export const SESSION_COOKIE = 'connector_session';

/** While a password change is due, only these answer (INTERFACES.md). */
const ALLOWED_WHILE_CHANGE_DUE = new Set(['POST /api/v1/auth/change-password', 'POST /api/v1/auth/logout', 'GET /api/v1/me']);

export interface SessionContext {
  sessionId: string;
  user: AppUser;
  rights: UserAccountRight[];
  changeDue: boolean;
  expiresAt: number;
}

const sessions = new WeakMap<FastifyRequest, SessionContext>();

export function sessionOf(request: FastifyRequest): SessionContext | undefined {
  return sessions.get(request);
}

export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function secure(request: FastifyRequest, context: AppContext): boolean {
  return context.config.users.secureCookie || request.protocol === 'https';
}

export function setSessionCookie(reply: FastifyReply, request: FastifyRequest, context: AppContext, sessionId: string, maxAgeSeconds: number): void {
  const parts = [`${SESSION_COOKIE}=${sessionId}`, 'Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${maxAgeSeconds}`];
  if (secure(request, context)) parts.push('Secure');
  reply.header('set-cookie', parts.join('; '));
}

export function clearSessionCookie(reply: FastifyReply, request: FastifyRequest, context: AppContext): void {
  const parts = [`${SESSION_COOKIE}=`, 'Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=0'];
  if (secure(request, context)) parts.push('Secure');
  reply.header('set-cookie', parts.join('; '));
}

/**
 * People's way in: the session cookie. Ends idle (30 min) and over-age sessions, refuses
 * blocked users at once, and while a password change is due answers 403
 * MUST_CHANGE_PASSWORD everywhere but change-password, logout and GET /api/v1/me.
 */
export function sessionAuthenticator(overrides: Partial<UsersWiring> = {}): Authenticator {
  return async (request, context): Promise<Principal | null> => {
    const sessionId = readCookie(request, SESSION_COOKIE);
    if (!sessionId || !/^[A-Za-z0-9_-]{20,100}$/.test(sessionId)) return null;
    const wiring = usersWiring(context, overrides);
    const now = context.clock.now();
    const found = await wiring.sessions.touch(sessionId, now);
    if (found.state !== 'active') {
      const why = found.state === 'missing' ? 'the session has ended; log in again' : found.state === 'idle' ? 'the session ended after 30 minutes without activity (R-13); log in again' : 'the session reached its maximum lifetime; log in again';
      throw new ApiError(401, 'UNAUTHENTICATED', why);
    }
    const deps = userDeps(context, wiring);
    const user = await deps.em.findOne(AppUser, { id: found.record.userId });
    if (!user || user.blockedReason || (user.lockedUntil && user.lockedUntil > now)) {
      if (user) await wiring.sessions.destroyAllForUser(user.id);
      throw new ApiError(401, 'UNAUTHENTICATED', 'the session has ended: the account is blocked or locked');
    }
    await touchActivity(deps, user);
    const rights = await loadRights(deps.em, user.id);
    const changeDue = user.mustChangePassword || isPasswordExpired(user.passwordChangedAt, now);
    sessions.set(request, { sessionId, user, rights, changeDue, expiresAt: found.record.expiresAt });
    const route = `${request.method} ${request.routeOptions.url ?? ''}`;
    if (changeDue && !ALLOWED_WHILE_CHANGE_DUE.has(route)) {
      throw new ApiError(403, 'MUST_CHANGE_PASSWORD', MESSAGES.MUST_CHANGE_PASSWORD[0]);
    }
    // Reading needs any right on the account; changing anything (submitting orders) needs 'manage'.
    const reading = request.method === 'GET' || request.method === 'HEAD';
    const accounts = reading ? accountsVisibleTo(user, rights) : accountsManageableBy(user, rights);
    // Managing all accounts but one with information only: that one is taken out.
    const exceptAccounts = !reading && accounts === 'all' ? accountsNarrowedFrom(rights) : [];
    return { kind: 'session', scope: `user:${user.id}`, source: CONSOLE_SOURCE, actor: `user:${user.login}`, accounts, ...(exceptAccounts.length ? { exceptAccounts } : {}) };
  };
}
