import { actorForLog } from '../logging/log-names';
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { appendAudit } from '../audit/audit.log';
import { kzCalendarFromConfig, noticeDeadlineFailingClosed } from '../calendar/kz-business-calendar';
import { openIncident } from '../incidents/incident.service';
import { rightFor } from './authority';
import { AppUser, type Incident, UserAccountRight, type UserRole } from '../persistence/entities';
import { BANK_PHONES } from '../lockdown/bank-checklist';
import { checkIban } from '../requisites/iban.validator';
import { checkIin } from '../requisites/iin-bin.validator';
import { requisiteRefusal } from '../requisites/requisite-rule';
import type { Clock } from '../shared/clock';
import { ConnectorError } from '../shared/errors';
import { holdMasterKeyForSealing } from '../vault/master-key.lock';
import type { SecretBox } from '../vault/secret-box';
import {
  checkPasswordStrength,
  dummyPasswordHash,
  earliestNextChange,
  hashPassword,
  HISTORY_SIZE,
  isInactive,
  isPasswordExpired,
  MAX_FAILED_ATTEMPTS,
  passwordExpiresAt,
  passwordExpiresInDays,
  verifyPassword,
  violation,
  WARN_DAYS,
  type PasswordViolation,
} from './password.policy';
import type { SessionStore } from './session.store';
import type { SignerAgentPort } from './signer-agent.port';
import { base32Decode, matchTotpStep, newTotpSecret, otpauthUri } from './totp';
import { UserError, userError } from './user.errors';
import { PhantomLogins, type PhantomLoginCounter } from './phantom-logins';
import { voidSignaturesOfLostAuthority } from '../signing/order-signatures';

/**
 * Users, passwords and the login flow (R-5..R-12, R-14, R-16, R-17). Every security event goes to
 * the tamper-evident audit log; no secret ever reaches it, the logger or an error.
 */
export const ROLES: readonly UserRole[] = ['admin', 'signer', 'operator', 'viewer'];
const LOGIN = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
export const TOTP_PURPOSE = (userId: string) => `user.totp:${userId}`;
/** Activity is written at most this often per user (each request would otherwise write). */
const ACTIVITY_WRITE_EVERY_MS = 60_000;

export interface UserDeps {
  em: EntityManager;
  clock: Clock;
  config: ConnectorConfig;
  logger?: Logger;
  /** Needed only for TOTP seeds. */
  box?: () => SecretBox;
  /** Needed to end sessions (block, reset, password change). */
  sessions?: SessionStore;
  signerAgent?: SignerAgentPort;
  /** Lock-outs and attempts on disabled accounts, for the lockdown's brute-force trigger (issue 16). Never throws. */
  onSecurityEvent?: (event: { kind: 'lockout' | 'disabled_login'; login: string; ip?: string; at: Date }) => Promise<void>;
  /**
   * Orders sent back to `awaiting_signatures` because a signer lost authority (R-17), once that is
   * committed: their sign stage looks again now (a standing mandate signs afresh) rather than at the
   * sweeper's next pass. Never throws.
   */
  onOrdersBackToSigning?: (orderIds: string[]) => Promise<void>;
  /** Wrong passwords for logins nobody has, shared by the API processes (phantom-logins.ts); else this process's own count. */
  phantoms?: PhantomLoginCounter;
}

export function normalizeLogin(login: string): string {
  return login.trim().toLowerCase();
}

/**
 * What a login that is refused or not found is called in a message. Never its text: people type
 * their password into the login field, and these messages reach stderr, API answers and logs (R-4).
 * Its length and the rule it breaks are enough for whoever typed it to see the slip.
 */
function loginGiven(login: string): string {
  const normalized = normalizeLogin(login);
  const length = [...normalized].length;
  const broken =
    length === 0
      ? 'it is empty'
      : length > 64
        ? 'it is longer than 64'
        : !/^[a-z0-9]/.test(normalized)
          ? 'it does not start with a latin letter or digit'
          : LOGIN.test(normalized)
            ? null
            : 'it has a character other than latin letters, digits, ".", "_", "@", "-"';
  return `the login given (${length} character${length === 1 ? '' : 's'}${broken ? `: ${broken}` : ''}; not repeated here, in case a password was typed into it)`;
}

export function assertLogin(login: string): string {
  const normalized = normalizeLogin(login);
  if (!LOGIN.test(normalized)) throw new ConnectorError('INVALID_LOGIN', `${loginGiven(login)} is not a login: a login is 1-64 characters, latin letters, digits, ".", "_", "@", "-", starting with a letter or digit`, 2);
  return normalized;
}

function policyError(v: PasswordViolation, details?: Record<string, unknown>): UserError {
  return new UserError(v.code, 422, v.message, v.logMessage, details);
}

function assertRole(role: string): UserRole {
  if (!(ROLES as readonly string[]).includes(role)) throw new ConnectorError('INVALID_ROLE', `role "${role}" is not one of ${ROLES.join(', ')}`, 2);
  return role as UserRole;
}

export async function findUser(em: EntityManager, login: string): Promise<AppUser | null> {
  const normalized = normalizeLogin(login);
  if (!LOGIN.test(normalized)) return null;
  return em.findOne(AppUser, { login: normalized });
}

async function requireUser(em: EntityManager, login: string): Promise<AppUser> {
  const user = await findUser(em, login);
  if (!user) throw new ConnectorError('USER_NOT_FOUND', `no user has ${loginGiven(login)}; \`connector users list\` shows the logins there are`);
  return user;
}

async function addHistory(em: EntityManager, userId: string, hash: string, at: Date): Promise<void> {
  await em.execute('insert into password_history (user_id, password_hash, created_at) values (?, ?, ?)', [userId, hash, at]);
  // R-8 needs the last 7; older hashes are deleted (less to steal).
  await em.execute(
    'delete from password_history where user_id = ? and id not in (select id from password_history where user_id = ? order by id desc limit ?)',
    [userId, userId, HISTORY_SIZE],
  );
}

