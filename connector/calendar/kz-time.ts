/**
 * Kazakhstan wall-clock time for the bank's operational day (R-20..R-22).
 *
 * The bank (Alatau City Bank) is in Almaty. Almaty was UTC+6 until 2024-03-01 00:00 local time,
 * when the whole country moved to one zone, UTC+5 (clocks went back one hour, so local
 * 2024-02-29 23:00..23:59 happened twice). We hard-code this switch instead of relying on the
 * ICU tzdata of the Node build, which may predate the 2024 change (tzdata 2024a), and because a
 * table lookup is what the hot path needs. Kazakhstan has no daylight saving time.
 */

export const MS_PER_MINUTE = 60_000;
export const MS_PER_DAY = 86_400_000;

/** 2024-03-01T00:00+06:00: the first instant of UTC+5 in Almaty. */
export const KZ_UTC5_SINCE_MS = Date.UTC(2024, 1, 29, 18, 0, 0);
/** 2024-03-01 as days since 1970-01-01: local dates from this one on are UTC+5. */
export const KZ_UTC5_SINCE_EPOCH_DAY = Date.UTC(2024, 2, 1) / MS_PER_DAY;

const OFFSET_UTC6_MS = 6 * 60 * MS_PER_MINUTE;
const OFFSET_UTC5_MS = 5 * 60 * MS_PER_MINUTE;

/** The UTC offset (ms) of Kazakhstan (Almaty) time at an instant. */
export function kzOffsetAtInstantMs(epochMs: number): number {
  return epochMs < KZ_UTC5_SINCE_MS ? OFFSET_UTC6_MS : OFFSET_UTC5_MS;
}

/**
 * The UTC offset (ms) used for a wall-clock time on a local date (days since 1970-01-01).
 * On 2024-02-29, 23:00..23:59 local is ambiguous; we take its first (UTC+6) occurrence, which
 * is consistent with the whole rest of that date being UTC+6.
 */
export function kzOffsetForLocalDateMs(epochDay: number): number {
  return epochDay < KZ_UTC5_SINCE_EPOCH_DAY ? OFFSET_UTC6_MS : OFFSET_UTC5_MS;
}

/** The local date (days since 1970-01-01) and milliseconds since local midnight of an instant. */
export function kzLocalDayOf(epochMs: number): { epochDay: number; msOfDay: number } {
  const local = epochMs + kzOffsetAtInstantMs(epochMs);
  const epochDay = Math.floor(local / MS_PER_DAY);
  return { epochDay, msOfDay: local - epochDay * MS_PER_DAY };
}

/** The instant of a Kazakhstan wall-clock time (minutes after midnight) on a local date. */
export function kzInstantOfLocalMs(epochDay: number, minutesOfDay: number): number {
  return epochDay * MS_PER_DAY + minutesOfDay * MS_PER_MINUTE - kzOffsetForLocalDateMs(epochDay);
}

const INSTANT_TEXT = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}(?::?\d{2})?)?)?$/i;

/**
 * An instant a person typed (`--bank-notified-at`, `--since`, `--at`): an ISO 8601 date and time
 * with its offset (`Z`, `+05:00`), or without one, then Kazakhstan wall-clock time; a date alone
 * (only when `dateOnly`) is the start of that Kazakhstan day. Never the machine's zone, as
 * `new Date(text)` does: a host under UTC read an operator's "10:30" as 15:30 in Almaty, one under
 * Asia/Almaty as 10:30. null when the text is no such time or names a day that does not exist.
 */
export function parseKzInstant(text: string, options: { dateOnly?: boolean } = {}): Date | null {
  const m = INSTANT_TEXT.exec(text.trim());
  if (!m) return null;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  if (h === undefined && !options.dateOnly) return null;
  const epochDay = Date.UTC(Number(y), Number(mo) - 1, Number(d)) / MS_PER_DAY;
  if (!Number.isSafeInteger(epochDay) || new Date(epochDay * MS_PER_DAY).toISOString().slice(0, 10) !== `${y}-${mo}-${d}`) return null;
  const hours = Number(h ?? 0);
  const minutes = Number(mi ?? 0);
  if (hours > 23 || minutes > 59 || Number(s ?? 0) > 59) return null;
  const extraMs = Number(s ?? 0) * 1000 + Math.floor(Number(`0.${frac ?? '0'}`) * 1000);
  if (zone === undefined) return new Date(kzInstantOfLocalMs(epochDay, hours * 60 + minutes) + extraMs);
  let offsetMinutes = 0;
  if (zone.toUpperCase() !== 'Z') {
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2) || '0');
    if (oh > 23 || om > 59) return null;
    offsetMinutes = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om);
  }
  return new Date(epochDay * MS_PER_DAY + (hours * 60 + minutes - offsetMinutes) * MS_PER_MINUTE + extraMs);
}
