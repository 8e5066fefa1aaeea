/**
 * Prints the cost of the calendar's hot-path calls (table lookups). Not a test: figures only.
 * Run: npm run build && node dist/bench/kz-business-calendar.bench.js
 */
import { performance } from 'node:perf_hooks';
import { KzBusinessCalendar } from '../connector/calendar/kz-business-calendar';

const t0 = performance.now();
const cal = KzBusinessCalendar.shipped({ cutoff: '17:00' });
const buildMs = performance.now() - t0;

const dates: string[] = [];
for (let d = Date.UTC(2024, 1, 1); d < Date.UTC(2027, 10, 1); d += 86_400_000) dates.push(new Date(d).toISOString().slice(0, 10));
const instants = dates.map((d, i) => new Date(`${d}T00:00:00Z`).getTime() + (i * 7_919_000) % 86_400_000).map((ms) => new Date(ms));

const sinkOf = (v: unknown): number => (typeof v === 'string' ? v.length : Number(v) & 1);

function bench(name: string, n: number, fn: (i: number) => unknown): void {
  let sink = 0;
  for (let i = 0; i < 10_000; i++) sink += sinkOf(fn(i)); // warm-up
  const start = performance.now();
  for (let i = 0; i < n; i++) sink += sinkOf(fn(i));
  const ms = performance.now() - start;
  console.log(`${name.padEnd(24)} ${(n / ms / 1000).toFixed(2).padStart(8)} M ops/s  ${((ms * 1e6) / n).toFixed(0).padStart(5)} ns/op  (sink ${sink % 10})`);
}

console.log(`build from shipped JSON: ${buildMs.toFixed(2)} ms (once per process)`);
const N = 2_000_000;
bench('isBusinessDay', N, (i) => cal.isBusinessDay(dates[i % dates.length]!));
bench('nextBusinessDay', N, (i) => cal.nextBusinessDay(dates[i % dates.length]!));
bench('addBusinessDays(+/-10)', N, (i) => cal.addBusinessDays(dates[i % dates.length]!, (i % 21) - 10));
bench('businessDaysBetween', N, (i) => cal.businessDaysBetween(dates[i % dates.length]!, dates[(i * 7) % dates.length]!));
bench('operationalDayOf', N, (i) => cal.operationalDayOf(instants[i % instants.length]!));
bench('endOfOperationalDay', N, (i) => cal.endOfOperationalDay(cal.nextBusinessDay(dates[i % dates.length]!)).getTime());
