import { ConnectorError } from '../shared/errors';
import {
  type CalendarYearData,
  epochDayOfIso,
  isoOfEpochDay,
  isWeekendEpochDay,
  loadCalendarData,
  loadShippedCalendarData,
} from './kz-calendar-data';
import { kzInstantOfLocalMs, kzLocalDayOf } from './kz-time';

/**
 * The Kazakhstan business-day calendar and the bank's operational day.
 *
 * Used for: the operational day of an instruction (R-20..R-22: documents may be formed 24/7, the
 * bank executes within its operational day), the password minimum age of 1 business day (R-9),
 * 1-business-day deadlines (R-17, R-21, R-29) and 3 operational days (R-27).
 *
 * A business day is a Monday-Friday that is not a holiday, not a carried-over day off and not a
 * transfer's day off, or a Saturday/Sunday made a working day by a transfer. Dates at the API are
 * ISO `YYYY-MM-DD` strings (Kazakhstan local dates); instants are `Date`.
 *
 * Outside the shipped years the calendar does NOT fall back to weekends-only: every call that
 * needs a date outside them throws `CALENDAR_YEAR_NOT_COVERED` (fail closed: a deadline computed
 * on a guessed calendar is a wrong deadline). `coverage()` tells doctor/ops how far the data goes
 * and `unconfirmed()` what is still provisional.
 *
 * Everything is precomputed into typed arrays at construction, so each call is a table lookup.
 */

export type IsoDate = string;

export type CalendarErrorCode =
  | 'CALENDAR_YEAR_NOT_COVERED'
  | 'CALENDAR_INVALID_DATE'
  | 'CALENDAR_NOT_BUSINESS_DAY'
  | 'CALENDAR_DATA_INVALID';

export class CalendarError extends ConnectorError {
  constructor(code: CalendarErrorCode, message: string, exitCode: 1 | 2 = 1, details?: unknown) {
    super(code, message, exitCode, details);
    this.name = 'CalendarError';
  }
}

export type DayKind = 'workday' | 'weekend' | 'holiday' | 'carry-over' | 'transfer-day-off' | 'transfer-working-day';

export interface DayInfo {
  date: IsoDate;
  businessDay: boolean;
  kind: DayKind;
  /** Name of the holiday, carry-over or transfer source. */
  name?: string;
  /** False when the entry (or, for plain days, the year's transfer list) is not yet official. */
  confirmed: boolean;
}

export interface UnconfirmedEntry {
  year: number;
  date?: IsoDate;
  what: string;
}

export interface KzBusinessCalendarOptions {
  /** The bank's cut-off, Kazakhstan local time "HH:MM" (config `calendar.cutoff`). */
  cutoff: string;
}

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

interface Marked {
  kind: DayKind;
  name?: string;
  confirmed: boolean;
}

export class KzBusinessCalendar {
  private readonly firstEpochDay: number;
  private readonly dayCount: number;
  private readonly years: readonly CalendarYearData[];
  /** 1 when the day at this index is a business day. */
  private readonly business: Uint8Array;
  /** cumulative[i] = business days at indices 0..i. */
  private readonly cumulative: Int32Array;
  /** Indices of business days, ascending. */
  private readonly businessIndex: Int32Array;
  /** Instant (epoch ms) when each business day's operational day ends; NaN on other days. */
  private readonly endMs: Float64Array;
  private readonly iso: string[];
  private readonly marked = new Map<number, Marked>();
  private readonly yearConfirmed = new Map<number, boolean>();
  readonly cutoff: string;
  readonly cutoffMinutes: number;

