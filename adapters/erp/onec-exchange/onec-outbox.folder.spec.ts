import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveOutboxFile, claimOutboxFile, listOutbox, moveToError, OutboxReading, renderOutboxReport } from './onec-outbox.folder';

/** Runs right before each rename the folder code makes (to write between its last check and its move). */
let beforeRename: ((from: string, to: string) => void) | undefined;
jest.mock('node:fs/promises', () => {
  const actual = jest.requireActual<typeof import('node:fs/promises')>('node:fs/promises');
  return {
    ...actual,
    rename: async (from: string, to: string): Promise<void> => {
      beforeRename?.(from, to);
      return actual.rename(from, to);
    },
  };
});

describe('outbox listing', () => {
  it("never lists the connector's own files for 1C (kl_to_1c*.txt), hidden or temporary ones; 1C's exports it does", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'outbox-list-'));
    try {
      for (const name of ['1c_to_kl.txt', 'kl_to_1c.txt', 'kl_to_1c_status.txt', 'KL_TO_1C.TXT', '.hidden', 'x.tmp', 'платежи.txt']) writeFileSync(join(dir, name), 'КонецФайла\r\n');
      expect((await listOutbox(dir)).map((f) => f.name).sort()).toEqual(['1c_to_kl.txt', 'платежи.txt']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** The guard around the last step: a file written to between the last check and the rename never stays in archive/. */
describe('outbox reading: the move', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-folder-'));
  });
  afterEach(() => {
    beforeRename = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  const claimAndRead = async (bytes: Buffer, name = '1c_to_kl.txt'): Promise<OutboxReading> => {
    writeFileSync(join(dir, name), bytes);
    const [listed] = await listOutbox(dir);
    const claimed = await claimOutboxFile(dir, listed);
    if (claimed === undefined) throw new Error('not claimed');
    const reading = await OutboxReading.open(claimed, listed);
    for await (const chunk of reading.chunks()) void chunk;
    return reading;
  };

  it('archives the bytes it read, under their sha256', async () => {
    const bytes = Buffer.from('1CClientBankExchange\r\nКонецФайла\r\n');
    const reading = await claimAndRead(bytes);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const movedTo = await archiveOutboxFile(dir, reading);
    await reading.close();
    expect(movedTo).toBe(join(dir, 'archive', `${sha}-1c_to_kl.txt`));
    expect(readFileSync(`${movedTo}.sha256`, 'utf8')).toBe(`${sha}  ${sha}-1c_to_kl.txt\n`);
  });

  it('written to right before the rename: back to processing/, no archive entry, no sidecar', async () => {
    const bytes = Buffer.from('1CClientBankExchange\r\nКонецФайла\r\n');
    const reading = await claimAndRead(bytes);
    beforeRename = (from, to) => {
      // 1C, through a handle opened before the claim, writes after the last check.
      if (to.includes(join(dir, 'archive'))) appendFileSync(from, 'СекцияДокумент=Платежное поручение\r\n');
    };
    const movedTo = await archiveOutboxFile(dir, reading);
    await reading.close();
    expect(movedTo).toBeUndefined();
    expect(readdirSync(join(dir, 'archive'))).toEqual([]);
    expect(readdirSync(join(dir, 'processing'))).toEqual(['1c_to_kl.txt']);
    expect(statSync(join(dir, 'processing', '1c_to_kl.txt')).size).toBeGreaterThan(bytes.length);
    expect(existsSync(join(dir, '1c_to_kl.txt'))).toBe(false);
  });
});

/**
 * Whoever can write into the outbox folder must not make the connector write anywhere else:
 * error/ and archive/ entries never follow a symlink planted there, and a file's name (its author
 * chooses it, newlines included) adds no lines to the report.
 */
describe('outbox reports: never through a symlink, no control characters from a file name', () => {
  let dir: string;
  let victim: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'outbox-links-'));
    victim = join(dir, 'elsewhere', 'victim.txt');
    mkdirSync(join(dir, 'elsewhere'));
    writeFileSync(victim, 'the connector user\'s file');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const BROKEN = Buffer.from('not an exchange file\r\nКонецФайла\r\n');
  const claimAndRead = async (name: string): Promise<OutboxReading> => {
    writeFileSync(join(dir, name), BROKEN);
    const listed = (await listOutbox(dir)).find((f) => f.name === name)!;
    const claimed = await claimOutboxFile(dir, listed);
    if (claimed === undefined) throw new Error('not claimed');
    const reading = await OutboxReading.open(claimed, listed);
    for await (const chunk of reading.chunks()) void chunk;
    return reading;
  };

  it.each([
    ['error/', 'error', '1c_to_kl.txt.report.txt', (r: OutboxReading) => moveToError(dir, r, 'the report')],
    ['archive/', 'archive', `${createHash('sha256').update(BROKEN).digest('hex')}-1c_to_kl.txt.sha256`, (r: OutboxReading) => archiveOutboxFile(dir, r)],
  ])('a symlink planted at the %s sidecar name is replaced, the file it points to untouched', async (_what, folder, sidecar, move) => {
    mkdirSync(join(dir, folder));
    symlinkSync(victim, join(dir, folder, sidecar));
    const reading = await claimAndRead('1c_to_kl.txt');
    const movedTo = await move(reading);
    await reading.close();
    expect(movedTo).toBe(join(dir, folder, sidecar.replace(/\.(report\.txt|sha256)$/, '')));
    expect(readFileSync(victim, 'utf8')).toBe('the connector user\'s file');
    expect(lstatSync(join(dir, folder, sidecar)).isSymbolicLink()).toBe(false);
    expect(readFileSync(join(dir, folder, sidecar), 'utf8')).toMatch(folder === 'error' ? /the report/ : /-1c_to_kl\.txt\n$/);
  });

  it('a symlink at the file\'s own name in error/, even one pointing nowhere, is a taken name', async () => {
    mkdirSync(join(dir, 'error'));
    symlinkSync(join(dir, 'elsewhere', 'not-yet'), join(dir, 'error', '1c_to_kl.txt'));
    const reading = await claimAndRead('1c_to_kl.txt');
    const movedTo = await moveToError(dir, reading, 'the report');
    await reading.close();
    expect(movedTo).toBe(join(dir, 'error', '1c_to_kl.txt.1'));
    expect(existsSync(join(dir, 'elsewhere', 'not-yet'))).toBe(false);
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['victim.txt']);
  });

  it('error/ that is a symlink to another folder is refused: nothing is written there, the file waits in processing/', async () => {
    symlinkSync(join(dir, 'elsewhere'), join(dir, 'error'));
    const reading = await claimAndRead('victim.txt');
    await expect(moveToError(dir, reading, 'the report')).rejects.toThrow(/error\/ must be a real folder/);
    await reading.close();
    expect(readdirSync(join(dir, 'elsewhere'))).toEqual(['victim.txt']);
    expect(readFileSync(victim, 'utf8')).toBe('the connector user\'s file');
    expect(readdirSync(join(dir, 'processing'))).toEqual(['victim.txt']);
  });

  it('a file name with CR/LF and other control characters is quoted in the report without them', () => {
    const report = renderOutboxReport({ file: 'a\r\nПричина: всё принято\u0007\u2028.txt', sha256: '0'.repeat(64), at: new Date('2026-01-10T06:00:00Z'), reason: 'r', fileIssues: [], documents: [] });
    expect(report.split('\r\n')[0]).toBe('Файл: aПричина: всё принято.txt');
    expect(report.match(/Причина:/g)).toHaveLength(2);
  });
});
