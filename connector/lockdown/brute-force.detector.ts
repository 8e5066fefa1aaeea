import { randomUUID } from 'node:crypto';
import type IORedis from 'ioredis';
import type { ConnectorConfig } from '../../config/config.schema';

/**
 * Brute force across accounts (issue 16): one login locked out is a forgetful person (R-12 handles
 * it); several different logins locked out within a window, or repeated attempts on disabled
 * accounts, is an attack. Counted in Redis sorted sets (time-scored) so every API process sees the
 * same window: `<prefix>:lockdown:bf:lockout` (members: logins, so one login counts once) and
 * `<prefix>:lockdown:bf:disabled` (members: attempts).
 */
export type SecurityEventKind = 'lockout' | 'disabled_login';

export interface SecurityEvent {
  kind: SecurityEventKind;
  login: string;
  ip?: string;
  at: Date;
}

export interface BruteForceVerdict {
  trip: boolean;
  count: number;
  threshold: number;
  windowMinutes: number;
  logins: string[];
}

/** The Redis key of each kind's window. */
export function bruteForceKey(prefix: string, kind: SecurityEventKind): string {
  return `${prefix}:lockdown:bf:${kind === 'lockout' ? 'lockout' : 'disabled'}`;
}

export async function recordSecurityEvent(redis: IORedis, config: Pick<ConnectorConfig, 'redis' | 'lockdown'>, event: SecurityEvent): Promise<BruteForceVerdict> {
  const { windowMinutes, lockoutsAcrossAccounts, disabledUserAttempts } = config.lockdown.bruteForce;
  const key = bruteForceKey(config.redis.prefix, event.kind);
  const now = event.at.getTime();
  const from = now - windowMinutes * 60_000;
  const member = event.kind === 'lockout' ? event.login : `${event.login}|${now}|${randomUUID()}`;
  const results = await redis
    .multi()
    .zadd(key, now, member)
    .zremrangebyscore(key, '-inf', `(${from}`)
    .zrange(key, 0, -1)
    .pexpire(key, windowMinutes * 60_000 + 60_000)
    .exec();
  const members = ((results?.[2]?.[1] as string[] | undefined) ?? []).map((m) => m.split('|')[0]);
  const threshold = event.kind === 'lockout' ? lockoutsAcrossAccounts : disabledUserAttempts;
  return { trip: members.length >= threshold, count: members.length, threshold, windowMinutes, logins: [...new Set(members)] };
}
