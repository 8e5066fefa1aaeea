import { actorForLog } from '../logging/log-names';
import { performance } from 'node:perf_hooks';
import { withTimeout } from '../shared/timeout';
import type { EntityManager } from '@mikro-orm/postgresql';
import type IORedis from 'ioredis';
import { probeRedis } from '../shared/redis-probe';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { appendAudit } from '../audit/audit.log';
import { noticeDeadlineFailingClosed } from '../calendar/kz-business-calendar';
import { parseKzInstant } from '../calendar/kz-time';
import { appendToTimeline, BANK_NOTICE_AHEAD_MS, openIncident } from '../incidents/incident.service';
import { Incident, type TimelineEntry } from '../persistence/entities';
import { orderSnapshotSql } from '../orders/order-event.snapshot';
import type { Clock } from '../shared/clock';
import { ConnectorError, UsageError } from '../shared/errors';
import { formatAmount } from '../shared/money';
import { singleLine } from '../shared/text';
import { buildBankChecklist, formatBankChecklist, type BankChecklist, type ChecklistDocument } from './bank-checklist';
import { isLockdownRecorded, KEYS_NOT_WIPED, lockdownKey, readLockdownRow, type LockdownState } from './lockdown.flag';
import type { LockdownPorts } from './lockdown.ports';
import { bruteForceKey } from './brute-force.detector';
import { takeAdvisoryLockWaiting } from '../persistence/database';

/**
 * Compromise lockdown (R-29..R-31, issue 16). At the first sign of compromise the connector stops
 * itself faster than a person can: flag, queues paused, keys wiped, sessions ended, credentials
 * marked, orders held, an incident with the bank-notification checklist, admins alerted. Intake stays
 * open (new orders wait as `held`); nothing reaches the bank until an admin resolves it.
 */
export const LOCKDOWN_TRIGGERS = [
  'manual',
  'user_report',
  'bank_credentials_revoked',
  'bank_refused_compromise',
  'certificate_check_failed',
  'signed_bytes_mismatch',
  'unexplained_debit',
  'execution_mismatch',
  'brute_force',
] as const;
export type LockdownTrigger = (typeof LOCKDOWN_TRIGGERS)[number];
/**
 * What a lockdown suspects: `all` (every user's EDS and sessions, and the Client Secret),
 * `credentials` (the Client Secret), `user:LOGIN` (one user's EDS and sessions), `users` (every
 * user's sessions and unlocked keys, not the Client Secret: an attack on the console's logins
 * says nothing of a secret that never passes through it, and revoking it would stop every payment
 * until the bank issues a new pair; brute force engages this one).
 */
export type LockdownScope = 'all' | 'credentials' | 'users' | `user:${string}`;

/** Incident kinds reconciliation opens that are lockdown triggers of their own (escalated by the sweep). */
export const RECONCILIATION_KINDS = ['unexplained_debit', 'execution_mismatch'] as const;

/** States where nothing has gone to the bank yet (order-state.ts: only these may become `held`). */
export const HOLDABLE_STATES = ['received', 'validated', 'awaiting_signatures', 'signed'] as const;

/** Where a failed order failed before anything of it was sent to the bank (an SQL list). */
const UNSENT_FAILED_FROM = `(${HOLDABLE_STATES.map((s) => `'${s}'`).join(', ')})`;
const LOCKDOWN_LOCK_ID = 0x6c6b646e; // "lkdn": one engage/resolve at a time across processes
/**
 * How long an engage, a resolve or a hold waits for that lock. Its holder talks to Redis inside its
 * transaction (each step bounded) and may touch every pending order: longer than
 * database.lockTimeoutMs, and a lockdown must not fail because another one was being recorded.
 */
const LOCKDOWN_LOCK_WAIT_MS = 60_000;
const LOGIN = /^[a-z0-9][a-z0-9._@-]{0,63}$/;

export function parseScope(text: string | undefined): LockdownScope {
  const value = (text ?? 'all').trim();
  if (value === 'all' || value === 'credentials' || value === 'users') return value;
  if (value.startsWith('user:') && LOGIN.test(value.slice(5).toLowerCase())) return `user:${value.slice(5).toLowerCase()}`;
  throw new UsageError(`--scope is all, credentials, users or user:LOGIN (got "${value}")`, 'INVALID_SCOPE');
}

/**
 * A `user:LOGIN` scope names a user of this connector: a mistyped login would lock down nobody's
 * EDS, leave the real one active and send the bank a checklist naming someone else. Refused with the
 * users there are (USER_NOT_FOUND), before anything is engaged.
 */
export async function assertScopeUser(em: EntityManager, scope: LockdownScope): Promise<void> {
  if (!scope.startsWith('user:')) return;
  const login = scope.slice(5);
  const [found] = await em.execute<Array<{ n: string }>>('select count(*) as n from app_user where login = ?', [login]);
  if (Number(found?.n ?? 0) > 0) return;
  const logins = (await em.execute<Array<{ login: string }>>('select login from app_user order by login limit 20')).map((r) => r.login);
  throw new ConnectorError('USER_NOT_FOUND', `no user "${login}" in this connector, so scope ${scope} would lock nobody's EDS; users: ${logins.join(', ') || 'none'} (or --scope all)`);
}

export interface LockdownDeps {
  em: EntityManager;
  redis: IORedis;
  config: ConnectorConfig;
  clock: Clock;
  logger?: Logger;
  ports: LockdownPorts;
}

export interface TriggerLockdownInput {
  trigger: LockdownTrigger;
  reason: string;
  scope?: string;
  /** Ids, codes, counts: never a secret. */
  evidence?: Record<string, unknown>;
  actor: string;
}

export interface EngageResult {
  /** false: the trigger is configured `alert`, only an incident and an alert were raised. */
  engaged: boolean;
  alreadyLocked: boolean;
  incidentId: string;
  since: string | null;
  scope: LockdownScope;
  heldOrders: number;
  warnings: string[];
  checklist: BankChecklist | null;
  /** ms from the call to "flag set, every queue paused and the agent's keys wiped". */
  pausedAndWipedMs: number;
  totalMs: number;
  /**
   * Redis took the flag and paused every queue (INTERFACES.md: `lockdown on` exits 0 only then).
   * false: only the PostgreSQL record holds (every stage still refuses its side effects on it);
   * the maintenance sweep sets the flag and pauses the queues once Redis answers.
   */
  redisHeld: boolean;
  /** The signer agent wiped every unlocked key (false: not reached, a warning says so). */
  keysWiped: boolean;
}

export interface LockdownStatusView {
  state: LockdownState;
  since: string | null;
  reason: string | null;
  scope: string | null;
  incidentId: string | null;
  heldOrders: number;
  warnings: string[];
}

function errorText(err: unknown): string {
  // ioredis' words for a command given up while Redis is out of reach name neither Redis nor the cause.
  if (err instanceof Error && err.name === 'MaxRetriesPerRequestError') return 'Redis did not answer: not running or not reachable';
  return err instanceof Error ? err.message : String(err);
}


/** R-29: the bank must be told "at once, and no later than 1 business day": the end of the next business day after the day of detection; fail closed to 24 h. */
export function bankDeadline(config: ConnectorConfig, now: Date): Date {
  return noticeDeadlineFailingClosed(config, now, 1);
}

function mergeScope(a: string | null, b: LockdownScope): LockdownScope {
  if (!a || a === b) return b;
  // Every user's already, and one user's more: still every user's, the Client Secret not named.
  if ((a === 'users' && b.startsWith('user:')) || (b === 'users' && a.startsWith('user:'))) return 'users';
  return 'all';
}

async function countHeld(em: EntityManager): Promise<number> {
  const rows = await em.execute<Array<{ n: string }>>("select count(*) as n from payment_order where state = 'held'");
  return Number(rows[0]?.n ?? 0);
}

/**
 * Moves every order not yet at the bank to `held` in one statement, with its OrderEvent (heldFrom
 * remembers the stage); the ids held, or null when no lockdown holds (any more): the caller goes on.
 */
