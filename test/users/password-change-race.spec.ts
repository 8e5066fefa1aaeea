import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { hashPassword } from '../../connector/users/password.policy';
import { findUser } from '../../connector/users/user.service';
import { activeUser, Browser, DAY, uniq, usersTestEnvOfFile } from './users-test.env';

/**
 * A password change checks the current password, then the history of 7 (up to 8 scrypt hashes:
 * most of a second), then writes the new hash. An admin's reset (R-10: "the next login must change
 * it"; after a suspected leak above all) that lands in between used to be written over: the new
 * password was the one the session's holder chose, the forced change was cleared, and the admin
 * was told nothing. The change now takes effect only over the password it checked.
 */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

it("an admin's reset landing during a password change is not written over: the change is refused, the reset stands", async () => {
  const login = uniq('racer');
  const browser = await activeUser(env, login, 'viewer', 'Racer-Pass-1');
  // Past the minimum age so that the change is an ordinary one.
  env.clock.advance(3 * DAY);
  expect((await browser.login(login, 'Racer-Pass-1')).statusCode).toBe(200);
  const user = (await findUser(env.context.orm.em.fork(), login))!;
  const adminHash = await hashPassword('Admin-Set-Pass1', 14);

  const admin = new Client({ connectionString: env.dbUrl });
  await admin.connect();
  try {
    // The admin's reset holds the user's row while the change is under way...
    await admin.query('begin');
    await admin.query('select id from app_user where id = $1 for update', [user.id]);
    const change = browser.changePassword('Racer-Pass-1', 'Chosen-Pass-2');
    // ...until the change's write waits on it.
    for (let i = 0; ; i++) {
      const { rows } = await admin.query("select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid() and datname = current_database()");
      if (rows[0].n > 0) break;
      if (i > 200) throw new Error('the password change never reached its write');
      await sleep(25);
    }
    await admin.query('update app_user set password_hash = $1, password_changed_at = now(), must_change_password = true where id = $2', [adminHash, user.id]);
    await admin.query('commit');
    const res = await change;
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('INVALID_CREDENTIALS');
  } finally {
    await admin.query('rollback').catch(() => undefined);
    await admin.end();
  }
  // The admin's password stands, with its forced change; the chosen one opens nothing.
  const after = (await findUser(env.context.orm.em.fork(), login))!;
  expect(after.passwordHash).toBe(adminHash);
  expect(after.mustChangePassword).toBe(true);
  expect((await new Browser(env).login(login, 'Chosen-Pass-2')).statusCode).toBe(401);
  const relogin = await new Browser(env).login(login, 'Admin-Set-Pass1');
  expect([relogin.statusCode, relogin.json().mustChangePassword]).toEqual([200, true]);
  // Nothing of the refused change entered the history of 7.
  const history = await env.context.orm.em.fork().execute<Array<{ n: number }>>('select count(*)::int as n from password_history where user_id = ?', [user.id]);
  expect(history[0].n).toBe(2);
});
