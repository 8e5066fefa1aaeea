import fc from 'fast-check';
import { configSchema } from '../../config/config.schema';
import { ConnectorError } from '../shared/errors';
import { noticeDeadlineFailingClosed, KzBusinessCalendar, kzCalendarFromConfig } from './kz-business-calendar';
import { isoOfEpochDay, loadShippedCalendarData } from './kz-calendar-data';
import { parseKzInstant } from './kz-time';

const cal = KzBusinessCalendar.shipped({ cutoff: '17:00' });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof ConnectorError ? e.code : `not a ConnectorError: ${String(e)}`;
  }
  return undefined;
}

// Expected values come from the official calendars (egov.kz, МТСЗН orders, ДУМК) cited in
// data/kz-YYYY.json, read off by hand, not from the data files.
describe('known days off and working days of each shipped year', () => {
  const daysOff: Array<[string, string]> = [
    ['2024-01-01', 'New Year'],
    ['2024-01-02', 'New Year'],
    ['2024-03-08', "Women's Day (Fri)"],
    ['2024-03-21', 'Nauryz'],
    ['2024-03-22', 'Nauryz'],
    ['2024-03-25', 'Nauryz Sat 23 carried to Mon'],
    ['2024-05-01', 'Unity Day'],
    ['2024-05-07', 'Defender Day'],
    ['2024-05-08', 'transfer from Sat 4 May'],
    ['2024-05-09', 'Victory Day'],
    ['2024-07-08', 'Capital Day Sat 6 carried to Mon'],
    ['2024-08-30', 'Constitution Day'],
    ['2024-10-25', 'Republic Day'],
    ['2024-12-16', 'Independence Day'],
    ['2025-01-01', 'New Year'],
    ['2025-01-02', 'New Year'],
    ['2025-01-03', 'transfer from Sun 5 Jan'],
    ['2025-01-07', 'Orthodox Christmas (Tue)'],
    ['2025-03-10', "Women's Day Sat 8 carried to Mon"],
    ['2025-03-21', 'Nauryz'],
    ['2025-03-24', 'Nauryz Sat 22 carried'],
    ['2025-03-25', 'Nauryz Sun 23 carried'],
    ['2025-06-06', 'Kurban Ait (Fri)'],
    ['2025-07-07', 'Capital Day Sun 6 carried'],
    ['2025-09-01', 'Constitution Day Sat 30 Aug carried'],
    ['2025-10-27', 'Republic Day Sat 25 carried'],
    ['2025-12-16', 'Independence Day'],
    ['2026-01-01', 'New Year'],
    ['2026-01-02', 'New Year'],
    ['2026-01-07', 'Orthodox Christmas'],
    ['2026-03-09', "Women's Day Sun 8 carried"],
    ['2026-03-23', 'Nauryz (Mon)'],
    ['2026-03-24', 'Nauryz Sat 21 carried'],
    ['2026-03-25', 'Nauryz Sun 22 carried'],
    ['2026-05-11', 'Victory Day Sat 9 carried'],
    ['2026-05-27', 'Kurban Ait'],
    ['2026-07-06', 'Capital Day'],
    ['2026-10-26', 'Republic Day Sun 25 carried'],
    ['2026-12-16', 'Independence Day'],
    ['2027-01-01', 'New Year'],
    ['2027-01-04', 'New Year Sat 2 carried'],
    ['2027-01-07', 'Orthodox Christmas'],
    ['2027-03-08', "Women's Day"],
    ['2027-03-15', 'Constitution Day (new date)'],
    ['2027-03-22', 'Nauryz'],
    ['2027-03-23', 'Nauryz'],
    ['2027-03-24', 'Nauryz Sun 21 carried'],
    ['2027-05-03', 'Unity Day Sat 1 carried'],
    ['2027-05-07', 'Defender Day'],
    ['2027-05-10', 'Victory Day Sun 9 carried'],
    ['2027-07-06', 'Capital Day'],
    ['2027-10-25', 'Republic Day'],
    ['2027-12-16', 'Independence Day'],
  ];
  it.each(daysOff)('%s is not a business day (%s)', (date) => {
    expect(cal.isBusinessDay(date)).toBe(false);
  });

  const workingDays: Array<[string, string]> = [
    ['2024-01-03', 'after New Year'],
    ['2024-03-26', 'after Nauryz'],
    ['2024-05-04', 'Saturday made working by the 2024 transfer'],
    ['2024-06-17', 'Monday: ДУМК set Kurban Ait to Sun 16 June, so no day off'],
    ['2024-12-17', 'Dec 17 is no longer a holiday since 2022'],
    ['2025-01-05', 'Sunday made working by the 2025 transfer'],
    ['2025-01-06', 'Monday between New Year and Christmas'],
    ['2025-03-26', 'after Nauryz'],
    ['2025-05-08', 'no May transfer in 2025'],
    ['2026-01-05', 'first working day of 2026'],
    ['2026-03-26', 'after Nauryz'],
    ['2026-08-31', 'Aug 30 is no longer Constitution Day, nothing carried'],
    ['2026-12-01', 'First President Day is not a holiday since 2022'],
    ['2027-01-05', 'first working day of 2027'],
    ['2027-03-25', 'after Nauryz'],
    ['2027-08-30', 'Aug 30 is no longer a holiday'],
  ];
  it.each(workingDays)('%s is a business day (%s)', (date) => {
    expect(cal.isBusinessDay(date)).toBe(true);
  });

  it('counts 247 business days in 2026: egov.kz published 246, plus 31 August after the Constitution Day change', () => {
    expect(cal.businessDaysBetween('2025-12-31', '2026-12-31')).toBe(247);
  });
});

