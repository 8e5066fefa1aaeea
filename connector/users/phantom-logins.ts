import { createHmac, randomBytes } from 'node:crypto';
import { MAX_FAILED_ATTEMPTS } from './password.policy';

/** How many logins nobody has are counted at once; the oldest go first. */
const PHANTOM_MAX = 10_000;
/** A count that stopped growing this long ago is forgotten (a real login's count waits for a success instead). */
const PHANTOM_FORGET_MS = 24 * 3600_000;

interface Phantom {
  failed: number;
  lockedUntil: number | null;
  lastAt: number;
}

/**
 * Wrong passwords for logins nobody has, counted as for real ones: a login that never
 * answers 423 after five wrong passwords would be known not to exist. In this process's memory
 * only, under a hash keyed by a secret of the process: the text of a login that does not exist is
 * often a password typed into the login field, and is kept nowhere. Such a lock-out is not a
 * security event (no account is at risk), so it never counts towards a brute-force lockdown.
 */
export class PhantomLogins {
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