export async function holdPendingOrders(
  em: EntityManager,
  actor: string,
  reason: string,
  now: Date,
  onlyIds?: string[],
  options: { lockedInRedis?: () => Promise<boolean> } = {},
): Promise<string[] | null> {
  const idFilter = onlyIds ? ` and id in (${onlyIds.map(() => '?').join(', ')})` : '';
  if (onlyIds && onlyIds.length === 0) return [];
  // One at a time with an engage or a resolve, and only while the lockdown holds (recorded, or,
  // for a stage, flagged in Redis: a lockdown engaged with PostgreSQL out of reach): a stage or the
  // intake that saw the lock a moment before a resolve committed used to hold its orders after it,
  // `held` for good with no lockdown left to release them. The resolve clears Redis before it commits.
  return em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, LOCKDOWN_LOCK_WAIT_MS, '?', [LOCKDOWN_LOCK_ID]);
    if (!(await isLockdownRecorded(tx)) && !(await options.lockedInRedis?.())) return null;
    return holdPendingIn(tx, actor, reason, now, idFilter, onlyIds);
  });
}

async function holdPendingIn(em: EntityManager, actor: string, reason: string, now: Date, idFilter: string, onlyIds: string[] | undefined): Promise<string[]> {
  const rows = await em.execute<Array<{ order_id: string }>>(
    // Rows locked in id order, as every batch transition locks them (transitionOrders): never a deadlock.
    `with locked as (
       select id from payment_order where state in (${HOLDABLE_STATES.map(() => '?').join(', ')})${idFilter} order by id for update),
     moved as (
       update payment_order p set held_from = p.state, state = 'held', version = p.version + 1, updated_at = ?, state_changed_at = ?
       from locked where p.id = locked.id and p.state in (${HOLDABLE_STATES.map(() => '?').join(', ')})
       returning p.id, p.held_from, ${orderSnapshotSql('p')} as order_snapshot)
     insert into order_event (order_id, from_state, to_state, actor, reason, order_snapshot, at)
     select id, held_from, 'held', ?, ?, order_snapshot, ? from moved
     returning order_id`,
    [...HOLDABLE_STATES, ...(onlyIds ?? []), now, now, ...HOLDABLE_STATES, actor, reason, now],
  );
  return rows.map((r) => r.order_id);
}

async function recentDocuments(em: EntityManager, now: Date): Promise<ChecklistDocument[]> {
  // What the bank may have received in the last 3 days: the data to give it (R-29).
  const rows = await em.execute<Array<{ number: string; doc_date: string | Date; amount_tiyn: string; currency: string; payer_iban: string; state: string; external_id: string; bank_reference: string | null; state_changed_at: Date }>>(
    `select number, doc_date, amount_tiyn, currency, payer_iban, state, external_id, bank_reference, state_changed_at from payment_order
     where state in ('submitting', 'submitted', 'executed', 'deemed_executed', 'rejected') and state_changed_at >= ?
     order by state_changed_at desc limit 500`,
    [new Date(now.getTime() - 3 * 86_400_000)],
  );
  return rows.map((r) => ({
    number: r.number,
    date: r.doc_date instanceof Date ? r.doc_date.toISOString().slice(0, 10) : String(r.doc_date).slice(0, 10),
    amount: formatAmount(Number(r.amount_tiyn)),
    currency: r.currency,
    payerAccount: r.payer_iban,
    state: r.state,
    externalId: r.external_id,
    bankReference: r.bank_reference,
    at: new Date(r.state_changed_at).toISOString(),
  }));
}

async function signerLogins(em: EntityManager): Promise<string[]> {
  const rows = await em.execute<Array<{ login: string }>>(
    "select distinct u.login from app_user u join user_account_right r on r.user_id = u.id where r.rights = 'manage' and r.sign_level is not null order by u.login",
  );
  return rows.map((r) => r.login);
}

async function markSecretCompromised(em: EntityManager, reason: string, actor: string, now: Date): Promise<string | null> {
  const rows = await em.execute<Array<{ client_id: string }>>(
    // `lockdown`, not `bank`: the bank said nothing; status and doctor say who marked the pair.
    "update credential_vault set revoked_at = ?, revoked_reason = ?, revoked_source = 'lockdown', updated_at = ?, updated_by = ? where id = 1 and revoked_at is null returning client_id",
    [now, reason.slice(0, 500), now, actor],
  );
  if (rows.length) await appendAudit(em, { actor, action: 'credentials.compromised', subject: rows[0].client_id, details: { reason: reason.slice(0, 200) }, at: now });
  return rows[0]?.client_id ?? null;
}

async function clientIdOf(em: EntityManager, config: ConnectorConfig): Promise<string | null> {
  const rows = await em.execute<Array<{ client_id: string }>>('select client_id from credential_vault where id = 1');
  return rows[0]?.client_id ?? config.bank.clientId ?? null;
}

async function appendTimeline(em: EntityManager, incidentId: string, entries: TimelineEntry[], evidencePatch: Record<string, unknown> = {}): Promise<void> {
  const fork = em.fork();
  const incident = await fork.findOne(Incident, { id: incidentId });
  if (!incident) return;
  incident.timeline = appendToTimeline(incident.timeline, entries, new Date());
  incident.evidence = { ...incident.evidence, ...evidencePatch };
  await fork.flush();
}

/** A trigger configured `alert`: an incident and the admins' alert, nothing stopped. */
async function raiseAlert(deps: LockdownDeps, input: TriggerLockdownInput, scope: LockdownScope, started: number): Promise<EngageResult> {
  const now = deps.clock.now();
  const { incident } = await openIncident(deps.em, {
    kind: 'security_alert',
    severity: 'high',
    title: `Security alert (${input.trigger}, configured alert-only): ${input.reason}`,
    evidence: { trigger: input.trigger, scope, reason: input.reason, ...(input.evidence ? { evidence: input.evidence } : {}) },
    dedupeKey: `security_alert:${input.trigger}`,
    deadlineAt: bankDeadline(deps.config, now),
    actor: input.actor,
    now,
  });
  await appendAudit(deps.em, { actor: input.actor, action: 'lockdown.alert', subject: incident.id, details: { trigger: input.trigger, scope }, at: now });
  const sent = await deps.ports.notifier.notify({ event: 'lockdown.alert', incidentId: incident.id, trigger: input.trigger, scope, reason: input.reason, at: now.toISOString() }).catch((err) => ({ delivered: [], warnings: [errorText(err)] }));
  deps.logger?.warn({ event: 'lockdown.alert', trigger: input.trigger, incidentId: incident.id });
  return { engaged: false, alreadyLocked: false, incidentId: incident.id, since: null, scope, heldOrders: await countHeld(deps.em), warnings: sent.warnings, checklist: null, pausedAndWipedMs: 0, totalMs: performance.now() - started, redisHeld: false, keysWiped: false };
}

/**
 * How long the Redis steps may take. Redis answers in milliseconds; a Redis that is down or out of
 * reach never answers BullMQ (its pause waits for a connection for good), and the lockdown must go
 * on to PostgreSQL, the record that counts, rather than wait for it.
 */
const REDIS_STEP_TIMEOUT_MS = 5_000;

/** The Redis lockdown flag every stage checks before a side effect: when and by what it was engaged. */
function setRedisFlag(deps: Pick<LockdownDeps, 'redis' | 'config'>, since: Date | null, trigger: string | null): Promise<unknown> {
  const value = JSON.stringify({ since: (since ?? new Date()).toISOString(), trigger: trigger ?? 'manual' });
  return withTimeout(deps.redis.set(lockdownKey(deps.config.redis.prefix), value), REDIS_STEP_TIMEOUT_MS, 'Redis');
}

/** What steps 1-3 achieved: each part, or why not. */
export interface ImmediateLock {
  /** The Redis flag every worker checks before a side effect. */
  flagSet: boolean;
  flagError?: string;
  pausedQueues: string[] | null;
  pauseError?: string;
  wipedUsers: string[] | null;
  wipeError?: string;
  /** ms from the call to "flag set, every queue paused and the agent's keys wiped". */
  pausedAndWipedMs: number;
}