describe('weekends', () => {
  it('an ordinary Saturday and Sunday are not business days, the Monday after is', () => {
    expect(cal.isBusinessDay('2025-11-22')).toBe(false);
    expect(cal.isBusinessDay('2025-11-23')).toBe(false);
    expect(cal.isBusinessDay('2025-11-24')).toBe(true);
  });

  it('every day not listed in the data is a business day exactly when it is Monday to Friday', () => {
    const listed = new Set<string>();
    for (const y of loadShippedCalendarData()) {
      for (const h of y.holidays) listed.add(h.date);
      for (const c of y.carryOvers) listed.add(c.date);
      for (const t of y.transfers) listed.add(t.workingDay).add(t.dayOff);
    }
    let checked = 0;
    for (let day = Date.UTC(2024, 0, 1) / 86_400_000; day <= Date.UTC(2027, 11, 31) / 86_400_000; day++) {
      const date = isoOfEpochDay(day);
      if (listed.has(date)) continue;
      const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
      expect([date, cal.isBusinessDay(date)]).toEqual([date, weekday >= 1 && weekday <= 5]);
      checked++;
    }
    expect(checked).toBeGreaterThan(1300); // 1461 days minus the ~80 listed ones
  });
});

describe('addBusinessDays / nextBusinessDay / businessDaysBetween', () => {
  it.each([
    ['2024-12-31', 1, '2025-01-05'], // Jan 1-2 holidays, Jan 3 transfer off, Sat 4 off, Sun 5 working
    ['2024-12-31', 2, '2025-01-06'],
    ['2024-12-31', 3, '2025-01-08'], // Jan 7 Christmas
    ['2025-12-31', 1, '2026-01-05'],
    ['2026-12-31', 1, '2027-01-05'], // Jan 4 2027 carries New Year's Sat 2
    ['2023-12-29', 0, null],
  ] as const)('across New Year: %s + %i', (from, n, expected) => {
    if (expected === null) {
      expect(codeOf(() => cal.addBusinessDays(from, n))).toBe('CALENDAR_YEAR_NOT_COVERED');
    } else {
      expect(cal.addBusinessDays(from, n)).toBe(expected);
    }
  });

  it.each([
    ['2024-03-20', 1, '2024-03-26'],
    ['2025-03-20', 1, '2025-03-26'],
    ['2026-03-20', 1, '2026-03-26'],
    ['2027-03-19', 1, '2027-03-25'],
    ['2025-03-20', 3, '2025-03-28'],
  ] as const)('across Nauryz: %s + %i = %s', (from, n, expected) => {
    expect(cal.addBusinessDays(from, n)).toBe(expected);
  });

  it('goes backwards with a negative n and counts from a non-business day', () => {
    expect(cal.addBusinessDays('2025-01-06', -1)).toBe('2025-01-05');
    expect(cal.addBusinessDays('2025-01-06', -2)).toBe('2024-12-31');
    expect(cal.addBusinessDays('2025-11-22', 1)).toBe('2025-11-24'); // Saturday + 1 = Monday
    expect(cal.addBusinessDays('2025-11-22', -1)).toBe('2025-11-21');
    expect(cal.addBusinessDays('2025-11-22', 0)).toBe('2025-11-22');
    expect(cal.previousBusinessDay('2025-03-26')).toBe('2025-03-20');
    expect(cal.nextBusinessDay('2025-03-20')).toBe('2025-03-26');
  });

  it('businessDaysBetween counts the half-open range (from, to]', () => {
    expect(cal.businessDaysBetween('2025-03-20', '2025-03-26')).toBe(1);
    expect(cal.businessDaysBetween('2025-03-20', '2025-03-20')).toBe(0);
    expect(cal.businessDaysBetween('2025-03-26', '2025-03-20')).toBe(-1);
    expect(cal.businessDaysBetween('2025-11-21', '2025-11-23')).toBe(0);
  });

  const coveredDate = fc
    .integer({ min: Date.UTC(2024, 0, 1) / 86_400_000, max: Date.UTC(2027, 10, 30) / 86_400_000 })
    .map(isoOfEpochDay);

  it('addBusinessDays inverts businessDaysBetween and lands on business days', () => {
    fc.assert(
      fc.property(coveredDate, fc.integer({ min: -200, max: 200 }), (from, n) => {
        let to: string;
        try {
          to = cal.addBusinessDays(from, n);
        } catch (e) {
          return e instanceof ConnectorError && e.code === 'CALENDAR_YEAR_NOT_COVERED';
        }
        if (n === 0) return to === from;
        if (!cal.isBusinessDay(to)) return false;
        if (n > 0) return to > from && cal.businessDaysBetween(from, to) === n;
        // Backwards, (to, from] holds the |n| - 1 business days between them, plus `from` when it is one.
        return to < from && cal.businessDaysBetween(to, from) === -n - 1 + (cal.isBusinessDay(from) ? 1 : 0);
      }),
      { numRuns: 2000 },
    );
  });

  it('nextBusinessDay is the first business day after the date', () => {
    const afterFirstBusinessDay = fc
      .integer({ min: Date.UTC(2024, 0, 4) / 86_400_000, max: Date.UTC(2027, 10, 30) / 86_400_000 })
      .map(isoOfEpochDay);
    fc.assert(
      fc.property(afterFirstBusinessDay, (date) => {
        const next = cal.nextBusinessDay(date);
        return cal.isBusinessDay(next) && next > date && cal.businessDaysBetween(date, next) === 1 && cal.previousBusinessDay(next) <= date;
      }),
      { numRuns: 1000 },
    );
  });

});

