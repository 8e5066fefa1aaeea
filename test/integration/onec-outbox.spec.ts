import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as iconv from 'iconv-lite';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { scanOnecOutbox, type OutboxFileResult } from '../../queue/jobs/scan-onec-outbox.job';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { transitionOrder } from '../../connector/orders/order-state.machine';

/** The 1C outbox scan on a real folder, PostgreSQL and Redis (its own database and key prefix). */
describe('1C outbox folder scan', () => {
  let env: TestEnv;
  let context: AppContext;
  let outbox: string;

  const doc = (number: string, extra: string[] = []): string[] => [
    'СекцияДокумент=Платежное поручение',
    `НомерДокумента=${number}`,
    'ДатаДокумента=25.11.2026',
    'Сумма=1500.00',
    'ПлательщикНаименование=ТОО "Пример Плательщик"',
    'ПлательщикБИН_ИИН=200540000019',
    'ПлательщикКБЕ=17',
    'ПлательщикИИК=KZ69998CTA0000000101',
    'ПлательщикБанкБИК=TSESKZKA',
    'ПолучательНаименование=ТОО "Пример Получатель"',
    'ПолучательБИН_ИИН=190840000015',
    'ПолучательКБЕ=17',
    'ПолучательИИК=KZ78722S000000067890',
    'ПолучательБанкБИК=CASPKZKA',
    'НазначениеПлатежа=Оплата по счету',
    'КодНазначенияПлатежа=710',
    ...extra,
    'КонецДокумента',
  ];
  const file = (docs: string[][], end = true): Buffer =>
    iconv.encode([...['1CClientBankExchange', 'ВерсияФормата=1.03', 'Кодировка=Windows'], ...docs.flat(), ...(end ? ['КонецФайла'] : [])].join('\r\n') + '\r\n', 'cp1251');
  const drop = (name: string, bytes: Buffer, ageMs = 60_000): string => {
    const path = join(outbox, name);
    writeFileSync(path, bytes);
    const t = new Date(Date.now() - ageMs);
    utimesSync(path, t, t);
    return path;
  };
  const orders = async (): Promise<string[]> =>
    (await context.orm.em.fork().execute<Array<{ number: string }>>("select number from payment_order where source = 'onec' order by number")).map((r) => r.number);
  const scan = async (): Promise<OutboxFileResult[]> => {
    const r = await scanOnecOutbox(context, context.redis);
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
    expect(readdirSync(outbox).sort()).toEqual(['archive']);
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
    expect(await idOf('C-2')).toEqual({ id: c2.id, state: 'received' });
    const [c1] = await context.orm.em.fork().execute<Array<{ amount_tiyn: string }>>("select amount_tiyn from payment_order where number = 'C-1'");
    expect(Number(c1.amount_tiyn)).toBe(150_000);
    expect((await orders()).filter((n) => n.startsWith('C-'))).toEqual(['C-1', 'C-2', 'C-3']);
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
});
