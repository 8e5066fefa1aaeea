import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ConnectorError } from '../shared/errors';
import kz2024 from './data/kz-2024.json';
import kz2025 from './data/kz-2025.json';
import kz2026 from './data/kz-2026.json';
import kz2027 from './data/kz-2027.json';

/**
 * The shipped Kazakhstan calendar data: one JSON file per year under `data/`, each listing
 * public holidays (law «О праздниках в Республике Казахстан»), the days off that the law's
 * art. 5 carries over when a non-religious holiday falls on a Saturday or Sunday, and the
 * day-off transfers ordered for that year (since 2024 by order of the Minister of Labour and
 * Social Protection; before that by Government decree). Every entry and every year says whether
 * it is confirmed by an official source; `sources` name them.
 *
 * Adding a year: write `data/kz-YYYY.json` (carry-overs may be computed with `deriveCarryOvers`
 * and then checked against the official egov.kz calendar), import it below, and extend the spec.
 */

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD');

const holidaySchema = z
  .object({
    date: isoDate,
    name: z.string().min(1),
    nameEn: z.string().min(1),
    /** `religious` days off (Orthodox Christmas, first day of Kurban Ait) are never carried over. */
    kind: z.enum(['national', 'state', 'religious']),
    confirmed: z.boolean(),
    note: z.string().optional(),
  })
  .strict();

const carryOverSchema = z
  .object({
    date: isoDate,
    /** The holiday on a weekend that this day off replaces. */
    for: isoDate,
    name: z.string().min(1),
    confirmed: z.boolean(),
  })
  .strict();

const transferSchema = z
  .object({
    /** A Saturday or Sunday that becomes a working day. */
    workingDay: isoDate,
    /** The weekday that becomes a day off instead. */
    dayOff: isoDate,
    source: z.string().min(1),
    confirmed: z.boolean(),
  })
  .strict();

export const calendarYearSchema = z
  .object({
    year: z.number().int().min(2000).max(2100),
    /** false while anything in the year may still change (transfers, Kurban Ait, law changes). */
    confirmed: z.boolean(),
    utcOffsetNote: z.string().optional(),
    sources: z.array(z.object({ title: z.string().min(1), url: z.string().url().optional() }).strict()).min(1),
    holidays: z.array(holidaySchema).min(1),
    carryOvers: z.array(carryOverSchema),
    transfers: z.array(transferSchema),
    notes: z.array(z.string()).default([]),
  })
  .strict();

export type CalendarYearData = z.infer<typeof calendarYearSchema>;
export type HolidayEntry = z.infer<typeof holidaySchema>;
export type CarryOverEntry = z.infer<typeof carryOverSchema>;
export type TransferEntry = z.infer<typeof transferSchema>;