/**
 * A line in the process log about a user. R-4: logins are confidential, never logged: the user is
 * named by id (`connector users show LOGIN --json` gives it; the audit log, in PostgreSQL, keeps the
 * login), and an actor `user:LOGIN` / `admin:LOGIN` keeps only its kind.
 */
function log(deps: UserDeps, level: 'info' | 'warn', event: string, userId: string, fields: Record<string, unknown> & { actor?: string }): void {
  const { actor, ...rest } = fields;
  deps.logger?.[level]({ event, userId, ...rest, ...(actor === undefined ? {} : { actor: actorForLog(actor) }) });
}

// ---- administration ---------------------------------------------------------------------------

export async function createUser(deps: UserDeps, input: { login: string; role: string; iin?: string | null; password: string; actor: string }): Promise<AppUser> {
  const login = assertLogin(input.login);
  const role = assertRole(input.role);
  // The IIN is matched against the signer's certificate: the same rules as `connector validate --iin`.
  if (input.iin != null) {
    const iin = checkIin(input.iin);
    if (!iin.ok) throw requisiteRefusal('INVALID_IIN', 'iin', input.iin, iin);
  }
  const weak = checkPasswordStrength(input.password);
  if (weak) throw policyError(weak);
  const now = deps.clock.now();
  const hash = await hashPassword(input.password, deps.config.users.scryptLogN);
  return deps.em.transactional(async (tx) => {
    if (await tx.findOne(AppUser, { login })) throw new ConnectorError('LOGIN_TAKEN', `login "${login}" is already taken (R-5: one personal account per login)`);
    const user = tx.create(AppUser, {
      id: randomUUID(),
      login,
      iin: input.iin ?? null,
      role,
      passwordHash: hash,
      passwordChangedAt: now,
      // R-10: the first login forces a change.
      mustChangePassword: true,
      failedAttempts: 0,
      lockedUntil: null,
      blockedReason: null,
      blockedAt: null,
      lastActivityAt: now,
      totpSecretEnc: null,
      createdAt: now,
      updatedAt: now,
    });
    await tx.flush();
    await addHistory(tx, user.id, hash, now);
    await appendAudit(tx, { actor: input.actor, action: 'user.created', subject: login, details: { role, iin: input.iin ?? null }, at: now });
    log(deps, 'info', 'user.created', user.id, { role, actor: input.actor });
    return user;
  });
}

/** R-8: the current password and the ones before it, 7 in all. */
async function isRecentPassword(em: EntityManager, user: AppUser, password: string): Promise<boolean> {
  const history = await em.execute<Array<{ password_hash: string }>>('select password_hash from password_history where user_id = ? order by id desc limit ?', [user.id, HISTORY_SIZE]);
  for (const hash of new Set([user.passwordHash, ...history.map((h) => h.password_hash)])) {
    if (await verifyPassword(password, hash)) return true;
  }
  return false;
}

interface ResetResult {
  sessionsEnded: number;
  warnings: string[];
}

/**
 * Admin sets/resets a password (R-10: the next login must change it; ends the user's sessions and
 * locks their key in the signer agent). R-8 holds here too: an old password may be the one that
 * leaked, and whoever knows it would log in first and make the forced change. The key is locked
 * because the agent holds an unlocked key by user id, not by session: whoever sets the new
 * password could otherwise log in as the user and sign with the key the user unlocked, without
 * its keystore password. The user unlocks it again after their own login.
 */
export async function resetPassword(deps: UserDeps, input: { login: string; password: string; actor: string }): Promise<ResetResult> {
  const weak = checkPasswordStrength(input.password);
  if (weak) throw policyError(weak);
  if (await isRecentPassword(deps.em, await requireUser(deps.em, input.login), input.password)) throw policyError(violation('REUSED'));
  const now = deps.clock.now();
  const hash = await hashPassword(input.password, deps.config.users.scryptLogN);
  const user = await deps.em.transactional(async (tx) => {
    const u = await requireUser(tx, input.login);
    Object.assign(u, { passwordHash: hash, passwordChangedAt: now, mustChangePassword: true, failedAttempts: 0, lockedUntil: null, updatedAt: now });
    await tx.flush();
    await addHistory(tx, u.id, hash, now);
    await appendAudit(tx, { actor: input.actor, action: 'user.password_reset', subject: u.login, at: now });
    return u;
  });
  const sessions = deps.sessions ? await endSessions(deps, user.id, 'they can only change the password, which they do not know') : { ended: 0 };
  const ended = sessions.ended;
  const warnings = [...(sessions.warning ? [sessions.warning] : []), ...(deps.signerAgent ? await lockKeyOf(deps, user, input.actor, 'password_reset', now) : [])];
  log(deps, warnings.length ? 'warn' : 'info', 'user.password_reset', user.id, { actor: input.actor, sessionsEnded: ended, warnings });
  return { sessionsEnded: ended, warnings };
}

/**
 * `POST /api/v1/auth/logout-all`, "after work all sessions can be closed" (R-13, terms 6.1.10a):
 * every session of the user ends, and so does their key's unlock in the signer agent, the session
 * of their EDS (a standing mandate would otherwise go on signing with it until its idle timeout).
 */
export async function logoutEverywhere(deps: UserDeps, user: AppUser): Promise<{ sessionsEnded: number; warnings: string[] }> {
  const now = deps.clock.now();
  const actor = `user:${user.login}`;
  const sessionsEnded = (await deps.sessions?.destroyAllForUser(user.id)) ?? 0;
  await appendAudit(deps.em, { actor, action: 'auth.logout_all', subject: user.login, details: { sessionsEnded }, at: now });
  const warnings = deps.signerAgent ? await lockKeyOf(deps, user, actor, 'logout_all', now) : [];
  log(deps, warnings.length ? 'warn' : 'info', 'user.logout_all', user.id, { sessionsEnded, warnings });
  return { sessionsEnded, warnings };
}

