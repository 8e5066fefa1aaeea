import { KzBusinessCalendar } from '../../connector/calendar/kz-business-calendar';
import { earliestNextChange } from '../../connector/users/password.policy';
import { createUser, resetPassword, unblockUser } from '../../connector/users/user.service';
import { activeUser, Browser, DAY, grantAll, uniq, usersTestEnvOfFile } from './users-test.env';

/**
 * R-5..R-12 over the real HTTP API (real PostgreSQL and Redis), moving the connector's clock
 * where a rule needs time. One table per rule.
 */
// Monday 2026-03-02 09:00 Kazakhstan time (UTC+5).
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });
beforeEach(() => {
  env.clock.set(new Date('2026-03-02T04:00:00Z'));
});

describe('R-5 personal account: unique login and a password', () => {
  test.each([
    ['the same login', 'petrov', 'petrov'],
    ['the same login in another case', 'sidorov', 'SIDOROV'],
  ])('a second user with %s is refused 409 LOGIN_TAKEN', async (_what, first, second) => {
    const admin = await activeUser(env, uniq('admin'), 'admin', 'Admin-Pass1');
    expect((await admin.request('POST', '/api/v1/users', { login: first, role: 'viewer', password: 'Start-Pass1' })).statusCode).toBe(201);
    const again = await admin.request('POST', '/api/v1/users', { login: second, role: 'signer', password: 'Start-Pass2' });
    expect(again.statusCode).toBe(409);
    expect(again.json().code).toBe('LOGIN_TAKEN');
  });

  test.each([
    ['right password', 'Own-Pass-1', 200, undefined],
    ['another user\'s password', 'Other-Pass-1', 401, 'INVALID_CREDENTIALS'],
    ['no such login', null, 401, 'INVALID_CREDENTIALS'],
  ])('login with %s -> %s', async (_what, password, status, code) => {
    const a = uniq('own');
    const b = uniq('other');
    await createUser(env.deps(), { login: a, role: 'viewer', password: 'Own-Pass-1', actor: 'test' });
    await createUser(env.deps(), { login: b, role: 'viewer', password: 'Other-Pass-1', actor: 'test' });
    const res = await new Browser(env).login(password === null ? 'nobody-here' : a, password ?? 'Own-Pass-1');
    expect(res.statusCode).toBe(status);
    if (code) expect(res.json().code).toBe(code);
  });
});

describe('R-6, R-7 length and complexity, checked at every change with a message', () => {
  test.each([
    ['7 characters, 4 groups', 'Ab1!xyz', 422, 'TOO_SHORT'],
    ['empty-ish: 1 character', 'A', 422, 'TOO_SHORT'],
    ['8 lowercase letters', 'abcdefgh', 422, 'TOO_SIMPLE'],
    ['8 digits', '12345678', 422, 'TOO_SIMPLE'],
    ['lower + upper only', 'abcdEFGH', 422, 'TOO_SIMPLE'],
    ['lower + digits only', 'abcd1234', 422, 'TOO_SIMPLE'],
    ['Cyrillic lower + upper only', 'пароЛЬпароЛЬ', 422, 'TOO_SIMPLE'],
    ['lower + upper + digit, exactly 8', 'abcdEF12', 204, null],
    ['lower + digit + special', 'abcd12!!', 204, null],
    ['upper + digit + special', 'ABCD12-+', 204, null],
    ['Cyrillic lower + upper + digit', 'парольПАРОЛЬ1', 204, null],
  ])('%s -> %s %s', async (_what, password, status, code) => {
    const login = uniq('len');
    const b = new Browser(env);
    await createUser(env.deps(), { login, role: 'viewer', password: 'Initial-Pass1', actor: 'test' });
    expect((await b.login(login, 'Initial-Pass1')).statusCode).toBe(200);
    const res = await b.changePassword('Initial-Pass1', password);
    expect(res.statusCode).toBe(status);
    if (code) {
      expect(res.json().code).toBe(code);
      // The message tells the person which rule failed, in Russian.
      expect(res.json().message).toMatch(/[А-Яа-я]/);
      expect(res.json().message).toMatch(code === 'TOO_SHORT' ? /8/ : /групп/);
    }
  });

  test('the initial password an admin sets is checked too', async () => {
    const admin = await activeUser(env, uniq('admin'), 'admin', 'Admin-Pass1');
    const res = await admin.request('POST', '/api/v1/users', { login: uniq('weak'), role: 'viewer', password: 'password' });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe('TOO_SIMPLE');
  });
});

