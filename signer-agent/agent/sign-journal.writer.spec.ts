import { mkdtempSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJournal } from './sign-journal.writer';

describe('SignJournal', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signer-journal-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('appends whole JSON lines in call order, mode 0600, and keeps earlier lines across reopen', async () => {
    const path = join(dir, 'j', 'journal.jsonl');
    const journal = new SignJournal(path);
    await journal.open();
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: `u${i}` })),
    );
    await journal.close();
    const again = new SignJournal(path);
    await again.open();
    await again.append({ event: 'lockdown', at: new Date(0).toISOString(), wipedUsers: [], reason: null });
    await again.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.userId ?? l.event)).toEqual([...Array.from({ length: 50 }, (_, i) => `u${i}`), 'lockdown']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('reopens at its path after a rotation, refusing and losing no record written meanwhile', async () => {
    const path = join(dir, 'journal.jsonl');
    const rotated = join(dir, 'journal.jsonl.1');
    const journal = new SignJournal(path);
    await journal.open();
    const record = (i: number) => ({ event: 'unenrolled' as const, at: new Date(0).toISOString(), userId: `u${i}` });
    const first = Array.from({ length: 20 }, (_, i) => journal.append(record(i)));
    await Promise.all(first);
    // logrotate (create mode) moves the file away; records keep coming while the agent reopens.
    renameSync(path, rotated);
    const during = Array.from({ length: 30 }, (_, i) => journal.append(record(20 + i)));
    await journal.reopen();
    const after = Array.from({ length: 10 }, (_, i) => journal.append(record(50 + i)));
    await Promise.all([...during, ...after]);
    await journal.close();
    const users = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l).userId as string);
    const old = users(rotated);
    const fresh = users(path);
    // Every record once, in order across the two files; the later ones in the new file.
    expect([...old, ...fresh]).toEqual(Array.from({ length: 60 }, (_, i) => `u${i}`));
    expect(fresh.slice(-10)).toEqual(Array.from({ length: 10 }, (_, i) => `u${50 + i}`));
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('follows a rotation by itself: the next batch after the file was moved goes to a new file at the path', async () => {
    const path = join(dir, 'journal.jsonl');
    const journal = new SignJournal(path);
    await journal.open();
    const record = (i: number) => ({ event: 'unenrolled' as const, at: new Date(0).toISOString(), userId: `u${i}` });
    await Promise.all(Array.from({ length: 5 }, (_, i) => journal.append(record(i))));
    renameSync(path, `${path}.1`);
    await Promise.all(Array.from({ length: 5 }, (_, i) => journal.append(record(5 + i))));
    await journal.close();
    const users = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l).userId as string);
    expect(users(`${path}.1`)).toEqual(['u0', 'u1', 'u2', 'u3', 'u4']);
    expect(users(path)).toEqual(['u5', 'u6', 'u7', 'u8', 'u9']);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it('a reopen takes its turn between batches under a steady stream of records', async () => {
    const path = join(dir, 'journal.jsonl');
    const journal = new SignJournal(path);
    await journal.open();
    let i = 0;
    let streaming = true;
    const stream = (async () => {
      while (streaming) await journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: `s${i++}` });
    })();
    await new Promise((r) => setTimeout(r, 20));
    await journal.reopen(); // returns while records keep coming
    streaming = false;
    await stream;
    await journal.close();
    expect(readFileSync(path, 'utf8').trimEnd().split('\n')).toHaveLength(i);
  });

  it('keeps writing the old file when the path cannot be opened again', async () => {
    const path = join(dir, 'sub', 'journal.jsonl');
    const journal = new SignJournal(path);
    await journal.open();
    renameSync(join(dir, 'sub'), join(dir, 'gone'));
    await expect(journal.reopen()).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
    await journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: 'still' });
    await journal.close();
    expect(readFileSync(join(dir, 'gone', 'journal.jsonl'), 'utf8')).toContain('"still"');
  });

  it('a disk that fills in the middle of a record (a short write, then ENOSPC) hands out no half-written record and leaves no half line for the next one', async () => {
    const path = join(dir, 'journal.jsonl');
    const journal = new SignJournal(path);
    await journal.open();
    await journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: 'before' });
    // At the file-system boundary: the kernel takes part of the write (the last free block), then ENOSPC.
    const handle = (journal as unknown as { handle: FileHandle }).handle;
    const write = handle.write.bind(handle) as (data: string | Buffer, ...rest: unknown[]) => Promise<{ bytesWritten: number }>;
    let full = true;
    let calls = 0;
    handle.write = (async (data: string | Buffer, ...rest: unknown[]) => {
      if (!full) return write(data, ...rest);
      calls += 1;
      if (calls > 1) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const bytes = Buffer.isBuffer(data) ? data.subarray(typeof rest[0] === 'number' ? rest[0] : 0) : Buffer.from(data);
      return write(bytes.subarray(0, 40));
    }) as typeof handle.write;
    await expect(journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: 'half' })).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE', message: expect.stringContaining('ENOSPC') });
    // Space freed: the next record is a line of its own.
    full = false;
    await journal.append({ event: 'unenrolled', at: new Date(0).toISOString(), userId: 'after' });
    await journal.close();
    const lines = readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { userId: string });
    expect(lines.map((l) => l.userId)).toEqual(['before', 'after']);
  });

  it('writes a record appended just as a flush ends (a few steps after the previous record was answered)', async () => {
    // Whatever moment a caller appends at, its record is written and answered: none waits for a later record to carry it.
    for (let steps = 0; steps < 8; steps += 1) {
      const path = join(dir, `late-${steps}.jsonl`);
      const journal = new SignJournal(path);
      await journal.open();
      const late = journal.append({ event: 'unenrolled', at: '', userId: 'first' }).then(async () => {
        for (let i = 0; i < steps; i += 1) await null;
        return journal.append({ event: 'unenrolled', at: '', userId: `late-${steps}` });
      });
      const answered = await Promise.race([late.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2_000))]);
      expect([steps, answered]).toEqual([steps, true]);
      expect(readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l).userId)).toEqual(['first', `late-${steps}`]);
      await journal.close();
    }
  });

  it('refuses to write once closed (fail closed, coded)', async () => {
    const journal = new SignJournal(join(dir, 'x.jsonl'));
    await journal.open();
    await journal.close();
    await expect(journal.append({ event: 'unenrolled', at: '', userId: 'a' })).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
  });
});
