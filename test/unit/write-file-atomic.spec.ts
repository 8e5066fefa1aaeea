import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from '../../connector/shared/atomic-file';

/** The temp file's random part, when a test must know it in advance (to plant a link there). */
let fixedRandom: Buffer | undefined;
jest.mock('node:crypto', () => {
  const actual = jest.requireActual<typeof import('node:crypto')>('node:crypto');
  return { ...actual, randomBytes: (n: number) => fixedRandom ?? actual.randomBytes(n) };
});

/** The 1C files are replaced whole or not at all: 1C never reads half a report, a failure keeps the last one. */
describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'atomic-'));
  });
  afterEach(() => {
    fixedRandom = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  async function* parts(texts: string[], failAfter?: number): AsyncGenerator<Buffer> {
    for (const [k, text] of texts.entries()) {
      if (k === failAfter) throw new Error('the database went away mid-report');
      yield Buffer.from(text);
    }
  }

  it('writes a file given in parts, in order, readable by its group only', async () => {
    const path = join(dir, 'report.txt');
    await writeFileAtomic(path, parts(['header\r\n', 'one\r\n', 'two\r\n', 'КонецФайла\r\n']));
    expect(readFileSync(path, 'utf8')).toBe('header\r\none\r\ntwo\r\nКонецФайла\r\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
    expect(readdirSync(dir)).toEqual(['report.txt']);
  });

  it('a part that fails leaves the previous file as it was and no temp file behind', async () => {
    const path = join(dir, 'report.txt');
    writeFileSync(path, 'the previous report');
    await expect(writeFileAtomic(path, parts(['header\r\n', 'one\r\n', 'two\r\n'], 2))).rejects.toThrow('the database went away mid-report');
    expect(readFileSync(path, 'utf8')).toBe('the previous report');
    expect(readdirSync(dir)).toEqual(['report.txt']);
  });

  it('a symlink at the path is replaced, never written through', async () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'not the report');
    const path = join(dir, 'report.txt');
    symlinkSync(victim, path);
    await writeFileAtomic(path, Buffer.from('the report'));
    expect(readFileSync(victim, 'utf8')).toBe('not the report');
    expect(lstatSync(path).isSymbolicLink()).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('the report');
  });

  it('a symlink planted at the temp name is never opened: refused (EEXIST), the file it points to untouched', async () => {
    const victim = join(dir, 'victim.txt');
    writeFileSync(victim, 'not the report');
    fixedRandom = Buffer.from('0badf00d', 'hex');
    symlinkSync(victim, join(dir, `.report.txt.${process.pid}.0badf00d.tmp`));
    await expect(writeFileAtomic(join(dir, 'report.txt'), Buffer.from('the report'))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(readFileSync(victim, 'utf8')).toBe('not the report');
    expect(readdirSync(dir).sort()).toEqual([`.report.txt.${process.pid}.0badf00d.tmp`, 'victim.txt']);
  });
});
