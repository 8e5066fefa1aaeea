import { createHash, type Hash } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as iconv from 'iconv-lite';
import { writeFileAtomic } from '../../../connector/shared/atomic-file';
import type { OnecIssue } from './onec-exchange.types';

/**
 * The outbox folder 1C writes `1c_to_kl.txt` into (INTERFACES.md "1C folder exchange"): which
 * files are ready, and where they go after: `archive/` with their sha256, or `error/` with a
 * report beside. A ready file is first claimed into `processing/` and read from there, so 1C's
 * next export to the same name is a new file (see `claimOutboxFile`). Only files and folders;
 * the queue job wires the reader and the intake.
 */
export interface OutboxFile {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export type Readiness = 'ready' | 'writing' | 'incomplete';

// Hidden and temporary files, reports, and the files the connector writes for 1C (kl_to_1c*.txt),
// should a folder ever hold both: they are never 1C's exports.
const SKIP = /^\.|^kl_to_1c|\.(tmp|part|partial|lock|report\.txt|sha256)$/i;

/** Regular files directly in the folder (not `archive/`, `error/`, hidden or temporary ones). */
export async function listOutbox(dir: string): Promise<OutboxFile[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const files: OutboxFile[] = [];
  for (const name of names.sort()) {
    if (SKIP.test(name)) continue;
    const path = join(dir, name);
    const st = await stat(path).catch(() => undefined);
    if (st?.isFile()) files.push({ path, name, size: st.size, mtimeMs: st.mtimeMs });
  }
  return files;
}

// Whitespace and padding (NUL, DOS end-of-file Ctrl-Z) may follow it, as the reader allows.
// eslint-disable-next-line no-control-regex
const END_OF_FILE = /конецфайла[\s\0\x1a]*$/i;

/** The file's last bytes end with `КонецФайла` (in any of the code pages 1C writes). */
export async function endsWithEndOfFile(path: string, size: number): Promise<boolean> {
  const length = Math.min(size, 256);
  if (length === 0) return false;
  const handle = await open(path, 'r');
  try {
    const tail = Buffer.alloc(length);
    await handle.read(tail, 0, length, size - length);
    return [tail.toString('utf8'), iconv.decode(tail, 'cp1251'), iconv.decode(tail, 'cp866')].some((t) => END_OF_FILE.test(t));
  } finally {
    await handle.close();
  }
}

/**
 * 1C may still be writing: a file is taken only when its size and time have not changed for
 * `stableMs` and it ends with `КонецФайла`. A file that stays without `КонецФайла` longer than
 * `incompleteAfterMs` will never be finished: it is `incomplete` (moved to `error/`).
 */
export async function readiness(file: OutboxFile, now: number, stableMs: number, incompleteAfterMs: number): Promise<Readiness> {
  const st = await stat(file.path).catch(() => undefined);
  if (!st || st.size !== file.size || st.mtimeMs !== file.mtimeMs) return 'writing';
  if (now - st.mtimeMs < stableMs) return 'writing';
  if (await endsWithEndOfFile(file.path, st.size)) return 'ready';
  return now - st.mtimeMs >= incompleteAfterMs ? 'incomplete' : 'writing';
}

/** The folder (inside the outbox) a claimed file is read from. */
export const PROCESSING_DIR = 'processing';

/**
 * Claims a ready file by renaming it into `processing/` (same folder, same filesystem: atomic).
 * From then on the outbox name is free: 1C's next export to `1c_to_kl.txt` makes a new file that
 * the next scan takes, instead of overwriting the one being read. The claimed file keeps its
 * outbox `name` (for the archive and error names); its `path` is in `processing/`. Undefined
 * when the file is gone since it was listed.
 */
export async function claimOutboxFile(dir: string, file: OutboxFile): Promise<OutboxFile | undefined> {
  const processing = join(dir, PROCESSING_DIR);
  await mkdir(processing, { recursive: true });
  const path = join(processing, await freeName(processing, file.name));
  try {
    await rename(file.path, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return { ...file, path };
}

/**
 * Files left in `processing/` by an earlier scan: one that died between the claim and the move,
 * or one that changed while it was read (1C still had it open). The scan takes them first; the
 * Redis folder lock means no live scan is reading them.
 */
export async function listClaimed(dir: string): Promise<OutboxFile[]> {
  return listOutbox(join(dir, PROCESSING_DIR));
}

const READ_BYTES = 256 * 1024;

/**
 * One read of a claimed file, through one open handle. The sha256 is of the bytes actually handed
 * to the reader, and `unchanged()` proves they are still the file's bytes: size, mtime and ctime
 * (nanoseconds) of the open inode as when it was opened, and the path still that inode. Any write
 * (1C writing on through a handle it opened before the claim, a truncate and rewrite) moves
 * mtime/ctime forward, so what was read, hashed and taken in is what gets archived.
 */
export class OutboxReading {
  private readonly hash: Hash = createHash('sha256');
  private position = 0;
  private digest: string | undefined;

  private constructor(
    readonly file: OutboxFile,
    private readonly handle: FileHandle,
    private readonly baseline: BigIntStats,
    /** Size and time as when `readiness()` judged the file: false when it changed since. */
    readonly asJudged: boolean,
  ) {}

  /** `judged` is the file as listed and judged ready (its size and time). */
  static async open(file: OutboxFile, judged: OutboxFile): Promise<OutboxReading> {
    const handle = await open(file.path, 'r');
    try {
      const baseline = await handle.stat({ bigint: true });
      const plain = await handle.stat();
      return new OutboxReading(file, handle, baseline, plain.size === judged.size && plain.mtimeMs === judged.mtimeMs);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** The bytes from where the last read stopped to the end of the file, 256 KiB at a time, hashed as they go. */
  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      const { bytesRead } = await this.handle.read(buffer, 0, READ_BYTES, this.position);
      if (bytesRead === 0) return;
      this.position += bytesRead;
      const chunk = buffer.subarray(0, bytesRead);
      this.hash.update(chunk);
      yield chunk;
    }
  }

  /** Reads what the reader left (it stops early on a file that is not an exchange file) and returns the sha256 of all bytes read. */
  async sha256(): Promise<string> {
    if (this.digest === undefined) {
      for await (const chunk of this.chunks()) void chunk;
      this.digest = this.hash.digest('hex');
    }
    return this.digest;
  }

  /** Nothing wrote to the file since it was opened, and `path` (default: where it was opened) is still it. */
  async unchanged(path = this.file.path, options: { moved?: boolean } = {}): Promise<boolean> {
    const now = await this.handle.stat({ bigint: true });
    const there = await stat(path, { bigint: true }).catch(() => undefined);
    const b = this.baseline;
    // Our own rename moves ctime, so after the move only size and mtime can tell.
    const same = now.size === b.size && now.mtimeNs === b.mtimeNs && (options.moved === true || now.ctimeNs === b.ctimeNs);
    return same && there !== undefined && there.ino === b.ino && there.dev === b.dev;
  }

  /**
   * Moves the file, read to its end and still unchanged, to `<dir>/<folder>/<name>` (a free
   * variant of it) with a sidecar beside it, and returns where it went; undefined when it changed,
   * then it stays in (or goes back to) `processing/` for the next scan. The sidecar is written
   * first: a worker killed in between leaves the file in `processing/`, and the next scan writes
   * the same sidecar again.
   */
  async moveTo(dir: string, folder: string, name: string, sidecar: { suffix: string; text: (name: string) => string }): Promise<string | undefined> {
    await this.sha256();
    const targetDir = await realFolder(dir, folder);
    const target = join(targetDir, await freeName(targetDir, name));
    if (BigInt(this.position) !== this.baseline.size || !(await this.unchanged())) return undefined;
    // Whoever can write into the outbox can plant a symlink at the sidecar's name: a temp file
    // created exclusively, then renamed over that name, replaces such a link instead of writing
    // through it into a file elsewhere (mode as before: what the umask leaves of 0666).
    await writeFileAtomic(`${target}${sidecar.suffix}`, Buffer.from(sidecar.text(basename(target)), 'utf8'), { mode: 0o666 });
    await rename(this.file.path, target);
    if (await this.unchanged(target, { moved: true })) return target;
    // Written to between the last check and the rename: a changed file never stays in archive/ or error/.
    const processing = join(dir, PROCESSING_DIR);
    await rename(target, join(processing, await freeName(processing, basename(this.file.path))));
    await unlink(`${target}${sidecar.suffix}`).catch(() => undefined);
    return undefined;
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/**
 * `<dir>/<folder>`, created if missing, and refused when it is a symbolic link: whoever can write
 * into the outbox could point `error/` or `archive/` at any folder the connector's user can write.
 */
async function realFolder(dir: string, folder: string): Promise<string> {
  const path = join(dir, folder);
  await mkdir(path, { recursive: true });
  if (!(await lstat(path)).isDirectory()) {
    throw new Error(`${path} is not a folder (a symbolic link?): the outbox's ${folder}/ must be a real folder, files and reports are never moved or written through a link`);
  }
  return path;
}

/** A name not taken in `dir`: a symlink counts as taken even when it points nowhere (lstat, not stat). */
async function freeName(dir: string, name: string): Promise<string> {
  let candidate = name;
  for (let i = 1; ; i += 1) {
    const taken = await lstat(join(dir, candidate)).then(
      () => true,
      () => false,
    );
    if (!taken) return candidate;
    candidate = `${name}.${i}`;
  }
}

/**
 * Moves a processed file to `archive/<sha256>-<name>` with a `sha256sum`-style file beside it;
 * undefined when it changed since it was read (it waits in `processing/`).
 */
export async function archiveOutboxFile(dir: string, reading: OutboxReading): Promise<string | undefined> {
  const sha256 = await reading.sha256();
  return reading.moveTo(dir, 'archive', `${sha256}-${reading.file.name}`, { suffix: '.sha256', text: (name) => `${sha256}  ${printableName(name)}\n` });
}

/**
 * Moves a broken file to `error/<name>` with `<name>.report.txt` beside it; undefined when it
 * changed since it was read (it waits in `processing/`).
 */
export async function moveToError(dir: string, reading: OutboxReading, report: string): Promise<string | undefined> {
  // The report is UTF-8 with a BOM: Windows Notepad shows the Russian text correctly.
  return reading.moveTo(dir, 'error', reading.file.name, { suffix: '.report.txt', text: () => `\uFEFF${report}` });
}

export interface OutboxReportInput {
  file: string;
  sha256: string;
  at: Date;
  reason: string;
  fileIssues: OnecIssue[];
  documents: { line: number; number: string; taken: boolean; issues: OnecIssue[] }[];
}

/**
 * A file name as quoted in a report or sidecar: without control characters. Whoever names the file
 * chooses them, and a CR/LF in a name would add lines of their own text to the report.
 */
export function printableName(name: string): string {
  // eslint-disable-next-line no-control-regex
  return name.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, '');
}

/** What a 1C user and an operator read in `error/<name>.report.txt`: Russian first, English after. */
export function renderOutboxReport(input: OutboxReportInput): string {
  const out: string[] = [];
  out.push(`Файл: ${printableName(input.file)}`);
  out.push(`SHA-256: ${input.sha256}`);
  out.push(`Проверен: ${input.at.toISOString()}`);
  out.push(`Причина: ${input.reason}`);
  out.push('');
  const issue = (i: OnecIssue): string => `  строка ${i.line}, поле ${i.field}: ${i.code} — ${i.message} (${i.messageEn})`;
  if (input.fileIssues.length > 0) {
    out.push('Файл в целом:');
    for (const i of input.fileIssues) out.push(issue(i));
    out.push('');
  }
  const taken = input.documents.filter((d) => d.taken);
  const refused = input.documents.filter((d) => !d.taken);
  out.push(`Документов: ${input.documents.length}; принято: ${taken.length}; не принято: ${refused.length}.`);
  for (const d of refused) {
    out.push(`Документ №${d.number || '?'} (строка ${d.line}) НЕ ПРИНЯТ:`);
    for (const i of d.issues) out.push(issue(i));
  }
  if (taken.length > 0) out.push(`Принятые документы (обработаны, повторно отправлять не нужно): ${taken.map((d) => `№${d.number} (строка ${d.line})`).join(', ')}`);
  out.push('');
  out.push('Исправьте документы в 1С и выгрузите их снова; принятые документы повторно не создаются.');
  out.push('Fix the refused documents in 1C and export again; documents already taken are never created twice.');
  return `${out.join('\r\n')}\r\n`;
}
