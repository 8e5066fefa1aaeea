import { statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConnectorError, UsageError } from '../shared/errors';
import { osUserName } from './os-user';

/**
 * The file an `--out` names, checked before any work: a folder there (`--out /srv/1c/inbox`, the
 * exchange folder given for the file in it) is a usage error naming the file to give instead. It
 * failed only at the very end, after the work was done, as "EISDIR: illegal operation on a
 * directory, rename '/srv/1c/.inbox.4711.9f3a.tmp' -> '/srv/1c/inbox'".
 */
export function outFilePath(flag: string, given: string, example: string): string {
  const path = resolve(given);
  let folder = false;
  try {
    folder = statSync(path).isDirectory();
  } catch {
    // Nothing there yet: it is written.
  }
  if (folder) throw new UsageError(`${flag} ${given} is a folder: give the path of the file to write, e.g. ${join(path, example)}`);
  return path;
}

const WHY: Record<string, (path: string) => string> = {
  EACCES: (path) => `its folder ${dirname(path)} is not writable by ${osUserName() ?? 'this user'}`,
  EPERM: (path) => `its folder ${dirname(path)} is not writable by ${osUserName() ?? 'this user'}`,
  EROFS: () => 'it is on a read-only file system',
  ENOSPC: () => 'the disk is full',
  EDQUOT: () => 'the disk quota is used up',
  ENOTDIR: () => 'a part of its path is a file, not a folder',
  // From creating its folder: a file has that name.
  EEXIST: (path) => `its folder ${dirname(path)} is a file, not a folder`,
  EISDIR: () => 'it is a folder',
};

/**
 * A write to `--out` that the file system refused, named by the flag and the path given (not the
 * temp file written beside it first), with why and what to do; anything else as it was.
 */
export function outFileError(flag: string, path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const why = code ? WHY[code] : undefined;
  if (!why) return err;
  return new ConnectorError('OUTPUT_UNWRITABLE', `${flag} ${path} cannot be written: ${why(path)} (${code}); give another path, or fix the folder`);
}
