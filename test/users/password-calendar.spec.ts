import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { activeUser, uniq, usersTestEnvOfFile } from './users-test.env';

// R-9's minimum age counts business days on the running connector's calendar: the operator's
// `calendar.dataDir` years too. Here kz-2028.json (a year the connector does not ship) makes
// Friday 2028-03-03 a holiday, so a password set on Thursday may change again on Monday only.
const dataDir = mkdtempSync(join(tmpdir(), 'connector-calendar-'));
writeFileSync(
  join(dataDir, 'kz-2028.json'),
  JSON.stringify({
    year: 2028,
    confirmed: false,
    sources: [{ title: 'test' }],
    holidays: [{ date: '2028-03-03', name: 'Проверка', nameEn: 'Test holiday', kind: 'state', confirmed: true }],
    carryOvers: [],
    transfers: [],
    notes: [],
  }),
);
const env = usersTestEnvOfFile({ overrides: { 'calendar.dataDir': dataDir } });
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

describe('R-9 minimum age on the calendar of calendar.dataDir', () => {
  // [changed at (UTC), tried at (UTC), expected status]; Kazakhstan time is UTC+5.
  test.each([
    ['Thu 09:00 -> Fri 09:01 (a holiday in kz-2028.json)', '2028-03-02T04:00:00Z', '2028-03-03T04:01:00Z', 422],
    ['Thu 09:00 -> Sat 12:00', '2028-03-02T04:00:00Z', '2028-03-04T07:00:00Z', 422],
    ['Thu 09:00 -> Mon 09:01', '2028-03-02T04:00:00Z', '2028-03-06T04:01:00Z', 204],
  ])('%s', async (_what, changedAt, triedAt, status) => {
    const login = uniq('cal');
    env.clock.set(new Date(changedAt));
    const b = await activeUser(env, login, 'viewer', 'First-Pass1');
    env.clock.set(new Date(triedAt));
    expect((await b.login(login, 'First-Pass1')).statusCode).toBe(200);
    const res = await b.changePassword('First-Pass1', 'Second-Pass2');
    expect(res.statusCode).toBe(status);
    if (status === 422) expect(res.json().code).toBe('TOO_SOON');
  });
});