/**
 * Steps 1-3, which need Redis and the signer agent only: the flag, then every queue paused and every
 * unlocked key wiped at once (neither waits for the other). Each bounded in time; never throws.
 */
async function lockAtOnce(deps: Pick<LockdownDeps, 'redis' | 'config'> & { ports: Pick<LockdownPorts, 'queues' | 'agent'> }, input: TriggerLockdownInput, now: Date, started: number): Promise<ImmediateLock> {
  const result: ImmediateLock = { flagSet: false, pausedQueues: null, wipedUsers: null, pausedAndWipedMs: 0 };
  try {
    await setRedisFlag(deps, now, input.trigger);
    result.flagSet = true;
  } catch (err) {
    result.flagError = errorText(err);
  }
  const [paused, wiped] = await Promise.allSettled([
    withTimeout(deps.ports.queues.pauseAll(), REDIS_STEP_TIMEOUT_MS, 'Redis'),
    // The trigger, not the reason: the agent logs and journals what it is told, and a reason names
    // people (a signer's login, an operator's words); R-4 keeps logins out of logs. The incident keeps it.
    withTimeout(deps.ports.agent.wipeAll(`lockdown: ${input.trigger}`), deps.config.lockdown.agentTimeoutMs, 'the signer agent'),
  ]);
  result.pausedAndWipedMs = performance.now() - started;
  if (paused.status === 'fulfilled') result.pausedQueues = paused.value;
  else result.pauseError = errorText(paused.reason);
  if (wiped.status === 'fulfilled') result.wipedUsers = wiped.value.wipedUsers;
  else result.wipeError = errorText(wiped.reason);
  return result;
}

/**
 * A lockdown PostgreSQL records whose Redis side did not hold (Redis was down at the engage: no flag,
 * queues not paused; every stage still refuses its side effects on the record): once Redis answers,
 * the maintenance sweep sets the flag and pauses the queues, as `lockdown on` would have. Under the
 * engage/resolve lock, reading the committed record: a resolve in progress is never undone. Returns
 * whether it re-applied anything (nothing when no lockdown is recorded).
 */
export async function reapplyRedisLock(deps: Pick<LockdownDeps, 'em' | 'redis' | 'config' | 'logger'> & { ports: Pick<LockdownPorts, 'queues' | 'sessions'> }): Promise<boolean> {
  if (!(await isLockdownRecorded(deps.em.fork()))) return false;
  // Only with Redis answering now: the worker's own connection queues a command while Redis is away
  // and would run it later, perhaps after a resolve had cleared the flag and resumed the queues.
  if (!(await redisAnswers(deps.config))) return false;
  return deps.em.fork().transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, LOCKDOWN_LOCK_WAIT_MS, '?', [LOCKDOWN_LOCK_ID]);
    const row = await readLockdownRow(tx);
    if (row.state !== 'locked') return false;
    const flagged = (await withTimeout(deps.redis.exists(lockdownKey(deps.config.redis.prefix)), REDIS_STEP_TIMEOUT_MS, 'Redis')) === 1;
    if (!flagged) await setRedisFlag(deps, row.since, row.trigger);
    // The sessions (in Redis) that a lockdown of every session could not end: ended now, once (the
    // warning goes with it), or a stolen session would outlive the lockdown and its resolve (R-13, R-29).
    // A user's scope is left to `users block` (its warning says so): that block is PostgreSQL's too.
    // Before the pause: the sweep runs at all only while its own queue is not paused, so a failure
    // here (Redis flapping) after the pause would never be tried again; before it, the next sweep does.
    const endSessions = !row.scope?.startsWith('user:') && row.warnings.some((w) => SESSIONS_NOT_ENDED.test(w));
    const sessionsEnded = endSessions ? await withTimeout(deps.ports.sessions.endAll(), REDIS_STEP_TIMEOUT_MS, 'Redis') : null;
    // Idempotent; the sweep runs at all only while its own queue is not paused, i.e. when the pause did not hold.
    const paused = await withTimeout(deps.ports.queues.pauseAll(), REDIS_STEP_TIMEOUT_MS, 'Redis');
    // What `status` and `doctor` say: the Redis parts hold now.
    const warnings = row.warnings.filter((w) => !/^the Redis lockdown flag could not be set|^queues could not be paused/.test(w) && !(endSessions && SESSIONS_NOT_ENDED.test(w)));
    await tx.execute('update lockdown_state set warnings = ? where id = 1', [JSON.stringify(warnings)]);
    if (row.incidentId) await appendAudit(tx, { actor: 'worker', action: 'lockdown.redis_reapplied', subject: row.incidentId, details: { flagSet: !flagged, paused: paused.length, sessionsEnded } });
    deps.logger?.warn({ event: 'lockdown.redis_reapplied', incidentId: row.incidentId, flagSet: !flagged, paused, sessionsEnded });
    return true;
  });
}

/** The warning of a lockdown whose sessions could not be ended (Redis did not answer). */
const SESSIONS_NOT_ENDED = /^sessions not ended /;

/** A PING on a connection of its own that never queues nor retries a command: does Redis answer now? */
async function redisAnswers(config: ConnectorConfig): Promise<boolean> {
  const probe = probeRedis(config.redis.url, 2_000);
  try {
    await withTimeout(probe.connect().then(() => probe.ping()), 3_000, 'Redis');
    return true;
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function agentNotReached(why: string | undefined): string {
  return `signer agent not reached (${why}): keys unlocked in it were NOT wiped; the scheduler tries again every few seconds until it answers (stop connector-signer-agent to end them now)`;
}

/** How often a failing retry of the key wipe is logged (it is tried every `onec.scanEveryMs`). */
const WIPE_WARN_EVERY_MS = 60_000;
const lastWipeWarning = new Map<string, number>();

/**
 * R-29/R-30: keys a lockdown could not wipe (the agent down, hung or restarting at that moment) stay
 * unlocked in the agent after a compromise, usable by whoever holds a session to it, until wiped.
 * While a recorded lockdown says so (its KEYS_NOT_WIPED warning), this asks the agent again; once it
 * answers (it then holds no unlocked key, whether it wiped some or had none) the warning goes, and the
 * incident's timeline and the audit log say so. The scheduler's leader calls it while locked down:
 * the queues are paused then, the maintenance sweep too. `pending`: nothing to do or not reached.
 */
export async function retryKeyWipe(deps: Pick<LockdownDeps, 'em' | 'config' | 'clock' | 'logger'> & { ports: Pick<LockdownPorts, 'agent'> }): Promise<'none' | 'wiped' | 'failed'> {
  const row = await readLockdownRow(deps.em.fork());
  if (row.state !== 'locked' || !row.incidentId || !row.warnings.some((w) => KEYS_NOT_WIPED.test(w))) return 'none';
  let wipedUsers: string[];
  try {
    ({ wipedUsers } = await withTimeout(deps.ports.agent.wipeAll(`lockdown: ${row.trigger ?? 'manual'}`), deps.config.lockdown.agentTimeoutMs, 'the signer agent'));
  } catch (err) {
    // Tried every few seconds while the agent stays down: one line a minute says so, not twelve.
    const at = performance.now();
    if (at - (lastWipeWarning.get(row.incidentId) ?? -Infinity) >= WIPE_WARN_EVERY_MS) {
      lastWipeWarning.set(row.incidentId, at);
      deps.logger?.warn({ event: 'lockdown.keys_wipe.retry_failed', incidentId: row.incidentId, err: errorText(err) });
    }
    return 'failed';
  }
  lastWipeWarning.delete(row.incidentId);
  const now = deps.clock.now();
  const incidentId = row.incidentId;
  const warnings = await deps.em.fork().transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, LOCKDOWN_LOCK_WAIT_MS, '?', [LOCKDOWN_LOCK_ID]);
    const current = await readLockdownRow(tx);
    // Wiped whatever happened meanwhile; the record changes only for the lockdown this was asked for.
    if (current.state !== 'locked' || current.incidentId !== incidentId) return null;
    const left = current.warnings.filter((w) => !KEYS_NOT_WIPED.test(w));
    await tx.execute('update lockdown_state set warnings = ? where id = 1', [JSON.stringify(left)]);
    await appendAudit(tx, { actor: 'system:lockdown', action: 'lockdown.keys_wiped', subject: incidentId, details: { users: wipedUsers.length, retried: true }, at: now });
    return left;
  });
  const entry = { at: now.toISOString(), actor: 'system:lockdown', text: `signer agent reached again: it wiped every unlocked key (${wipedUsers.length} users)` };
  await appendTimeline(deps.em, incidentId, [entry], warnings ? { warnings } : {});
  deps.logger?.warn({ event: 'lockdown.keys_wiped', incidentId, users: wipedUsers.length, retried: true });
  return 'wiped';
}