/**
 * Ends the user's sessions (all but `keep`); with Redis away, the number 0 and a warning instead of
 * a failure: the sessions live in Redis, so none is usable meanwhile, and what the caller does next
 * (the key's lock in the signer agent, the bank reminder of R-17) must not be skipped for it.
 */
async function endSessions(deps: UserDeps, userId: string, why: string): Promise<{ ended: number; warning?: string }> {
  if (!deps.sessions) return { ended: 0, warning: `sessions were not ended here (no Redis); ${why}` };
  try {
    return { ended: await deps.sessions.destroyAllForUser(userId) };
  } catch (err) {
    return { ended: 0, warning: `sessions were not ended: Redis could not be reached (${(err as Error).message}; check Redis and CONNECTOR_REDIS_URL, connector doctor says which); ${why}` };
  }
}

/** Locks the user's key in the signer agent and audits it; the agent's warning when it did not confirm. */
async function lockKeyOf(deps: UserDeps, user: AppUser, actor: string, reason: string, now: Date): Promise<string[]> {
  const locked = await (deps.signerAgent as NonNullable<UserDeps['signerAgent']>).lockUser(user.id);
  await appendAudit(deps.em, { actor, action: 'signer.key_locked', subject: user.login, details: { confirmed: locked.locked, reason }, at: now });
  return !locked.locked && locked.warning ? [locked.warning] : [];
}

export interface BlockResult {
  sessionsEnded: number;
  incidentId: string | null;
  bankDeadline: string | null;
  warnings: string[];
}

/**
 * Disables a user at once (R-17, R-30): blocked in the database (the pipeline stops counting
 * their signatures: `mayUserSign` refuses them), every session ended, their key locked in the
 * signer agent, and a reminder to tell the bank within 1 business day opened as an incident.
 */
export async function blockUser(deps: UserDeps, input: { login: string; actor: string; reason?: string }): Promise<BlockResult> {
  const now = deps.clock.now();
  let backToSigning: string[] = [];
  const user = await deps.em.transactional(async (tx) => {
    const u = await requireUser(tx, input.login);
    u.blockedReason = 'admin';
    u.blockedAt = now;
    u.updatedAt = now;
    await tx.flush();
    // R-17: their signatures on orders not yet sent stop counting now, with the block, not at the
    // pipeline's next look (an unblock before it would have made them count again). Before any
    // audit record: the orders' rows are locked before the audit chain, as on every other path.
    backToSigning = (await voidSignaturesOfLostAuthority(tx, { user: u, rights: await tx.find(UserAccountRight, { userId: u.id }) }, input.actor, now)).backToSigning;
    await appendAudit(tx, { actor: input.actor, action: 'user.blocked', subject: u.login, details: { reason: input.reason ?? null }, at: now });
    return u;
  });
  if (backToSigning.length > 0) await deps.onOrdersBackToSigning?.(backToSigning);
  const warnings: string[] = [];
  const sessions = await endSessions(deps, user.id, 'they end at their next request because the user is blocked');
  const sessionsEnded = sessions.ended;
  if (sessions.warning) warnings.push(sessions.warning);
  // A blocked user's signatures are refused by the connector whatever the agent holds (mayUserSign).
  if (deps.signerAgent) warnings.push(...(await lockKeyOf(deps, user, input.actor, 'blocked', now)).map((w) => `${w}; the connector refuses this user's signatures regardless`));
  let incidentId: string | null = null;
  let bankDeadline: string | null = null;
  const authority = (await deps.em.count(UserAccountRight, { userId: user.id, rights: 'manage' })) > 0 || user.role === 'signer';
  if (authority) {
    const incident = await remindBankOfLostAuthority(deps.em, deps, user, { blocked: true }, input.actor, now);
    incidentId = incident.id;
    bankDeadline = (incident.deadlineAt as Date).toISOString();
  }
  log(deps, 'warn', 'user.blocked', user.id, { actor: input.actor, sessionsEnded, incidentId });
  return { sessionsEnded, incidentId, bankDeadline, warnings };
}

/** Lifts an admin block, an inactivity block and a temporary lock-out (R-11, R-12 "an admin can unlock"). */
export async function unblockUser(deps: UserDeps, input: { login: string; actor: string }): Promise<void> {
  const now = deps.clock.now();
  await deps.em.transactional(async (tx) => {
    const u = await requireUser(tx, input.login);
    const was = { blockedReason: u.blockedReason ?? null, locked: Boolean(u.lockedUntil && u.lockedUntil > now) };
    // Activity restarts now, else an inactivity block would return at the next login.
    Object.assign(u, { blockedReason: null, blockedAt: null, lockedUntil: null, failedAttempts: 0, lastActivityAt: now, updatedAt: now });
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'user.unblocked', subject: u.login, details: was, at: now });
  });
}

export interface RightInput {
  login: string;
  account: string;
  rights: 'info' | 'manage';
  limitTiyn?: number | null;
  level?: 'first' | 'second' | null;
  actor: string;
}