describe('operational day and cut-off (Kazakhstan time)', () => {
  it('an instruction before the cut-off belongs to that business day, at or after it to the next', () => {
    expect(cal.operationalDayOf(new Date('2025-06-05T16:59:59.999+05:00'))).toBe('2025-06-05');
    // Fri 6 June 2025 is Kurban Ait, then the weekend.
    expect(cal.operationalDayOf(new Date('2025-06-05T17:00:00.000+05:00'))).toBe('2025-06-09');
    expect(cal.operationalDayOf(new Date('2025-06-05T23:59:00+05:00'))).toBe('2025-06-09');
  });

  it('uses the Kazakhstan date, not the UTC date', () => {
    // 01:00 on 5 June in Almaty is still 4 June in UTC.
    expect(cal.operationalDayOf(new Date('2025-06-04T20:00:00Z'))).toBe('2025-06-05');
  });

  it('an instruction on a weekend or holiday belongs to the next business day', () => {
    expect(cal.operationalDayOf(new Date('2025-11-22T10:00:00+05:00'))).toBe('2025-11-24');
    expect(cal.operationalDayOf(new Date('2025-03-24T09:00:00+05:00'))).toBe('2025-03-26');
    expect(cal.operationalDayOf(new Date('2025-01-05T09:00:00+05:00'))).toBe('2025-01-05'); // working Sunday
  });

  it('endOfOperationalDay is the cut-off instant and refuses a day off', () => {
    expect(cal.endOfOperationalDay('2025-06-05').toISOString()).toBe('2025-06-05T12:00:00.000Z');
    expect(codeOf(() => cal.endOfOperationalDay('2025-06-06'))).toBe('CALENDAR_NOT_BUSINESS_DAY');
  });

  it('takes the cut-off from config', () => {
    const fromConfig = kzCalendarFromConfig(configSchema.parse({ calendar: { cutoff: '15:30' } }));
    expect(fromConfig.endOfOperationalDay('2025-06-05').toISOString()).toBe('2025-06-05T10:30:00.000Z');
    expect(fromConfig.operationalDayOf(new Date('2025-06-05T15:45:00+05:00'))).toBe('2025-06-09');
    expect(kzCalendarFromConfig(configSchema.parse({})).cutoff).toBe('17:00');
    expect(codeOf(() => KzBusinessCalendar.shipped({ cutoff: '5pm' }))).toBe('CALENDAR_DATA_INVALID');
  });

  it('operationalDeadline: the end of the n-th operational day after the instruction (R-27)', () => {
    // Discovered Thursday 20 March 2025 at 18:00: after the cut-off, so its operational day is
    // Wed 26 March; 3 operational days later is Mon 31 March, 17:00 local.
    expect(cal.operationalDeadline(new Date('2025-03-20T18:00:00+05:00'), 3).toISOString()).toBe('2025-03-31T12:00:00.000Z');
    expect(cal.operationalDeadline(new Date('2025-03-20T10:00:00+05:00'), 0).toISOString()).toBe('2025-03-20T12:00:00.000Z');
  });

  it('noticeDeadline: "tell the bank within n business days" counts from the day of discovery, whatever the hour (R-17, R-27, R-29)', () => {
    const at = (local: string, n = 1) => cal.noticeDeadline(new Date(local), n).toISOString();
    // Friday 20 November 2026 after the cut-off, Saturday, Sunday: the end of Monday 23rd, not Tuesday.
    expect(at('2026-11-20T18:00:00+05:00')).toBe('2026-11-23T12:00:00.000Z');
    expect(at('2026-11-21T11:00:00+05:00')).toBe('2026-11-23T12:00:00.000Z');
    expect(at('2026-11-22T23:59:00+05:00')).toBe('2026-11-23T12:00:00.000Z');
    // Friday morning: Monday too; Monday evening and morning: Tuesday.
    expect(at('2026-11-20T09:00:00+05:00')).toBe('2026-11-23T12:00:00.000Z');
    expect(at('2026-11-23T18:30:00+05:00')).toBe('2026-11-24T12:00:00.000Z');
    expect(at('2026-11-23T09:00:00+05:00')).toBe('2026-11-24T12:00:00.000Z');
    // Thursday 20 March 2025 at 18:00, before the Nauryz holidays (21-25 March): 3 business days end on Friday 28th.
    expect(at('2025-03-20T18:00:00+05:00', 3)).toBe('2025-03-28T12:00:00.000Z');
    expect(codeOf(() => cal.noticeDeadline(new Date('2026-11-20T09:00:00+05:00'), 0))).toBe('CALENDAR_INVALID_DATE');
    // A cut-off of 00:00: the deadline day still counts to its end (midnight after it), not to its start.
    const midnight = KzBusinessCalendar.shipped({ cutoff: '00:00' });
    expect(midnight.noticeDeadline(new Date('2026-11-20T23:00:00+05:00'), 1).toISOString()).toBe('2026-11-23T19:00:00.000Z');
    expect(midnight.noticeDeadline(new Date('2026-11-23T10:00:00+05:00'), 1).toISOString()).toBe('2026-11-24T19:00:00.000Z');
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 11, 1) }), fc.integer({ min: 1, max: 3 }), fc.constantFrom('17:00', '00:00', '23:30'), (ms, n, cutoff) => {
        const c = KzBusinessCalendar.shipped({ cutoff });
        const instant = new Date(ms);
        const deadline = c.noticeDeadline(instant, n).getTime();
        // After the discovery, and never later than the operational-day count (with a cut-off of 00:00,
        // which ends each operational day at its date's start, than the day that count ends on).
        const operational = c.operationalDeadline(instant, n).getTime() + (cutoff === '00:00' ? 86_400_000 : 0);
        return deadline > ms && deadline <= operational;
      }),
    );
  });

  it('every instant before the end of its operational day, and the mapping never goes back in time', () => {
    for (const cutoff of ['17:00', '00:00', '23:30']) {
      const c = KzBusinessCalendar.shipped({ cutoff });
      fc.assert(
        fc.property(
          fc.integer({ min: Date.UTC(2024, 0, 1), max: Date.UTC(2027, 11, 20) }),
          fc.integer({ min: 0, max: 3 * 86_400_000 }),
          (a, delta) => {
            const day = c.operationalDayOf(new Date(a));
            const end = c.endOfOperationalDay(day).getTime();
            return a < end && c.operationalDayOf(new Date(a + delta)) >= day && c.operationalDayOf(new Date(end)) > day;
          },
        ),
        { numRuns: 1000 },
      );
    }
  });
});

