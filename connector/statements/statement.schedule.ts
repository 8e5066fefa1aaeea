import type { EntityManager } from '@mikro-orm/postgresql';
import { CalendarError, type KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { isoOfEpochDay } from '../calendar/kz-calendar-data';
import { kzLocalDayOf } from '../calendar/kz-time';
import { FINAL_STATES, ORDER_STATES } from '../orders/order-state';
import { addDays } from './statement.checks';

/** Today's date in Kazakhstan: the bank's statement days are Kazakhstan dates. */
export function kzToday(now: Date): string {
  return isoOfEpochDay(kzLocalDayOf(now.getTime()).epochDay);
}

export interface ScheduledRange {
  from: string;
  to: string;
  kind: 'intraday' | 'closed';
}

/**
 * What a scheduled run fetches for each account (issue 15 stage 5): the closed days since the
 * previous business day (a Monday also fetches the weekend: banks book on any day), and today
 * (intraday). Both by date range, never by a "new only" cursor (LESSONS.md 8).
 */
export function scheduledRanges(calendar: KzBusinessCalendar, now: Date): ScheduledRange[] {
  const today = kzToday(now);
  const yesterday = addDays(today, -1);
  const previous = previousBusinessDayOrWeekday(calendar, today);
  return [
    { from: previous <= yesterday ? previous : yesterday, to: yesterday, kind: 'closed' },
    { from: today, to: today, kind: 'intraday' },
  ];
}

/**
 * The previous business day; past the calendar's years (CALENDAR_YEAR_NOT_COVERED, which `doctor`
 * warns of ahead) the previous weekday: the statements must still be fetched, checked and passed to
 * 1C (a debit nobody ordered unseen for want of a holiday list, R-29), and the scheduler runs every
 * day, so a holiday it does not know costs at most a closed day fetched twice.
 */
function previousBusinessDayOrWeekday(calendar: KzBusinessCalendar, today: string): string {
  try {
    return calendar.previousBusinessDay(today);
  } catch (err) {
    if (!(err instanceof CalendarError) || err.code !== 'CALENDAR_YEAR_NOT_COVERED') throw err;
    let day = addDays(today, -1);
    while ([0, 6].includes(new Date(`${day}T00:00:00Z`).getUTCDay())) day = addDays(day, -1);
    return day;
  }
}

/**
 * Accounts whose statements are fetched: `configured` (config `pipeline.accounts`) when given,
 * else the distinct payer accounts of orders not yet final, or that became final in the last 3
 * days (their lines are still arriving: the day's closed statement is fetched the next morning, a
 * weekend later on a Monday), that passed validation. Counted from the order's last state change,
 * not its intake: an order deemed executed or executed days after it was taken in must
 * still see its closed day fetched and checked.
 */
export async function statementAccounts(em: EntityManager, configured: readonly string[], now: Date): Promise<string[]> {
  if (configured.length) return [...configured];
  const since = new Date(now.getTime() - 3 * 86_400_000);
  // Two lookups of the (state, state_changed_at) index, not one condition with "not in" and "or":
  // that would read every order ever taken in, on every write-back and statements job.
  const open = ORDER_STATES.filter((s) => !FINAL_STATES.includes(s));
  const settled = FINAL_STATES.filter((s) => s !== 'invalid');
  const rows = await em.execute<Array<{ payer_iban: string }>>(
    `select payer_iban from payment_order where state in (${open.map(() => '?').join(', ')})
     union
     select payer_iban from payment_order where state in (${settled.map(() => '?').join(', ')}) and state_changed_at >= ?
     order by payer_iban`,
    [...open, ...settled, since],
  );
  return rows.map((r) => r.payer_iban);
}
