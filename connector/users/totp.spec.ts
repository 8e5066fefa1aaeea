import { base32Decode, base32Encode, hotp, newTotpSecret, totp, verifyTotp } from './totp';

const RFC_SECRET = Buffer.from('12345678901234567890', 'ascii');

describe('HOTP (RFC 4226 appendix D)', () => {
  test.each([
    [0, '755224'],
    [1, '287082'],
    [2, '359152'],
    [3, '969429'],
    [4, '338314'],
    [5, '254676'],
    [6, '287922'],
    [7, '162583'],
    [8, '399871'],
    [9, '520489'],
  ])('counter %s -> %s', (counter, code) => {
    expect(hotp(RFC_SECRET, counter)).toBe(code);
  });
});

describe('TOTP SHA-1 (RFC 6238 appendix B, 8 digits)', () => {
  test.each([
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ])('T=%s -> %s', (seconds, code) => {
    expect(totp(RFC_SECRET, new Date(seconds * 1000), { digits: 8 })).toBe(code);
  });
});

describe('verifyTotp', () => {
  const at = new Date('2026-03-02T04:00:10Z');
  const code = totp(RFC_SECRET, at);
  test.each([
    ['the current step', 0, true],
    ['one step behind (phone clock drift)', 30_000, true],
    ['one step ahead', -30_000, true],
    ['two steps behind', 60_000, false],
    ['two steps ahead', -60_000, false],
  ])('a code of %s -> %s', (_what, offset, ok) => {
    expect(verifyTotp(RFC_SECRET, code, new Date(at.getTime() + offset))).toBe(ok);
  });
  test.each([['12345'], ['1234567'], ['abcdef'], ['']])('malformed "%s" is refused', (bad) => {
    expect(verifyTotp(RFC_SECRET, bad, at)).toBe(false);
  });
});

test('base32 round-trips (RFC 4648 vectors) and new seeds are 160 bits', () => {
  expect(base32Encode(Buffer.from('foobar'))).toBe('MZXW6YTBOI');
  expect(base32Decode('MZXW6YTBOI').toString()).toBe('foobar');
  expect(base32Decode('mzxw6ytboi======').toString()).toBe('foobar');
  const seed = newTotpSecret();
  expect(base32Decode(seed)).toHaveLength(20);
  expect(newTotpSecret()).not.toBe(seed);
});