  constructor(data: readonly CalendarYearData[], options: KzBusinessCalendarOptions) {
    const match = HHMM.exec(options.cutoff);
    if (!match) throw new CalendarError('CALENDAR_DATA_INVALID', `calendar.cutoff "${options.cutoff}" is not HH:MM (24h)`);
    this.cutoff = options.cutoff;
    this.cutoffMinutes = Number(match[1]) * 60 + Number(match[2]);
    if (data.length === 0) throw new CalendarError('CALENDAR_DATA_INVALID', 'no calendar years given');
    this.years = [...data].sort((a, b) => a.year - b.year);
    this.years.forEach((y, i) => {
      if (i > 0 && y.year !== this.years[i - 1]!.year + 1) {
        throw new CalendarError('CALENDAR_DATA_INVALID', `calendar years must be contiguous: ${this.years[i - 1]!.year} then ${y.year}`);
      }
      this.yearConfirmed.set(y.year, y.confirmed);
    });
    const firstYear = this.years[0]!.year;
    const lastYear = this.years[this.years.length - 1]!.year;
    this.firstEpochDay = Date.UTC(firstYear, 0, 1) / 86_400_000;
    this.dayCount = Date.UTC(lastYear + 1, 0, 1) / 86_400_000 - this.firstEpochDay;

    for (const y of this.years) {
      for (const h of y.holidays) this.mark(h.date, { kind: 'holiday', name: h.name, confirmed: h.confirmed });
      for (const c of y.carryOvers) this.mark(c.date, { kind: 'carry-over', name: c.name, confirmed: c.confirmed });
      for (const t of y.transfers) {
        this.mark(t.workingDay, { kind: 'transfer-working-day', name: t.source, confirmed: t.confirmed });
        this.mark(t.dayOff, { kind: 'transfer-day-off', name: t.source, confirmed: t.confirmed });
      }
    }

    this.business = new Uint8Array(this.dayCount);
    this.cumulative = new Int32Array(this.dayCount);
    this.endMs = new Float64Array(this.dayCount).fill(Number.NaN);
    this.iso = new Array<string>(this.dayCount);
    const businessList: number[] = [];
    let running = 0;
    for (let i = 0; i < this.dayCount; i++) {
      const epochDay = this.firstEpochDay + i;
      this.iso[i] = isoOfEpochDay(epochDay);
      const m = this.marked.get(i);
      const isBusiness = m ? m.kind === 'transfer-working-day' : !isWeekendEpochDay(epochDay);
      if (isBusiness) {
        this.business[i] = 1;
        businessList.push(i);
        running++;
        this.endMs[i] = kzInstantOfLocalMs(epochDay, this.cutoffMinutes);
      }
      this.cumulative[i] = running;
    }
    this.businessIndex = Int32Array.from(businessList);
  }

  /** A calendar over the shipped data (2024..2027) with the bank's cut-off from config. */
  static shipped(options: KzBusinessCalendarOptions): KzBusinessCalendar {
    return new KzBusinessCalendar(loadShippedCalendarData(), options);
  }

  /** True on a Kazakhstan business day (see the class comment). */
  isBusinessDay(date: IsoDate): boolean {
    return this.business[this.indexOf(date)] === 1;
  }

  /** The first business day strictly after `date`. */
  nextBusinessDay(date: IsoDate): IsoDate {
    return this.isoOfBusinessRank(this.cumulative[this.indexOf(date)]!, date);
  }

  /** The last business day strictly before `date`. */
  previousBusinessDay(date: IsoDate): IsoDate {
    const i = this.indexOf(date);
    return this.isoOfBusinessRank(this.cumulative[i]! - this.business[i]! - 1, date);
  }

  /**
   * The n-th business day after `date` (n > 0) or before it (n < 0), not counting `date` itself,
   * whether or not `date` is a business day: addBusinessDays(Fri, 1) = Mon; addBusinessDays(Sat, 1)
   * = Mon. n = 0 returns `date` unchanged.
   */
  addBusinessDays(date: IsoDate, n: number): IsoDate {
    if (!Number.isSafeInteger(n)) throw new CalendarError('CALENDAR_INVALID_DATE', `business-day count ${n} is not an integer`, 2);
    const i = this.indexOf(date);
    if (n === 0) return this.iso[i]!;
    const rank = n > 0 ? this.cumulative[i]! + n - 1 : this.cumulative[i]! - this.business[i]! + n;
    return this.isoOfBusinessRank(rank, date);
  }

  /**
   * Business days in the half-open range (from, to]: 0 for the same day, 1 from a business day
   * to the next one, negative when `to` is before `from`. So for a business day `to` after
   * `from`, addBusinessDays(from, businessDaysBetween(from, to)) === to.
   */
  businessDaysBetween(from: IsoDate, to: IsoDate): number {
    return this.cumulative[this.indexOf(to)]! - this.cumulative[this.indexOf(from)]!;
  }

  /**
   * The operational day an instruction received at `instant` belongs to (R-20): its Kazakhstan
   * local date when that is a business day and the instant is before the cut-off, otherwise the
   * next business day. The cut-off instant itself belongs to the next operational day.
   */
  operationalDayOf(instant: Date): IsoDate {
    const ms = instant.getTime();
    if (Number.isNaN(ms)) throw new CalendarError('CALENDAR_INVALID_DATE', 'invalid instant', 2);
    const local = kzLocalDayOf(ms);
    const i = local.epochDay - this.firstEpochDay;
    if (i < 0 || i >= this.dayCount) throw this.notCovered(isoOfEpochDay(local.epochDay));
    // Compare with the precomputed end instant, not the wall clock: on 2024-02-29 local 23:xx
    // happened twice (UTC+6 -> UTC+5), and the mapping must stay monotonic in time.
    if (this.business[i] === 1 && ms < this.endMs[i]!) return this.iso[i]!;
    return this.isoOfBusinessRank(this.cumulative[i]!, this.iso[i]!);
  }

