import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { appendAudit } from '../audit/audit.log';
import { ConnectorError } from '../shared/errors';
import { allowWorkBetweenStatements, READ_ONLY_SNAPSHOT } from '../persistence/database';

/**
 * Export of the archive for safekeeping (R-26, terms 6.1.9): payment documents with their exact
 * submitted/signed bytes and history, statements and their lines, and the audit log, as JSON
 * lines, one file per table, with a manifest of row counts and SHA-256 digests so a copy can be
 * checked later. Tables added by later capabilities (signatures) are included when present.
 *
 * Each table in the order of an index (a deterministic file, read from the first row on): the
 * cursor walks the index instead of sorting the table first. Sorting `order_document` by its
 * creation time wrote 1.2 GB of temp files for 300,000 documents and took 12 s before the first
 * row; by its key, 0.1 s and nothing on disk (years of documents would need gigabytes free).
 */
const ARCHIVE_TABLES: ReadonlyArray<{ table: string; orderBy: string }> = [
  { table: 'payment_order', orderBy: 'created_at, id' },
  { table: 'order_event', orderBy: 'id' },
  { table: 'order_document', orderBy: 'order_id' },
  { table: 'order_signature', orderBy: 'id' },
  { table: 'statement', orderBy: 'fetched_at, id' },
  { table: 'statement_line', orderBy: 'id' },
  { table: 'audit_event', orderBy: 'seq' },
  { table: 'incident', orderBy: 'opened_at, id' },
];

export interface ArchiveManifest {
  format: 'connector-archive/1';
  exportedAt: string;
  files: Array<{ file: string; table: string; rows: number; sha256: string }>;
}

/** Rows fetched from the database at a time: the export holds one batch in memory, not a table. */
const FETCH_ROWS = 2_000;
/** A table's progress is told every this many batches. */
const PROGRESS_EVERY_BATCHES = 25;

export interface ArchiveProgress {
  table: string;
  rows: number;
  done: boolean;
}

/** The audit action of an archive export that completed (doctor's `archive` check reads the last one). */
export const ARCHIVE_EXPORTED = 'archive.exported';

/** An archive older than this is a WARN of doctor (FAIL with --strict): the README's crontab exports daily. */
export const ARCHIVE_MAX_AGE_DAYS = 8;

/**
 * Writes the archive into `outDir` (new or empty). Every table is read from one snapshot (a
 * read-only REPEATABLE READ transaction), so the files agree with each other however busy the
 * worker is meanwhile: no event of an order missing from the orders' file, no statement line
 * without its statement. The rows are streamed through a cursor, a batch at a time, so years of
 * documents export in constant memory; each file is fsynced before the manifest names it.
 * `onProgress` hears of each table every 25 batches and when it is done; the export waits for it.
 */
export async function exportArchive(
  em: EntityManager,
  outDir: string,
  now: Date,
  options: { onProgress?: (p: ArchiveProgress) => void | Promise<void>; fetchRows?: number; actor?: string } = {},
): Promise<ArchiveManifest> {
  const fetchRows = options.fetchRows ?? FETCH_ROWS;
  if (!Number.isInteger(fetchRows) || fetchRows < 1) throw new Error(`fetchRows must be a whole number >= 1, got ${fetchRows}`);
  if (existsSync(outDir) && readdirSync(outDir).length) {
    throw new ConnectorError('ARCHIVE_DIR_NOT_EMPTY', `${outDir} is not empty; export into a new directory so an earlier archive is never overwritten`);
  }
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const manifest: ArchiveManifest = { format: 'connector-archive/1', exportedAt: now.toISOString(), files: [] };
  await em.transactional(async (tx) => {
    // Files are written and fsynced, and the progress told, between the fetches: however slow the
    // disk, the snapshot stays open (each fetch is still bounded by database.statementTimeoutMs).
    await allowWorkBetweenStatements(tx);
    const present = new Set(
      (await tx.execute<Array<{ table_name: string }>>('select table_name from information_schema.tables where table_schema = current_schema()')).map((r) => r.table_name),
    );
    for (const { table, orderBy } of ARCHIVE_TABLES) {
      if (!present.has(table)) continue;
      const file = `${table}.jsonl`;
      const hash = createHash('sha256');
      const handle = await open(join(outDir, file), 'wx', 0o600);
      let rows = 0;
      try {
        // row_to_json keeps bytea as hex and timestamps as ISO text: the exact stored values, as
        // PostgreSQL writes them (large numbers too: the text never passes through a JS number).
        await tx.execute(`declare archive_rows no scroll cursor for select row_to_json(t)::text as row from ${table} t order by ${orderBy}`);
        for (;;) {
          const batch = await tx.execute<Array<{ row: string }>>(`fetch forward ${fetchRows} from archive_rows`);
          if (!batch.length) break;
          const text = batch.map((r) => r.row).join('\n') + '\n';
          hash.update(text);
          await handle.write(text);
          rows += batch.length;
          if (rows % (fetchRows * PROGRESS_EVERY_BATCHES) === 0) await options.onProgress?.({ table, rows, done: false });
        }
        await tx.execute('close archive_rows');
        await handle.sync();
      } finally {
        await handle.close();
      }
      manifest.files.push({ file, table, rows, sha256: hash.digest('hex') });
      await options.onProgress?.({ table, rows, done: true });
    }
  }, READ_ONLY_SNAPSHOT); // one consistent view of the whole database for the export
  writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  // Recorded once the manifest is written, so that doctor can say when the archive was last exported.
  await appendAudit(em.fork(), {
    actor: options.actor ?? 'system',
    action: ARCHIVE_EXPORTED,
    subject: resolve(outDir),
    details: { exportedAt: manifest.exportedAt, files: manifest.files.map((f) => ({ table: f.table, rows: f.rows, sha256: f.sha256 })) },
    at: now,
  });
  return manifest;
}