/** Days since 1970-01-01 of a valid ISO date, or NaN when the text is not a real calendar date. */
export function epochDayOfIso(text: string): number {
  if (text.length !== 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return NaN;
  const y = digits(text, 0, 4);
  const m = digits(text, 5, 7);
  const d = digits(text, 8, 10);
  if (Number.isNaN(y) || Number.isNaN(m) || Number.isNaN(d) || m < 1 || m > 12 || d < 1) return NaN;
  if (d > daysInMonth(y, m)) return NaN;
  return Date.UTC(y, m - 1, d) / 86_400_000;
}

function digits(text: string, from: number, to: number): number {
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return NaN;
    value = value * 10 + c;
  }
  return value;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

export function isoOfEpochDay(epochDay: number): string {
  return new Date(epochDay * 86_400_000).toISOString().slice(0, 10);
}

/** 0 = Sunday .. 6 = Saturday. */
export function weekdayOfEpochDay(epochDay: number): number {
  // 1970-01-01 was a Thursday (4).
  return (((epochDay + 4) % 7) + 7) % 7;
}

export function isWeekendEpochDay(epochDay: number): boolean {
  const w = weekdayOfEpochDay(epochDay);
  return w === 0 || w === 6;
}

/**
 * The law's art. 5 rule: when a national or state holiday falls on a Saturday or Sunday, the next
 * working day after it is a day off. Religious days off are not carried over. Several weekend
 * holidays in a row (Nauryz 2025: Sat 22 + Sun 23) each give one day, in order. Transfers do not
 * take part: the carried day is the next Monday-Friday that is neither a holiday, an earlier
 * carry-over nor a transfer's day off.
 */
export function deriveCarryOvers(year: Pick<CalendarYearData, 'holidays' | 'transfers'>): Array<{ date: string; for: string }> {
  const holidayDays = new Set(year.holidays.map((h) => epochDayOfIso(h.date)));
  const transferOff = new Set(year.transfers.map((t) => epochDayOfIso(t.dayOff)));
  const taken = new Set<number>();
  const result: Array<{ date: string; for: string }> = [];
  const sorted = [...year.holidays].sort((a, b) => a.date.localeCompare(b.date));
  for (const holiday of sorted) {
    const day = epochDayOfIso(holiday.date);
    if (holiday.kind === 'religious' || !isWeekendEpochDay(day)) continue;
    let next = day + 1;
    while (isWeekendEpochDay(next) || holidayDays.has(next) || taken.has(next) || transferOff.has(next)) next++;
    taken.add(next);
    result.push({ date: isoOfEpochDay(next), for: holiday.date });
  }
  return result;
}

function invalid(message: string, details?: unknown): ConnectorError {
  return new ConnectorError('CALENDAR_DATA_INVALID', message, 1, details);
}

/**
 * Validates one year's file: schema, every date real and inside the year, no date listed twice,
 * carry-overs on weekdays and pointing at a weekend holiday, transfers from a weekend to a weekday.
 */
export function parseCalendarYear(raw: unknown, label: string): CalendarYearData {
  const parsed = calendarYearSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw invalid(`${label}: ${issue ? `${issue.path.join('.')}: ${issue.message}` : 'invalid'}`);
  }
  const year = parsed.data;
  const seen = new Map<string, string>();
  const claim = (date: string, what: string): number => {
    const day = epochDayOfIso(date);
    if (Number.isNaN(day)) throw invalid(`${label}: ${what} ${date} is not a calendar date`);
    if (!date.startsWith(`${year.year}-`)) throw invalid(`${label}: ${what} ${date} is outside ${year.year}`);
    const previous = seen.get(date);
    if (previous) throw invalid(`${label}: ${date} is listed twice (${previous}, ${what})`);
    seen.set(date, what);
    return day;
  };
  for (const h of year.holidays) claim(h.date, 'holiday');
  const holidays = new Map(year.holidays.map((h) => [h.date, h]));
  for (const c of year.carryOvers) {
    const day = claim(c.date, 'carry-over');
    if (isWeekendEpochDay(day)) throw invalid(`${label}: carry-over ${c.date} falls on a weekend`);
    const of = holidays.get(c.for);
    if (!of || of.kind === 'religious' || !isWeekendEpochDay(epochDayOfIso(of.date))) {
      throw invalid(`${label}: carry-over ${c.date} is for ${c.for}, which is not a non-religious holiday on a weekend`);
    }
  }
  for (const t of year.transfers) {
    if (!isWeekendEpochDay(claim(t.workingDay, 'transfer working day'))) {
      throw invalid(`${label}: transfer working day ${t.workingDay} is not a Saturday or Sunday`);
    }
    if (isWeekendEpochDay(claim(t.dayOff, 'transfer day off'))) {
      throw invalid(`${label}: transfer day off ${t.dayOff} is not a weekday`);
    }
  }
  return year;
}

const YEAR_FILE = /^kz-(\d{4})\.json$/;

/**
 * The shipped years with an operator's files laid over them (config `calendar.dataDir`): each
 * `kz-YYYY.json` there replaces the shipped year of that number or adds a year after the last, so
 * the ministry's order of transfers for next year (published in the autumn) is in force without
 * waiting for a release. Every file is validated as the shipped ones are, and a file named for one
 * year that holds another, or any other `*.json` in the folder, is refused: a calendar read wrongly
 * gives every deadline (R-21, R-22, R-27) a wrong day.
 */
export function loadCalendarData(dataDir?: string): CalendarYearData[] {
  const years = new Map(loadShippedCalendarData().map((y) => [y.year, y]));
  if (dataDir === undefined) return [...years.values()];
  let names: string[];
  try {
    names = readdirSync(dataDir).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    throw invalid(`calendar.dataDir ${dataDir}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  for (const name of names) {
    const path = join(dataDir, name);
    const named = YEAR_FILE.exec(name);
    if (!named) throw invalid(`${path}: a calendar file is named kz-YYYY.json (the year it holds)`);
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw invalid(`${path}: not readable JSON (${(err as Error).message})`);
    }
    const year = parseCalendarYear(raw, path);
    if (year.year !== Number(named[1])) throw invalid(`${path}: year: holds ${year.year}, but the file is named for ${named[1]}`);
    years.set(year.year, year);
  }
  return [...years.values()].sort((a, b) => a.year - b.year);
}

/** The years shipped with the connector, validated, in order. */
export function loadShippedCalendarData(): CalendarYearData[] {
  return [
    parseCalendarYear(kz2024, 'kz-2024.json'),
    parseCalendarYear(kz2025, 'kz-2025.json'),
    parseCalendarYear(kz2026, 'kz-2026.json'),
    parseCalendarYear(kz2027, 'kz-2027.json'),
  ];
}
