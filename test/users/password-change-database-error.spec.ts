import { Client } from 'pg';
import { createUser } from '../../connector/users/user.service';
import { Browser, uniq, usersTestEnvOfFile } from './users-test.env';

/**
 * A password change whose statement meets a lock held by another session (a backup, a long
 * admin transaction) fails within database.lockTimeoutMs. The new password's scrypt hash, bound in
 * that statement, used to come back inside the error knex wrote, and so into the API's log line.
 */
const env = usersTestEnvOfFile({ overrides: { 'database.lockTimeoutMs': 500 } });

it('a password change that fails on a lock is 503 with Retry-After, and logs which table and limit, never the new hash', async () => {
  const login = uniq('locked');
  await createUser(env.deps(), { login, role: 'viewer', password: 'Tmp-Start-Pass1', actor: 'test' });
  const browser = new Browser(env);
  expect((await browser.login(login, 'Tmp-Start-Pass1')).statusCode).toBe(200);
  const holder = new Client({ connectionString: env.dbUrl });
  await holder.connect();
  try {
    await holder.query('begin');
    // Reads go on; the history insert of the change waits, then fails.
    await holder.query('lock table password_history in share mode');
    const res = await browser.changePassword('Tmp-Start-Pass1', 'Brand-New-Pass2');
    // Not a fault of the request: 503 with Retry-After, which a client retries (the change did not happen).
    expect(res.statusCode).toBe(503);
    expect((res.headers as unknown as Headers).get('retry-after')).toBe('5');
    expect(res.json()).toMatchObject({ code: 'TEMPORARILY_UNAVAILABLE', message: expect.stringMatching(/lock_timeout/) });
    const log = env.logLines.join('');
    expect(`${log}${res.body}`).not.toMatch(/scrypt\$/);
    expect(log).toMatch(/insert into password_history - canceling statement due to lock timeout/);
    // The old password still opens the session: nothing of the change was kept.
    await holder.query('rollback');
    expect((await new Browser(env).login(login, 'Tmp-Start-Pass1')).statusCode).toBe(200);
  } finally {
    await holder.query('rollback').catch(() => undefined);
    await holder.end();
  }
});
