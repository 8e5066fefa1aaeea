import { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { characterGroups, checkPasswordStrength, earliestNextChange, hashPassword, isInactive, isPasswordExpired, passwordExpiresInDays, verifyPassword } from './password.policy';

describe('R-6, R-7 strength', () => {
  test.each([
    ['Ab1!xyz', 'TOO_SHORT'],
    ['Ab1!Ab1!', null],
    ['abcdefgh', 'TOO_SIMPLE'],
    ['ABCD1234', 'TOO_SIMPLE'],
    ['abcd!@#$', 'TOO_SIMPLE'],
    ['abcdEFG1', null],
    ['ab cd EF', null],
    ['ПарольПароль1', null],
    // 8 characters, 4 groups, but only 7 "letters" when counted in UTF-16 units would still be 8: length counts characters.
    ['Пароль1!', null],
  ])('%s -> %s', (password, code) => {
    expect(checkPasswordStrength(password)?.code ?? null).toBe(code);
  });
  test('groups', () => {
    expect(characterGroups('a')).toBe(1);
    expect(characterGroups('aA')).toBe(2);
    expect(characterGroups('aA1')).toBe(3);
    expect(characterGroups('aA1 ')).toBe(4);
  });
  test('messages are Russian for the user, English for the log', () => {
    const v = checkPasswordStrength('short')!;
    expect(v.message).toMatch(/[а-я]/);
    expect(v.logMessage).toMatch(/^[\x20-\x7e]+$/);
  });
});

describe('R-9 ages', () => {
  const shipped = KzBusinessCalendar.shipped({ cutoff: '17:00' });
  test.each([
    // Kazakhstan time is UTC+5: 04:00Z is 09:00 local.
    ['Monday', '2026-03-02T04:00:00Z', '2026-03-03T04:00:00Z'],
    ['Friday before the 9 March carry-over holiday', '2026-03-06T04:00:00Z', '2026-03-10T04:00:00Z'],
    ['Saturday', '2026-03-07T04:00:00Z', '2026-03-10T04:00:00Z'],
    ['Monday 23:30 local (18:30Z) is still Monday', '2026-03-02T18:30:00Z', '2026-03-03T18:30:00Z'],
    ['Monday 00:30 local (Sunday 19:30Z) is Monday', '2026-03-01T19:30:00Z', '2026-03-02T19:30:00Z'],
  ])('minimum age from %s', (_what, changed, earliest) => {
    expect(earliestNextChange(new Date(changed), shipped).toISOString()).toBe(new Date(earliest).toISOString());
  });
  test('minimum age follows the calendar it is given (the running connector\'s, with calendar.dataDir)', () => {
    // An operator's year file that makes Tuesday 2026-03-03 a holiday: Monday's password waits until Wednesday.
    const withHoliday = { addBusinessDays: (date: string, n: number) => (date === '2026-03-02' && n === 1 ? '2026-03-04' : shipped.addBusinessDays(date, n)) };
    expect(earliestNextChange(new Date('2026-03-02T04:00:00Z'), withHoliday).toISOString()).toBe('2026-03-04T04:00:00.000Z');
  });
  test.each([
    ['Thursday', '2028-03-02T04:00:00Z', '2028-03-03T04:00:00Z'],
    ['Friday', '2028-03-03T04:00:00Z', '2028-03-06T04:00:00Z'],
    ['Saturday', '2028-03-04T04:00:00Z', '2028-03-06T04:00:00Z'],
    ['Sunday 23:30 local', '2028-03-05T18:30:00Z', '2028-03-06T18:30:00Z'],
  ])('a year the calendar does not cover (2028 in the shipped data): %s counts Monday to Friday', (_what, changed, earliest) => {
    expect(() => shipped.addBusinessDays('2028-03-02', 1)).toThrow(/outside the calendar data/);
    expect(earliestNextChange(new Date(changed), shipped).toISOString()).toBe(new Date(earliest).toISOString());
  });
  test('maximum age 60 days, days left rounded up', () => {
    const changed = new Date('2026-01-01T00:00:00Z');
    expect(isPasswordExpired(changed, new Date('2026-03-01T23:59:59Z'))).toBe(false);
    expect(isPasswordExpired(changed, new Date('2026-03-02T00:00:00Z'))).toBe(true);
    expect(passwordExpiresInDays(changed, new Date('2026-02-22T12:00:00Z'))).toBe(8);
    expect(passwordExpiresInDays(changed, new Date('2026-02-23T00:00:00Z'))).toBe(7);
  });
  test('R-11 inactivity 30 days', () => {
    const last = new Date('2026-01-01T00:00:00Z');
    expect(isInactive(last, new Date('2026-01-30T23:59:59Z'))).toBe(false);
    expect(isInactive(last, new Date('2026-01-31T00:00:00Z'))).toBe(true);
  });
});

describe('scrypt hashing', () => {
  test('per-user salt, verifies only the right password, stores no clear text', async () => {
    const a = await hashPassword('Same-Pass-1', 14);
    const b = await hashPassword('Same-Pass-1', 14);
    expect(a).not.toBe(b);
    expect(a).not.toContain('Same-Pass-1');
    expect(a).toMatch(/^scrypt\$14\$8\$1\$/);
    expect(await verifyPassword('Same-Pass-1', a)).toBe(true);
    expect(await verifyPassword('Same-Pass-2', a)).toBe(false);
    expect(await verifyPassword('Same-Pass-1', 'garbage')).toBe(false);
  });
});