describe('R-8 history: the new password differs from the previous 7', () => {
  test('each of the last 7 is refused; the 8th back is allowed again', async () => {
    const login = uniq('hist');
    const passwords = Array.from({ length: 9 }, (_, i) => `History-${i}-Pw`);
    const b = await activeUser(env, login, 'viewer', passwords[0]);
    // Set passwords 1..7, each one business day after the previous change.
    for (let i = 1; i <= 7; i += 1) {
      env.clock.set(new Date(earliestNextChange(env.clock.now(), KzBusinessCalendar.shipped({ cutoff: '17:00' })).getTime() + 60_000));
      // A day later the earlier session has ended: log in again.
      expect((await b.login(login, passwords[i - 1])).statusCode).toBe(200);
      expect((await b.changePassword(passwords[i - 1], passwords[i])).statusCode).toBe(204);
    }
    env.clock.set(new Date(earliestNextChange(env.clock.now(), KzBusinessCalendar.shipped({ cutoff: '17:00' })).getTime() + 60_000));
    expect((await b.login(login, passwords[7])).statusCode).toBe(200);
    // The last 7 are passwords[1..7]; passwords[0] (and the temporary one) are 8+ back.
    const table: Array<[string, number, string | null]> = [
      [passwords[7], 422, 'REUSED'],
      [passwords[4], 422, 'REUSED'],
      [passwords[1], 422, 'REUSED'],
      [passwords[0], 204, null],
    ];
    for (const [candidate, status, code] of table) {
      const res = await b.changePassword(passwords[7], candidate);
      expect([candidate, res.statusCode]).toEqual([candidate, status]);
      if (code) expect(res.json().code).toBe(code);
    }
  });
});

