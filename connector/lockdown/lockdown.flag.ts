import type { EntityManager } from '@mikro-orm/postgresql';
import type IORedis from 'ioredis';

/**
 * The lockdown flag. PostgreSQL (`lockdown_state`, one row) is the truth; Redis `<prefix>:lockdown`
 * mirrors it so that every worker can look before every side effect at the cost of one GET.
 * A check reads both: Redis is set first when the lock lands (fastest), PostgreSQL survives a Redis
 * flush. Fail closed: a check that cannot read PostgreSQL throws (the job retries), it never says "open".
 */
export type LockdownState = 'normal' | 'locked';

export interface LockdownRow {
  state: LockdownState;
  since: Date | null;
  reason: string | null;
  scope: string | null;
  trigger: string | null;
  incidentId: string | null;
  warnings: string[];
  /**
   * When the record last changed (an engage, a trigger added to it), as PostgreSQL prints it (to the
   * microsecond): a resolve compares it under its lock with what it judged.
   */
  stamp: string | null;
}

/** The warning of a lockdown whose keys the signer agent has not wiped yet (lockdown.service.ts agentNotReached). */
export const KEYS_NOT_WIPED = /^signer agent not reached /;

export function lockdownKey(prefix: string): string {
  return `${prefix}:lockdown`;
}

export async function readLockdownRow(em: EntityManager): Promise<LockdownRow> {
  const rows = await em.execute<Array<{ state: LockdownState; since: Date | null; reason: string | null; scope: string | null; trigger: string | null; incident_id: string | null; warnings: string[] | string; stamp: string | null }>>(
    'select state, since, reason, scope, trigger, incident_id, warnings, updated_at::text as stamp from lockdown_state where id = 1',
  );
  const row = rows[0];
  if (!row) return { state: 'normal', since: null, reason: null, scope: null, trigger: null, incidentId: null, warnings: [], stamp: null };
  const warnings = typeof row.warnings === 'string' ? (JSON.parse(row.warnings) as string[]) : row.warnings ?? [];
  return { state: row.state, since: row.since ? new Date(row.since) : null, reason: row.reason, scope: row.scope, trigger: row.trigger, incidentId: row.incident_id, warnings, stamp: row.stamp };
}

/** The recorded flag only (domain code without Redis, e.g. intake). */
export async function isLockdownRecorded(em: EntityManager): Promise<boolean> {
  const [row] = await em.execute<Array<{ locked: boolean }>>(`select ${LOCKDOWN_RECORDED_SQL} as locked`);
  return row.locked === true;
}

/**
 * The check every worker makes before a side effect: the Redis flag (set before anything else when
 * the lock lands) and PostgreSQL (the truth, also after a Redis flush), asked at once.
 */
export async function isLockedDown(deps: { em: EntityManager; redis?: IORedis; prefix: string }): Promise<boolean> {
  // Both asked at once (the check sits on every stage's path); Redis' "locked" wins without waiting.
  const recorded = isLockdownRecorded(deps.em);
  // Handled at once: should PostgreSQL fail before Redis answers, the rejection must not go
  // unhandled; the caller still gets it through `recorded` below (fail closed).
  recorded.catch(() => undefined);
  if (await isLockdownMirrored(deps)) return true;
  return recorded;
}

/** The Redis mirror alone; false when Redis is absent or unreachable (PostgreSQL then decides). */
export async function isLockdownMirrored(deps: { redis?: IORedis; prefix: string }): Promise<boolean> {
  if (!deps.redis) return false;
  try {
    return (await deps.redis.exists(lockdownKey(deps.prefix))) === 1;
  } catch {
    return false;
  }
}

/**
 * The recorded flag as an SQL expression (true when locked), for a statement that must look at it
 * and act in the same round trip (the submit stage's last step before the bank call).
 */
export const LOCKDOWN_RECORDED_SQL = "coalesce((select state = 'locked' from lockdown_state where id = 1), false)";
