import type { IsoDate, KzBusinessCalendar } from '../calendar/kz-business-calendar';

/**
 * The operational day the bank is due to execute an order: the day it received it, or the
 * order's value date when that is later. An order may carry a value date up to 30 days ahead
 * (salaries sent on the 1st for the 10th, payment-order.validator.ts): the bank holds it until
 * then, so neither the R-22 window (deemed executed) nor a day of R-28 delay starts before. A value
 * date the bank does not work on is executed on the next business day. A value date on or before
 * the received day (the usual one: today's) changes nothing and is not looked up in the calendar.
 */
export function executionDayOf(calendar: KzBusinessCalendar, receivedDay: IsoDate, valueDate: IsoDate | null | undefined): IsoDate {
  // ISO dates compare as text.
  if (!valueDate || valueDate <= receivedDay) return receivedDay;
  return calendar.isBusinessDay(valueDate) ? valueDate : calendar.nextBusinessDay(valueDate);
}