/**
 * A lockdown PostgreSQL did not record (it could not be reached, or refused the write): what holds
 * anyway and what is still to do. It holds for submission when the Redis flag is set: every stage
 * checks it before a side effect and the submit stage's last look before the bank call reads it
 * first (`isLockedDown`, `isLockedDownInRedis`), so nothing is validated, signed or sent. It is not
 * the lockdown INTERFACES.md promises: no incident (no id to print), no record that survives a Redis
 * restart, no held orders, no checklist, nobody alerted; `lockdown on` must run again.
 */
export interface UnrecordedLockdown {
  scope: LockdownScope;
  /** Why PostgreSQL did not record it (the database's error). */
  cause: unknown;
  /** The Redis flag is set: no worker validates, signs or submits. */
  holdsForSubmission: boolean;
  /** What holds, one line each. */
  held: string[];
  /** What needs PostgreSQL and was not done, one line each. */
  notDone: string[];
  warnings: string[];
  /** R-29: the bank is to be told by then, counted from now. */
  bankDeadline: string;
}

export class LockdownNotRecordedError extends Error {
  constructor(readonly lockdown: UnrecordedLockdown) {
    super(`the lockdown could not be recorded in PostgreSQL (${errorText(lockdown.cause)}); held: ${lockdown.held.join('; ') || 'nothing'}`);
    this.name = 'LockdownNotRecordedError';
  }
}

/** After steps 1-3 without PostgreSQL: the sessions (Redis only) when the scope ends them all, and the account of it. */
async function withoutRecord(
  deps: Pick<LockdownDeps, 'config' | 'clock' | 'logger'> & { ports: { sessions: Pick<LockdownPorts['sessions'], 'endAll'> } },
  input: TriggerLockdownInput,
  scope: LockdownScope,
  first: ImmediateLock,
  cause: unknown,
): Promise<UnrecordedLockdown> {
  const held: string[] = [];
  const warnings: string[] = [];
  if (first.flagSet) held.push('the Redis lockdown flag is set: no worker validates, signs or submits while it is (they check it before every side effect)');
  else warnings.push(`the Redis lockdown flag could not be set (${first.flagError}) and PostgreSQL has none: workers are NOT stopped; stop them now (pm2 stop connector-worker)`);
  if (first.pausedQueues) held.push(`queues paused: ${first.pausedQueues.join(', ')}`);
  else warnings.push(`queues could not be paused (${first.pauseError})`);
  if (first.wipedUsers) held.push(`signer agent wiped every unlocked key (${first.wipedUsers.length} users)`);
  else warnings.push(agentNotReached(first.wipeError));
  const notDone = ['the lockdown record in PostgreSQL (the flag that outlives a Redis restart, read by lockdown status and resolve) and its incident with the bank checklist: there is no incident id yet'];
  if (scope.startsWith('user:')) {
    notDone.push(`user ${scope.slice(5)} blocked and their sessions ended`);
  } else {
    try {
      held.push(`${await withTimeout(deps.ports.sessions.endAll(), REDIS_STEP_TIMEOUT_MS, 'Redis')} sessions ended`);
    } catch (err) {
      warnings.push(`sessions not ended (${errorText(err)})`);
    }
  }
  if (scope === 'all' || scope === 'credentials') notDone.push('the Client Secret marked compromised');
  notDone.push('orders not yet at the bank moved to held', 'the admins alerted (webhook, e-mail) and the audit record');
  const deadline = bankDeadline(deps.config, deps.clock.now()).toISOString();
  deps.logger?.error({ event: 'lockdown.not_recorded', trigger: input.trigger, scope: actorForLog(scope), flagSet: first.flagSet, err: errorText(cause), held, notDone, warnings });
  return { scope, cause, holdsForSubmission: first.flagSet, held, notDone, warnings, bankDeadline: deadline };
}

/** What a lockdown without PostgreSQL uses: Redis, the queues, the signer agent, the session store. */
export type UnrecordedLockdownDeps = Omit<LockdownDeps, 'em' | 'ports'> & { ports: Pick<LockdownPorts, 'queues' | 'agent'> & { sessions: Pick<LockdownPorts['sessions'], 'endAll'> } };

/**
 * `lockdown on` when PostgreSQL cannot even be opened: the steps that need only Redis and the signer
 * agent (flag, queues paused, keys wiped, every session ended for scopes `all`/`credentials`), then the
 * account of what held and what is left for `lockdown on` to do once PostgreSQL answers.
 */
export async function engageLockdownWithoutRecord(
  deps: UnrecordedLockdownDeps,
  given: TriggerLockdownInput,
  cause: unknown,
): Promise<UnrecordedLockdown> {
  const started = performance.now();
  const input = { ...given, reason: singleLine(given.reason) };
  const scope = parseScope(input.scope);
  const first = await lockAtOnce(deps, input, deps.clock.now(), started);
  return withoutRecord(deps, input, scope, first, cause);
}

/** Whether an alert for `trigger` reached a channel already, per the lockdown incident's timeline. */
async function alertedBefore(em: EntityManager, incidentId: string, trigger: string): Promise<boolean> {
  const incident = await em.fork().findOne(Incident, { id: incidentId });
  return (incident?.timeline ?? []).some((entry) => entry.text.startsWith(`admins alerted (${trigger}): `));
}

/** Step 4: `lockdown_state` and the one lockdown incident, serialised across processes (one lockdown, one incident). */
async function recordLockdown(
  deps: LockdownDeps,
  input: TriggerLockdownInput,
  scope: LockdownScope,
  now: Date,
  flagSet: boolean,
): Promise<{ alreadyLocked: boolean; widened: boolean; incidentId: string; since: Date; scope: LockdownScope; redisLost?: string }> {
  return deps.em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, LOCKDOWN_LOCK_WAIT_MS, '?', [LOCKDOWN_LOCK_ID]);
    const row = await readLockdownRow(tx);
    if (row.state === 'locked' && row.incidentId) {
      const merged = mergeScope(row.scope, scope);
      const widened = merged !== row.scope;
      // The stamp moves with every trigger that is news, even at the same clock reading: a resolve
      // under way sees by it that a trigger landed after it judged the lockdown (resolveLockdown).
      // The same trigger of the same scope seen again (every login attempt of a brute force, every
      // worker meeting the bank's refusal) is not news: moving the stamp for it let whoever keeps
      // triggering it refuse every resolve, and every held order stayed held.
      const seen =
        !widened &&
        (
          await tx.execute<Array<{ one: number }>>(
            "select 1 as one from audit_event where subject = ? and action in ('lockdown.engaged', 'lockdown.retriggered') and details->>'trigger' = ? and details->>'triggerScope' = ? limit 1",
            [row.incidentId, input.trigger, scope],
          )
        ).length > 0;
      if (!seen) await tx.execute("update lockdown_state set scope = ?, updated_at = greatest(?, updated_at + interval '1 microsecond'), updated_by = ? where id = 1", [merged, now, input.actor]);
      return { alreadyLocked: true, widened, incidentId: row.incidentId, since: row.since ?? now, scope: merged };
    }
    const { incident } = await openIncident(tx, {
      kind: 'lockdown',
      severity: 'critical',
      title: `Lockdown (${input.trigger}): ${input.reason}`,
      evidence: { trigger: input.trigger, scope, reason: input.reason, ...(input.evidence ? { evidence: input.evidence } : {}) },
      dedupeKey: 'lockdown',
      deadlineAt: bankDeadline(deps.config, now),
      actor: input.actor,
      now,
    });
    await tx.execute(
      "update lockdown_state set state = 'locked', since = ?, reason = ?, scope = ?, trigger = ?, incident_id = ?, warnings = '[]', updated_at = ?, updated_by = ? where id = 1",
      [now, input.reason.slice(0, 2000), scope, input.trigger, incident.id, now, input.actor],
    );
    // A resolve that committed while this waited for the lock cleared the flag this engage set and
    // resumed the queues: the new lockdown would stand in PostgreSQL alone, reported as held in Redis.
    // Put back under the lock, before the commit (the lock a resolve of this lockdown would need).
    let redisLost: string | undefined;
    if (flagSet) {
      try {
        if ((await withTimeout(deps.redis.exists(lockdownKey(deps.config.redis.prefix)), REDIS_STEP_TIMEOUT_MS, 'Redis')) !== 1) {
          await setRedisFlag(deps, now, input.trigger);
          await withTimeout(deps.ports.queues.pauseAll(), REDIS_STEP_TIMEOUT_MS, 'Redis');
        }
      } catch (err) {
        redisLost = errorText(err);
      }
    }
    return { alreadyLocked: false, widened: false, incidentId: incident.id, since: now, scope, redisLost };
  });
}

