import { readFileSync, statSync } from 'node:fs';

/**
 * The one check of a secret file's permissions: its mode as `0644` when group or others may
 * read it, else null. A file that cannot be stat'ed is left to the read that follows (it says why);
 * Windows has no such bits. Used for the bank's Client Secret file and the webhook secret files.
 */
export function looseFileMode(path: string): string | null {
  if (process.platform === 'win32') return null;
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return null;
  }
  return (mode & 0o077) !== 0 ? (mode & 0o777).toString(8).padStart(4, '0') : null;
}

/**
 * The HMAC secret in a file (trimmed), or why it may not sign: the file cannot be read, is empty
 * (an HMAC with an empty key is one anyone can compute: no signature at all), or group or others
 * may read it (anyone on the machine could forge what the receiver takes as ours). `key` is the
 * config key that names the file, for the operator. Never the content in a reason.
 */
export function readSigningSecret(path: string, key: string): { secret: string } | { problem: string } {
  const loose = looseFileMode(path);
  if (loose) return { problem: `${key} ${path} may be read by group or others (mode ${loose}): anyone on this machine could sign in the connector's name; run chmod 600 ${path}` };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { problem: `${key} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): write the HMAC secret the receiver verifies with into it (mode 0600)` };
  }
  const secret = text.trim();
  if (!secret) return { problem: `${key} ${path} is empty: an HMAC with an empty key is one anyone can compute; write the HMAC secret the receiver verifies with into it (mode 0600)` };
  return { secret };
}
