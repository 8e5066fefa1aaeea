import { appWorld } from '../support/app-world';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { appendAudit } from '../../connector/audit/audit.log';
import { checkAuditAnchor, exportArchive, type ArchiveProgress } from '../../connector/archive/archive.export';
import { sampleOrder } from '../support/orders.fixture';

/** the archive for safekeeping, on real PostgreSQL: exact rows, one snapshot, batch by batch. */
describe('archive export (R-26)', () => {
  const world = appWorld('archive');

  const db = () => world.db();
  let seq = 0;
  async function order(): Promise<string> {
    seq += 1;
    const [r] = await intakeOrders(db(), 'archive', [{ order: sampleOrder({ number: `A-${seq}`, amount: `${seq}.05` }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    await transitionOrder(db(), r.orderId, 'validated', { actor: 't' });
    return r.orderId;
  }
  const rowsOf = async (table: string, orderBy: string) =>
    (await db().execute<Array<{ row: string }>>(`select row_to_json(t)::text as row from ${table} t order by ${orderBy}`)).map((r) => JSON.parse(r.row) as Record<string, unknown>);
  const linesOf = (dir: string, file: string) =>
    readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  it('writes every row exactly as stored, a batch at a time, with counts and digests that check', async () => {
    for (let i = 0; i < 7; i += 1) await order();
    for (let i = 0; i < 5; i += 1) await appendAudit(db(), { actor: 't', action: 'test.archive', subject: `s-${i}`, details: { big: '12345678901234567890', i } });
    const dir = join(world.env.workDir, 'exact');
    const progress: ArchiveProgress[] = [];
    // Batches of 3 rows, progress every 25 batches: several batches per table, the done line of each.
    const manifest = await exportArchive(db(), dir, new Date('2026-11-26T10:00:00Z'), { fetchRows: 3, onProgress: (p) => void progress.push(p) });

    const expected: Record<string, string> = { payment_order: 'created_at, id', order_event: 'id', audit_event: 'seq' };
    for (const [table, orderBy] of Object.entries(expected)) {
      const entry = manifest.files.find((f) => f.table === table)!;
      let stored = await rowsOf(table, orderBy);
      if (table === 'audit_event') {
        // The export's own record (doctor's `archive` check reads it) comes after the snapshot it read.
        expect(stored[stored.length - 1]).toMatchObject({ action: 'archive.exported', actor: 'system', subject: resolve(dir) });
        stored = stored.slice(0, -1);
      }
      expect(stored.length).toBeGreaterThan(3);
      expect(linesOf(dir, entry.file)).toEqual(stored);
      expect(entry.rows).toBe(stored.length);
      expect(createHash('sha256').update(readFileSync(join(dir, entry.file))).digest('hex')).toBe(entry.sha256);
    }
    expect(progress.filter((p) => p.done).map((p) => p.table)).toEqual(manifest.files.map((f) => f.table));
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))).toEqual(manifest);
    // An empty table is an empty file that still checks.
    const empty = manifest.files.find((f) => f.table === 'incident')!;
    expect(empty.rows).toBe(0);
    expect(readFileSync(join(dir, empty.file), 'utf8')).toBe('');
    // The anchor reads the audit file back as a stream: its last record is in the log, unchanged.
    expect(await checkAuditAnchor(db(), dir)).toMatchObject({ ok: true, anchorSeq: Number(manifest.files.find((f) => f.table === 'audit_event')!.rows) });
  });

  it('reads all tables from one snapshot: an order taken in while the export runs is in none of its files', async () => {
    await order();
    let late: string | undefined;
    const dir = join(world.env.workDir, 'snapshot');
    const manifest = await exportArchive(db(), dir, new Date(), {
      onProgress: async (p) => {
        // After the orders' file, and before the events' file is read, another connection commits an order and its events.
        if (p.done && p.table === 'payment_order') late = await order();
      },
    });
    expect(late).toBeDefined();
    const [events] = await db().execute<Array<{ n: string }>>('select count(*) as n from order_event where order_id = ?', [late]);
    expect(Number(events.n)).toBeGreaterThan(0);
    const exportedOrders = linesOf(dir, 'payment_order.jsonl').map((r) => r.id);
    const exportedEvents = linesOf(dir, 'order_event.jsonl');
    expect(exportedOrders).not.toContain(late);
    expect(exportedEvents.filter((e) => e.order_id === late)).toEqual([]);
    // Every exported event belongs to an exported order: the files agree with each other.
    expect(exportedEvents.every((e) => exportedOrders.includes(e.order_id))).toBe(true);
    expect(manifest.files.find((f) => f.table === 'payment_order')!.rows).toBe(exportedOrders.length);
  });
});
