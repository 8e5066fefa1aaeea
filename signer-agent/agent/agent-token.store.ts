import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, mkdirSync, openSync, readFileSync, statSync, writeSync, closeSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { ConnectorError } from '../../connector/shared/errors';

/** Resolves the token file the way INTERFACES.md says: relative paths are under the working directory. */
export function resolveTokenFile(tokenFile: string, cwd: string = process.cwd()): string {
  return isAbsolute(tokenFile) ? tokenFile : resolve(cwd, tokenFile);
}

/**
 * Returns the agent's bearer token, creating the file (mode 0600, 32 random bytes, base64url)
 * on first use (INTERFACES.md, CONNECTOR_SIGNER_TOKEN_FILE). `wx` makes two processes that start
 * together agree on one token: the loser reads what the winner wrote.
 */
export function ensureToken(path: string): string {
  try {
    return readToken(path);
  } catch (err) {
    if (!(err instanceof ConnectorError) || err.code !== 'SIGNER_TOKEN_MISSING') throw err;
  }
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const token = randomBytes(32).toString('base64url');
  let fd: number;
  try {
    fd = openSync(path, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return readToken(path);
    throw new ConnectorError('SIGNER_TOKEN_UNREADABLE', `signer token file ${path} cannot be created: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  try {
    writeSync(fd, `${token}\n`);
  } finally {
    closeSync(fd);
  }
  chmodSync(path, 0o600); // the umask may have narrowed it further; never wider
  return token;
}

/** Reads an existing token file (callers: the client). Whitespace around the token is ignored. */
export function readToken(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConnectorError('SIGNER_TOKEN_MISSING', `signer token file ${path} does not exist; start the signer agent once (connector signer-agent) to create it`);
    throw new ConnectorError('SIGNER_TOKEN_UNREADABLE', `signer token file ${path} cannot be read: ${code ?? err}`);
  }
  const token = text.trim();
  if (token.length < 16) throw new ConnectorError('SIGNER_TOKEN_UNREADABLE', `signer token file ${path} holds no usable token (at least 16 characters); delete it to have a new one made`);
  return token;
}

/** True when group or others may read the file: the agent warns, the token is as good as public. */
export function tokenFileTooOpen(path: string): boolean {
  return process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0;
}

/**
 * Constant-time comparison of a presented token with the expected one. Both sides are hashed
 * first so that neither the length nor a prefix of the token leaks through timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** Extracts the token from `Authorization: Bearer <token>`; undefined for any other form. */
export function bearerToken(header: string | string[] | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer ([^\s]+)\s*$/i.exec(header);
  return match ? match[1] : undefined;
}

/** A caller's challenge to the agent (`X-Signer-Challenge` on GET /health): 16-128 base64url characters. */
export const AGENT_CHALLENGE = /^[A-Za-z0-9_-]{16,128}$/;

/**
 * The agent's answer to a challenge (`X-Signer-Proof`): only a process that holds the token can give
 * it. A caller checks it before it sends the token or a password: on loopback any local account may
 * listen on the agent's port while the agent is down (a restart, a crash), and would otherwise be
 * handed both.
 */
export function agentProof(token: string, challenge: string): string {
  return createHmac('sha256', token).update(`signer-agent proof ${challenge}`, 'utf8').digest('hex');
}

/** Constant-time check of a proof the agent gave for `challenge`. */
export function proofMatches(proof: unknown, token: string, challenge: string): boolean {
  if (typeof proof !== 'string') return false;
  const a = Buffer.from(proof, 'utf8');
  const b = Buffer.from(agentProof(token, challenge), 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}