/**
 * Engages the lockdown; idempotent (a second trigger adds to the same incident and re-applies every
 * action). Order of urgency: the Redis flag, then queues paused and keys wiped (together), then the
 * PostgreSQL record, sessions, credentials, held orders, incident + checklist, audit, alert. A part that
 * cannot be reached is a warning: the lock holds once the flag is set and the queues are paused.
 * Should PostgreSQL not record it, `LockdownNotRecordedError` says what held and what is left to do.
 */
export async function engageLockdown(deps: LockdownDeps, given: TriggerLockdownInput): Promise<EngageResult> {
  const started = performance.now();
  // The reason may be a person's words (a report): one line wherever it is shown (checklist, e-mail, status).
  const input = { ...given, reason: singleLine(given.reason) };
  const scope = parseScope(input.scope);
  const mode = input.trigger === 'manual' ? 'lockdown' : deps.config.lockdown.triggers[input.trigger];
  if (mode === 'alert') return raiseAlert(deps, input, scope, started);

  const now = deps.clock.now();
  const warnings: string[] = [];
  const timeline: TimelineEntry[] = [];
  const done = (text: string) => timeline.push({ at: deps.clock.now().toISOString(), actor: input.actor, text });

  // 1-3. The Redis flag, then every queue paused and every key wiped.
  const first = await lockAtOnce(deps, input, now, started);
  const { pausedAndWipedMs } = first;
  if (first.flagError) warnings.push(`the Redis lockdown flag could not be set (${first.flagError}); workers still see the PostgreSQL flag`);
  if (first.pausedQueues) done(`queues paused: ${first.pausedQueues.join(', ')}`);
  else warnings.push(`queues could not be paused (${first.pauseError}); workers refuse every side effect while the flag is set`);
  if (first.wipedUsers) done(`signer agent wiped every unlocked key (${first.wipedUsers.length} users)`);
  else warnings.push(agentNotReached(first.wipeError));

  // 4. The record (serialised: one lockdown, one incident). Without it the steps above still hold
  // (a worker refuses on the Redis flag alone); the caller is told what held and what did not.
  const record = await recordLockdown(deps, input, scope, now, first.flagSet).catch(async (err: unknown) => {
    throw new LockdownNotRecordedError(await withoutRecord(deps, input, scope, first, err));
  });
  if (record.redisLost) {
    // A resolve in between cleared them; the maintenance sweep sets them again once Redis answers.
    first.flagSet = false;
    first.pausedQueues = null;
    warnings.push(`the Redis lockdown flag could not be set again after a resolve that ran meanwhile (${record.redisLost}); workers still see the PostgreSQL flag`);
  }
  done(record.alreadyLocked ? `again (${input.trigger}): ${input.reason}` : `lockdown recorded (scope ${record.scope})`);

  // 5. Sessions: everyone's, or the one user's (and that user blocked, R-30).
  try {
    if (scope.startsWith('user:')) {
      const login = scope.slice(5);
      const blocked = await deps.ports.sessions.blockUser(login, `lockdown: ${input.reason}`);
      warnings.push(...blocked.warnings);
      done(`user ${login} blocked, ${blocked.sessionsEnded} sessions ended`);
    } else {
      done(`${await deps.ports.sessions.endAll()} sessions ended`);
    }
  } catch (err) {
    warnings.push(`sessions not ended (${errorText(err)}); end them with connector users block LOGIN`);
  }

  // 6. The Client Secret, when in scope: unusable until rotated after this moment.
  if (scope === 'all' || scope === 'credentials') {
    const clientId = await markSecretCompromised(deps.em, input.reason, input.actor, now);
    done(clientId ? `Client Secret of ${clientId} marked compromised` : 'Client Secret already marked (or none stored)');
  }

  // 7. Orders not yet at the bank wait as `held` (intake stays open: new ones are held on arrival).
  // Recorded in step 4: not null.
  // The order's event says why it waits, and goes to the ERP (status webhooks): the trigger and the
  // incident, not the reason, which may name people (a user's report: the login, the words they typed).
  const held = (await holdPendingOrders(deps.em, input.actor, `lockdown (${input.trigger}): incident ${record.incidentId}`, deps.clock.now())) ?? [];
  done(`${held.length} orders held`);

  // 8. Checklist, incident, audit, alert.
  const heldOrders = await countHeld(deps.em);
  const users = record.scope.startsWith('user:') ? [record.scope.slice(5)] : record.scope === 'all' || record.scope === 'users' ? await signerLogins(deps.em) : [];
  const checklist = buildBankChecklist({
    // A `user:` trigger merged into `users` (brute force, then a reported key) still names that EDS.
    edsOf: await usersNamedByTriggers(deps.em, record.incidentId, [scope, record.scope]),
    reason: input.reason,
    trigger: input.trigger,
    scope: record.scope,
    detectedAt: record.since,
    deadline: bankDeadline(deps.config, record.since),
    recentDocuments: await recentDocuments(deps.em, now),
    heldOrders,
    clientId: await clientIdOf(deps.em, deps.config),
    users,
  });
  // The admins hear of each trigger of a lockdown once, and again when its scope widens: the same
  // trigger found again (every worker process that meets the bank's refusal) is in the timeline and
  // the audit log, not another alert. Once means delivered: an alert that reached no channel (a
  // webhook down, a crash before it) is sent again by the next engage.
  const alert = !record.alreadyLocked || record.widened || !(await alertedBefore(deps.em, record.incidentId, input.trigger));
  const notice = { event: 'lockdown.engaged' as const, incidentId: record.incidentId, trigger: input.trigger, scope: record.scope, reason: input.reason, at: now.toISOString(), bankDeadline: checklist.deadline, checklist: formatBankChecklist(checklist) };
  const sent = alert
    ? await deps.ports.notifier.notify(notice).catch((err) => ({ delivered: [] as string[], warnings: [errorText(err)] }))
    : { delivered: [] as string[], warnings: [] as string[] };
  warnings.push(...sent.warnings);
  if (sent.delivered.length) done(`admins alerted (${input.trigger}): ${sent.delivered.join(', ')}`);

  await appendTimeline(deps.em, record.incidentId, timeline, {
    checklist,
    scope: record.scope,
    ...(record.alreadyLocked ? {} : { pausedAndWipedMs: Math.round(pausedAndWipedMs) }),
    warnings,
    heldOrders,
  });
  // Only while this lockdown is in force: after a resolve that ran meanwhile, no warnings on a normal record.
  await deps.em.execute("update lockdown_state set warnings = ? where id = 1 and state = 'locked' and incident_id = ?", [JSON.stringify(warnings), record.incidentId]);
  await appendAudit(deps.em, {
    actor: input.actor,
    action: record.alreadyLocked ? 'lockdown.retriggered' : 'lockdown.engaged',
    subject: record.incidentId,
    // `triggerScope`: this trigger's own (a user's EDS), kept apart from the merged `scope`: two
    // scopes merge into `all`, and the resolve still asks for each user's EDS step.
    details: {
      trigger: input.trigger,
      scope: record.scope,
      triggerScope: scope,
      heldOrders: held.length,
      warnings: warnings.length,
      // What a person reported leaked (a report's `what`): a leaked password is a step of the resolve.
      ...(input.trigger === 'user_report' && typeof input.evidence?.what === 'string' ? { leaked: input.evidence.what, reportedBy: input.evidence.reportedBy ?? null } : {}),
    },
    at: now,
  });
  deps.logger?.error({ event: 'lockdown.engaged', trigger: input.trigger, scope: actorForLog(record.scope), incidentId: record.incidentId, pausedAndWipedMs: Math.round(pausedAndWipedMs), warnings: warnings.length });
  return {
    engaged: true,
    alreadyLocked: record.alreadyLocked,
    incidentId: record.incidentId,
    since: record.since.toISOString(),
    scope: record.scope,
    heldOrders,
    warnings,
    checklist,
    pausedAndWipedMs,
    totalMs: performance.now() - started,
    redisHeld: first.flagSet && first.pausedQueues !== null,
    keysWiped: first.wipedUsers !== null,
  };
}

