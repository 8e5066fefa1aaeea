import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/**
 * Writes `bytes` to `path` atomically: a temp file beside it, fsync, rename (POSIX rename is atomic
 * within a folder), so a reader (1C, a script) never sees half a file. `bytes` may come in parts
 * (a report written a page at a time); should any part fail, the temp file is removed and the file
 * at `path` is untouched. Mode 0640 unless `mode` says otherwise (a signature is public: 0644).
 */
export async function writeFileAtomic(path: string, bytes: Buffer | AsyncIterable<Buffer>, options: { mode?: number } = {}): Promise<void> {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  // 'wx' (O_CREAT|O_EXCL): the temp name is never a file or symlink planted there beforehand.
  const handle = await open(temp, 'wx', options.mode ?? 0o640);
  try {
    try {
      if (Buffer.isBuffer(bytes)) await handle.writeFile(bytes);
      // writeFile writes all of a part, from where the previous part ended.
      else for await (const part of bytes) await handle.writeFile(part);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw err;
  }
  // The rename itself survives a power loss only once the folder is on disk: callers record "written"
  // (the write-back's mark, say) right after this returns. Skipped where a folder cannot be opened
  // or synced at all; a failing disk (EIO) is an error like the file's own sync.
  const folder = await open(dir, 'r').catch(() => undefined);
  if (!folder) return;
  try {
    await folder.sync();
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    await folder.close();
  }
}

/** What a folder's fsync answers where the platform or file system does not do it. */
const DIR_SYNC_UNSUPPORTED = new Set(['EINVAL', 'ENOTSUP', 'EOPNOTSUPP', 'EISDIR', 'EPERM', 'EACCES', 'EBADF']);

/**
 * The folder of `path` on disk (a file just renamed or linked into it), for callers that must stay
 * synchronous (the master key store); as writeFileAtomic does, skipped where a folder cannot be
 * opened or synced at all.
 */
export function syncFolderSync(path: string): void {
  let fd: number;
  try {
    fd = openSync(dirname(path), 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch (err) {
    if (!DIR_SYNC_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
  } finally {
    closeSync(fd);
  }
}