  /**
   * The instant the operational day `day` ends: the cut-off on that date, Kazakhstan time
   * (UTC+6 before 2024-03-01, UTC+5 since). Instructions strictly before it belong to `day`
   * (when received on `day` or after the previous day's end). Throws CALENDAR_NOT_BUSINESS_DAY
   * for a day the bank does not work.
   */
  endOfOperationalDay(day: IsoDate): Date {
    const i = this.indexOf(day);
    if (this.business[i] !== 1) {
      throw new CalendarError('CALENDAR_NOT_BUSINESS_DAY', `${day} is not a business day in Kazakhstan, so it has no operational day`);
    }
    return new Date(this.endMs[i]!);
  }

  /**
   * The end of the n-th operational day after the one `instant` belongs to (n >= 0); n = 0 is
   * the end of that operational day itself: when an instruction received at `instant` is due
   * (R-21, R-22). The duties to tell the bank within days of a discovery count from its date:
   * noticeDeadline.
   */
  operationalDeadline(instant: Date, n: number): Date {
    if (!Number.isSafeInteger(n) || n < 0) throw new CalendarError('CALENDAR_INVALID_DATE', `operational-day count ${n} must be a whole number >= 0`, 2);
    return this.endOfOperationalDay(this.addBusinessDays(this.operationalDayOf(instant), n));
  }

  /**
   * The deadline of a duty to tell the bank "within n business days" of a discovery (R-17 and R-29:
   * 1; R-27: 3): the end of the n-th business day after the Kazakhstan date of `instant` (n >= 1),
   * whatever the hour. Counted from the day it happened, not from the operational day an
   * instruction received then would belong to: found on Friday at 18:00, on Saturday or on Sunday,
   * the bank is to be told by the end of Monday, not of Tuesday. Never later than
   * operationalDeadline(instant, n).
   */
  noticeDeadline(instant: Date, n: number): Date {
    if (!Number.isSafeInteger(n) || n < 1) throw new CalendarError('CALENDAR_INVALID_DATE', `business-day count ${n} must be a whole number >= 1`, 2);
    const ms = instant.getTime();
    if (Number.isNaN(ms)) throw new CalendarError('CALENDAR_INVALID_DATE', 'invalid instant', 2);
    const day = this.addBusinessDays(isoOfEpochDay(kzLocalDayOf(ms).epochDay), n);
    const end = this.endOfOperationalDay(day);
    // A cut-off of 00:00 is the start of that day's date: the day itself still counts, to its end.
    return this.cutoffMinutes === 0 ? new Date(end.getTime() + 86_400_000) : end;
  }

  /**
   * noticeDeadline, failing closed: beyond the shipped years (CALENDAR_YEAR_NOT_COVERED, which
   * `doctor` warns of 90 days ahead) 24 hours from `instant`, sooner than any business day can end.
   * For a duty to tell the bank, an early deadline is a nuisance; no incident at all, because its
   * deadline could not be computed, would hide the duty.
   */
  noticeDeadlineOrSooner(instant: Date, n: number): Date {
    try {
      return this.noticeDeadline(instant, n);
    } catch (err) {
      if (!(err instanceof CalendarError) || err.code !== 'CALENDAR_YEAR_NOT_COVERED') throw err;
      return new Date(instant.getTime() + DAY_MS);
    }
  }

  /** What a date is, for logs, reports and the console. */
  dayInfo(date: IsoDate): DayInfo {
    const i = this.indexOf(date);
    const m = this.marked.get(i);
    const businessDay = this.business[i] === 1;
    if (m) return { date: this.iso[i]!, businessDay, kind: m.kind, ...(m.name ? { name: m.name } : {}), confirmed: m.confirmed };
    const year = Number(this.iso[i]!.slice(0, 4));
    return {
      date: this.iso[i]!,
      businessDay,
      kind: isWeekendEpochDay(this.firstEpochDay + i) ? 'weekend' : 'workday',
      confirmed: this.yearConfirmed.get(year) === true,
    };
  }

  /** The covered range: dates outside it throw CALENDAR_YEAR_NOT_COVERED. */
  coverage(): { firstDate: IsoDate; lastDate: IsoDate; years: number[] } {
    return { firstDate: this.iso[0]!, lastDate: this.iso[this.dayCount - 1]!, years: this.years.map((y) => y.year) };
  }

