import { randomBytes } from 'node:crypto';
import IORedis from 'ioredis';
import { PhantomLogins, RedisPhantomLogins } from './phantom-logins';

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

describe('RedisPhantomLogins: the same count, shared by every API process (real Redis)', () => {
  const t0 = new Date('2026-03-02T04:00:00Z');
  const at = (minutes: number) => new Date(t0.getTime() + minutes * 60_000);
  const prefix = `t-phantom-${randomBytes(4).toString('hex')}`;
  const redis = new IORedis(process.env.CONNECTOR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const secret = randomBytes(32);
  // Two API processes: their own connection each, the same key.
  const other = new IORedis(process.env.CONNECTOR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
  const a = new RedisPhantomLogins(redis, prefix, () => secret);
  const b = new RedisPhantomLogins(other, prefix, () => secret);
  afterAll(async () => {
    await redis.del(`${prefix}:phantom-login:counts`, `${prefix}:phantom-login:recent`);
    redis.disconnect();
    other.disconnect();
  });

  test('the 5th wrong password, whichever process counts it, locks for the lock-out time; then the count starts again', async () => {
    const outcomes: boolean[] = [];
    for (let i = 0; i < 5; i += 1) outcomes.push((await (i % 2 ? b : a).fail('ghost', at(i), 30)).locked);
    expect(outcomes).toEqual([false, false, false, false, true]);
    expect(await b.lockedUntil('ghost', at(5))).toEqual(at(34));
    expect(await a.lockedUntil('ghost', at(34))).toBeNull();
    expect(await a.lockedUntil('other', at(5))).toBeNull();
    expect(await b.fail('ghost', at(35), 30)).toEqual({ locked: false, lockedUntil: null });
    // Forgotten a day after the last wrong password, as the in-process count.
    for (let i = 0; i < 3; i += 1) await a.fail('ghost', at(36), 30);
    expect((await a.fail('ghost', at(36 + 24 * 60 + 1), 30)).locked).toBe(false);
  });

  test('wrong passwords sent at once to two processes are all counted', async () => {
    const outcomes = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => (i % 2 ? b : a).fail('burst', at(0), 30)));
    expect(outcomes.filter((o) => o.locked)).toHaveLength(2);
    expect(await a.lockedUntil('burst', at(1))).toEqual(at(30));
  });

  test('holds at most 10,000 logins, forgetting the least recently tried', async () => {
    for (let i = 0; i < 4; i += 1) await a.fail('target', at(100), 30);
    const pipeline = Array.from({ length: 10_000 }, (_, i) => a.fail(`spray-${i}`, at(101), 30));
    await Promise.all(pipeline);
    expect(await redis.hlen(`${prefix}:phantom-login:counts`)).toBe(10_000);
    expect((await a.fail('target', at(102), 30)).locked).toBe(false);
  }, 60_000);

  test('keeps no login in clear: the fields are keyed hashes', async () => {
    const fields = await redis.hkeys(`${prefix}:phantom-login:counts`);
    expect(fields.some((f) => f.includes('ghost') || f.includes('spray'))).toBe(false);
  });
});
