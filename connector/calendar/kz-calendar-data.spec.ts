import { ConnectorError } from '../shared/errors';
import { KzBusinessCalendar } from './kz-business-calendar';
import { type CalendarYearData, deriveCarryOvers, loadShippedCalendarData, parseCalendarYear } from './kz-calendar-data';

const shipped = loadShippedCalendarData();

function errorOf(fn: () => unknown): ConnectorError | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConnectorError) return e;
    throw e;
  }
  return undefined;
}

const minimalYear = (): CalendarYearData => ({
  year: 2030,
  confirmed: false,
  sources: [{ title: 'test' }],
  holidays: [
    { date: '2030-01-01', name: 'Новый год', nameEn: 'New Year', kind: 'state', confirmed: true },
    { date: '2030-03-23', name: 'Наурыз', nameEn: 'Nauryz', kind: 'state', confirmed: true },
  ],
  carryOvers: [{ date: '2030-03-25', for: '2030-03-23', name: 'carry', confirmed: true }],
  transfers: [],
  notes: [],
});

describe('shipped calendar data', () => {
  it('ships 2024..2027, every file valid', () => {
    expect(shipped.map((y) => y.year)).toEqual([2024, 2025, 2026, 2027]);
  });

  it.each(shipped.map((y) => [y.year, y] as const))('%i: carry-overs equal the law art. 5 rule applied to its holidays', (_year, y) => {
    const listed = y.carryOvers.map((c) => ({ date: c.date, for: c.for }));
    expect(deriveCarryOvers(y)).toEqual(listed);
  });

  it('lists the statutory holidays every year, Constitution Day moving to 15 March from 2027', () => {
    for (const y of shipped) {
      const dates = new Set(y.holidays.map((h) => h.date.slice(5)));
      for (const md of ['01-01', '01-02', '01-07', '03-08', '03-21', '03-22', '03-23', '05-01', '05-07', '05-09', '07-06', '10-25', '12-16']) {
        expect([y.year, md, dates.has(md)]).toEqual([y.year, md, true]);
      }
      expect([y.year, dates.has('08-30')]).toEqual([y.year, y.year <= 2025]);
      expect([y.year, dates.has('03-15')]).toEqual([y.year, y.year >= 2027]);
      const kurban = y.holidays.filter((h) => h.nameEn.startsWith('Kurban Ait'));
      expect(kurban).toHaveLength(1);
      expect(kurban[0]!.kind).toBe('religious');
    }
  });

  it('names a source for every year and marks 2026 and 2027 as not fully confirmed', () => {
    for (const y of shipped) expect(y.sources.length).toBeGreaterThan(0);
    expect(shipped.map((y) => y.confirmed)).toEqual([true, true, false, false]);
  });
});

describe('parseCalendarYear refuses bad data with CALENDAR_DATA_INVALID', () => {
  it('accepts a minimal good year', () => {
    expect(parseCalendarYear(minimalYear(), 'test').year).toBe(2030);
  });

  const cases: Array<[string, (y: CalendarYearData) => void, RegExp]> = [
    ['an impossible date', (y) => (y.holidays[0]!.date = '2030-02-30'), /not a calendar date/],
    ['a date outside the year', (y) => (y.holidays[0]!.date = '2031-01-01'), /outside 2030/],
    ['a date listed twice', (y) => y.holidays.push({ ...y.holidays[0]! }), /listed twice/],
    ['a carry-over on a weekend', (y) => (y.carryOvers[0]!.date = '2030-03-24'), /falls on a weekend/],
    ['a carry-over for a weekday holiday', (y) => (y.carryOvers[0]!.for = '2030-01-01'), /not a non-religious holiday on a weekend/],
    [
      'a transfer whose working day is a weekday',
      (y) => y.transfers.push({ workingDay: '2030-01-02', dayOff: '2030-01-03', source: 's', confirmed: true }),
      /not a Saturday or Sunday/,
    ],
    [
      'a transfer whose day off is a weekend',
      (y) => y.transfers.push({ workingDay: '2030-01-05', dayOff: '2030-01-06', source: 's', confirmed: true }),
      /not a weekday/,
    ],
    ['an unknown holiday kind', (y) => ((y.holidays[0] as { kind: string }).kind = 'regional'), /holidays\.0\.kind/],
    ['no source', (y) => (y.sources = []), /sources/],
  ];
  it.each(cases)('%s', (_label, mutate, message) => {
    const y = minimalYear();
    mutate(y);
    const error = errorOf(() => parseCalendarYear(y, 'kz-2030.json'));
    expect(error?.code).toBe('CALENDAR_DATA_INVALID');
    expect(error?.message).toMatch(message);
    expect(error?.message).toMatch(/^kz-2030\.json: /);
  });

  it('the calendar refuses non-contiguous years', () => {
    const a = { ...minimalYear() };
    const b = { ...minimalYear(), year: 2032, holidays: [], carryOvers: [] };
    expect(errorOf(() => new KzBusinessCalendar([a, b], { cutoff: '17:00' }))?.code).toBe('CALENDAR_DATA_INVALID');
  });
});
