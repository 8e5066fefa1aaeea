import { PhantomLogins } from './phantom-logins';

describe('PhantomLogins: wrong passwords for logins nobody has, counted as for real ones', () => {
  const t0 = new Date('2026-03-02T04:00:00Z');
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);

  test('the 5th wrong password in a row locks the login for the lock-out time; then the count starts again', () => {
    const p = new PhantomLogins();
    const outcomes = [0, 1, 2, 3, 4].map((i) => p.fail('ghost', at(i), 30).locked);
    expect(outcomes).toEqual([false, false, false, false, true]);
    expect(p.lockedUntil('ghost', at(5))).toEqual(at(34));
    expect(p.lockedUntil('ghost', at(34))).toBeNull();
    // Another login is not touched.
    expect(p.lockedUntil('other', at(5))).toBeNull();
    // After the lock, one more wrong password is the first of a new count.
    expect(p.fail('ghost', at(35), 30)).toEqual({ locked: false, lockedUntil: null });
  });

  test('holds at most 10,000 logins, forgetting the oldest', () => {
    const p = new PhantomLogins();
    for (let i = 0; i < 4; i += 1) p.fail('target', at(0), 30);
    for (let i = 0; i < 10_000; i += 1) p.fail(`spray-${i}`, at(1), 30);
    expect(p.size).toBe(10_000);
    // The oldest (target) was forgotten: its next wrong password is the first again.
    expect(p.fail('target', at(2), 30).locked).toBe(false);
  });
});