export async function grantRight(deps: UserDeps, input: RightInput): Promise<UserAccountRight> {
  const account = input.account === 'all' || input.account === '*' ? '*' : input.account.toUpperCase();
  // The same rules as `connector validate --iban`: a mistyped account would grant a right on no account.
  if (account !== '*') {
    const iban = checkIban(account);
    if (!iban.ok) throw requisiteRefusal('INVALID_ACCOUNT', 'account', input.account, iban);
  }
  if (input.rights !== 'info' && input.rights !== 'manage') throw new ConnectorError('INVALID_RIGHTS', '--rights is info or manage', 2);
  if (input.rights === 'info' && (input.limitTiyn != null || input.level != null)) {
    throw new ConnectorError('INVALID_RIGHTS', 'information-only rights carry no signing limit or level; grant --rights manage to sign', 2);
  }
  if (input.limitTiyn != null && (!Number.isSafeInteger(input.limitTiyn) || input.limitTiyn < 0)) throw new ConnectorError('INVALID_LIMIT', 'the signing limit must be a non-negative amount', 2);
  const now = deps.clock.now();
  let backToSigning: string[] = [];
  const granted = await deps.em.transactional(async (tx) => {
    const user = await requireUser(tx, input.login);
    const before = await tx.find(UserAccountRight, { userId: user.id });
    let right = before.find((r) => r.account === account) ?? null;
    // What the user could sign for the account: the right that applied to it (an explicit one, else
    // "all accounts"), as authority.ts decides. An explicit info right under "manage all" takes the
    // account out of it: a loss of the authority to sign for it, though no signing row changed.
    const couldSign = signsWith(rightFor(before, account));
    const values = { rights: input.rights, signLimitTiyn: input.limitTiyn ?? null, signLevel: input.rights === 'manage' ? (input.level ?? null) : null, grantedAt: now, grantedBy: input.actor };
    if (right) Object.assign(right, values);
    else right = tx.create(UserAccountRight, { userId: user.id, account, ...values });
    await tx.flush();
    // R-17: a signature the changed right no longer gives (manage taken away, a lower limit, another
    // level) stops counting now, on every order not yet sent. Before any audit record (rows, then chain).
    backToSigning = (await voidSignaturesOfLostAuthority(tx, { user, rights: await tx.find(UserAccountRight, { userId: user.id }) }, input.actor, now)).backToSigning;
    await appendAudit(tx, { actor: input.actor, action: 'user.right_granted', subject: user.login, details: { account, rights: values.rights, limitTiyn: values.signLimitTiyn, level: values.signLevel }, at: now });
    // Manage -> info, or manage kept without its signature level: the user may no longer sign for
    // the account (R-17), as with a revoke.
    if (couldSign && !signsWith(right)) await remindBankOfLostAuthority(tx, deps, user, { account }, input.actor, now);
    return right;
  });
  if (backToSigning.length > 0) await deps.onOrdersBackToSigning?.(backToSigning);
  return granted;
}

/**
 * Whether a right lets its holder sign for the account: `manage` with a signature level (authority.ts
 * decideSign refuses a right without one, NO_SIGNATURE_LEVEL). What the bank must hear of when it goes (R-17).
 */
function signsWith(right: Pick<UserAccountRight, 'rights' | 'signLevel'> | null | undefined): boolean {
  return right?.rights === 'manage' && right.signLevel != null;
}

/**
 * Takes a user's rights on an account away. Taking away the right to manage (sign for) an account
 * is a loss of authority the bank must hear of within 1 business day (R-17; terms 6.1.13, 7.2.4):
 * it opens the same reminder as blocking the user (an incident with the deadline, mailed to the admins).
 */
export async function revokeRight(deps: UserDeps, input: { login: string; account: string; actor: string }): Promise<boolean> {
  const account = input.account === 'all' || input.account === '*' ? '*' : input.account.toUpperCase();
  const now = deps.clock.now();
  let backToSigning: string[] = [];
  const revoked = await deps.em.transactional(async (tx) => {
    const user = await requireUser(tx, input.login);
    const before = await tx.find(UserAccountRight, { userId: user.id });
    const right = before.find((r) => r.account === account);
    if (!right) return false;
    await tx.nativeDelete(UserAccountRight, { userId: user.id, account });
    // R-17: signatures the user may no longer give stop counting now, on every order not yet sent.
    // Before any audit record (rows, then chain).
    backToSigning = (await voidSignaturesOfLostAuthority(tx, { user, rights: before.filter((r) => r !== right) }, input.actor, now)).backToSigning;
    await appendAudit(tx, { actor: input.actor, action: 'user.right_revoked', subject: user.login, details: { account }, at: now });
    // The right that applies once this one is gone: "all accounts" takes an account's place again,
    // and when it still signs for the account no authority was lost (the bank is not told a false loss).
    const after = rightFor(before.filter((r) => r !== right), account);
    // In the same transaction: the right is never gone without its reminder.
    if (signsWith(right) && !signsWith(after)) await remindBankOfLostAuthority(tx, deps, user, { account }, input.actor, now);
    return true;
  });
  if (backToSigning.length > 0) await deps.onOrdersBackToSigning?.(backToSigning);
  return revoked;
}

/**
 * R-17 (terms 6.1.13, 7.2.4): a user who lost authority, blocked altogether or no longer allowed to
 * sign for an account: the bank must hear of it within 1 business day. One incident per user (or
 * user and account), with that deadline; shown in GET /api/v1/me and mailed by the incident digest.
 */
async function remindBankOfLostAuthority(
  em: EntityManager,
  deps: UserDeps,
  user: AppUser,
  lost: { blocked: true } | { account: string },
  actor: string,
  now: Date,
): Promise<Incident> {
  const { incident } = await openIncident(em, {
    kind: 'authority_revoked',
    severity: 'high',
    ...('blocked' in lost
      ? {
          title: `User ${user.login} lost authority: tell the bank within 1 business day (terms 6.1.13, 7.2.4) and have their EDS revoked`,
          evidence: { login: user.login, iin: user.iin ?? null, blockedAt: now.toISOString(), bankPhones: [...BANK_PHONES] },
          dedupeKey: `authority_revoked:${user.id}`,
        }
      : {
          title: `User ${user.login} lost the authority to sign for ${lost.account === '*' ? 'every account' : lost.account}: tell the bank within 1 business day (terms 6.1.13, 7.2.4)`,
          evidence: { login: user.login, iin: user.iin ?? null, account: lost.account, revokedAt: now.toISOString(), bankPhones: [...BANK_PHONES] },
          dedupeKey: `authority_revoked:${user.id}:${lost.account}`,
        }),
    // One business day to tell the bank (R-17): the end of the next business day after the day of the change.
    deadlineAt: noticeDeadlineFailingClosed(deps.config, now, 1),
    actor,
    now,
  });
  return incident;
}

