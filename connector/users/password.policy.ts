import { randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { CalendarError, type KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { kzLocalDayOf, MS_PER_DAY } from '../calendar/kz-time';

/**
 * The password policy of the bank's terms, clause 3.5.1 (R-6..R-12), as pure functions, and the
 * scrypt hashing (memory-hard, per-user salt, constant-time comparison).
 */
export const MIN_LENGTH = 8;
export const MIN_GROUPS = 3; // of lower, upper, digit, special
export const HISTORY_SIZE = 7;
export const MAX_AGE_DAYS = 60;
export const WARN_DAYS = 7;
export const INACTIVITY_DAYS = 30;
export const MAX_FAILED_ATTEMPTS = 5;

export type PasswordRuleCode = 'TOO_SHORT' | 'TOO_SIMPLE' | 'REUSED' | 'TOO_SOON';

export interface PasswordViolation {
  code: PasswordRuleCode;
  /** For the user (Russian). */
  message: string;
  /** For logs (English). */
  logMessage: string;
}

export function violation(code: PasswordRuleCode, extra: { earliest?: Date } = {}): PasswordViolation {
  switch (code) {
    case 'TOO_SHORT':
      return { code, message: `Пароль слишком короткий: нужно не менее ${MIN_LENGTH} символов.`, logMessage: `password shorter than ${MIN_LENGTH} characters (R-6)` };
    case 'TOO_SIMPLE':
      return {
        code,
        message: 'Пароль слишком простой: используйте символы не менее трёх групп из четырёх — строчные буквы, заглавные буквы, цифры, специальные символы.',
        logMessage: `password uses fewer than ${MIN_GROUPS} of 4 character groups (R-7)`,
      };
    case 'REUSED':
      return { code, message: `Пароль должен отличаться от ${HISTORY_SIZE} предыдущих паролей.`, logMessage: `password equals one of the previous ${HISTORY_SIZE} (R-8)` };
    case 'TOO_SOON': {
      const when = extra.earliest ? ` Сменить пароль можно не ранее ${extra.earliest.toISOString().replace('T', ' ').slice(0, 16)} UTC.` : '';
      return { code, message: `Пароль можно менять не чаще одного раза в рабочий день.${when}`, logMessage: 'password changed less than 1 business day ago (R-9 minimum age)' };
    }
  }
}

/** the character groups a password uses. Letters of any script count (Cyrillic passwords). */
export function characterGroups(password: string): number {
  let groups = 0;
  if (/\p{Ll}/u.test(password)) groups += 1;
  if (/\p{Lu}/u.test(password)) groups += 1;
  if (/\p{Nd}/u.test(password)) groups += 1;
  if (/[^\p{L}\p{Nd}]/u.test(password)) groups += 1;
  return groups;
}

/** checks that need only the password itself. Length counts characters, not bytes. */
export function checkPasswordStrength(password: string): PasswordViolation | null {
  if ([...password].length < MIN_LENGTH) return violation('TOO_SHORT');
  if (characterGroups(password) < MIN_GROUPS) return violation('TOO_SIMPLE');
  return null;
}

/**
 * R-9 minimum age of 1 business day: a password set at instant t may be changed again from the
 * same Kazakhstan local time on the first business day after t's local date (Monday 10:00 ->
 * Tuesday 10:00, Friday 10:00 -> Monday 10:00, Saturday 10:00 -> Monday 10:00, over holidays
 * by the Kazakhstan calendar: the running connector's, with the operator's `calendar.dataDir`
 * years). A date the calendar does not cover counts Monday to Friday as business days: the rule
 * only delays a change, and a user must not be kept from changing a password for want of a year's
 * holidays. A forced change ignores it.
 */
export function earliestNextChange(changedAt: Date, calendar: Pick<KzBusinessCalendar, 'addBusinessDays'>): Date {
  const { epochDay } = kzLocalDayOf(changedAt.getTime());
  const date = new Date(epochDay * MS_PER_DAY).toISOString().slice(0, 10);
  let nextEpochDay: number;
  try {
    nextEpochDay = Date.parse(`${calendar.addBusinessDays(date, 1)}T00:00:00Z`) / MS_PER_DAY;
  } catch (err) {
    if (!(err instanceof CalendarError) || err.code !== 'CALENDAR_YEAR_NOT_COVERED') throw err;
    nextEpochDay = epochDay + 1;
    // 1970-01-01 (epoch day 0) was a Thursday: day % 7 is 2 on a Saturday and 3 on a Sunday.
    while (nextEpochDay % 7 === 2 || nextEpochDay % 7 === 3) nextEpochDay++;
  }
  return new Date(changedAt.getTime() + (nextEpochDay - epochDay) * MS_PER_DAY);
}

/** the instant the password expires (60 calendar days after it was set). */
export function passwordExpiresAt(changedAt: Date): Date {
  return new Date(changedAt.getTime() + MAX_AGE_DAYS * MS_PER_DAY);
}

/** Whole days left (rounded up) until expiry; 0 or less means expired. */
export function passwordExpiresInDays(changedAt: Date, now: Date): number {
  return Math.ceil((passwordExpiresAt(changedAt).getTime() - now.getTime()) / MS_PER_DAY);
}

export function isPasswordExpired(changedAt: Date, now: Date): boolean {
  return now.getTime() >= passwordExpiresAt(changedAt).getTime();
}

/** 30 calendar days without activity. */
export function isInactive(lastActivityAt: Date, now: Date): boolean {
  return now.getTime() - lastActivityAt.getTime() >= INACTIVITY_DAYS * MS_PER_DAY;
}

// ---- hashing ----------------------------------------------------------------------------------

function scrypt(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password.normalize('NFC'), salt, keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

const KEY_LEN = 32;

/** `scrypt$<logN>$<r>$<p>$<salt b64url>$<hash b64url>`; salt is 16 random bytes per hash. */
export async function hashPassword(password: string, logN = 15): Promise<string> {
  const salt = randomBytes(16);
  const N = 2 ** logN;
  const r = 8;
  const p = 1;
  const key = await scrypt(password, salt, KEY_LEN, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return ['scrypt', logN, r, p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Constant-time comparison against a stored hash (timingSafeEqual on equal-length keys). */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const logN = Number(parts[1]);
  const r = Number(parts[2]);
  const p = Number(parts[3]);
  if (!Number.isInteger(logN) || logN < 10 || logN > 22 || !Number.isInteger(r) || !Number.isInteger(p)) return false;
  const expected = Buffer.from(parts[5], 'base64url');
  const N = 2 ** logN;
  const key = await scrypt(password, Buffer.from(parts[4], 'base64url'), expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  return key.length === expected.length && timingSafeEqual(key, expected);
}

/** A hash to compare against when the login does not exist, so the answer takes as long (no user enumeration by timing). */
let dummyHash: Promise<string> | undefined;
export function dummyPasswordHash(logN: number): Promise<string> {
  dummyHash ??= hashPassword(randomBytes(18).toString('base64'), logN);
  return dummyHash;
}
