import { createHash, randomBytes } from 'node:crypto';
import type IORedis from 'ioredis';

/**
 * Server-side sessions in Redis. The cookie carries a 256-bit random id; Redis holds only
 * its SHA-256 (`<prefix>:session:<sha256>`), so a Redis dump cannot be replayed as a cookie.
 * Idle and absolute expiry are checked against the connector's clock (tests move it); Redis TTLs
 * only collect garbage. `<prefix>:user-sessions:<userId>` lists a user's sessions for
 * "log out everywhere" and for revocation on disable, lock-out and password change.
 */
export interface SessionRecord {
  userId: string;
  login: string;
  createdAt: number;
  lastSeenAt: number;
  expiresAt: number;
}

export interface SessionTimeouts {
  idleMs: number;
  absoluteMs: number;
}

export type SessionLookup = { state: 'active'; hash: string; record: SessionRecord } | { state: 'missing' } | { state: 'idle' | 'expired'; record: SessionRecord };

export function sessionHash(sessionId: string): string {
  return createHash('sha256').update(sessionId).digest('hex');
}

export class SessionStore {
  constructor(
    private readonly redis: IORedis,
    private readonly prefix: string,
    private readonly timeouts: SessionTimeouts,
  ) {}

  private key(hash: string): string {
    return `${this.prefix}:session:${hash}`;
  }

  private userKey(userId: string): string {
    return `${this.prefix}:user-sessions:${userId}`;
  }

  /** Garbage collection in real time: the absolute lifetime plus a margin for a moved test clock. */
  private get ttlMs(): number {
    return this.timeouts.absoluteMs + 60_000;
  }

  async create(user: { id: string; login: string }, now: Date): Promise<{ sessionId: string; record: SessionRecord }> {
    const sessionId = randomBytes(32).toString('base64url');
    const hash = sessionHash(sessionId);
    const record: SessionRecord = { userId: user.id, login: user.login, createdAt: now.getTime(), lastSeenAt: now.getTime(), expiresAt: now.getTime() + this.timeouts.absoluteMs };
    await this.forgetExpired(user.id);
    await this.redis
      .multi()
      .set(this.key(hash), JSON.stringify(record), 'PX', this.ttlMs)
      .sadd(this.userKey(user.id), hash)
      .pexpire(this.userKey(user.id), this.ttlMs)
      .exec();
    return { sessionId, record };
  }

  /**
   * A session that simply expired (nobody logged out) leaves its hash in the user's set, whose
   * lifetime each login renews: each login drops those, so the set of a user who logs in every
   * day does not grow for years. Only hashes whose session key is gone are removed.
   */
  private async forgetExpired(userId: string): Promise<void> {
    const hashes = await this.redis.smembers(this.userKey(userId));
    if (!hashes.length) return;
    const pipeline = this.redis.pipeline();
    for (const h of hashes) pipeline.exists(this.key(h));
    const found = (await pipeline.exec()) ?? [];
    const gone = hashes.filter((_, i) => Number(found[i]?.[1]) === 0);
    if (gone.length) await this.redis.srem(this.userKey(userId), ...gone);
  }

  /** Looks a session up and, when active, records the activity (sliding idle timeout). */
  async touch(sessionId: string, now: Date): Promise<SessionLookup> {
    const hash = sessionHash(sessionId);
    const raw = await this.redis.get(this.key(hash));
    if (!raw) return { state: 'missing' };
    const record = JSON.parse(raw) as SessionRecord;
    const t = now.getTime();
    if (t >= record.expiresAt || t - record.lastSeenAt >= this.timeouts.idleMs) {
      await this.destroyHash(record.userId, hash);
      return { state: t >= record.expiresAt ? 'expired' : 'idle', record };
    }
    const updated: SessionRecord = { ...record, lastSeenAt: Math.max(record.lastSeenAt, t) };
    // XX: a session revoked meanwhile is not resurrected.
    await this.redis.set(this.key(hash), JSON.stringify(updated), 'PX', this.ttlMs, 'XX');
    return { state: 'active', hash, record: updated };
  }

  async destroy(sessionId: string): Promise<void> {
    const hash = sessionHash(sessionId);
    const raw = await this.redis.get(this.key(hash));
    if (!raw) return;
    await this.destroyHash((JSON.parse(raw) as SessionRecord).userId, hash);
  }

  private async destroyHash(userId: string, hash: string): Promise<void> {
    await this.redis.multi().del(this.key(hash)).srem(this.userKey(userId), hash).exec();
  }

  /** Ends every session of a user except `keepSessionId` (the one that changed the password). Returns how many ended. */
  async destroyAllForUser(userId: string, keepSessionId?: string): Promise<number> {
    const keep = keepSessionId ? sessionHash(keepSessionId) : undefined;
    const hashes = await this.redis.smembers(this.userKey(userId));
    const doomed = hashes.filter((h) => h !== keep);
    if (!doomed.length) return 0;
    const multi = this.redis.multi();
    for (const h of doomed) multi.del(this.key(h));
    multi.srem(this.userKey(userId), ...doomed);
    const results = await multi.exec();
    return (results ?? []).slice(0, doomed.length).reduce((n, [, deleted]) => n + (Number(deleted) || 0), 0);
  }

  /** Lockdown: ends every session of every user. Returns how many ended. */
  async destroyAll(): Promise<number> {
    let ended = 0;
    for (const pattern of [`${this.prefix}:session:*`, `${this.prefix}:user-sessions:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        cursor = next;
        if (keys.length) {
          const deleted = await this.redis.del(...keys);
          if (pattern.includes(':session:')) ended += deleted;
        }
      } while (cursor !== '0');
    }
    return ended;
  }

  async countForUser(userId: string): Promise<number> {
    return this.redis.scard(this.userKey(userId));
  }
}

export function sessionStoreFor(context: { redis: IORedis; config: { redis: { prefix: string }; users: { sessionIdleMinutes: number; sessionAbsoluteHours: number } } }): SessionStore {
  return new SessionStore(context.redis, context.config.redis.prefix, {
    // at most 30 minutes (the config schema refuses more).
    idleMs: Math.min(context.config.users.sessionIdleMinutes, 30) * 60_000,
    absoluteMs: context.config.users.sessionAbsoluteHours * 3_600_000,
  });
}