/** Who added the last trigger to the lockdown in force (its record's `updated_by`). */
async function lastTriggerActor(em: EntityManager): Promise<string | null> {
  const [row] = await em.execute<Array<{ updated_by: string | null }>>('select updated_by from lockdown_state where id = 1');
  return row?.updated_by ?? null;
}

/** `lockdown status --json` and `GET /api/v1/lockdown` (INTERFACES.md: exactly these keys). */
export async function lockdownStatus(deps: { em: EntityManager; redis?: IORedis; prefix: string }): Promise<LockdownStatusView> {
  const row = await readLockdownRow(deps.em);
  const heldOrders = await countHeld(deps.em);
  const warnings = [...row.warnings];
  let state = row.state;
  if (deps.redis && state === 'normal') {
    const flagged = await withTimeout(deps.redis.exists(lockdownKey(deps.prefix)), REDIS_STEP_TIMEOUT_MS, 'Redis').catch((err: unknown) => {
      warnings.push(`Redis did not answer (${errorText(err)}): a lockdown held by its Redis flag alone (engaged while PostgreSQL was down) cannot be seen; check again once Redis answers (connector doctor)`);
      return 0;
    });
    if (flagged === 1) {
      state = 'locked';
      warnings.push('the Redis lockdown flag is set but PostgreSQL has no lockdown recorded (a lockdown was interrupted); run connector lockdown on --reason TEXT to record it');
    }
  }
  return {
    state,
    since: row.state === 'locked' && row.since ? row.since.toISOString() : null,
    reason: row.state === 'locked' ? row.reason : null,
    scope: row.state === 'locked' ? row.scope : null,
    incidentId: row.state === 'locked' ? row.incidentId : null,
    heldOrders,
    warnings,
  };
}

export interface ResolveInput {
  incidentId: string;
  bankNotifiedAt?: string;
  bankReference?: string;
  notifiedBy?: string;
  /** What was done, in a person's words: on the incident's timeline and in the audit log. */
  note?: string;
  actor: string;
  /** The CLI has local operator authority; the API passes the session user's role. */
  isAdmin: boolean;
  /** Who asks: missing steps name the CLI's flags or the API's JSON fields (default: the CLI). */
  caller?: 'cli' | 'api';
}

/** How a missing bank-notice value is named to the one who must give it. */
export const RESOLVE_FIELD_NAMES = {
  cli: { notifiedAt: '--bank-notified-at', reference: '--bank-reference' },
  api: { notifiedAt: 'bankNotifiedAt', reference: 'bankReference' },
} as const;

export interface ResolveResult {
  incidentId: string;
  released: number;
  signaturesInvalidated: number;
  requeuedSubmissions: number;
  warnings: string[];
}

/**
 * Every user whose EDS a trigger of the lockdown `incidentId` named (`user:LOGIN`, kept as each
 * trigger's own scope in the audit log), whatever the scopes merged into, and those of `scopes`;
 * logins, sorted.
 */
async function usersNamedByTriggers(em: EntityManager, incidentId: string | null, scopes: readonly string[]): Promise<string[]> {
  const named = incidentId
    ? await em.execute<Array<{ scope: string }>>(
        `select distinct coalesce(details->>'triggerScope', details->>'scope') as scope from audit_event
          where action in ('lockdown.engaged', 'lockdown.retriggered') and subject = ? and coalesce(details->>'triggerScope', details->>'scope') like 'user:%'`,
        [incidentId],
      )
    : [];
  return [...new Set([...scopes, ...named.map((n) => n.scope)].filter((s) => s.startsWith('user:')).map((s) => s.slice(5)))].sort();
}

/** Every step the terms require before the connector may run again; empty when all are done. */
export async function missingResolutionSteps(
  deps: Pick<LockdownDeps, 'em' | 'clock'>,
  row: { since: Date | null; scope: string | null; incidentId?: string | null },
  input: Pick<ResolveInput, 'bankNotifiedAt' | 'bankReference' | 'caller'>,
): Promise<string[]> {
  const missing: string[] = [];
  const now = deps.clock.now();
  const api = input.caller === 'api';
  const name = RESOLVE_FIELD_NAMES[api ? 'api' : 'cli'];
  if (!input.bankNotifiedAt) {
    missing.push(`bank notification: give ${name.notifiedAt}${api ? ' (an ISO time)' : ' ISO'}, when the bank was told (R-29: phones +7 7172 770 622, +7 800 080 0711, 7711)`);
  } else {
    // Without an offset, Kazakhstan time: never the zone of the machine the command runs on.
    // A time before the lockdown is taken: people often call the bank first and engage after.
    const at = parseKzInstant(input.bankNotifiedAt);
    if (!at) missing.push(`bank notification: ${name.notifiedAt} "${input.bankNotifiedAt}" is not an ISO time (e.g. 2026-11-25T10:30:00+05:00)`);
    else if (at.getTime() > now.getTime() + BANK_NOTICE_AHEAD_MS) missing.push(`bank notification: ${name.notifiedAt} ${input.bankNotifiedAt} is in the future (now ${now.toISOString()})`);
  }
  if (!input.bankReference || !input.bankReference.trim()) missing.push(`bank notification: give ${name.reference}${api ? '' : ' TEXT'}, the bank's reference (or the name of the person) for this notice`);
  const since = row.since ?? now;
  const scope = row.scope ?? 'all';
  if (scope === 'all' || scope === 'credentials') {
    const vault = await deps.em.execute<Array<{ generated_at: Date; revoked_at: Date | null }>>('select generated_at, revoked_at from credential_vault where id = 1');
    if (!vault.length) {
      missing.push(`Client Secret rotation: generate a new Client ID / Client Secret pair in Internet-banking (terms 2.1.1-2.1.2) and store it with connector credentials set --client-id ID --secret-stdin (none is stored in the connector yet)`);
    } else if (new Date(vault[0].generated_at).getTime() <= since.getTime() || vault[0].revoked_at) {
      missing.push(`Client Secret rotation: generate a new Client Secret in Internet-banking (terms 2.1.1-2.1.2) and run connector credentials rotate --secret-stdin (the stored one dates from before the lockdown of ${since.toISOString()})`);
    }
  }
  for (const login of await usersNamedByTriggers(deps.em, row.incidentId ?? null, [scope])) {
    // A keystore enrolled after the lockdown counts only when it is not a file this user had enrolled
    // before it: the same compromised key enrolled again satisfied the step (R-30). One whose file the
    // enrolling command could not read (no digest) cannot be told apart and does not count. A file
    // comparison only: the same key exported into a new file is not caught here (NCA's revocation of
    // its certificate, with signer.requireRevocation, is what stops that one).
    const enrolled = await deps.em.execute<Array<{ n: string; again: string; unread: string }>>(
      `select count(*) filter (where a.details->>'keystoreSha256' is not null
                                 and not coalesce(a.details->>'keystoreSha256' in (select b.details->>'keystoreSha256' from audit_event b
                                  where b.action = 'signer.key_enrolled' and b.subject = a.subject and b.at <= ? and b.details->>'keystoreSha256' is not null), false)) as n,
              count(*) as again,
              count(*) filter (where a.details->>'keystoreSha256' is null) as unread
         from audit_event a where a.action = 'signer.key_enrolled' and a.subject = ? and a.at > ?`,
      [since, login, since],
    );
    const authority = await deps.em.execute<Array<{ n: string }>>(
      "select count(*) as n from user_account_right r join app_user u on u.id = r.user_id where u.login = ? and r.rights = 'manage' and r.sign_level is not null",
      [login],
    );
    if (Number(enrolled[0].n) === 0 && Number(authority[0].n) > 0) {
      const [{ again, unread }] = enrolled;
      const same =
        Number(again) === 0
          ? ''
          : Number(unread) === Number(again)
            ? ` (the keystore enrolled since the lockdown could not be read by the command that enrolled it, so it cannot be told from the compromised one: run users enroll-key where its file is readable)`
            : ` (the keystore enrolled since the lockdown is the very file ${login} had enrolled before it: the compromised key)`;
      missing.push(`EDS of ${login}: have the NCA certificate revoked and re-enroll the new key${same} (connector users unblock ${login}, then connector users enroll-key ${login} ...), or revoke ${login}'s signing rights (connector users revoke ${login} --account IBAN)`);
    }
  }
  // R-29/R-30: a login's password reported leaked. The lockdown blocked that user; unblocked with the
  // same password, whoever read it would log in as them. An admin sets a new one first (the user
  // changes it again at the next login, R-10).
  for (const login of await loginsWithLeakedPassword(deps.em, row.incidentId ?? null)) {
    const [user] = await deps.em.execute<Array<{ changed: boolean }>>('select password_changed_at > ? as changed from app_user where login = ?', [since, login]);
    if (user && !user.changed) {
      missing.push(`password of ${login}: it was reported leaked; set a new one before ${login} is unblocked (connector users reset-password ${login} --password-stdin; ${login} changes it at the next login)`);
    }
  }
  return missing;
}

