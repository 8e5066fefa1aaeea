import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ConnectorError } from '../shared/errors';
import { syncFolderSync } from '../shared/atomic-file';

/**
 * The master key file (CONNECTOR_MASTER_KEY_FILE, default `.connector/master.key`) that encrypts
 * the credential vault and TOTP seeds (R-4: never stored in clear).
 *
 * Format: one key per line, `<id>:<base64 of 32 bytes>`; the LAST line is the current key, the
 * earlier ones remain only so ciphertexts written under them can still be read until
 * `connector vault rotate-key` has re-encrypted everything. Created with mode 0600 on first use;
 * a file readable by group or others is refused (it would leak every secret it protects).
 */
export interface MasterKey {
  id: string;
  key: Buffer;
}

export interface MasterKeyRing {
  current: MasterKey;
  byId: Map<string, Buffer>;
  path: string;
  /** The file as it was read (inode, size, modification time): `rereadIfChanged` compares it. */
  stamp: string;
}

const LINE = /^([A-Za-z0-9_-]{1,32}):([A-Za-z0-9+/]{43}=)$/;

/**
 * What to do when the key file in use is not the one that sealed the secrets. Its default path is
 * relative to the working directory, so a command run from another directory reads (or would
 * create) another file.
 */
export const KEY_FILE_HINT =
  'run the connector from its installation directory, or set CONNECTOR_MASTER_KEY_FILE to the key file that sealed the secrets (restore that file from backup if it was lost)';

export function resolveMasterKeyPath(file: string, cwd: string = process.cwd()): string {
  return resolve(cwd, file);
}

function stampOf(path: string): string {
  const st = statSync(path);
  return `${st.ino}:${st.size}:${st.mtimeMs}`;
}

/** The stamp is taken before the text: a file replaced in between is read again next time, never missed. */
function read(path: string): MasterKeyRing {
  const stamp = stampOf(path);
  return parse(path, readFileSync(path, 'utf8'), stamp);
}

/**
 * The ring again when its file changed since it was read (`connector vault rotate-key` in another
 * process replaces the file), else the same ring. A file gone keeps the ring read before.
 */
export function rereadIfChanged(ring: MasterKeyRing): MasterKeyRing {
  let stamp: string;
  try {
    stamp = stampOf(ring.path);
  } catch {
    return ring;
  }
  return stamp === ring.stamp ? ring : loadMasterKey(ring.path);
}

function assertPrivate(path: string): void {
  if (process.platform === 'win32') return;
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new ConnectorError(
      'MASTER_KEY_PERMISSIONS',
      `master key file ${path} has mode ${mode.toString(8).padStart(4, '0')}; it must be readable by its owner only: chmod 600 ${path}`,
    );
  }
}

function parse(path: string, text: string, stamp: string): MasterKeyRing {
  const byId = new Map<string, Buffer>();
  let current: MasterKey | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    const m = LINE.exec(line);
    if (!m) throw new ConnectorError('MASTER_KEY_INVALID', `master key file ${path} has a line that is not "<id>:<base64 32-byte key>"`);
    const key = Buffer.from(m[2], 'base64');
    if (key.length !== 32) throw new ConnectorError('MASTER_KEY_INVALID', `master key ${m[1]} in ${path} is not 32 bytes`);
    byId.set(m[1], key);
    current = { id: m[1], key };
  }
  if (!current) throw new ConnectorError('MASTER_KEY_INVALID', `master key file ${path} holds no key`);
  return { current, byId, path, stamp };
}

function newKeyLine(existing: Set<string>): string {
  let id: string;
  do id = `k${randomBytes(4).toString('hex')}`;
  while (existing.has(id));
  return `${id}:${randomBytes(32).toString('base64')}\n`;
}

/**
 * `text` in a new file beside `path` (0600), whole and on disk (fsync), or no file at all: a disk
 * that is full or fails takes the temp file away again. Returns its path.
 */
function writeTemp(path: string, text: string): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    try {
      const bytes = Buffer.from(text, 'utf8');
      for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    chmodSync(tmp, 0o600);
  } catch (err) {
    rmTemp(tmp);
    throw err;
  }
  return tmp;
}

function rmTemp(tmp: string): void {
  try {
    unlinkSync(tmp);
  } catch {
    // Already gone.
  }
}

/**
 * Replaces the key file, on disk before this returns: the caller then seals secrets under its new
 * key and commits them to PostgreSQL (durable at once). A power loss after that commit must not
 * find the key file empty or as it was before, with the secrets sealed under a key no file holds.
 */
function writePrivate(path: string, text: string): void {
  const tmp = writeTemp(path, text);
  try {
    renameSync(tmp, path);
  } catch (err) {
    rmTemp(tmp);
    throw err;
  }
  syncFolderSync(path);
}

/**
 * Loads the key ring without ever creating the file: for every process that only opens secrets
 * (worker, status, doctor). A new key there could open nothing already sealed.
 */
export function loadMasterKey(path: string): MasterKeyRing {
  if (!existsSync(path)) {
    throw new ConnectorError('MASTER_KEY_MISSING', `the master key file ${path} does not exist (CONNECTOR_MASTER_KEY_FILE; default .connector/master.key under the working directory): ${KEY_FILE_HINT}`);
  }
  assertPrivate(path);
  return read(path);
}

/** Loads the key ring, creating the file (0600) with one fresh key when it does not exist. */
export function loadOrCreateMasterKey(path: string): MasterKeyRing {
  if (!existsSync(path)) {
    // Written whole and synced under a temp name, then given its name only if it has none yet: a
    // disk full half-way used to leave an empty master.key that every later start refused ("holds
    // no key"), and a power loss after the first secret was sealed, a key file without its key.
    const tmp = writeTemp(path, newKeyLine(new Set()));
    try {
      linkSync(tmp, path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      // A file system without hard links (FAT, some shares): renamed instead, unless another process made it meanwhile.
      if (['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].includes(code) && !existsSync(path)) renameSync(tmp, path);
      // Another process created it first: use theirs.
      else if (code !== 'EEXIST') throw err;
    } finally {
      rmTemp(tmp);
    }
    syncFolderSync(path);
  }
  assertPrivate(path);
  return read(path);
}

/** Appends a new current key (old keys stay readable); returns the new ring. */
export function addMasterKey(path: string): MasterKeyRing {
  const ring = loadOrCreateMasterKey(path);
  const text = readFileSync(path, 'utf8');
  writePrivate(path, `${text.endsWith('\n') ? text : `${text}\n`}${newKeyLine(new Set(ring.byId.keys()))}`);
  return loadOrCreateMasterKey(path);
}

/** Drops every key but the current one (after everything was re-encrypted under it). */
export function pruneMasterKeys(path: string): MasterKeyRing {
  const ring = loadOrCreateMasterKey(path);
  writePrivate(path, `${ring.current.id}:${ring.current.key.toString('base64')}\n`);
  return loadOrCreateMasterKey(path);
}
