import { isAbsolute, resolve } from 'node:path';
import { ConnectorError } from '../../connector/shared/errors';

/**
 * Where the signer agent listens. Keys of people sit behind it, so it never leaves the machine:
 * a loopback TCP address or a Unix socket (DESIGN.md "Signer placement", issue 11).
 */
export type ListenAddress =
  | { kind: 'tcp'; host: '127.0.0.1' | '::1'; port: number; url: string }
  | { kind: 'unix'; path: string; url: string };

const LOOPBACK: Record<string, '127.0.0.1' | '::1'> = {
  '127.0.0.1': '127.0.0.1',
  localhost: '127.0.0.1',
  '::1': '::1',
  '[::1]': '::1',
};

/**
 * Parses `http://127.0.0.1:8901`, `http://[::1]:8901`, `http://localhost:8901` or `unix:/path`
 * (relative socket paths resolve against `cwd`). Anything else is refused with
 * SIGNER_NOT_LOOPBACK / SIGNER_URL_INVALID naming what to use instead.
 */
export function parseListenAddress(url: string, cwd: string = process.cwd()): ListenAddress {
  if (url.startsWith('unix:')) {
    const raw = url.slice('unix:'.length).replace(/^\/\/(?=\/)/, '');
    if (!raw) throw new ConnectorError('SIGNER_URL_INVALID', `signer URL "${url}" names no socket path; expected unix:/path/to/agent.sock`);
    const path = isAbsolute(raw) ? raw : resolve(cwd, raw);
    return { kind: 'unix', path, url: `unix:${path}` };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectorError('SIGNER_URL_INVALID', `signer URL "${url}" is not a URL; expected http://127.0.0.1:8901 or unix:/path`);
  }
  if (parsed.protocol !== 'http:') {
    throw new ConnectorError(
      'SIGNER_URL_INVALID',
      `signer URL "${url}": the agent speaks plain HTTP on loopback or a Unix socket only; expected http://127.0.0.1:PORT or unix:/path`,
    );
  }
  if (parsed.username || parsed.password || (parsed.pathname !== '/' && parsed.pathname !== '') || parsed.search) {
    throw new ConnectorError('SIGNER_URL_INVALID', `signer URL "${redactUrl(url)}": expected only scheme, host and port`);
  }
  const host = LOOPBACK[parsed.hostname];
  if (!host) {
    throw new ConnectorError(
      'SIGNER_NOT_LOOPBACK',
      `signer agent refuses to listen on "${parsed.hostname}": it holds users' unlocked keys and listens only on 127.0.0.1, ::1 or a Unix socket (unix:/path)`,
    );
  }
  const port = parsed.port === '' ? 80 : Number(parsed.port);
  const shownHost = host === '::1' ? '[::1]' : host;
  return { kind: 'tcp', host, port, url: `http://${shownHost}:${port}` };
}

function redactUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}
