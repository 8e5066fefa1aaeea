import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { archiveOutboxFile, claimOutboxFile, listOutbox, OutboxReading } from './onec-outbox.folder';

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

  const claimAndRead = async (bytes: Buffer): Promise<OutboxReading> => {
    writeFileSync(join(dir, '1c_to_kl.txt'), bytes);
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
