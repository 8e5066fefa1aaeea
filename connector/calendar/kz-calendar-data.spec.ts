import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConnectorError } from '../shared/errors';
import { KzBusinessCalendar, kzCalendarFromConfig } from './kz-business-calendar';
import { type CalendarYearData, deriveCarryOvers, loadCalendarData, loadShippedCalendarData, parseCalendarYear } from './kz-calendar-data';

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

describe("calendar.dataDir: the operator's files over the shipped years", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'kz-calendar-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, data: unknown): void => writeFileSync(join(dir, name), typeof data === 'string' ? data : JSON.stringify(data));
  const shipped2027 = (): CalendarYearData => structuredClone(shipped.find((y) => y.year === 2027)!);

  it("replaces a shipped year: the ministry's transfer for 2027 moves the business days at once", () => {
    const before = kzCalendarFromConfig({ calendar: { cutoff: '17:00' } });
    // Saturday 2027-01-09 worked instead of Friday 2027-01-08 (the kind of order published each autumn).
    expect([before.isBusinessDay('2027-01-08'), before.isBusinessDay('2027-01-09')]).toEqual([true, false]);
    const year = shipped2027();
    year.confirmed = true;
    year.transfers.push({ workingDay: '2027-01-09', dayOff: '2027-01-08', source: 'Приказ МТСЗН (test)', confirmed: true });
    write('kz-2027.json', year);
    const after = kzCalendarFromConfig({ calendar: { cutoff: '17:00', dataDir: dir } });
    expect([after.isBusinessDay('2027-01-08'), after.isBusinessDay('2027-01-09')]).toEqual([false, true]);
    expect(after.nextBusinessDay('2027-01-07')).toBe('2027-01-09');
    // The year is confirmed now: doctor's list of provisional entries holds none of 2027's year-level note.
    expect(after.unconfirmed().some((u) => u.year === 2027 && u.date === undefined)).toBe(false);
    // The shipped calendar is unchanged for a process without the folder.
    expect(kzCalendarFromConfig({ calendar: { cutoff: '17:00' } }).isBusinessDay('2027-01-08')).toBe(true);
  });

  it('adds the next year after the last shipped one', () => {
    write('kz-2028.json', { ...minimalYear(), year: 2028, holidays: [{ date: '2028-01-01', name: 'Новый год', nameEn: 'New Year', kind: 'state', confirmed: true }], carryOvers: [] });
    const years = loadCalendarData(dir).map((y) => y.year);
    expect(years).toEqual([2024, 2025, 2026, 2027, 2028]);
    expect(new KzBusinessCalendar(loadCalendarData(dir), { cutoff: '17:00' }).coverage().lastDate).toBe('2028-12-31');
  });

  const refusals: Array<[string, () => void, RegExp]> = [
    ['a file named for another year than it holds', () => write('kz-2029.json', minimalYear()), /kz-2029\.json: year: holds 2030, but the file is named for 2029$/],
    ['a JSON file not named kz-YYYY.json', () => write('holidays-2028.json', minimalYear()), /holidays-2028\.json: a calendar file is named kz-YYYY\.json/],
    ['a file that is not JSON', () => write('kz-2027.json', '{"year": 2027,'), /kz-2027\.json: not readable JSON/],
    ['a year that breaks a rule', () => write('kz-2030.json', { ...minimalYear(), carryOvers: [{ date: '2030-03-24', for: '2030-03-23', name: 'c', confirmed: true }] }), /kz-2030\.json: carry-over 2030-03-24 falls on a weekend/],
  ];
  it.each(refusals)('refuses %s with CALENDAR_DATA_INVALID naming the file', (_label, arrange, message) => {
    arrange();
    const error = errorOf(() => kzCalendarFromConfig({ calendar: { cutoff: '17:00', dataDir: dir } }));
    expect(error?.code).toBe('CALENDAR_DATA_INVALID');
    expect(error?.message).toContain(dir);
    expect(error?.message).toMatch(message);
  });

  it('refuses a gap between the shipped years and an added one, and a folder that cannot be read', () => {
    write('kz-2030.json', minimalYear());
    expect(errorOf(() => kzCalendarFromConfig({ calendar: { cutoff: '17:00', dataDir: dir } }))?.message).toMatch(/contiguous: 2027 then 2030/);
    expect(errorOf(() => loadCalendarData(join(dir, 'missing')))?.message).toMatch(/^calendar\.dataDir .*missing: cannot be read \(ENOENT\)/);
  });
});
