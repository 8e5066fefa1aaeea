import { ConnectorError } from '../shared/errors';
import { ConfigError, loadConfig } from '../../config/load-config';
import { describeServiceError } from './service-error.mapper';
import { promptHidden } from './secret.prompt';

/**
 * Wraps a command action with the CLI conventions of INTERFACES.md: a coded refusal prints
 * "CODE: message" on stderr and exits 1 (or 2 for usage/unreadable input); anything unexpected
 * exits 1 with its message (never a stack trace with secrets in it); PostgreSQL or Redis out of
 * reach is named as such (POSTGRESQL_UNREACHABLE, REDIS_UNREACHABLE) with where and what to check.
 */
export function runAction<A extends unknown[]>(action: (...args: A) => Promise<number | void>) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await action(...args);
      process.exitCode = typeof code === 'number' ? code : 0;
    } catch (err) {
      process.exitCode = reportError(err);
    }
  };
}

export function reportError(err: unknown): number {
  if (err instanceof ConnectorError) {
    process.stderr.write(`${err.code}: ${err.message}\n`);
    return err.exitCode;
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.code}: ${err.message}\n`);
    return err.exitCode;
  }
  // PostgreSQL or Redis down: the driver's "connect ECONNREFUSED 127.0.0.1:5432" named as the service, where and what to check.
  const unreachable = serviceErrorOf(err);
  if (unreachable) {
    process.stderr.write(`${unreachable.code}: ${unreachable.message}\n`);
    if (process.env.CONNECTOR_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    return unreachable.exitCode;
  }
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`ERROR: ${message}\n`);
  if (process.env.CONNECTOR_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
  return 1;
}

/** The command's own configuration (it loaded the same one) says where PostgreSQL and Redis are. */
function serviceErrorOf(err: unknown) {
  try {
    return describeServiceError(err, loadConfig());
  } catch {
    return null;
  }
}

/** Reads all of stdin (secrets come from here, never argv). */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * A secret read from stdin: one line, the trailing newline removed. Empty is a usage error. Typed
 * at a terminal (`--secret-stdin` with nothing piped in), it is asked for without echo, as the
 * password prompt does: neither on the screen nor, as `printf "$SECRET" |` would have it, in a
 * shell variable.
 */
export async function readSecretFromStdin(what: string): Promise<string> {
  const text = process.stdin.isTTY ? await promptHidden(`${what[0].toUpperCase()}${what.slice(1)}: `) : await readStdin();
  const secret = text.replace(/\r?\n$/, '');
  if (!secret) throw new ConnectorError('USAGE', `no ${what} on standard input`, 2);
  return secret;
}