describe('R-9 minimum age 1 business day (Kazakhstan calendar), maximum 60 days, warning from 7 days', () => {
  // [changed at (UTC), tried at (UTC), expected status]; 2026-03-09 is a holiday (carry-over of 8 March).
  test.each([
    ['Mon 09:00 -> Mon 17:00', '2026-03-02T04:00:00Z', '2026-03-02T12:00:00Z', 422],
    ['Mon 09:00 -> Tue 08:59', '2026-03-02T04:00:00Z', '2026-03-03T03:59:00Z', 422],
    ['Mon 09:00 -> Tue 09:01', '2026-03-02T04:00:00Z', '2026-03-03T04:01:00Z', 204],
    ['Fri 09:00 -> Sat 12:00', '2026-03-06T04:00:00Z', '2026-03-07T07:00:00Z', 422],
    ['Fri 09:00 -> Mon 9 March 10:00 (holiday)', '2026-03-06T04:00:00Z', '2026-03-09T05:00:00Z', 422],
    ['Fri 09:00 -> Tue 10 March 09:01', '2026-03-06T04:00:00Z', '2026-03-10T04:01:00Z', 204],
  ])('%s -> %s', async (_what, changedAt, triedAt, status) => {
    const login = uniq('age');
    env.clock.set(new Date(changedAt));
    const b = await activeUser(env, login, 'viewer', 'First-Pass1');
    env.clock.set(new Date(triedAt));
    expect((await b.login(login, 'First-Pass1')).statusCode).toBe(200);
    const res = await b.changePassword('First-Pass1', 'Second-Pass2');
    expect(res.statusCode).toBe(status);
    if (status === 422) {
      expect(res.json().code).toBe('TOO_SOON');
      expect(res.json().message).toMatch(/рабочий день/);
    }
  });

  test.each([
    [52, 200, 8, false],
    [53, 200, 7, true],
    [59, 200, 1, true],
    [60, 403, 0, true],
    [75, 403, 0, true],
  ])('login %s days after a change -> %s, passwordExpiresInDays %s', async (days, status, left, warned) => {
    const login = uniq('max');
    await activeUser(env, login, 'viewer', 'Aging-Pass1');
    // Activity every few days, so R-11 inactivity does not interfere.
    for (let d = 25; d < days; d += 25) {
      env.clock.advance(25 * DAY);
      expect((await new Browser(env).login(login, 'Aging-Pass1')).statusCode).toBe(200);
    }
    env.clock.set(new Date(new Date('2026-03-02T04:00:00Z').getTime() + days * DAY + 60_000));
    const b = new Browser(env);
    const res = await b.login(login, 'Aging-Pass1');
    expect(res.statusCode).toBe(status);
    if (status === 200) {
      expect(res.json().passwordExpiresInDays).toBe(left);
      expect(res.json().mustChangePassword).toBe(false);
      expect(Boolean(res.json().warning)).toBe(warned);
    } else {
      expect(res.json().code).toBe('PASSWORD_EXPIRED');
      // After expiry only the change is allowed...
      expect((await b.request('GET', '/api/v1/orders')).json().code).toBe('MUST_CHANGE_PASSWORD');
      expect((await b.request('GET', '/api/v1/me')).statusCode).toBe(200);
      // ...and the change is allowed at once.
      expect((await b.changePassword('Aging-Pass1', 'Renewed-Pass2')).statusCode).toBe(204);
      expect((await b.request('GET', '/api/v1/orders')).statusCode).toBe(200);
    }
  });
});

describe('R-10 first login and first login after an admin reset force a change, overriding the minimum age', () => {
  test.each([['first login'], ['after admin reset']])('%s', async (when) => {
    const login = uniq('force');
    let initial = 'Initial-Pass1';
    if (when === 'after admin reset') {
      await activeUser(env, login, 'viewer', 'Normal-Pass1');
      // Minutes after the last change: the minimum age would refuse a voluntary change.
      env.clock.advance(5 * 60_000);
      initial = 'Reset-Pass1';
      await resetPassword(env.deps(), { login, password: initial, actor: 'test' });
    } else {
      await createUser(env.deps(), { login, role: 'viewer', password: initial, actor: 'test' });
    }
    const b = new Browser(env);
    const res = await b.login(login, initial);
    expect(res.statusCode).toBe(200);
    expect(res.json().mustChangePassword).toBe(true);
    // The change cannot be skipped: everything else answers 403 MUST_CHANGE_PASSWORD.
    for (const [method, url] of [['GET', '/api/v1/orders'], ['POST', '/api/v1/auth/logout-all'], ['GET', '/api/v1/orders/00000000-0000-0000-0000-000000000000']] as const) {
      const r = await b.request(method, url);
      expect([url, r.statusCode, r.json().code]).toEqual([url, 403, 'MUST_CHANGE_PASSWORD']);
    }
    expect((await b.request('GET', '/api/v1/me')).json().mustChangePassword).toBe(true);
    // A new login does not skip it either.
    expect((await new Browser(env).login(login, initial)).json().mustChangePassword).toBe(true);
    // The forced change is allowed at once (overrides the 1-business-day minimum).
    expect((await b.changePassword(initial, 'Chosen-Pass9')).statusCode).toBe(204);
    expect((await b.request('GET', '/api/v1/orders')).statusCode).toBe(200);
    expect((await b.request('GET', '/api/v1/me')).json().mustChangePassword).toBe(false);
  });
});

