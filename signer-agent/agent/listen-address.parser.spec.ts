import { parseListenAddress } from './listen-address.parser';

describe('parseListenAddress', () => {
  it.each([
    ['http://127.0.0.1:8901', { kind: 'tcp', host: '127.0.0.1', port: 8901 }],
    ['http://localhost:9000', { kind: 'tcp', host: '127.0.0.1', port: 9000 }],
    ['http://[::1]:8901', { kind: 'tcp', host: '::1', port: 8901 }],
    ['http://127.0.0.1:0', { kind: 'tcp', host: '127.0.0.1', port: 0 }],
  ])('accepts the loopback address %s', (url, expected) => {
    expect(parseListenAddress(url)).toMatchObject(expected);
  });

  it.each(['http://0.0.0.0:8901', 'http://192.168.1.10:8901', 'http://[::]:8901', 'http://example.com:8901', 'http://127.0.0.2:8901'])(
    'refuses the non-loopback address %s with SIGNER_NOT_LOOPBACK',
    (url) => {
      expect(() => parseListenAddress(url)).toThrow(expect.objectContaining({ code: 'SIGNER_NOT_LOOPBACK' }));
    },
  );

  it.each(['https://127.0.0.1:8901', 'ftp://127.0.0.1', 'not a url', 'unix:', 'http://user:pw@127.0.0.1:1', 'http://127.0.0.1:1/path'])('refuses %s as invalid', (url) => {
    expect(() => parseListenAddress(url)).toThrow(expect.objectContaining({ code: 'SIGNER_URL_INVALID' }));
  });

  it('resolves a relative unix socket path against the working directory', () => {
    expect(parseListenAddress('unix:run/agent.sock', '/srv/connector')).toEqual({ kind: 'unix', path: '/srv/connector/run/agent.sock', url: 'unix:/srv/connector/run/agent.sock' });
    expect(parseListenAddress('unix:/tmp/a.sock')).toMatchObject({ kind: 'unix', path: '/tmp/a.sock' });
  });
});
