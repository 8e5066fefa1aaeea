import type { AppContext } from '../app/app-context';
import { hostAllowed } from './user.routes';

/** The Host check against DNS rebinding (user.routes.ts), for each way the API can be set up. */
const contextOf = (api: { host: string; allowedHosts?: string[]; consoleOrigins?: string[] }) =>
  ({ config: { api: { allowedHosts: [], consoleOrigins: [], ...api } } }) as unknown as Pick<AppContext, 'config'>;
const host = (value: string | undefined, forwarded?: string | string[]) => ({ host: value, ...(forwarded === undefined ? {} : { 'x-forwarded-host': forwarded }) });

describe('hostAllowed', () => {
  test('on loopback (the default): addresses, localhost and the listed names only', () => {
    const ctx = contextOf({ host: '127.0.0.1', allowedHosts: ['connector.local'], consoleOrigins: ['https://console.example.kz:8443'] });
    for (const h of ['127.0.0.1:8080', '10.0.0.5', '[::1]:8080', '[fe80::1]', 'localhost', 'LOCALHOST:1', 'connector.local:8080', 'connector.local.', 'Console.Example.KZ', undefined]) {
      expect(hostAllowed(host(h), ctx)).toBe(true);
    }
    for (const h of ['evil.example', 'evil.example:8080', 'connector.local.evil.example', '127.0.0.1.evil.example', 'evil.example@127.0.0.1', 'a b', '', '[evil]', 'connector.local:99999999']) {
      expect(hostAllowed(host(h), ctx)).toBe(false);
    }
  });

  test('a proxy\'s X-Forwarded-Host must be known too (a proxy that rewrites Host to its upstream)', () => {
    const ctx = contextOf({ host: '127.0.0.1', allowedHosts: ['connector.corp'] });
    expect(hostAllowed(host('127.0.0.1:8080', 'connector.corp'), ctx)).toBe(true);
    expect(hostAllowed(host('127.0.0.1:8080', 'evil.example'), ctx)).toBe(false);
    expect(hostAllowed(host('127.0.0.1:8080', 'connector.corp, evil.example'), ctx)).toBe(false);
    expect(hostAllowed(host('127.0.0.1:8080', ['connector.corp', 'evil.example']), ctx)).toBe(false);
  });

  test('beyond loopback: any name until api.allowedHosts lists them, then those only', () => {
    expect(hostAllowed(host('erp-server.corp:8080'), contextOf({ host: '0.0.0.0' }))).toBe(true);
    const listed = contextOf({ host: '0.0.0.0', allowedHosts: ['connector.corp'] });
    expect(hostAllowed(host('connector.corp:8080'), listed)).toBe(true);
    expect(hostAllowed(host('10.1.2.3:8080'), listed)).toBe(true);
    expect(hostAllowed(host('evil.example'), listed)).toBe(false);
    // The API bound to a name answers to that name.
    expect(hostAllowed(host('connector.corp'), contextOf({ host: 'connector.corp', allowedHosts: ['other.corp'] }))).toBe(true);
  });
});
