import { activeUser, Browser, usersTestEnvOfFile } from './users-test.env';

/**
 * Without api.trustedProxies (the default) the API believes no X-Forwarded-* header: a client on
 * loopback, as every client is when the API listens there, cannot name a new address for each
 * login attempt to escape the per-IP limit, nor claim TLS for the cookie's Secure flag.
 */
const env = usersTestEnvOfFile({ overrides: { 'api.trustedProxies': [] } });

describe('X-Forwarded-* from a client that is not a configured proxy', () => {
  // First: the next test uses up this address's login attempts for the minute.
  test('X-Forwarded-Proto: https does not make the session cookie Secure', async () => {
    await activeUser(env, 'proxyless', 'viewer', 'Proxyless-Pass1');
    const res = await fetch(`${env.baseUrl}/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, body: JSON.stringify({ login: 'proxyless', password: 'Proxyless-Pass1' }) });
    expect(res.status).toBe(200);
    expect(res.headers.getSetCookie()[0]).not.toMatch(/Secure/);
  });

  test('a forged X-Forwarded-For per attempt does not escape the per-IP login limit: 429 within 31 attempts', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 31; i += 1) {
      // Each Browser sends another X-Forwarded-For address.
      statuses.push((await new Browser(env).login(`nobody${i}`, 'Guess-Pass-1')).statusCode);
    }
    // Every attempt counted against the socket's address (the test before made 2 of them).
    expect(statuses.slice(0, 28).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(28)).toEqual([429, 429, 429]);
  });
});