export interface AnchorCheck {
  ok: boolean;
  anchorSeq: number | null;
  message: string;
}

/**
 * An exported archive is an anchor outside the database: its last audit record must still be in
 * the chain with the same hash. This catches what the hash chain alone cannot: the newest
 * records deleted (the chain stays valid when its tail is cut).
 */
export async function checkAuditAnchor(em: EntityManager, archiveDir: string): Promise<AnchorCheck> {
  const manifestPath = join(archiveDir, 'manifest.json');
  if (!existsSync(manifestPath)) throw new ConnectorError('ARCHIVE_INVALID', `${archiveDir} has no manifest.json; give a directory written by connector archive export`, 2);
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as ArchiveManifest;
  const entry = manifest.files.find((f) => f.table === 'audit_event');
  if (!entry) throw new ConnectorError('ARCHIVE_INVALID', `${archiveDir} holds no audit_event export`, 2);
  const { sha256, lastLine } = await digestWithLastLine(join(archiveDir, entry.file));
  if (sha256 !== entry.sha256) {
    return { ok: false, anchorSeq: null, message: `the archive's ${entry.file} does not match its manifest: the archive itself was altered` };
  }
  if (lastLine === undefined) return { ok: true, anchorSeq: null, message: 'the archive holds no audit record to anchor on' };
  const last = JSON.parse(lastLine) as { seq: number | string; hash: string };
  const seq = Number(last.seq);
  const rows = await em.execute<Array<{ hash: string }>>('select hash from audit_event where seq = ?', [seq]);
  if (!rows.length) return { ok: false, anchorSeq: seq, message: `record ${seq}, exported on ${manifest.exportedAt}, is missing from the audit log (records were deleted)` };
  if (rows[0].hash !== last.hash) return { ok: false, anchorSeq: seq, message: `record ${seq} differs from the one exported on ${manifest.exportedAt} (the log was rewritten)` };
  return { ok: true, anchorSeq: seq, message: `record ${seq} matches the archive exported on ${manifest.exportedAt}` };
}

/** The SHA-256 of a file and its last non-empty line, read as a stream (an audit export can be larger than memory). */
async function digestWithLastLine(path: string): Promise<{ sha256: string; lastLine?: string }> {
  const hash = createHash('sha256');
  let tail = Buffer.alloc(0);
  for await (const chunk of createReadStream(path)) {
    const bytes = chunk as Buffer;
    hash.update(bytes);
    tail = Buffer.concat([tail, bytes]);
    // Keep from the last line break that still has a non-empty line after it: one line at most.
    const cut = tail.lastIndexOf(0x0a, tail.length - 2);
    if (cut >= 0) tail = tail.subarray(cut + 1);
  }
  const lastLine = tail.toString('utf8').trim();
  return { sha256: hash.digest('hex'), ...(lastLine ? { lastLine } : {}) };
}
