import { KeySessionManager, type SessionEndReason } from './key-session.manager';
import type { KeyFacts } from './signing.protocol';

const facts: KeyFacts = { algorithm: 'RSA-SHA256', subject: 'CN=T', iin: '123456789011', bin: null, serial: '01', notBefore: '', notAfter: '' };

describe('KeySessionManager', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  function manager(idleMs: number, maxMs: number) {
    const ended: Array<[string, SessionEndReason]> = [];
    const sessions = new KeySessionManager(idleMs, maxMs, (userId, reason) => ended.push([userId, reason]));
    return { sessions, ended };
  }

  it('ends a session after the idle time without activity (R-13) and tells the owner to wipe it', () => {
    const { sessions, ended } = manager(30 * 60_000, 8 * 3600_000);
    sessions.start('alice', facts, new Date());
    jest.advanceTimersByTime(30 * 60_000 - 1);
    expect(sessions.get('alice')).toBeDefined();
    jest.advanceTimersByTime(1);
    expect(sessions.get('alice')).toBeUndefined();
    expect(ended).toEqual([['alice', 'idle_timeout']]);
  });

  it('restarts the idle clock on activity, but never beyond the absolute maximum', () => {
    const { sessions, ended } = manager(1000, 2500);
    sessions.start('alice', facts, new Date());
    jest.advanceTimersByTime(900);
    sessions.touch('alice', new Date());
    jest.advanceTimersByTime(900);
    sessions.touch('alice', new Date());
    expect(sessions.get('alice')).toBeDefined();
    jest.advanceTimersByTime(700);
    expect(ended).toEqual([['alice', 'session_max']]);
  });

  it('a session past its idle time or its maximum by the clock it is asked with ends then, although its timer has not fired (the host slept)', () => {
    const { sessions, ended } = manager(30 * 60_000, 8 * 3600_000);
    const t0 = Date.parse('2026-11-25T10:00:00Z');
    sessions.start('alice', facts, new Date(t0));
    expect(sessions.get('alice', new Date(t0 + 30 * 60_000 - 1))).toBeDefined();
    expect(sessions.get('alice', new Date(t0 + 30 * 60_000))).toBeUndefined();
    expect(ended).toEqual([['alice', 'idle_timeout']]);
    sessions.start('bob', facts, new Date(t0));
    sessions.touch('bob', new Date(t0 + 8 * 3600_000 - 60_000));
    expect(sessions.get('bob', new Date(t0 + 8 * 3600_000))).toBeUndefined();
    expect(ended).toEqual([['alice', 'idle_timeout'], ['bob', 'session_max']]);
  });

  it('gives each unlock a new generation and ends everything on endAll without per-user callbacks', () => {
    const { sessions, ended } = manager(1000, 5000);
    const first = sessions.start('alice', facts).generation;
    const second = sessions.start('alice', facts).generation;
    expect(second).not.toBe(first);
    sessions.start('bob', facts);
    expect(sessions.endAll().sort()).toEqual(['alice', 'bob']);
    expect(sessions.count()).toBe(0);
    jest.advanceTimersByTime(10_000);
    expect(ended).toEqual([]);
  });
});
