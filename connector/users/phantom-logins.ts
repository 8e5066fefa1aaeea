import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import type IORedis from 'ioredis';
import type { Logger } from 'pino';
import { loadMasterKey, rereadIfChanged, resolveMasterKeyPath, type MasterKeyRing } from '../vault/master-key.store';
import { MAX_FAILED_ATTEMPTS } from './password.policy';

/** How many logins nobody has are counted at once; the oldest go first. */
const PHANTOM_MAX = 10_000;
/** A count that stopped growing this long ago is forgotten (a real login's count waits for a success instead). */
const PHANTOM_FORGET_MS = 24 * 3600_000;

/** What checkLogin needs of a phantom count: the in-process one below, or the one shared in Redis. */
export interface PhantomLoginCounter {
  lockedUntil(login: string, now: Date): Date | null | Promise<Date | null>;
  fail(login: string, now: Date, lockoutMinutes: number): PhantomOutcome | Promise<PhantomOutcome>;
}

export interface PhantomOutcome {
  locked: boolean;
  lockedUntil: Date | null;
}

interface Phantom {
  failed: number;
  lockedUntil: number | null;
  lastAt: number;
}

/**
 * Wrong passwords for logins nobody has, counted as for real ones: a login that never
 * answers 423 after five wrong passwords would be known not to exist. Under a hash keyed by a
 * secret: the text of a login that does not exist is often a password typed into the login field,
 * and is kept nowhere. Such a lock-out is not a security event (no account is at risk), so it
 * never counts towards a brute-force lockdown.
 *
 * This one counts in the process's memory, under a key of the process: for a process with no Redis
 * (the API uses RedisPhantomLogins, so that every API process and a restart see the same count).
 */
export class PhantomLogins implements PhantomLoginCounter {
  private readonly key = randomBytes(32);
  private readonly byKey = new Map<string, Phantom>();

  private keyOf(login: string): string {
    return createHmac('sha256', this.key).update(login).digest('base64');
  }

  /** Until when the login is locked out, if it is now. */
  lockedUntil(login: string, now: Date): Date | null {
    const entry = this.byKey.get(this.keyOf(login));
    return entry?.lockedUntil && entry.lockedUntil > now.getTime() ? new Date(entry.lockedUntil) : null;
  }

  /** One more wrong password; the 5th in a row locks the login for `lockoutMinutes`, as `recordFailedAttempt` does. */
  fail(login: string, now: Date, lockoutMinutes: number): { locked: boolean; lockedUntil: Date | null } {
    const k = this.keyOf(login);
    const t = now.getTime();
    const before = this.byKey.get(k);
    const expired = before && ((before.lockedUntil !== null && before.lockedUntil <= t) || t - before.lastAt > PHANTOM_FORGET_MS);
    const entry: Phantom = !before || expired ? { failed: 0, lockedUntil: null, lastAt: t } : before;
    entry.failed += 1;
    entry.lastAt = t;
    if (entry.lockedUntil === null && entry.failed >= MAX_FAILED_ATTEMPTS) entry.lockedUntil = t + lockoutMinutes * 60_000;
    // Re-inserted: the map's order is the order of last use, so the oldest is evicted first.
    this.byKey.delete(k);
    this.byKey.set(k, entry);
    while (this.byKey.size > PHANTOM_MAX) this.byKey.delete(this.byKey.keys().next().value as string);
    return { locked: entry.lockedUntil !== null && entry.lockedUntil > t, lockedUntil: entry.lockedUntil === null ? null : new Date(entry.lockedUntil) };
  }

  get size(): number {
    return this.byKey.size;
  }
}

/**
 * Kept as `<failed>:<lockedUntil ms, -1 for none>:<last attempt ms>` in one hash, with the order of
 * last use in a sorted set (the oldest forgotten beyond PHANTOM_MAX), in one script so that two API
 * processes counting the same login at once count two. The connector's clock decides (tests move
 * it); the keys' TTL only collects what nobody tried for a day.
 */
