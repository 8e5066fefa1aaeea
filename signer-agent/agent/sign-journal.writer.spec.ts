import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
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

  it('refuses to write once closed (fail closed, coded)', async () => {
    const journal = new SignJournal(join(dir, 'x.jsonl'));
    await journal.open();
    await journal.close();
    await expect(journal.append({ event: 'unenrolled', at: '', userId: 'a' })).rejects.toMatchObject({ code: 'JOURNAL_UNAVAILABLE' });
  });
});