describe('R-11 30 calendar days without activity block the account', () => {
  test.each([
    [29, 200, null],
    [30, 403, 'BLOCKED_INACTIVE'],
    [45, 403, 'BLOCKED_INACTIVE'],
  ])('%s idle days -> %s %s', async (days, status, code) => {
    const login = uniq('idle');
    await activeUser(env, login, 'viewer', 'Idle-Pass-1');
    env.clock.advance(days * DAY);
    const res = await new Browser(env).login(login, 'Idle-Pass-1');
    expect(res.statusCode).toBe(status);
    if (code) {
      expect(res.json().code).toBe(code);
      // Still blocked on the next try, until an admin unblocks.
      expect((await new Browser(env).login(login, 'Idle-Pass-1')).json().code).toBe(code);
      await unblockUser(env.deps(), { login, actor: 'test' });
      expect((await new Browser(env).login(login, 'Idle-Pass-1')).statusCode).toBe(200);
    }
  });

  test('session activity counts as activity', async () => {
    const login = uniq('busy');
    const b = await activeUser(env, login, 'viewer', 'Busy-Pass-1');
    env.clock.advance(25 * 60_000);
    expect((await b.request('GET', '/api/v1/me')).statusCode).toBe(200);
    // 30 days after the login, but less than 30 days after the last request of the session.
    env.clock.advance(30 * DAY - 20 * 60_000);
    expect((await new Browser(env).login(login, 'Busy-Pass-1')).statusCode).toBe(200);
  });
});

describe('R-12 5 consecutive wrong passwords lock the account temporarily (default 30 min; admin unlock)', () => {
  test.each([
    [4, 401, 'INVALID_CREDENTIALS'],
    [5, 423, 'LOCKED_TEMPORARILY'],
  ])('%s wrong in a row -> the last answers %s %s', async (wrong, status, code) => {
    const login = uniq('lock');
    await activeUser(env, login, 'viewer', 'Right-Pass-1');
    let last;
    for (let i = 0; i < wrong; i += 1) last = await new Browser(env).login(login, `Wrong-Pass-${i}`);
    expect(last!.statusCode).toBe(status);
    expect(last!.json().code).toBe(code);
    const right = await new Browser(env).login(login, 'Right-Pass-1');
    expect(right.statusCode).toBe(wrong >= 5 ? 423 : 200);
    if (wrong >= 5) expect(Number(right.headers.get('retry-after'))).toBeGreaterThan(0);
  });

  test('a success in between resets the count (consecutive only)', async () => {
    const login = uniq('reset');
    await activeUser(env, login, 'viewer', 'Right-Pass-1');
    for (let i = 0; i < 4; i += 1) await new Browser(env).login(login, 'nope-Nope-1');
    expect((await new Browser(env).login(login, 'Right-Pass-1')).statusCode).toBe(200);
    for (let i = 0; i < 4; i += 1) expect((await new Browser(env).login(login, 'nope-Nope-1')).statusCode).toBe(401);
  });

  test.each([
    ['29 minutes later', 29 * 60_000, false, 423],
    ['31 minutes later', 31 * 60_000, false, 200],
    ['at once after an admin unlock', 0, true, 200],
  ])('locked, then the right password %s -> %s', async (_what, wait, adminUnlock, status) => {
    const login = uniq('unlock');
    await activeUser(env, login, 'viewer', 'Right-Pass-1');
    for (let i = 0; i < 5; i += 1) await new Browser(env).login(login, 'Wrong-Pass-1');
    env.clock.advance(wait);
    if (adminUnlock) await unblockUser(env.deps(), { login, actor: 'test' });
    expect((await new Browser(env).login(login, 'Right-Pass-1')).statusCode).toBe(status);
  });

  test('the lock ends the sessions it should not: a session open before the lock cannot be used while locked', async () => {
    const login = uniq('sess');
    const b = await activeUser(env, login, 'viewer', 'Right-Pass-1');
    await grantAll(env, login);
    for (let i = 0; i < 5; i += 1) await new Browser(env).login(login, 'Wrong-Pass-1');
    expect((await b.request('GET', '/api/v1/orders')).statusCode).toBe(401);
  });
});
