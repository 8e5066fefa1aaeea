import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import * as iconv from 'iconv-lite';
import type { OnecIssue } from './onec-exchange.types';

/**
 * The outbox folder 1C writes `1c_to_kl.txt` into (INTERFACES.md "1C folder exchange"): which
 * files are ready, and where they go after: `archive/` with their sha256, or `error/` with a
 * report beside. Only files and folders; the queue job wires the reader and the intake.
 */
export interface OutboxFile {
  path: string;
  name: string;
  size: number;
  mtimeMs: number;
}

export type Readiness = 'ready' | 'writing' | 'incomplete';

const SKIP = /^\.|\.(tmp|part|partial|lock|report\.txt|sha256)$/i;

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

const END_OF_FILE = /конецфайла\s*$/i;

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

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function freeName(dir: string, name: string): Promise<string> {
  let candidate = name;
  for (let i = 1; ; i += 1) {
    const taken = await stat(join(dir, candidate)).then(
      () => true,
      () => false,
    );
    if (!taken) return candidate;
    candidate = `${name}.${i}`;
  }
}

/** Moves a processed file to `archive/<sha256>-<name>` with a `sha256sum`-style file beside it. */
export async function archiveOutboxFile(dir: string, file: OutboxFile, sha256: string): Promise<string> {
  const archive = join(dir, 'archive');
  await mkdir(archive, { recursive: true });
  const target = join(archive, await freeName(archive, `${sha256}-${file.name}`));
  await rename(file.path, target);
  await writeFile(`${target}.sha256`, `${sha256}  ${basename(target)}\n`);
  return target;
}

/** Moves a broken file to `error/<name>` and writes `<name>.report.txt` beside it. */
export async function moveToError(dir: string, file: OutboxFile, report: string): Promise<string> {
  const errorDir = join(dir, 'error');
  await mkdir(errorDir, { recursive: true });
  const target = join(errorDir, await freeName(errorDir, file.name));
  await rename(file.path, target);
  // The report is UTF-8 with a BOM: Windows Notepad shows the Russian text correctly.
  await writeFile(`${target}.report.txt`, `\uFEFF${report}`);
  return target;
}

export interface OutboxReportInput {
  file: string;
  sha256: string;
  at: Date;
  reason: string;
  fileIssues: OnecIssue[];
  documents: { line: number; number: string; taken: boolean; issues: OnecIssue[] }[];
}

/** What a 1C user and an operator read in `error/<name>.report.txt`: Russian first, English after. */
export function renderOutboxReport(input: OutboxReportInput): string {
  const out: string[] = [];
  out.push(`Файл: ${input.file}`);
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
