import { base32Decode, totp } from '../../connector/users/totp';
import { enrollTotp } from '../../connector/users/user.service';
import { activeUser, Browser, startUsersTestEnv, type UsersTestEnv } from './users-test.env';

/** Findings of the security audit, each over the real API, PostgreSQL and Redis. */
let env: UsersTestEnv;
let seq = 0;
const uniq = (base: string) => `${base}${++seq}`;

beforeAll(async () => {
  env = await startUsersTestEnv({ start: '2026-03-02T04:00:00Z' });
});
afterAll(async () => {
  await env?.close();
});

describe('R-14 second factor: a TOTP code is good for one login only (RFC 6238 section 5.2)', () => {
  test('the code that just logged in is refused a second time, also from another address; the next step logs in', async () => {
    const login = uniq('replay');
    await activeUser(env, login, 'viewer', 'Replay-Pass-1');
    const { secret } = await enrollTotp(env.deps(), { login, actor: 'test' });
    const seed = base32Decode(secret);
    const code = totp(seed, env.clock.now());
    expect((await new Browser(env).login(login, 'Replay-Pass-1', code)).statusCode).toBe(200);
    // Whoever saw the password and the code (a shoulder, a phishing proxy) replays them within the window.
    env.clock.advance(10_000);
    const replay = await new Browser(env).login(login, 'Replay-Pass-1', code);
    expect([replay.statusCode, replay.json().code]).toEqual([401, 'TOTP_REQUIRED']);
    // A code of an earlier step than the one used is refused too, even inside the +-1 step window.
    const earlier = totp(seed, new Date(env.clock.now().getTime() - 30_000));
    if (earlier !== code) expect((await new Browser(env).login(login, 'Replay-Pass-1', earlier)).statusCode).toBe(401);
    env.clock.advance(30_000);
    expect((await new Browser(env).login(login, 'Replay-Pass-1', totp(seed, env.clock.now()))).statusCode).toBe(200);
  });

  test('a new seed (totp-enroll again) starts afresh', async () => {
    const login = uniq('reenroll');
    await activeUser(env, login, 'viewer', 'Reenroll-Pass-1');
    const first = base32Decode((await enrollTotp(env.deps(), { login, actor: 'test' })).secret);
    expect((await new Browser(env).login(login, 'Reenroll-Pass-1', totp(first, env.clock.now()))).statusCode).toBe(200);
    const second = base32Decode((await enrollTotp(env.deps(), { login, actor: 'test' })).secret);
    expect((await new Browser(env).login(login, 'Reenroll-Pass-1', totp(second, env.clock.now()))).statusCode).toBe(200);
  });
});
