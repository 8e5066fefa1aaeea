import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
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
  { table: 'order_signature', orderBy: '1' },
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
