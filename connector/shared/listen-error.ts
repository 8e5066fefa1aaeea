import { ConnectorError } from './errors';

/**
 * Why a server could not listen, as an operator reads it: what, where, the system's reason and what
 * to do. EADDRINUSE is the usual one (a second copy of the process, or another program on the
 * port); `settings` names where the address comes from (environment variable, config key, flag).
 */
export function listenFailure(code: string, what: string, where: string, err: unknown, settings: string): ConnectorError {
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const port = /:(\d+)$/.exec(where)?.[1];
  let why: string;
  switch (errno) {
    case 'EADDRINUSE':
      why = `the address is already in use (EADDRINUSE): another process holds it${port ? ` (see which: ss -ltnp 'sport = :${port}')` : ''}; stop that process, or choose another address with ${settings}`;
      break;
    case 'EACCES':
      why = `permission denied (EACCES): ports below 1024 need privileges; choose a port from 1024 up with ${settings}`;
      break;
    case 'EADDRNOTAVAIL':
      why = `no network interface of this machine has that address (EADDRNOTAVAIL); fix it with ${settings}`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      why = `the host name does not resolve (${errno}); fix it with ${settings}`;
      break;
    default:
      why = `${err instanceof Error ? err.message : String(err)}; check ${settings}`;
  }
  return new ConnectorError(code, `${what} cannot listen on ${where}: ${why}`);
}