const FAIL_SCRIPT = `
local field, now = ARGV[1], tonumber(ARGV[2])
local failed, lockedUntil, lastAt = 0, -1, now
local raw = redis.call('HGET', KEYS[1], field)
if raw then
  local f, l, a = string.match(raw, '^(%d+):(-?%d+):(%d+)$')
  if f then failed, lockedUntil, lastAt = tonumber(f), tonumber(l), tonumber(a) end
end
if (lockedUntil >= 0 and lockedUntil <= now) or (now - lastAt > tonumber(ARGV[5])) then failed, lockedUntil = 0, -1 end
failed = failed + 1
if lockedUntil < 0 and failed >= tonumber(ARGV[4]) then lockedUntil = now + tonumber(ARGV[3]) end
redis.call('HSET', KEYS[1], field, string.format('%d:%d:%d', failed, lockedUntil, now))
redis.call('ZADD', KEYS[2], now, field)
while redis.call('ZCARD', KEYS[2]) > tonumber(ARGV[7]) do
  local oldest = redis.call('ZPOPMIN', KEYS[2])
  redis.call('HDEL', KEYS[1], oldest[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return lockedUntil
`;

/**
 * The phantom counts shared by every API process, in Redis under the connector's prefix
 * (`<prefix>:phantom-login:counts` and `:recent`): with the count in one process's memory, each API
 * process (and each restart) gave a login nobody has five more tries before its 423, which a real
 * login never gets, so the answers told which logins exist. `secret` is the HMAC key (phantomKeyFrom).
 */
export class RedisPhantomLogins implements PhantomLoginCounter {
  constructor(
    private readonly redis: IORedis,
    private readonly prefix: string,
    private readonly secret: () => Buffer,
  ) {}

  private get countsKey(): string {
    return `${this.prefix}:phantom-login:counts`;
  }

  private get recentKey(): string {
    return `${this.prefix}:phantom-login:recent`;
  }

  private fieldOf(login: string): string {
    return createHmac('sha256', this.secret()).update(login).digest('base64');
  }

  async lockedUntil(login: string, now: Date): Promise<Date | null> {
    const raw = await this.redis.hget(this.countsKey, this.fieldOf(login));
    const until = raw ? Number(raw.split(':')[1]) : -1;
    return until > now.getTime() ? new Date(until) : null;
  }

  async fail(login: string, now: Date, lockoutMinutes: number): Promise<PhantomOutcome> {
    const lockoutMs = lockoutMinutes * 60_000;
    const until = Number(
      await this.redis.eval(FAIL_SCRIPT, 2, this.countsKey, this.recentKey, this.fieldOf(login), now.getTime(), lockoutMs, MAX_FAILED_ATTEMPTS, PHANTOM_FORGET_MS, PHANTOM_FORGET_MS + lockoutMs + 60_000, PHANTOM_MAX),
    );
    return until > now.getTime() ? { locked: true, lockedUntil: new Date(until) } : { locked: false, lockedUntil: until < 0 ? null : new Date(until) };
  }
}

/**
 * The HMAC key of the shared phantom counts: the same in every process of the installation, and
 * found in no store that holds the counts (a Redis dump alone must not let the login-field texts
 * be guessed): derived from the current master key, read again when `vault rotate-key` changed the
 * file (the counts then start again, as after a restart before). Without a readable key file, a key
 * of this process (said once in the log): counted per process, as before.
 */
export function phantomKeyFrom(config: { masterKeyFile: string }, logger?: Logger, cwd?: string): () => Buffer {
  let ring: MasterKeyRing | undefined;
  let derived: { id: string; key: Buffer } | undefined;
  let ownKey: Buffer | undefined;
  return () => {
    if (ownKey) return ownKey;
    try {
      ring = ring ? rereadIfChanged(ring) : loadMasterKey(resolveMasterKeyPath(config.masterKeyFile, cwd));
    } catch (err) {
      logger?.warn({ event: 'auth.phantom_key_local', reason: (err as Error).message }, 'wrong passwords for unknown logins are counted in this process only');
      ownKey = randomBytes(32);
      return ownKey;
    }
    if (derived?.id !== ring.current.id) {
      derived = { id: ring.current.id, key: Buffer.from(hkdfSync('sha256', ring.current.key, Buffer.alloc(0), 'connector phantom logins', 32)) };
    }
    return derived.key;
  };
}
