import type { AppContext } from '../app/app-context';
import { hostAllowed } from './user.routes';

/** The Host check against DNS rebinding (user.routes.ts), for each way the API can be set up. */
const contextOf = (api: { host: string; allowedHosts?: string[]; consoleOrigins?: string[] }) =>
  ({ config: { api: { allowedHosts: [], consoleOrigins: [], ...api } } }) as unknown as Pick<AppContext, 'config'>;

describe('hostAllowed', () => {
  test('on loopback (the default): addresses, localhost and the listed names only', () => {
    const ctx = contextOf({ host: '127.0.0.1', allowedHosts: ['connector.local'], consoleOrigins: ['https://console.example.kz:8443'] });
    for (const host of ['127.0.0.1:8080', '10.0.0.5', '[::1]:8080', 'localhost', 'LOCALHOST:1', 'connector.local:8080', 'Console.Example.KZ', undefined]) expect(hostAllowed(host, ctx)).toBe(true);
    for (const host of ['evil.example', 'evil.example:8080', 'connector.local.evil.example', '127.0.0.1.evil.example', 'a b', '']) expect(hostAllowed(host, ctx)).toBe(host === '');
  });

  test('beyond loopback: any name until api.allowedHosts lists them, then those only', () => {
    expect(hostAllowed('erp-server.corp:8080', contextOf({ host: '0.0.0.0' }))).toBe(true);
    const listed = contextOf({ host: '0.0.0.0', allowedHosts: ['connector.corp'] });
    expect(hostAllowed('connector.corp:8080', listed)).toBe(true);
    expect(hostAllowed('10.1.2.3:8080', listed)).toBe(true);
    expect(hostAllowed('evil.example', listed)).toBe(false);
    // The API bound to a name answers to that name.
    expect(hostAllowed('connector.corp', contextOf({ host: 'connector.corp', allowedHosts: ['other.corp'] }))).toBe(true);
  });
});