/** R-14: a new TOTP seed for a user; returned once (for the authenticator app), stored sealed. */
export async function enrollTotp(deps: UserDeps, input: { login: string; actor: string }): Promise<{ secret: string; uri: string }> {
  if (!deps.box) throw new ConnectorError('VAULT_UNAVAILABLE', 'the master key is needed to store a TOTP seed');
  const now = deps.clock.now();
  const secret = newTotpSecret();
  const login = await deps.em.transactional(async (tx) => {
    await holdMasterKeyForSealing(tx);
    const user = await requireUser(tx, input.login);
    user.totpSecretEnc = deps.box!().encrypt(secret, TOTP_PURPOSE(user.id));
    user.updatedAt = now;
    await tx.flush();
    // The steps used belong to the old seed: the new one's first code must log in.
    await tx.execute('update app_user set totp_last_step = null where id = ?', [user.id]);
    await appendAudit(tx, { actor: input.actor, action: 'user.totp_enrolled', subject: user.login, at: now });
    return user.login;
  });
  return { secret, uri: otpauthUri(secret, login) };
}

/**
 * `users set-iin LOGIN IIN`: the IIN a signer's certificate must carry, for a user added without one
 * (enroll-key refuses IIN_MISSING) or with a mistyped one. Not once the user has signatures that
 * count: they were given as the person of the old IIN (R-16, R-18); such a signer is a new user.
 * The key unlocked in the signer agent is locked (it was enrolled for the old IIN): enroll it again.
 */
export async function setUserIin(deps: UserDeps, input: { login: string; iin: string; actor: string }): Promise<{ changed: boolean; warnings: string[] }> {
  const checked = checkIin(input.iin);
  if (!checked.ok) throw requisiteRefusal('INVALID_IIN', 'iin', input.iin, checked);
  const user = await requireUser(deps.em, input.login);
  if (user.iin === input.iin) return { changed: false, warnings: [] };
  const now = deps.clock.now();
  const previous = user.iin ?? null;
  // One transaction, the user's row locked: the check, the change and its audit record hold together.
  await deps.em.transactional(async (tx) => {
    await tx.execute('select id from app_user where id = ? for update', [user.id]);
    const [signed] = await tx.execute<Array<{ n: string }>>('select count(*) as n from order_signature where user_id = ? and valid', [user.id]);
    if (Number(signed?.n ?? 0) > 0) {
      throw new ConnectorError('IIN_IN_USE', `${user.login} has ${signed.n} signature(s) that count, given as the person of IIN ${user.iin ?? '(none)'}; a signer with another IIN is another user: add them with users add --iin`);
    }
    await tx.execute('update app_user set iin = ?, updated_at = ? where id = ?', [input.iin, now, user.id]);
    await appendAudit(tx, { actor: input.actor, action: 'user.iin_set', subject: user.login, details: { previous, iin: input.iin }, at: now });
  });
  const warnings = deps.signerAgent && previous ? await lockKeyOf(deps, user, input.actor, 'iin_changed', now) : [];
  return { changed: true, warnings };
}

/** Enrolls the user's EDS keystore in the signer agent, with the user's IIN as the certificate IIN it must carry. */
export async function enrollKey(deps: UserDeps, input: { login: string; keystorePath: string; actor: string }): Promise<unknown> {
  if (!deps.signerAgent) throw new ConnectorError('SIGNER_UNAVAILABLE', 'no signer agent configured');
  const user = await requireUser(deps.em, input.login);
  if (user.blockedReason) throw new ConnectorError('USER_BLOCKED', `${user.login} is blocked; unblock before enrolling a key`);
  if (!user.iin) throw new ConnectorError('IIN_MISSING', `${user.login} has no IIN; the key's certificate is matched against it: connector users set-iin ${user.login} IIN`);
  // The keystore's SHA-256, so that a lockdown's resolve can tell a new key from the same file enrolled
  // again (the agent cannot see the certificate before an unlock: the keystore is encrypted). A file
  // that cannot be read is the agent's to refuse, named there. Read at the path the agent took: a
  // relative path is under the agent's working directory, not this command's.
  const status = await deps.signerAgent.enrollKey(user.id, input.keystorePath, user.iin);
  const enrolledPath = (status as { keystorePath?: unknown } | null)?.keystorePath;
  const keystoreSha256 = keystoreDigest(typeof enrolledPath === 'string' ? enrolledPath : input.keystorePath);
  await appendAudit(deps.em, { actor: input.actor, action: 'signer.key_enrolled', subject: user.login, details: { expectedIin: user.iin, keystoreSha256 }, at: deps.clock.now() });
  return status;
}

export async function disableTotp(deps: UserDeps, input: { login: string; actor: string }): Promise<void> {
  const now = deps.clock.now();
  await deps.em.transactional(async (tx) => {
    const user = await requireUser(tx, input.login);
    user.totpSecretEnc = null;
    user.updatedAt = now;
    await tx.flush();
    await tx.execute('update app_user set totp_last_step = null where id = ?', [user.id]);
    await appendAudit(tx, { actor: input.actor, action: 'user.totp_disabled', subject: user.login, at: now });
  });
}

// ---- views ------------------------------------------------------------------------------------

export type UserStatus = 'active' | 'locked' | 'blocked_admin' | 'blocked_inactive';

export function userStatus(user: AppUser, now: Date): UserStatus {
  if (user.blockedReason === 'admin') return 'blocked_admin';
  if (user.blockedReason === 'inactive' || isInactive(user.lastActivityAt, now)) return 'blocked_inactive';
  if (user.lockedUntil && user.lockedUntil > now) return 'locked';
  return 'active';
}

export function rightView(r: UserAccountRight) {
  return { account: r.account === '*' ? 'all' : r.account, rights: r.rights, limitTiyn: r.signLimitTiyn ?? null, level: r.signLevel ?? null };
}