/** The logins whose password a report to the lockdown `incidentId` said leaked: a report's `what` is the reporter's own (lockdown.routes.ts). */
async function loginsWithLeakedPassword(em: EntityManager, incidentId: string | null): Promise<string[]> {
  if (!incidentId) return [];
  const rows = await em.execute<Array<{ login: string | null }>>(
    `select distinct details->>'reportedBy' as login
       from audit_event where action in ('lockdown.engaged', 'lockdown.retriggered') and subject = ? and details->>'leaked' = 'password'`,
    [incidentId],
  );
  return rows.flatMap((r) => (r.login ? [r.login] : [])).sort();
}

/**
 * Escalates open reconciliation incidents (an unexplained debit, an executed document that differs
 * from what was signed) to the lockdown trigger of the same name, once each: the incident is marked
 * with the lockdown incident's id. The maintenance sweep calls it, so a reconciliation that only
 * opens an incident still stops the connector (or alerts, per `lockdown.triggers`); so does a
 * resolve, before it judges its steps: the sweep runs on a queue the lockdown paused, and a finding
 * made a moment before the lock, or by a statement fetch already under way, was absorbed by the
 * resolve with the narrower scope's steps only, submission resuming with a Client Secret that may
 * have made that debit (R-29). Returns how many it escalated.
 */
export async function escalateReconciliationFindings(deps: LockdownDeps): Promise<number> {
  const rows = await deps.em.execute<Array<{ id: string; kind: (typeof RECONCILIATION_KINDS)[number]; title: string }>>(
    `select id, kind, title from incident where status = 'open' and kind in (${RECONCILIATION_KINDS.map(() => '?').join(', ')}) and evidence->>'lockdownIncidentId' is null order by opened_at`,
    [...RECONCILIATION_KINDS],
  );
  for (const row of rows) {
    const result = await engageLockdown(deps, { trigger: row.kind, reason: row.title, scope: 'all', evidence: { incidentId: row.id }, actor: 'system:reconciliation' });
    await deps.em.execute("update incident set evidence = evidence || jsonb_build_object('lockdownIncidentId', ?::text) where id = ?", [result.incidentId, row.id]);
  }
  return rows.length;
}

/**
 * Lifts the lockdown when, and only when, every step is done (exit 1 naming EVERY missing one):
 * the bank was told (who, when, reference), the Client Secret rotated after the lockdown when in
 * scope, the affected EDS re-enrolled or its rights revoked. Then: orders signed by a compromised key
 * lose those signatures, held orders go back to validation, queues resume. Submission resumes
 * through the same exactly-once path (claim, lookup before resend), so no order is sent twice.
 */
