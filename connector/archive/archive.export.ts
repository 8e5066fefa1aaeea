import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ConnectorError } from '../shared/errors';

/**
 * Export of the archive for safekeeping (R-26, terms 6.1.9): payment documents with their exact
 * submitted/signed bytes and history, statements and their lines, and the audit log, as JSON
 * lines, one file per table, with a manifest of row counts and SHA-256 digests so a copy can be
 * checked later. Tables added by later capabilities (signatures) are included when present.
 */
const ARCHIVE_TABLES: ReadonlyArray<{ table: string; orderBy: string }> = [
  { table: 'payment_order', orderBy: 'created_at, id' },
  { table: 'order_event', orderBy: 'id' },
  { table: 'order_document', orderBy: 'created_at, order_id' },
  { table: 'order_signature', orderBy: 'id' },
  { table: 'statement', orderBy: 'fetched_at, id' },
  { table: 'statement_line', orderBy: 'created_at, id' },
  { table: 'audit_event', orderBy: 'seq' },
  { table: 'incident', orderBy: 'opened_at, id' },
];

export interface ArchiveManifest {
  format: 'connector-archive/1';
  exportedAt: string;
  files: Array<{ file: string; table: string; rows: number; sha256: string }>;
}

export async function exportArchive(em: EntityManager, outDir: string, now: Date): Promise<ArchiveManifest> {
  if (existsSync(outDir) && readdirSync(outDir).length) {
    throw new ConnectorError('ARCHIVE_DIR_NOT_EMPTY', `${outDir} is not empty; export into a new directory so an earlier archive is never overwritten`);
  }
  mkdirSync(outDir, { recursive: true, mode: 0o700 });
  const present = new Set(
    (await em.execute<Array<{ table_name: string }>>("select table_name from information_schema.tables where table_schema = current_schema()")).map((r) => r.table_name),
  );
  const manifest: ArchiveManifest = { format: 'connector-archive/1', exportedAt: now.toISOString(), files: [] };
  for (const { table, orderBy } of ARCHIVE_TABLES) {
    if (!present.has(table)) continue;
    // row_to_json keeps bytea as hex and timestamps as ISO text: the exact stored values.
    const rows = await em.execute<Array<{ row: unknown }>>(`select row_to_json(t) as row from ${table} t order by ${orderBy}`);
    const text = rows.map((r) => JSON.stringify(r.row)).join('\n') + (rows.length ? '\n' : '');
    const file = `${table}.jsonl`;
    writeFileSync(join(outDir, file), text, { mode: 0o600 });
    manifest.files.push({ file, table, rows: rows.length, sha256: createHash('sha256').update(text).digest('hex') });
  }
  writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
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
  const text = readFileSync(join(archiveDir, entry.file), 'utf8');
  if (createHash('sha256').update(text).digest('hex') !== entry.sha256) {
    return { ok: false, anchorSeq: null, message: `the archive's ${entry.file} does not match its manifest: the archive itself was altered` };
  }
  const lines = text.split('\n').filter(Boolean);
  if (!lines.length) return { ok: true, anchorSeq: null, message: 'the archive holds no audit record to anchor on' };
  const last = JSON.parse(lines[lines.length - 1]) as { seq: number | string; hash: string };
  const seq = Number(last.seq);
  const rows = await em.execute<Array<{ hash: string }>>('select hash from audit_event where seq = ?', [seq]);
  if (!rows.length) return { ok: false, anchorSeq: seq, message: `record ${seq}, exported on ${manifest.exportedAt}, is missing from the audit log (records were deleted)` };
  if (rows[0].hash !== last.hash) return { ok: false, anchorSeq: seq, message: `record ${seq} differs from the one exported on ${manifest.exportedAt} (the log was rewritten)` };
  return { ok: true, anchorSeq: seq, message: `record ${seq} matches the archive exported on ${manifest.exportedAt}` };
}