export function userView(user: AppUser, rights: UserAccountRight[], now: Date) {
  return {
    login: user.login,
    role: user.role,
    iin: user.iin ?? null,
    status: userStatus(user, now),
    mustChangePassword: user.mustChangePassword || isPasswordExpired(user.passwordChangedAt, now),
    passwordChangedAt: user.passwordChangedAt.toISOString(),
    passwordExpiresAt: passwordExpiresAt(user.passwordChangedAt).toISOString(),
    passwordExpiresInDays: passwordExpiresInDays(user.passwordChangedAt, now),
    lockedUntil: user.lockedUntil && user.lockedUntil > now ? user.lockedUntil.toISOString() : null,
    lastActivityAt: user.lastActivityAt.toISOString(),
    totpEnabled: Boolean(user.totpSecretEnc),
    rights: rights.map(rightView),
    // How the process logs name this user (they never hold a login, R-4).
    id: user.id,
  };
}

export async function listUsers(deps: UserDeps) {
  const users = await deps.em.find(AppUser, {}, { orderBy: { login: 'asc' } });
  const rights = await deps.em.find(UserAccountRight, { userId: { $in: users.map((u) => u.id) } }, { orderBy: { account: 'asc' } });
  const now = deps.clock.now();
  return users.map((u) => userView(u, rights.filter((r) => r.userId === u.id), now));
}

export async function showUser(deps: UserDeps, login: string) {
  const user = await requireUser(deps.em, login);
  const rights = await deps.em.find(UserAccountRight, { userId: user.id }, { orderBy: { account: 'asc' } });
  return userView(user, rights, deps.clock.now());
}

// ---- login and password change ----------------------------------------------------------------

/**
 * Counts one failed proof (wrong password, wrong TOTP, a wrong keystore password the signer agent
 * reported) atomically; the 5th consecutive one locks the login (R-12). An expired lock restarts
 * the count. Returns whether the login is now locked.
 */
export async function recordFailedAttempt(
  deps: UserDeps,
  userId: string,
  why: string,
  options: { lockNow?: boolean } = {},
): Promise<{ locked: boolean; failedAttempts: number; lockedUntil: Date | null }> {
  const now = deps.clock.now();
  const until = new Date(now.getTime() + deps.config.users.lockoutMinutes * 60_000);
  const lockNow = options.lockNow === true;
  // `lockNow`: the attempt locks whatever this counter says (another counter reached the limit).
  const rows = await deps.em.execute<Array<{ login: string; failed_attempts: number; locked_until: Date | null; locked_before: boolean }>>(
    `with old as (select id, locked_until is not null and locked_until > ? as locked_before from app_user where id = ? for update)
     update app_user u set
       failed_attempts = case when u.locked_until is not null and u.locked_until <= ? then 1 else u.failed_attempts + 1 end,
       locked_until = case
         when u.locked_until is not null and u.locked_until <= ? then case when ? then ?::timestamptz end
         when u.locked_until is null and (u.failed_attempts + 1 >= ? or ?) then ?
         else u.locked_until end,
       updated_at = ?
     from old where u.id = old.id
     returning u.login, u.failed_attempts, u.locked_until, old.locked_before`,
    [now, userId, now, now, lockNow, until, MAX_FAILED_ATTEMPTS, lockNow, until, now],
  );
  const row = rows[0];
  if (!row) return { locked: false, failedAttempts: 0, lockedUntil: null };
  const lockedUntil = row.locked_until ? new Date(row.locked_until) : null;
  const locked = Boolean(lockedUntil && lockedUntil > now);
  if (locked && !row.locked_before) {
    await appendAudit(deps.em, { actor: 'system:auth', action: 'user.locked', subject: row.login, details: { why, failedAttempts: row.failed_attempts, lockedUntil: lockedUntil!.toISOString() }, at: now });
    log(deps, 'warn', 'user.locked', userId, { why, lockedUntil: lockedUntil!.toISOString() });
    await deps.onSecurityEvent?.({ kind: 'lockout', login: row.login, at: now });
  }
  return { locked, failedAttempts: row.failed_attempts, lockedUntil };
}

/**
 * A wrong keystore password reported by the signer agent counts toward the user's lock-out (R-12).
 * The agent's own count of wrong passwords in a row (`inARow`, reset only by a right one) locks too,
 * from the 5th on (a lock-out over, the next wrong one locks again; a missed report cannot skip it): the user's counter alone starts again at each successful login, so logging in
 * between tries would let the EDS key's password be guessed without end.
 */
export async function recordKeystoreFailure(deps: UserDeps, login: string, inARow?: number): Promise<{ locked: boolean }> {
  const user = await requireUser(deps.em, login);
  await appendAudit(deps.em, { actor: 'system:signer-agent', action: 'signer.wrong_keystore_password', subject: user.login, details: inARow === undefined ? undefined : { inARow }, at: deps.clock.now() });
  const lockNow = inARow !== undefined && inARow >= MAX_FAILED_ATTEMPTS;
  const result = await recordFailedAttempt(deps, user.id, lockNow ? `keystore password (${inARow} wrong in a row at the signer agent)` : 'keystore password', { lockNow });
  if (result.locked) await deps.sessions?.destroyAllForUser(user.id);
  return { locked: result.locked };
}

export interface LoginInput {
  login: string;
  password: string;
  totp?: string;
  ip: string;
}

export interface LoginSuccess {
  user: AppUser;
  /** PASSWORD_EXPIRED: a session that can only change the password (R-9 "after expiry ... until the password is changed"). */
  expired: boolean;
  mustChangePassword: boolean;
  passwordExpiresInDays: number;
  warning?: string;
}

/** The answer given while a login is locked (R-12), with Retry-After. */
function lockedError(lockedUntil: Date, now: Date): UserError {
  const seconds = Math.max(1, Math.ceil((lockedUntil.getTime() - now.getTime()) / 1000));
  return userError('LOCKED_TEMPORARILY', 423, { lockedUntil: lockedUntil.toISOString() }, { 'retry-after': String(seconds) });
}

async function auditLogin(deps: UserDeps, login: string, outcome: string, ip: string): Promise<void> {
  await appendAudit(deps.em, { actor: `login:${login}`, action: outcome === 'OK' ? 'auth.login.succeeded' : 'auth.login.failed', subject: login, details: { code: outcome, ip }, at: deps.clock.now() });
}

