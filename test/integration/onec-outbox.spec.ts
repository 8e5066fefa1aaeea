import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readdirSync, readFileSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import * as iconv from 'iconv-lite';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { OUTBOX_FAILURES_BEFORE_INCIDENT, scanOnecOutbox, type OutboxFileResult, type WhileReading } from '../../queue/jobs/scan-onec-outbox.job';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { onecOrderLines } from '../support/orders.fixture';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { OffsetClock } from '../../connector/shared/clock';

/** The 1C outbox scan on a real folder, PostgreSQL and Redis (its own database and key prefix). */
describe('1C outbox folder scan', () => {
  let env: TestEnv;
  let context: AppContext;
  let outbox: string;

  const doc = (number: string, extra: string[] = []): string[] => onecOrderLines(number, { extra });
  const file = (docs: string[][], end = true): Buffer =>
    iconv.encode([...['1CClientBankExchange', 'ВерсияФормата=1.03', 'Кодировка=Windows'], ...docs.flat(), ...(end ? ['КонецФайла'] : [])].join('\r\n') + '\r\n', 'cp1251');
  const age = (path: string, ageMs = 60_000): string => {
    const t = new Date(Date.now() - ageMs);
    utimesSync(path, t, t);
    return path;
  };
  const drop = (name: string, bytes: Buffer, ageMs = 60_000): string => {
    const path = join(outbox, name);
    writeFileSync(path, bytes);
    return age(path, ageMs);
  };
  const sha = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
  const orders = async (): Promise<string[]> =>
    (await context.orm.em.fork().execute<Array<{ number: string }>>("select number from payment_order where source = 'onec' order by number")).map((r) => r.number);
  const scan = async (whileReading?: WhileReading): Promise<OutboxFileResult[]> => {
    const r = await scanOnecOutbox(context, context.redis, { whileReading });
    if (r === 'locked') throw new Error('locked');
    return r;
  };

  beforeAll(async () => {
    env = await createTestEnv('onecoutbox');
    outbox = join(env.workDir, 'outbox');
    mkdirSync(outbox);
    context = await createAppContext({ config: { ...env.config, onec: { ...env.config.onec, outboxDir: outbox, stableMs: 2_000 } }, role: 'worker' });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  it('takes a finished file: orders in, file to archive/ with its sha256', async () => {
    const bytes = file([doc('A-1'), doc('A-2')]);
    drop('1c_to_kl.txt', bytes);
    const [result] = await scan();
    expect(result).toMatchObject({ file: '1c_to_kl.txt', outcome: 'archived', documents: 2, taken: 2, created: 2, refused: 0 });
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(result.sha256).toBe(sha);
    expect(readFileSync(result.movedTo as string)).toEqual(bytes);
    expect(readFileSync(`${result.movedTo}.sha256`, 'utf8')).toBe(`${sha}  ${sha}-1c_to_kl.txt\n`);
    expect(readdirSync(outbox).sort()).toEqual(['archive', 'processing']);
    expect(readdirSync(join(outbox, 'processing'))).toEqual([]);
    expect(await orders()).toEqual(['A-1', 'A-2']);
  });

  it('the same file, or the same document in another file, dropped again makes no second order', async () => {
    drop('1c_to_kl.txt', file([doc('A-1'), doc('A-2')]));
    drop('again.txt', file([doc('A-2'), doc('A-3')]));
    const results = await scan();
    expect(results.map((r) => [r.file, r.outcome, r.created])).toEqual([
      ['1c_to_kl.txt', 'archived', 0],
      ['again.txt', 'archived', 1],
    ]);
    expect(await orders()).toEqual(['A-1', 'A-2', 'A-3']);
  });

  it('waits for a file 1C is still writing: no КонецФайла yet, or changed a moment ago', async () => {
    drop('writing.txt', file([doc('W-1')], false));
    drop('fresh.txt', file([doc('W-2')]), 0);
    const results = await scan();
    expect(results.map((r) => [r.file, r.outcome])).toEqual([
      ['fresh.txt', 'waiting'],
      ['writing.txt', 'waiting'],
    ]);
    expect(existsSync(join(outbox, 'writing.txt'))).toBe(true);
    expect(await orders()).toEqual(['A-1', 'A-2', 'A-3']);
    // Once stable and finished it is taken; one that never gets КонецФайла ends in error/.
    utimesSync(join(outbox, 'fresh.txt'), new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    utimesSync(join(outbox, 'writing.txt'), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const later = await scan();
    expect(later.map((r) => [r.file, r.outcome])).toEqual([
      ['fresh.txt', 'archived'],
      ['writing.txt', 'error'],
    ]);
    expect(readFileSync(join(outbox, 'error', 'writing.txt.report.txt'), 'utf8')).toMatch(/КонецФайла/);
  });

  it('a broken file: its good documents go through, the file goes to error/ with a report naming line and field', async () => {
    drop('broken.txt', file([doc('B-1'), doc('B-2', ['Сумма=99.00'])]));
    const [result] = await scan();
    expect(result).toMatchObject({ outcome: 'error', documents: 2, taken: 1, created: 1, refused: 1 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(/Документ №B-2 \(строка 21\) НЕ ПРИНЯТ:/);
    expect(report).toMatch(/строка 37, поле Сумма: DUPLICATE_KEY/);
    expect(report).toMatch(/№B-1 \(строка 4\)/);
    expect(await orders()).toEqual(['A-1', 'A-2', 'A-3', 'B-1', 'W-2']);
  });

  it('a changed version of a taken document is refused by line in the report; an invalid one sent again corrected is taken again', async () => {
    const amount = (lines: string[], value: string) => lines.map((l) => (l.startsWith('Сумма=') ? `Сумма=${value}` : l));
    drop('first.txt', file([doc('C-1'), doc('C-2')]));
    await scan();
    const idOf = async (number: string) => (await context.orm.em.fork().execute<Array<{ id: string; state: string }>>('select id, state from payment_order where number = ?', [number]))[0];
    const c2 = await idOf('C-2');
    await transitionOrder(context.orm.em.fork(), c2.id, 'invalid', { actor: 'test', from: 'received' });

    drop('second.txt', file([amount(doc('C-1'), '2500.00'), amount(doc('C-2'), '1600.00'), doc('C-3')]));
    const [result] = await scan();
    expect(result).toMatchObject({ outcome: 'error', documents: 3, taken: 2, created: 2, refused: 1 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(/Документ №C-1 \(строка 4\) НЕ ПРИНЯТ:/);
    expect(report).toMatch(/DOCUMENT_CONFLICT/);
    expect(report).toMatch(/amount: было 1500\.00, стало 2500\.00/);
    // Not "export it under a new number": the first would be paid as well. Withdrawn first, by its id.
    const c1id = (await idOf('C-1')).id;
    expect(report).toMatch(new RegExp(`будет оплачен: .*connector orders withdraw ${c1id}`));
    expect(await idOf('C-2')).toEqual({ id: c2.id, state: 'received' });
    const [c1] = await context.orm.em.fork().execute<Array<{ amount_tiyn: string }>>("select amount_tiyn from payment_order where number = 'C-1'");
    expect(Number(c1.amount_tiyn)).toBe(150_000);
    expect((await orders()).filter((n) => n.startsWith('C-'))).toEqual(['C-1', 'C-2', 'C-3']);
  });

  it('the same payment order exported again under another date (changed in 1C) while its order lives is refused by line, naming the date: it would be paid twice', async () => {
    drop('dated.txt', file([doc('RD-1')]));
    await scan();
    const redated = doc('RD-1').map((l) => (l.startsWith('ДатаДокумента=') ? 'ДатаДокумента=24.11.2026' : l));
    drop('redated.txt', file([redated, doc('RD-2')]));
    const [result] = await scan();
    expect(result).toMatchObject({ outcome: 'error', documents: 2, taken: 1, created: 1, refused: 1 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(/Документ №RD-1 \(строка 4\) НЕ ПРИНЯТ:/);
    expect(report).toMatch(/поле date: DOCUMENT_CONFLICT/);
    expect(report).toMatch(/уже принят \(received\) с датой 2026-11-25; копия с другой датой — тот же документ/);
    expect((await orders()).filter((n) => n.startsWith('RD-'))).toEqual(['RD-1', 'RD-2']);
  });

  it('two exports glued into one file: the first one\'s documents go through, the file goes to error/ with a report naming the line where the second starts and what to do', async () => {
    const first = file([doc('CAT1')]);
    const second = file([doc('CAT2')]);
    const secondLine = first.toString('latin1').split('\r\n').length; // the line after the first export's last
    drop('glued.txt', Buffer.concat([first, second]));
    const [result] = await scan();
    expect(result).toMatchObject({ file: 'glued.txt', outcome: 'error', documents: 1, taken: 1, created: 1, refused: 0 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(new RegExp(`Причина: после строки КонецФайла, со строки ${secondLine}, файл продолжается.*выгрузите эти документы из 1С снова`));
    expect(report).toMatch(new RegExp(`строка ${secondLine}, поле КонецФайла: CONTENT_AFTER_END`));
    expect(report).toMatch(/№CAT1 \(строка 4\)/);
    expect(await orders()).toContain('CAT1');
    expect(await orders()).not.toContain('CAT2');
  });

  it('blank lines and padding after КонецФайла are harmless: the file is archived', async () => {
    const bytes = Buffer.concat([file([doc('PAD-1')]), Buffer.from('\r\n  \r\n\t\r\n'), Buffer.from([0x00, 0x00, 0x1a])]);
    drop('padded.txt', bytes);
    const [result] = await scan();
    expect(result).toMatchObject({ file: 'padded.txt', outcome: 'archived', documents: 1, created: 1, sha256: sha(bytes) });
    expect(await orders()).toContain('PAD-1');
  });

  it('a document of a kind other than a payment order (a payment request, a cash cheque, no kind at all) is never sent as one: refused by line, the payment order beside it goes in', async () => {
    const kind = (d: string[], k: string) => d.map((l) => (l.startsWith('СекцияДокумент') ? k : l));
    drop('kinds.txt', file([doc('K-1'), kind(doc('K-2'), 'СекцияДокумент=Платежное требование'), kind(doc('K-3'), 'СекцияДокумент=Денежный чек'), kind(doc('K-4'), 'СекцияДокумент'), kind(doc('K-5'), 'СекцияДокумент=ПЛАТЕЖНОЕ ПОРУЧЕНИЕ')]));
    const [result] = await scan();
    expect(result).toMatchObject({ file: 'kinds.txt', outcome: 'error', documents: 5, taken: 2, created: 2, refused: 3 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(/Документ №K-2 \(строка 21\) НЕ ПРИНЯТ:\r\n {2}строка 21, поле СекцияДокумент: UNSUPPORTED_KIND — .*«Платежное требование»/);
    expect(report).toMatch(/Документ №K-3 \(строка 38\) НЕ ПРИНЯТ:\r\n {2}строка 38, поле СекцияДокумент: UNSUPPORTED_KIND/);
    expect(report).toMatch(/Документ №K-4 \(строка 55\) НЕ ПРИНЯТ:\r\n {2}строка 55, поле СекцияДокумент: UNSUPPORTED_KIND/);
    expect((await orders()).filter((n) => n.startsWith('K-'))).toEqual(['K-1', 'K-5']);
  });

  it('a document number or payer IIK too long for the natural key never keeps the file, or the good documents in it, out', async () => {
    // Random text (PostgreSQL compresses a repeated one below its index limit, about 2.7 KB).
    const noise = (n: number) => randomBytes((n * 3) / 4).toString('base64url');
    const iban = (d: string[], v: string) => d.map((l) => (l.startsWith('ПлательщикИИК=') ? `ПлательщикИИК=${v}` : l));
    drop('long-key.txt', file([doc('LK-1'), doc(`LK-2${noise(6000)}`), iban(doc('LK-3'), `KZ69${noise(6000)}`), doc('LK-4')]));
    const [result] = await scan();
    expect(result).toMatchObject({ file: 'long-key.txt', outcome: 'error', documents: 4, taken: 2, refused: 2 });
    const report = readFileSync(`${result.movedTo}.report.txt`, 'utf8');
    expect(report).toMatch(/Документ №LK-2[\w-]+ \(строка 21\) НЕ ПРИНЯТ:\r\n {2}строка 22, поле number: NUMBER_TOO_LONG/);
    expect(report).toMatch(/Документ №LK-3 \(строка 38\) НЕ ПРИНЯТ:\r\n {2}строка 45, поле payer.iban: IBAN_TOO_LONG/);
    expect((await orders()).filter((n) => n.startsWith('LK-'))).toEqual(['LK-1', 'LK-4']);
  });

  it('a file that is not a 1C exchange file goes to error/ untouched', async () => {
    drop('notes.txt', Buffer.from('hello КонецФайла'));
    const [result] = await scan();
    expect(result).toMatchObject({ outcome: 'error', documents: 0 });
    expect(readFileSync(`${result.movedTo}.report.txt`, 'utf8')).toMatch(/не файл обмена 1С/);
  });

  it('only one watcher at a time: a held folder lock makes another scan stand by', async () => {
    const key = `${env.config.redis.prefix}:onec:outbox:lock`;
    await context.redis.set(key, 'someone-else', 'PX', 10_000);
    drop('later.txt', file([doc('L-1')]));
    expect(await scanOnecOutbox(context, context.redis)).toBe('locked');
    expect(existsSync(join(outbox, 'later.txt'))).toBe(true);
    await context.redis.del(key);
    const [result] = await scan();
    expect(result.outcome).toBe('archived');
    expect(await context.redis.get(key)).toBeNull();
  });

  describe('a file that changes while it is read', () => {
    const numbers = (prefix: string, n: number): string[][] => Array.from({ length: n }, (_, i) => doc(`${prefix}-${i + 1}`));
    const clear = async (): Promise<void> => {
      await context.orm.em.fork().execute("delete from payment_order where source = 'onec'");
    };
    beforeEach(clear);

    it("1C's next export to the same name while the scan reads is a new file: the file read is archived with its own sha256, the new one becomes an order on the next scan", async () => {
      // 600 documents: more than one 256 KiB read and more than one intake batch.
      const old = file(numbers('OLD', 600));
      const new1 = file([doc('NEW1')]);
      expect(old.length).toBeGreaterThan(256 * 1024);
      drop('1c_to_kl.txt', old);
      // What the audit did while the worker read: `cat new1.txt > outbox/1c_to_kl.txt`.
      const [result] = await scan(({ outboxPath }) => writeFileSync(outboxPath, new1));
      expect(result).toMatchObject({ file: '1c_to_kl.txt', outcome: 'archived', documents: 600, taken: 600, created: 600, sha256: sha(old) });
      expect(readFileSync(result.movedTo as string)).toEqual(old);
      expect(readFileSync(join(outbox, '1c_to_kl.txt'))).toEqual(new1);
      expect(existsSync(join(outbox, 'error', '1c_to_kl.txt'))).toBe(false);

      age(join(outbox, '1c_to_kl.txt'));
      const [next] = await scan();
      expect(next).toMatchObject({ file: '1c_to_kl.txt', outcome: 'archived', documents: 1, created: 1, sha256: sha(new1) });
      expect(readFileSync(next.movedTo as string)).toEqual(new1);
      expect(await orders()).toContain('NEW1');
      expect(await orders()).toHaveLength(601);
      expect(readdirSync(join(outbox, 'processing'))).toEqual([]);
    });

    it('1C writing on into the file it had open: nothing of the changed read is archived, reported or taken in; the file waits in processing/ and the next scan takes what it finally holds', async () => {
      const first = file([doc('C-1')]);
      const rewritten = file([doc('C-2'), doc('C-3')]);
      const path = drop('1c_to_kl.txt', first);
      // 1C's own handle, opened before the scan claims the file: a rename does not stop it.
      const fd = openSync(path, 'r+');
      try {
        const [result] = await scan(() => {
          ftruncateSync(fd, 0);
          writeSync(fd, rewritten, 0, rewritten.length, 0);
        });
        expect(result).toMatchObject({ file: '1c_to_kl.txt', outcome: 'waiting', created: 0 });
        expect(result.movedTo).toBeUndefined();
      } finally {
        closeSync(fd);
      }
      expect(readdirSync(join(outbox, 'processing'))).toEqual(['1c_to_kl.txt']);
      expect(existsSync(join(outbox, 'error', '1c_to_kl.txt'))).toBe(false);
      expect(readdirSync(join(outbox, 'archive')).filter((n) => n.includes(sha(first)) || n.includes(sha(rewritten)))).toEqual([]);
      expect(await orders()).toEqual([]);

      // Just written: it waits until stable, like any file 1C is writing.
      expect((await scan()).map((r) => [r.file, r.outcome])).toEqual([['1c_to_kl.txt', 'waiting']]);
      age(join(outbox, 'processing', '1c_to_kl.txt'));
      const [next] = await scan();
      expect(next).toMatchObject({ file: '1c_to_kl.txt', outcome: 'archived', documents: 2, created: 2, sha256: sha(rewritten) });
      expect(readFileSync(next.movedTo as string)).toEqual(rewritten);
      expect(await orders()).toEqual(['C-2', 'C-3']);
      expect(readdirSync(join(outbox, 'processing'))).toEqual([]);
    });

    it('a scan that dies between the claim and the move strands nothing: the next scan takes the claimed file first, then a new export of the same name', async () => {
      const claimedBytes = file([doc('K-1'), doc('K-2')]);
      const newer = file([doc('K-3')]);
      drop('1c_to_kl.txt', claimedBytes);
      await expect(
        scan(() => {
          throw new Error('worker killed');
        }),
      ).rejects.toThrow('worker killed');
      expect(readdirSync(join(outbox, 'processing'))).toEqual(['1c_to_kl.txt']);
      expect(await context.redis.get(`${env.config.redis.prefix}:onec:outbox:lock`)).toBeNull();
      // 1C exports again meanwhile, to the same name.
      drop('1c_to_kl.txt', newer);

      const results = await scan();
      expect(results.map((r) => [r.file, r.outcome, r.sha256, r.created])).toEqual([
        ['1c_to_kl.txt', 'archived', sha(claimedBytes), 2],
        ['1c_to_kl.txt', 'archived', sha(newer), 1],
      ]);
      expect(readFileSync(results[0].movedTo as string)).toEqual(claimedBytes);
      expect(readFileSync(results[1].movedTo as string)).toEqual(newer);
      expect(await orders()).toEqual(['K-1', 'K-2', 'K-3']);
      expect(readdirSync(join(outbox, 'processing'))).toEqual([]);
      expect(existsSync(join(outbox, '1c_to_kl.txt'))).toBe(false);
    });
  });

  it('a document whose СекцияДокумент line lost a byte is not dropped in silence: the others go in, the file goes to error/ saying which line', async () => {
    const damaged = (d: string[]) => d.map((l) => (l.startsWith('СекцияДокумент') ? 'Сек\u0098ияДокумент=Платежное поручение' : l));
    for (const [name, docs, line] of [
      ['damaged-middle.txt', [doc('D-1'), damaged(doc('D-2')), doc('D-3')], 21],
      ['damaged-first.txt', [damaged(doc('D-4')), doc('D-5')], 20],
    ] as const) {
      drop(name, file([...docs]));
      const [result] = await scan();
      expect({ name, outcome: result.outcome }).toEqual({ name, outcome: 'error' });
      const report = readFileSync(`${result.movedTo as string}.report.txt`, 'utf8');
      expect(report).toMatch(new RegExp(`со строки ${line} строки документа стоят вне раздела СекцияДокумент`));
    }
    expect(await orders()).toEqual(expect.arrayContaining(['D-1', 'D-3', 'D-5']));
    expect(await orders()).not.toEqual(expect.arrayContaining(['D-2']));
  });

  it('a file that cannot be taken in waits for the next scan without keeping later exports out; the scan names it', async () => {
    drop('1c_to_kl_poison.txt', file([doc('P-1')]), 120_000);
    drop('1c_to_kl_after.txt', file([doc('P-2')]));
    // Stands for anything the database refuses in one file: its reading fails.
    const poison: WhileReading = ({ outboxPath }) => {
      if (outboxPath.endsWith('1c_to_kl_poison.txt')) throw new Error('the database refused this file');
    };
    await expect(scanOnecOutbox(context, context.redis, { whileReading: poison })).rejects.toThrow(/1 1C outbox file\(s\) could not be taken in .*1c_to_kl_poison\.txt: the database refused this file/);
    // The later export went in all the same.
    expect(await orders()).toContain('P-2');
    expect(await orders()).not.toContain('P-1');
    // Failing at every scan, it is said to a person by an incident (a log line at each scan was all there was).
    const stuck = () => context.orm.em.fork().execute<Array<{ status: string; title: string }>>("select status, title from incident where kind = 'onec_outbox_stuck' and evidence->>'file' = ?", ['1c_to_kl_poison.txt']);
    for (let scans = 2; scans <= OUTBOX_FAILURES_BEFORE_INCIDENT; scans++) {
      expect(await stuck()).toEqual([]);
      await expect(scanOnecOutbox(context, context.redis, { whileReading: poison })).rejects.toThrow(/1c_to_kl_poison\.txt/);
    }
    expect(await stuck()).toEqual([{ status: 'open', title: expect.stringMatching(/^The 1C export 1c_to_kl_poison\.txt in \S+ failed 3 scans in a row .*the database refused this file/) }]);
    // The next scan, the cause gone, takes the waiting file, and the incident is closed.
    const again = await scan();
    expect(again.find((r) => r.file === '1c_to_kl_poison.txt')).toMatchObject({ outcome: 'archived', created: 1 });
    expect(await orders()).toContain('P-1');
    expect((await stuck()).map((i) => i.status)).toEqual(['resolved']);
  });

  it("judges a file's stability by the machine's time, which wrote its mtime, not by the connector's clock (one started an hour back: CONNECTOR_FAKE_NOW)", async () => {
    drop('behind.txt', file([doc('T-1')]));
    const behind = { ...context, clock: new OffsetClock(new Date(Date.now() - 3_600_000)) };
    const r = await scanOnecOutbox(behind, context.redis);
    if (r === 'locked') throw new Error('locked');
    expect(r.map((x) => [x.file, x.outcome, x.created])).toEqual([['behind.txt', 'archived', 1]]);
  });
});