describe('UTC+6 before 2024-03-01, UTC+5 since', () => {
  it('places the cut-off at 11:00Z on 29 Feb 2024 and at 12:00Z from 1 March 2024', () => {
    expect(cal.endOfOperationalDay('2024-02-29').toISOString()).toBe('2024-02-29T11:00:00.000Z');
    expect(cal.endOfOperationalDay('2024-03-01').toISOString()).toBe('2024-03-01T12:00:00.000Z');
    expect(cal.endOfOperationalDay('2024-01-15').toISOString()).toBe('2024-01-15T11:00:00.000Z');
  });

  it('reads instants in Almaty time of the day', () => {
    // 11:30Z is 17:30 in January 2024 (UTC+6): after the cut-off.
    expect(cal.operationalDayOf(new Date('2024-01-15T11:30:00Z'))).toBe('2024-01-16');
    // 11:30Z is 16:30 in March 2024 (UTC+5): before the cut-off.
    expect(cal.operationalDayOf(new Date('2024-03-04T11:30:00Z'))).toBe('2024-03-04');
    // 18:30Z on 14 Jan 2024 is already 00:30 on Monday 15 Jan in Almaty.
    expect(cal.operationalDayOf(new Date('2024-01-14T18:30:00Z'))).toBe('2024-01-15');
  });

  it('stays monotonic through the repeated hour 23:00-24:00 on 29 Feb 2024', () => {
    const late = KzBusinessCalendar.shipped({ cutoff: '23:30' });
    expect(late.endOfOperationalDay('2024-02-29').toISOString()).toBe('2024-02-29T17:30:00.000Z');
    expect(late.operationalDayOf(new Date('2024-02-29T17:29:59Z'))).toBe('2024-02-29');
    expect(late.operationalDayOf(new Date('2024-02-29T17:30:00Z'))).toBe('2024-03-01');
    // 18:15Z is 23:15 local again (now UTC+5): still after that day's cut-off.
    expect(late.operationalDayOf(new Date('2024-02-29T18:15:00Z'))).toBe('2024-03-01');
  });
});

