import { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { executionDayOf } from './execution-day';

describe('executionDayOf: the operational day an order is due to be executed', () => {
  const calendar = KzBusinessCalendar.shipped({ cutoff: '17:00' });
  it.each<[string, string, string | null | undefined, string]>([
    ['no value date: the day the bank received it', '2026-11-24', undefined, '2026-11-24'],
    ['valued that same day: unchanged', '2026-11-24', '2026-11-24', '2026-11-24'],
    ['valued before it was received: unchanged', '2026-11-24', '2026-11-20', '2026-11-24'],
    ['valued 5 business days ahead: that day', '2026-11-24', '2026-12-01', '2026-12-01'],
    ['valued on a Saturday: the Monday after', '2026-11-24', '2026-11-28', '2026-11-30'],
    ['valued on Independence Day (Wednesday 2026-12-16): the Thursday after', '2026-12-10', '2026-12-16', '2026-12-17'],
  ])('%s', (_name, receivedDay, valueDate, expected) => {
    expect(executionDayOf(calendar, receivedDay, valueDate)).toBe(expected);
  });
});