/** This process's count of wrong passwords for logins nobody has, for deps without a shared one (phantom-logins.ts). */
const PHANTOMS = new PhantomLogins();

/**
 * Checks a login attempt in the order the terms need: lock-out first (R-12, before any per-IP
 * limit, which the caller applies through `beforePasswordCheck`), then the password (constant
 * time, also for unknown logins), then blocks (R-11, admin), the second factor (R-14) and the
 * password's age (R-9, R-10). Throws a UserError for every refusal.
 */
export async function checkLogin(deps: UserDeps, input: LoginInput, beforePasswordCheck: () => Promise<void> = async () => undefined): Promise<LoginSuccess> {
  const now = deps.clock.now();
  const login = normalizeLogin(input.login);
  const user = await findUser(deps.em, login);
  if (user?.lockedUntil && user.lockedUntil > now) {
    await auditLogin(deps, user.login, 'LOCKED_TEMPORARILY', input.ip);
    throw lockedError(user.lockedUntil, now);
  }
  const phantoms = deps.phantoms ?? PHANTOMS;
  const phantomUntil = user ? null : await phantoms.lockedUntil(login, now);
  if (phantomUntil) {
    await auditLogin(deps, '(unknown)', 'LOCKED_TEMPORARILY', input.ip);
    throw lockedError(phantomUntil, now);
  }
  await beforePasswordCheck();
  // A login attempt on an account an admin disabled (lost authority, R-17) is counted for brute force.
  if (user?.blockedReason === 'admin') await deps.onSecurityEvent?.({ kind: 'disabled_login', login: user.login, ip: input.ip, at: now });
  const ok = await verifyPassword(input.password, user?.passwordHash ?? (await dummyPasswordHash(deps.config.users.scryptLogN)));
  if (!user || !ok) {
    if (!user) {
      // A login nobody has is often a password typed into the login field (R-4): the text is not
      // kept, in an audit log that can never drop it least of all; the attempt and its address are.
      // Counted as a real login's would be: a login that never locks would be known not to exist.
      const phantom = await phantoms.fail(login, now, deps.config.users.lockoutMinutes);
      await auditLogin(deps, '(unknown)', phantom.locked ? 'LOCKED_TEMPORARILY' : 'INVALID_CREDENTIALS', input.ip);
      if (phantom.locked) throw lockedError(phantom.lockedUntil!, now);
      throw userError('INVALID_CREDENTIALS', 401);
    }
    const result = await recordFailedAttempt(deps, user.id, 'password');
    await auditLogin(deps, user.login, result.locked ? 'LOCKED_TEMPORARILY' : 'INVALID_CREDENTIALS', input.ip);
    log(deps, 'info', 'auth.login.failed', user.id, { ip: input.ip, failedAttempts: result.failedAttempts });
    if (result.locked) throw lockedError(result.lockedUntil!, now);
    throw userError('INVALID_CREDENTIALS', 401);
  }
  if (user.blockedReason === 'admin') {
    await auditLogin(deps, user.login, 'BLOCKED_BY_ADMIN', input.ip);
    throw userError('BLOCKED_BY_ADMIN', 403);
  }
  if (user.blockedReason === 'inactive' || isInactive(user.lastActivityAt, now)) {
    if (user.blockedReason !== 'inactive') {
      // R-11: blocked automatically; recorded once, when first noticed.
      await deps.em.execute("update app_user set blocked_reason = 'inactive', blocked_at = ?, updated_at = ? where id = ? and blocked_reason is null", [now, now, user.id]);
      await appendAudit(deps.em, { actor: 'system:auth', action: 'user.blocked_inactive', subject: user.login, details: { lastActivityAt: user.lastActivityAt.toISOString() }, at: now });
    }
    await auditLogin(deps, user.login, 'BLOCKED_INACTIVE', input.ip);
    throw userError('BLOCKED_INACTIVE', 403);
  }
  const totpRequired = Boolean(user.totpSecretEnc) || deps.config.users.totpRequiredRoles.includes(user.role);
  if (totpRequired) {
    if (!user.totpSecretEnc) {
      await auditLogin(deps, user.login, 'TOTP_REQUIRED', input.ip);
      throw userError('TOTP_NOT_ENROLLED', 403, undefined, undefined, 'TOTP_REQUIRED');
    }
    if (!input.totp) {
      await auditLogin(deps, user.login, 'TOTP_REQUIRED', input.ip);
      throw userError('TOTP_REQUIRED', 401);
    }
    if (!deps.box) throw new ConnectorError('VAULT_UNAVAILABLE', 'the master key is needed to check a TOTP code');
    const seed = base32Decode(deps.box().decrypt(user.totpSecretEnc, TOTP_PURPOSE(user.id)));
    const step = matchTotpStep(seed, input.totp, now);
    // R-14, RFC 6238 section 5.2: a code logs in once. The step used is kept, and a code of that
    // step or an earlier one is a replay (someone who saw the password and the code), refused
    // and counted like a wrong code; the conditional update decides between two at once.
    const fresh =
      step !== null &&
      (await deps.em.execute<Array<{ id: string }>>('update app_user set totp_last_step = ? where id = ? and (totp_last_step is null or totp_last_step < ?) returning id', [step, user.id, step])).length > 0;
    if (!fresh) {
      const result = await recordFailedAttempt(deps, user.id, step === null ? 'totp' : 'totp replayed');
      await auditLogin(deps, user.login, result.locked ? 'LOCKED_TEMPORARILY' : step === null ? 'TOTP_REQUIRED' : 'TOTP_REPLAYED', input.ip);
      if (result.locked) throw lockedError(result.lockedUntil!, now);
      throw userError('TOTP_REQUIRED', 401, { wrongCode: true });
    }
  }
  // R-12: the lock-out read at the start may be stale: guesses sent in parallel all read the login
  // unlocked, and one right among them logged in and lifted the lock the others had set. The
  // success counts only while the login is still not locked.
  const cleared = await deps.em.execute<Array<{ id: string }>>(
    'update app_user set failed_attempts = 0, locked_until = null, last_activity_at = ?, updated_at = ? where id = ? and (locked_until is null or locked_until <= ?) returning id',
    [now, now, user.id, now],
  );
  if (cleared.length === 0) {
    const [row] = await deps.em.execute<Array<{ locked_until: Date }>>('select locked_until from app_user where id = ?', [user.id]);
    await auditLogin(deps, user.login, 'LOCKED_TEMPORARILY', input.ip);
    throw lockedError(new Date(row.locked_until), now);
  }
  user.lastActivityAt = now;
  const expired = !user.mustChangePassword && isPasswordExpired(user.passwordChangedAt, now);
  const days = passwordExpiresInDays(user.passwordChangedAt, now);
  await auditLogin(deps, user.login, expired ? 'PASSWORD_EXPIRED' : 'OK', input.ip);
  log(deps, 'info', 'auth.login.succeeded', user.id, { ip: input.ip, mustChangePassword: user.mustChangePassword, expired });
  const warning =
    !user.mustChangePassword && !expired && days <= WARN_DAYS
      ? `Срок действия пароля истекает через ${days} дн. Смените пароль заранее.`
      : undefined;
  return { user, expired, mustChangePassword: user.mustChangePassword || expired, passwordExpiresInDays: Math.max(0, days), ...(warning ? { warning } : {}) };
}