  /** Everything not yet official: whole years, and single holidays/carry-overs/transfers. */
  unconfirmed(): UnconfirmedEntry[] {
    const out: UnconfirmedEntry[] = [];
    for (const y of this.years) {
      if (!y.confirmed) out.push({ year: y.year, what: `year ${y.year} is not fully confirmed${y.notes.length ? `: ${y.notes.join(' ')}` : ''}` });
      for (const h of y.holidays) if (!h.confirmed) out.push({ year: y.year, date: h.date, what: `holiday ${h.name}${h.note ? ` (${h.note})` : ''}` });
      for (const c of y.carryOvers) if (!c.confirmed) out.push({ year: y.year, date: c.date, what: c.name });
      for (const t of y.transfers) if (!t.confirmed) out.push({ year: y.year, date: t.dayOff, what: `transfer ${t.workingDay} -> ${t.dayOff}` });
    }
    return out;
  }

  private mark(date: string, marked: Marked): void {
    const i = epochDayOfIso(date) - this.firstEpochDay;
    if (this.marked.has(i)) throw new CalendarError('CALENDAR_DATA_INVALID', `${date} is listed twice in the calendar data`);
    this.marked.set(i, marked);
  }

  private indexOf(date: IsoDate): number {
    const epochDay = typeof date === 'string' ? epochDayOfIso(date) : Number.NaN;
    if (Number.isNaN(epochDay)) {
      throw new CalendarError('CALENDAR_INVALID_DATE', `"${String(date)}" is not a date: expected YYYY-MM-DD`, 2);
    }
    const i = epochDay - this.firstEpochDay;
    if (i < 0 || i >= this.dayCount) throw this.notCovered(date);
    return i;
  }

  /** The ISO date of the business day with 0-based rank `rank`, or a not-covered error. */
  private isoOfBusinessRank(rank: number, from: IsoDate): IsoDate {
    if (rank < 0 || rank >= this.businessIndex.length) {
      throw this.notCovered(from, rank < 0 ? 'before' : 'after');
    }
    return this.iso[this.businessIndex[rank]!]!;
  }

  private notCovered(date: IsoDate, direction?: 'before' | 'after'): CalendarError {
    const { firstDate, lastDate } = this.coverage();
    const what = direction ? `the answer for ${date} lies ${direction} the calendar data` : `${date} is outside the calendar data`;
    return new CalendarError(
      'CALENDAR_YEAR_NOT_COVERED',
      `${what} (${firstDate}..${lastDate}); put that year's kz-YYYY.json in the folder of calendar.dataDir (connector/calendar/README.md), or update the connector`,
      1,
      { date, firstDate, lastDate },
    );
  }
}

/** 24 hours: the deadline of a duty to tell the bank when the calendar cannot say (fail closed). */
const DAY_MS = 86_400_000;

// Building a calendar precomputes every day of its years (a few ms); it is immutable, so one per
// (cut-off, data folder) serves every caller (the track job asks for it per order). An operator's
// changed file takes effect at the process's next start.
const byConfig = new Map<string, KzBusinessCalendar>();

/**
 * A duty to tell the bank "within n business days" from `instant` (R-17, R-29), failing closed:
 * noticeDeadlineOrSooner, and its 24 hours too when the calendar cannot even be built (a cut-off it
 * refuses). A lockdown or a block must never fail for want of a deadline.
 */
export function noticeDeadlineFailingClosed(config: CalendarConfig, instant: Date, n: number): Date {
  try {
    return kzCalendarFromConfig(config).noticeDeadlineOrSooner(instant, n);
  } catch {
    return new Date(instant.getTime() + DAY_MS);
  }
}

/** What of the configuration the calendar reads. */
export interface CalendarConfig {
  calendar: { cutoff: string; dataDir?: string };
}

/**
 * The calendar for the running connector: the shipped data with the operator's files of
 * `calendar.dataDir` over it (loadCalendarData), and `calendar.cutoff`. Throws
 * CALENDAR_DATA_INVALID naming the file and the rule when one of them is wrong.
 */
export function kzCalendarFromConfig(config: CalendarConfig): KzBusinessCalendar {
  const { cutoff, dataDir } = config.calendar;
  const key = `${cutoff}\n${dataDir ?? ''}`;
  let calendar = byConfig.get(key);
  if (!calendar) {
    calendar = new KzBusinessCalendar(loadCalendarData(dataDir), { cutoff });
    byConfig.set(key, calendar);
  }
  return calendar;
}