describe('outside the shipped data and bad input', () => {
  it.each(['2023-12-31', '2028-01-03', '1999-05-05'])('%s throws CALENDAR_YEAR_NOT_COVERED', (date) => {
    expect(codeOf(() => cal.isBusinessDay(date))).toBe('CALENDAR_YEAR_NOT_COVERED');
  });

  it('refuses answers that leave the data', () => {
    expect(codeOf(() => cal.addBusinessDays('2027-12-31', 1))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(codeOf(() => cal.nextBusinessDay('2027-12-31'))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(codeOf(() => cal.addBusinessDays('2024-01-03', -2))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(codeOf(() => cal.operationalDayOf(new Date('2027-12-31T18:00:00+05:00')))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(codeOf(() => cal.operationalDayOf(new Date('2023-12-31T10:00:00Z')))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(cal.coverage()).toEqual({ firstDate: '2024-01-01', lastDate: '2027-12-31', years: [2024, 2025, 2026, 2027] });
  });

  it('noticeDeadlineOrSooner: within the data as noticeDeadline; past its end 24 hours, so a duty to tell the bank is never lost to the calendar', () => {
    const inside = new Date('2026-11-20T18:00:00+05:00');
    expect(cal.noticeDeadlineOrSooner(inside, 3)).toEqual(cal.noticeDeadline(inside, 3));
    const lateDecember = new Date('2027-12-29T10:00:00+05:00');
    expect(codeOf(() => cal.noticeDeadline(lateDecember, 3))).toBe('CALENDAR_YEAR_NOT_COVERED');
    expect(cal.noticeDeadlineOrSooner(lateDecember, 3).toISOString()).toBe('2027-12-30T05:00:00.000Z');
    expect(codeOf(() => cal.noticeDeadlineOrSooner(inside, 0))).toBe('CALENDAR_INVALID_DATE');
  });

  it('noticeDeadlineFailingClosed (a lockdown, a block): 24 hours whatever the calendar cannot say, a cut-off it refuses included', () => {
    const inside = new Date('2026-11-20T18:00:00+05:00');
    expect(noticeDeadlineFailingClosed({ calendar: { cutoff: '17:00' } }, inside, 1)).toEqual(cal.noticeDeadline(inside, 1));
    expect(noticeDeadlineFailingClosed({ calendar: { cutoff: '17:00' } }, new Date('2027-12-31T10:00:00+05:00'), 1).toISOString()).toBe('2028-01-01T05:00:00.000Z');
    expect(noticeDeadlineFailingClosed({ calendar: { cutoff: 'late' } }, inside, 1).toISOString()).toBe('2026-11-21T13:00:00.000Z');
  });

  it.each(['2025-02-29', '2025-1-1', '2025-13-01', '20250101', '', '2025-01-01T00:00'])('"%s" is CALENDAR_INVALID_DATE', (date) => {
    expect(codeOf(() => cal.isBusinessDay(date))).toBe('CALENDAR_INVALID_DATE');
  });

  it('refuses an invalid instant and a fractional count', () => {
    expect(codeOf(() => cal.operationalDayOf(new Date('nope')))).toBe('CALENDAR_INVALID_DATE');
    expect(codeOf(() => cal.addBusinessDays('2025-01-06', 1.5))).toBe('CALENDAR_INVALID_DATE');
  });
});

describe('what is confirmed', () => {
  it('lists the provisional entries: 2026/2027 Kurban Ait, 2027 carry-overs and transfers, the new Constitution Day', () => {
    const items = cal.unconfirmed();
    const dates = items.map((i) => i.date).filter(Boolean);
    expect(dates).toEqual(expect.arrayContaining(['2026-05-27', '2027-05-16', '2027-03-15', '2027-01-04']));
    expect(items.map((i) => i.year)).toEqual(expect.arrayContaining([2026, 2027]));
    expect(items.some((i) => i.year === 2024 || i.year === 2025)).toBe(false);
  });

  it('dayInfo names the day and says whether it is confirmed', () => {
    expect(cal.dayInfo('2025-03-25')).toMatchObject({ businessDay: false, kind: 'carry-over', confirmed: true });
    expect(cal.dayInfo('2025-01-05')).toMatchObject({ businessDay: true, kind: 'transfer-working-day', confirmed: true });
    expect(cal.dayInfo('2027-05-16')).toMatchObject({ businessDay: false, kind: 'holiday', confirmed: false });
    expect(cal.dayInfo('2025-11-24')).toEqual({ date: '2025-11-24', businessDay: true, kind: 'workday', confirmed: true });
    expect(cal.dayInfo('2027-11-24')).toMatchObject({ kind: 'workday', confirmed: false });
  });
});

describe('parseKzInstant: an instant a person typed', () => {
  test('with an offset as given; without one, Kazakhstan time (UTC+6 before 2024-03-01); never the machine zone', () => {
    expect(parseKzInstant('2026-03-02T10:30:00+05:00')?.toISOString()).toBe('2026-03-02T05:30:00.000Z');
    expect(parseKzInstant('2026-03-02T10:30:00Z')?.toISOString()).toBe('2026-03-02T10:30:00.000Z');
    expect(parseKzInstant('2026-03-02T10:30:00-0500')?.toISOString()).toBe('2026-03-02T15:30:00.000Z');
    expect(parseKzInstant('2026-03-02T10:30')?.toISOString()).toBe('2026-03-02T05:30:00.000Z');
    expect(parseKzInstant('2026-03-02T10:30:15.5')?.toISOString()).toBe('2026-03-02T05:30:15.500Z');
    expect(parseKzInstant('2024-02-01T10:30')?.toISOString()).toBe('2024-02-01T04:30:00.000Z');
    expect(parseKzInstant('2026-03-02', { dateOnly: true })?.toISOString()).toBe('2026-03-01T19:00:00.000Z');
    for (const bad of ['2026-03-02', '2026-02-30T10:30', '2026-03-02T24:00', 'yesterday', '2026-03-02 10:30', '']) expect(parseKzInstant(bad)).toBeNull();
  });
});