export async function resolveLockdown(deps: LockdownDeps, input: ResolveInput): Promise<ResolveResult> {
  if (!input.isAdmin) throw new ConnectorError('FORBIDDEN', 'only an admin may resolve a lockdown', 1);
  let row = await readLockdownRow(deps.em);
  if (row.state !== 'locked') throw new ConnectorError('NOT_LOCKED', 'no lockdown is in force (connector lockdown status)', 1);
  if (row.incidentId !== input.incidentId) throw new ConnectorError('WRONG_INCIDENT', `the lockdown in force is recorded under incident ${row.incidentId}, not ${input.incidentId}`, 1);
  // Its steps are those of every finding, the ones no sweep could escalate included.
  if ((await escalateReconciliationFindings(deps)) > 0) row = await readLockdownRow(deps.em);
  const stepsMissing = (missing: string[]) =>
    new ConnectorError('LOCKDOWN_STEPS_MISSING', `the lockdown cannot be resolved yet; ${missing.length} step(s) missing:\n${missing.map((m) => `  - ${m}`).join('\n')}`, 1, { missing });
  const missing = await missingResolutionSteps(deps, row, input);
  if (missing.length) throw stepsMissing(missing);
  const now = deps.clock.now();
  const outcome = await deps.em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, LOCKDOWN_LOCK_WAIT_MS, '?', [LOCKDOWN_LOCK_ID]);
    const current = await readLockdownRow(tx);
    if (current.state !== 'locked' || current.incidentId !== input.incidentId) throw new ConnectorError('NOT_LOCKED', 'the lockdown was resolved meanwhile', 1);
    // Judged again under the lock no engage passes: a trigger recorded since the look above (a scope
    // widened to the Client Secret, another user's EDS) was lifted with the steps of the lockdown
    // before it. Its steps are asked now; nothing changes.
    const stillMissing = await missingResolutionSteps({ em: tx, clock: deps.clock }, current, input);
    if (stillMissing.length) throw stepsMissing(stillMissing);
    // A trigger recorded since this resolve read the lockdown (a worker meeting the bank's refusal, a
    // signature check failing, a user's report) is a new sign of compromise the admin has not seen:
    // lifted now, it would be absorbed into a resolved incident and the connector would run again.
    // The lockdown holds (the trigger is on its incident); the admin looks at it and resolves again.
    if (current.stamp !== row.stamp) {
      throw new ConnectorError(
        'LOCKDOWN_RETRIGGERED',
        `the lockdown is not resolved: a trigger (recorded by ${(await lastTriggerActor(tx)) ?? 'unknown'}) was added to incident ${input.incidentId} while this resolve ran; read it (connector incidents show ${input.incidentId}) and run the resolve again`,
        1,
      );
    }
    const scope = current.scope ?? 'all';
    // Orders signed by a compromised key need fresh signatures; a later CMS holds the earlier
    // signers, so the whole round of such an order is invalidated (as for R-17). The held ones, and
    // the failed ones never sent (a failed order cannot be held): retried later, they would have
    // sent a signature made before the lockdown. Those go back to validation when retried. And the
    // claimed ones never sent (no attempt counted: a `submitting` order, or a failed one that failed
    // there): the submit stage finds them without a valid signature and sends them back to be signed.
    let invalidated: Array<{ id: string; order_id: string }> = [];
    if (scope === 'all' || scope === 'users' || scope.startsWith('user:')) {
      // The orders first, in id order, then their signatures: the order every other path takes them
      // in (a user's block voids their signatures under the orders' locks, voidSignaturesOfLostAuthority).
      // The other way round, a resolve and a block over the same order waited for each other.
      await tx.execute(
        `select id from payment_order where state = 'held' or (state = 'failed' and failed_from in ${UNSENT_FAILED_FROM})
            or (submit_attempts = 0 and (state = 'submitting' or (state = 'failed' and failed_from = 'submitting'))) order by id for update`,
      );
      const everyone = !scope.startsWith('user:');
      const userClause = everyone ? '' : ' and exists (select 1 from order_signature x join app_user u on u.id = x.user_id where x.order_id = s.order_id and x.valid and u.login = ?)';
      invalidated = await tx.execute<Array<{ id: string; order_id: string }>>(
        `update order_signature s set valid = false, invalidated_reason = ?
         where s.valid and s.order_id in (select id from payment_order where state = 'held' or (state = 'failed' and failed_from in ${UNSENT_FAILED_FROM})
                                              or (submit_attempts = 0 and (state = 'submitting' or (state = 'failed' and failed_from = 'submitting'))))${userClause}
         returning s.id, s.order_id`,
        [`signed before the lockdown of ${current.since?.toISOString()} (scope ${scope}): a fresh signature is needed`, ...(everyone ? [] : [scope.slice(5)])],
      );
      const failedIds = [...new Set(invalidated.map((s) => s.order_id))];
      if (failedIds.length) {
        await tx.execute(
          `update payment_order set failed_from = 'received', updated_at = ? where state = 'failed' and failed_from in ${UNSENT_FAILED_FROM} and id in (${failedIds.map(() => '?').join(', ')})`,
          [now, ...failedIds],
        );
      }
    }
    const released = await tx.execute<Array<{ order_id: string }>>(
      `with locked as (select id from payment_order where state = 'held' order by id for update),
       moved as (
         update payment_order p set state = 'received', held_from = null, version = p.version + 1, updated_at = ?, state_changed_at = ?
         from locked where p.id = locked.id and p.state = 'held' returning p.id, ${orderSnapshotSql('p')} as order_snapshot)
       insert into order_event (order_id, from_state, to_state, actor, reason, order_snapshot, at)
       select id, 'held', 'received', ?, ?, order_snapshot, ? from moved returning order_id`,
      [now, now, input.actor, `lockdown resolved (incident ${input.incidentId}): validated again`, now],
    );
    // Reconciliation findings opened while locked were seen by the admin who resolves: they belong
    // to this lockdown and do not start another one at the next sweep.
    await tx.execute(
      `update incident set evidence = evidence || jsonb_build_object('lockdownIncidentId', ?::text)
       where status = 'open' and kind in (${RECONCILIATION_KINDS.map(() => '?').join(', ')}) and evidence->>'lockdownIncidentId' is null and opened_at <= ?`,
      [input.incidentId, ...RECONCILIATION_KINDS, now],
    );
    await tx.execute("update lockdown_state set state = 'normal', since = null, reason = null, scope = null, trigger = null, incident_id = null, warnings = '[]', updated_at = ?, updated_by = ? where id = 1", [now, input.actor]);
    const bankNotification = { notifiedAt: parseKzInstant(input.bankNotifiedAt!)!.toISOString(), reference: input.bankReference!.trim(), notifiedBy: input.notifiedBy?.trim() || input.actor, recordedBy: input.actor };
    const note = input.note ? singleLine(input.note) || null : null;
    const incident = await tx.findOne(Incident, { id: input.incidentId });
    if (incident) {
      incident.status = 'resolved';
      incident.resolvedAt = now;
      incident.resolvedBy = input.actor;
      incident.evidence = { ...incident.evidence, bankNotification, released: released.length, signaturesInvalidated: invalidated.length };
      incident.timeline = [
        ...incident.timeline,
        { at: now.toISOString(), actor: input.actor, text: `bank notified at ${bankNotification.notifiedAt} by ${bankNotification.notifiedBy}, reference ${bankNotification.reference}` },
        { at: now.toISOString(), actor: input.actor, text: `resolved${note ? `: ${note};` : ':'} ${released.length} held orders back to validation, ${invalidated.length} signatures to be given again` },
      ];
      await tx.flush();
    }
    await appendAudit(tx, { actor: input.actor, action: 'lockdown.resolved', subject: input.incidentId, details: { bankReference: bankNotification.reference, notifiedAt: bankNotification.notifiedAt, note, released: released.length, signaturesInvalidated: invalidated.length }, at: now });
    // Redis before the commit: the resolve holds only if both steps do. Done after it, a Redis that
    // failed left its flag (workers held the released orders again, with no lockdown left to
    // resolve) or every queue paused ("resolve again" then answered NOT_LOCKED). Failing here rolls
    // the resolve back: still locked down, the flag and the pause put back, and it can run again.
    try {
      await withTimeout(deps.redis.del(lockdownKey(deps.config.redis.prefix)), REDIS_STEP_TIMEOUT_MS, 'Redis');
      await withTimeout(deps.ports.queues.resumeAll(), REDIS_STEP_TIMEOUT_MS, 'Redis');
    } catch (err) {
      await setRedisFlag(deps, current.since, current.trigger).catch(() => undefined);
      await withTimeout(deps.ports.queues.pauseAll(), REDIS_STEP_TIMEOUT_MS, 'Redis').catch(() => undefined);
      throw new ConnectorError('REDIS_UNAVAILABLE', `the lockdown is not resolved: Redis did not clear its flag or resume the queues (${errorText(err)}); it still holds, nothing changed: run the resolve again once Redis answers`, 1);
    }
    return { released: released.map((r) => r.order_id), invalidated: invalidated.length, scope };
  });

  const warnings: string[] = [];
  // The lock-outs counted before were seen by the admin who resolves: they do not add up with the
  // next one into a new lockdown (a window may be up to a day long).
  await withTimeout(deps.redis.del(bruteForceKey(deps.config.redis.prefix, 'lockout'), bruteForceKey(deps.config.redis.prefix, 'disabled_login')), REDIS_STEP_TIMEOUT_MS, 'Redis').catch((err) =>
    warnings.push(`the brute-force counters were not cleared (${errorText(err)}); they expire with their window`),
  );
  // The sweeper re-queues what this could not, within sweeper.staleAfterMs.
  await deps.ports.queues.requeueValidate(outcome.released).catch((err) => warnings.push(`released orders not queued (${errorText(err)}); the sweeper queues them`));
  const submitting = await deps.em.execute<Array<{ id: string }>>("select id from payment_order where state = 'submitting'");
  await deps.ports.queues.requeueSubmit(submitting.map((r) => r.id)).catch((err) => warnings.push(`claimed orders not queued (${errorText(err)}); the sweeper queues them`));
  const sent = await deps.ports.notifier
    .notify({ event: 'lockdown.resolved', incidentId: input.incidentId, trigger: row.trigger ?? 'manual', scope: outcome.scope, reason: row.reason ?? '', at: now.toISOString() })
    .catch((err) => ({ delivered: [] as string[], warnings: [errorText(err)] }));
  warnings.push(...sent.warnings);
  deps.logger?.warn({ event: 'lockdown.resolved', incidentId: input.incidentId, released: outcome.released.length, actor: actorForLog(input.actor) });
  return { incidentId: input.incidentId, released: outcome.released.length, signaturesInvalidated: outcome.invalidated, requeuedSubmissions: submitting.length, warnings };
}
