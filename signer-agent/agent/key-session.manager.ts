import type { KeyFacts } from './signing.protocol';

export type SessionEndReason = 'request' | 'idle_timeout' | 'session_max' | 'worker_lost' | 'shutdown' | 'unenrolled' | 'lockdown';

export interface KeySession {
  userId: string;
  facts: KeyFacts;
  /** Changes on every unlock: a signature started under an older generation is discarded. */
  generation: number;
  unlockedAt: Date;
  lastUsedAt: Date;
  idleExpiresAt: Date;
  expiresAt: Date;
}

interface Entry extends KeySession {
  idleTimer: NodeJS.Timeout;
  maxTimer: NodeJS.Timeout;
}

/**
 * The main thread's view of unlocked keys: metadata and timers only, the keys themselves are in
 * the signing workers. A session ends after `idleMs` without signing (R-13: 30 minutes idle by
 * default, configurable lower) and in any case `maxMs` after the unlock; ending calls `onEnd`,
 * which wipes the key in the workers.
 */
export class KeySessionManager {
  private readonly sessions = new Map<string, Entry>();
  private generation = 0;

  constructor(
    private readonly idleMs: number,
    private readonly maxMs: number,
    private readonly onEnd: (userId: string, reason: SessionEndReason) => void,
  ) {}

  start(userId: string, facts: KeyFacts, at: Date = new Date()): KeySession {
    this.end(userId, 'request', false);
    this.generation += 1;
    const maxTimer = setTimeout(() => this.end(userId, 'session_max'), this.maxMs);
    maxTimer.unref();
    const entry: Entry = {
      userId,
      facts,
      generation: this.generation,
      unlockedAt: at,
      lastUsedAt: at,
      idleExpiresAt: new Date(at.getTime() + Math.min(this.idleMs, this.maxMs)),
      expiresAt: new Date(at.getTime() + this.maxMs),
      idleTimer: this.idleTimer(userId),
      maxTimer,
    };
    this.sessions.set(userId, entry);
    return this.view(entry);
  }

  /** Marks activity (a signature): the idle clock starts again. */
  touch(userId: string, at: Date = new Date()): void {
    const entry = this.sessions.get(userId);
    if (!entry) return;
    clearTimeout(entry.idleTimer);
    entry.lastUsedAt = at;
    entry.idleExpiresAt = new Date(Math.min(at.getTime() + this.idleMs, entry.expiresAt.getTime()));
    entry.idleTimer = this.idleTimer(userId);
  }

  /**
   * The session, when there is one. With `at`, one whose idle time or maximum has passed by then is
   * ended here (and the owner told) even though its timer has not fired: timers count the time the
   * process ran, not the time that passed, so after the host slept or the VM was paused an unlocked
   * key would otherwise sign on past its 30 idle minutes or its maximum.
   */
  get(userId: string, at?: Date): KeySession | undefined {
    const entry = this.sessions.get(userId);
    if (!entry) return undefined;
    if (at && at.getTime() >= entry.expiresAt.getTime()) {
      this.end(userId, 'session_max');
      return undefined;
    }
    if (at && at.getTime() >= entry.idleExpiresAt.getTime()) {
      this.end(userId, 'idle_timeout');
      return undefined;
    }
    return this.view(entry);
  }

  count(): number {
    return this.sessions.size;
  }

  /** Ends one session; `notify` false when the caller wipes the workers itself. */
  end(userId: string, reason: SessionEndReason, notify = true): boolean {
    const entry = this.sessions.get(userId);
    if (!entry) return false;
    clearTimeout(entry.idleTimer);
    clearTimeout(entry.maxTimer);
    this.sessions.delete(userId);
    if (notify) this.onEnd(userId, reason);
    return true;
  }

  /** Ends every session without per-user callbacks (lockdown, shutdown: the caller wipes all workers at once). */
  endAll(): string[] {
    const users = [...this.sessions.keys()];
    for (const userId of users) this.end(userId, 'lockdown', false);
    return users;
  }

  private idleTimer(userId: string): NodeJS.Timeout {
    const timer = setTimeout(() => this.end(userId, 'idle_timeout'), this.idleMs);
    timer.unref();
    return timer;
  }

  private view(entry: Entry): KeySession {
    const { idleTimer: _i, maxTimer: _m, ...session } = entry;
    return { ...session };
  }
}