/**
 * A password change by its owner (R-6..R-10): strength, history of 7, minimum age of 1 business
 * day unless the change is forced (R-10 overrides it). The session that changed it stays; the
 * user's other sessions end.
 */
export async function changePassword(
  deps: UserDeps,
  input: { userId: string; currentPassword: string; newPassword: string; keepSessionId?: string },
): Promise<{ sessionsEnded: number }> {
  const now = deps.clock.now();
  const user = await deps.em.findOne(AppUser, { id: input.userId });
  if (!user) throw userError('INVALID_CREDENTIALS', 401);
  if (!(await verifyPassword(input.currentPassword, user.passwordHash))) {
    const result = await recordFailedAttempt(deps, user.id, 'current password at change');
    await appendAudit(deps.em, { actor: `user:${user.login}`, action: 'user.password_change_refused', subject: user.login, details: { code: 'WRONG_CURRENT_PASSWORD' }, at: now });
    if (result.locked) {
      await deps.sessions?.destroyAllForUser(user.id);
      throw lockedError(result.lockedUntil!, now);
    }
    throw userError('WRONG_CURRENT_PASSWORD', 403, undefined, undefined, 'INVALID_CREDENTIALS');
  }
  const refuse = async (v: PasswordViolation, details?: Record<string, unknown>): Promise<never> => {
    await appendAudit(deps.em, { actor: `user:${user.login}`, action: 'user.password_change_refused', subject: user.login, details: { code: v.code }, at: now });
    log(deps, 'info', 'user.password_change_refused', user.id, { code: v.code, reason: v.logMessage });
    throw policyError(v, details);
  };
  const weak = checkPasswordStrength(input.newPassword);
  if (weak) await refuse(weak);
  if (await isRecentPassword(deps.em, user, input.newPassword)) await refuse(violation('REUSED'));
  const forced = user.mustChangePassword || isPasswordExpired(user.passwordChangedAt, now);
  if (!forced) {
    const earliest = earliestNextChange(user.passwordChangedAt, kzCalendarFromConfig(deps.config));
    if (now < earliest) await refuse(violation('TOO_SOON', { earliest }), { earliestChangeAt: earliest.toISOString() });
  }
  const hash = await hashPassword(input.newPassword, deps.config.users.scryptLogN);
  // Over the password checked above only: an admin's reset (or another change) that landed during
  // the checks (up to 8 scrypt hashes) used to be written over, its forced change cleared.
  const changed = await deps.em.transactional(async (tx) => {
    const rows = await tx.execute<Array<{ id: string }>>(
      'update app_user set password_hash = ?, password_changed_at = ?, must_change_password = false, last_activity_at = ?, updated_at = ? where id = ? and password_hash = ? returning id',
      [hash, now, now, now, user.id, user.passwordHash],
    );
    if (rows.length === 0) return false;
    await addHistory(tx, user.id, hash, now);
    await appendAudit(tx, { actor: `user:${user.login}`, action: 'user.password_changed', subject: user.login, details: { forced }, at: now });
    return true;
  });
  if (!changed) {
    await appendAudit(deps.em, { actor: `user:${user.login}`, action: 'user.password_change_refused', subject: user.login, details: { code: 'CHANGED_MEANWHILE' }, at: now });
    log(deps, 'info', 'user.password_change_refused', user.id, { code: 'CHANGED_MEANWHILE', reason: 'the password was set anew (an admin reset?) while this change was checked' });
    throw userError('WRONG_CURRENT_PASSWORD', 403, { changedMeanwhile: true }, undefined, 'INVALID_CREDENTIALS');
  }
  const sessionsEnded = (await deps.sessions?.destroyAllForUser(user.id, input.keepSessionId)) ?? 0;
  log(deps, 'info', 'user.password_changed', user.id, { forced, sessionsEnded });
  return { sessionsEnded };
}

/** Session activity counts as activity for R-11; written at most once a minute per user. */
export async function touchActivity(deps: UserDeps, user: AppUser): Promise<void> {
  const now = deps.clock.now();
  if (now.getTime() - user.lastActivityAt.getTime() < ACTIVITY_WRITE_EVERY_MS) return;
  await deps.em.execute('update app_user set last_activity_at = ? where id = ? and last_activity_at < ?', [now, user.id, now]);
}

function keystoreDigest(path: string): string | null {
  try {
    return createHash('sha256').update(readFileSync(path)).digest('hex');
  } catch {
    return null;
  }
}
