import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as iconv from 'iconv-lite';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { onecToStatement } from '../../adapters/erp/onec-exchange/onec-statement.mapper';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { Statement, StatementLine } from '../../connector/persistence/entities';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { renderStatementFile, statusReportPages } from '../../queue/jobs/write-back.job';
import { runCli } from '../support/cli';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/** `connector onec statement` on rows stored in a real PostgreSQL database (its own, dropped after). */
const previousDay = (iso: string): string => new Date(Date.parse(`${iso}T00:00:00Z`) - 86_400_000).toISOString().slice(0, 10);
const onecDate = (iso: string): string => iso.split('-').reverse().join('.');

describe('connector onec statement', () => {
  let env: TestEnv;
  let orm: Orm;
  const ACCOUNT = 'KZ69998CTA0000000101';

  beforeAll(async () => {
    env = await createTestEnv('onecstmt');
    orm = await openOrm(env.config);
    const em = orm.em.fork();
    await intakeOrders(em, 'test', [{ order: sampleOrder({ number: 'H-1' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const statement = (periodFrom: string, periodTo: string, opening: number, closing: number) =>
      em.create(Statement, { id: randomUUID(), account: ACCOUNT, currency: 'KZT', periodFrom, periodTo, kind: 'booked', openingBalance: opening, closingBalance: closing, balanced: true, source: 'bank-json', fetchedAt: new Date() });
    statement('2026-11-23', '2026-11-23', 100_000_000, 85_000_000);
    statement('2026-11-24', '2026-11-24', 85_000_000, 106_950_000);
    const line = (bankLineId: string, bookingDate: string, direction: 'debit' | 'credit', amountTiyn: number, extra: Partial<StatementLine> = {}) =>
      sampleStatementLine(em, { account: ACCOUNT, bankLineId, bookingDate, direction, amountTiyn, ...extra });
    line('BL-1', '2026-11-23', 'debit', 15_000_000, { externalId: 'ext1', bankReference: 'ACB-1' });
    line('BL-2', '2026-11-24', 'debit', 50_000, { kind: 'fee', isFee: true, purpose: 'Комиссия за платёж', knp: null, counterpartyName: 'АО "Alatau City Bank"', counterpartyIinBin: '920140000084', counterpartyIban: 'KZ24070105KSN0000000', counterpartyBic: 'TSESKZKA' });
    line('BL-3', '2026-11-24', 'credit', 22_000_000, { counterpartyName: 'Иванов Иван Иванович', counterpartyIinBin: '850315300019', counterpartyIban: 'KZ288562203000011111', counterpartyBic: 'KCJBKZKX' });
    line('BL-4', '2026-11-24', 'credit', 1_000, { status: 'pending' });
    await em.flush();
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  it('writes the cp1251 file 1C imports: balances, every booked line, the holder on our side', async () => {
    const out = join(env.workDir, 'inbox', 'kl_to_1c.txt');
    const r = await runCli(['onec', 'statement', '--account', ACCOUNT, '--from', '2026-11-23', '--to', '2026-11-24', '--out', out], { env: env.env, cwd: env.workDir });
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(out);
    const bytes = readFileSync(out);
    const text = iconv.decode(bytes, 'cp1251');
    expect(text).toMatch(/^1CClientBankExchange\r\nВерсияФормата=1\.03\r\nКодировка=Windows\r\n/);
    expect(text).toContain('\r\nНачальныйОстаток=1000000.00\r\nВсегоПоступило=220000.00\r\nВсегоСписано=150500.00\r\nКонечныйОстаток=1069500.00\r\n');
    const parsed = parseOnecExchange(bytes);
    expect(parsed.file).toMatchObject({ exchange: true, complete: true, encoding: 'cp1251', documents: 3, errors: [], warnings: [] });
    const { statement } = onecToStatement(parsed);
    expect(statement).toMatchObject({ account: ACCOUNT, periodFrom: '2026-11-23', periodTo: '2026-11-24', openingBalance: 100_000_000, closingBalance: 106_950_000 });
    expect(statement.lines.map((l) => [l.bankLineId, l.direction, l.amount, l.kind])).toEqual([
      ['BL-1', 'debit', 15_000_000, 'payment'],
      ['BL-2', 'debit', 50_000, 'fee'],
      ['BL-3', 'credit', 22_000_000, 'payment'],
    ]);
    expect(statement.lines[0]).toMatchObject({ externalId: 'ext1', bankReference: 'ACB-1', knp: '710', documentNumber: '1' });
    // Our side of each document: the holder's name and BIN from its orders, the BIC from the IIK.
    expect(parsed.documents[0].order.payer).toEqual({ name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban: ACCOUNT, bic: 'TSESKZKA', kod: '17' });
    expect(parsed.documents[2].order.beneficiary).toMatchObject({ iban: ACCOUNT, iinBin: '200540000019' });
    expect(parsed.documents[0].debitedDate).toBe('2026-11-23');
    expect(parsed.documents[2].creditedDate).toBe('2026-11-24');
  });

  it("each document carries the codes of the order it executed (КБе, КБК, КНП), never another party's, and `onec parse` says only what the bank did not give", async () => {
    const OURS = 'KZ88998CTB0000000001';
    const em = orm.em.fork();
    const day = sampleOrder().date;
    const payer = { ...sampleOrder().payer, iban: OURS };
    const treasury = { name: 'РГУ "УГД по Есильскому району"', iinBin: '120940000006', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11' };
    const taken = await intakeOrders(
      em,
      'codes',
      [
        { order: sampleOrder({ number: 'P-1', payer }) },
        { order: sampleOrder({ number: 'B-1', payer, knp: '911', kbk: '101202', beneficiary: treasury, purpose: 'КПН, авансовый платёж' }) },
        { order: sampleOrder({ number: 'M-1', payer, amount: '10000.00' }) },
        // Executed on a later day, its line naming neither its number nor its date.
        { order: sampleOrder({ number: 'N-1', payer, date: previousDay(day) }) },
        // Another ERP's order, executed under a number of the bank's own: 1C has no such order.
        { order: sampleOrder({ number: 'A-1', payer, amount: '10000.00' }) },
      ],
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    // One 1C exported, executed under a number of the bank's own (a camt.053 InstrId, say).
    const fromOnec = await intakeOrders(
      em,
      'onec',
      [{ order: sampleOrder({ number: 'R-1', payer, amount: '10000.00' }) }, { order: sampleOrder({ number: 'R-2', payer, amount: '10000.00' }) }],
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    const ids = [...taken, ...fromOnec].map((t) => t.orderId as string);
    // At the bank (how they got there is the pipeline's business, tested elsewhere).
    await em.execute(`update payment_order set state = 'submitted', state_changed_at = now() where id in (?, ?, ?, ?, ?, ?, ?)`, ids);
    const ext = Object.fromEntries((await em.execute<Array<{ number: string; external_id: string }>>('select number, external_id from payment_order where source in (?, ?)', ['codes', 'onec'])).map((r) => [r.number, r.external_id]));
    em.create(Statement, { id: randomUUID(), account: OURS, currency: 'KZT', periodFrom: day, periodTo: day, kind: 'booked', openingBalance: 100_000_000, closingBalance: 72_970_000, balanced: true, source: 'bank-json', fetchedAt: new Date() });
    const line = (bankLineId: string, direction: 'debit' | 'credit', amountTiyn: number, extra: Partial<StatementLine> = {}) =>
      sampleStatementLine(em, { account: OURS, bankLineId, bookingDate: day, direction, amountTiyn, ...extra });
    const bank = { counterpartyName: 'АО "Alatau City Bank"', counterpartyIinBin: '990740000019', counterpartyIban: 'KZ48998FEE0000000001', counterpartyBic: 'TSESKZKA' };
    line('C-1', 'debit', 15_000_000, { externalId: ext['P-1'], documentNumber: 'P-1' });
    line('C-2', 'debit', 30_000, { kind: 'fee', isFee: true, externalId: ext['P-1'], knp: '710', documentNumber: 'F-2', purpose: 'Комиссия за платёж P-1', ...bank });
    // The bank's line of the budget payment gives no КНП: the order's is written.
    line('C-3', 'debit', 15_000_000, { externalId: ext['B-1'], knp: null, documentNumber: 'B-1', counterpartyName: treasury.name, counterpartyIinBin: treasury.iinBin, counterpartyIban: treasury.iban, counterpartyBic: treasury.bic });
    // An incoming payment from a stranger: nobody here knows its КОд.
    line('C-4', 'credit', 22_000_000, { documentNumber: 'NT-4', counterpartyName: 'Иванов Иван Иванович', counterpartyIinBin: '850315300019', counterpartyIban: 'KZ288562203000011111', counterpartyBic: 'KCJBKZKX' });
    // M-1 executed to another account: that party is not the order's beneficiary.
    line('C-5', 'debit', 1_000_000, { externalId: ext['M-1'], documentNumber: 'M-1', counterpartyName: 'ТОО "Внутренний"', counterpartyIinBin: '120340000004', counterpartyIban: 'KZ34998CTB0000000100', counterpartyBic: 'TSESKZKA' });
    line('C-6', 'debit', 15_000_000, { externalId: ext['N-1'], documentNumber: null, documentDate: null });
    line('C-7', 'debit', 1_000_000, { externalId: ext['R-1'], documentNumber: 'BANK-000777' });
    line('C-8', 'debit', 1_000_000, { externalId: ext['A-1'], documentNumber: 'BANK-000888' });
    // A camt.053 entry without the creditor's account: matched by its reference all the same.
    line('C-9', 'debit', 1_000_000, { externalId: ext['R-2'], documentNumber: 'BANK-000999', counterpartyIban: '' });
    await em.flush();
    await reconcileAccount(orm.em.fork(), OURS, day, day, { calendar: kzCalendarFromConfig(env.config), now: new Date(), actor: 'test' });
    const matched = await orm.em.fork().execute<Array<{ bank_line_id: string; match_kind: string }>>('select bank_line_id, match_kind from statement_line where account = ? order by bank_line_id', [OURS]);
    expect(matched.map((m) => `${m.bank_line_id} ${m.match_kind}`)).toEqual(['C-1 order', 'C-2 fee', 'C-3 order', 'C-4 credit', 'C-5 mismatch', 'C-6 order', 'C-7 order', 'C-8 order', 'C-9 order']);

    const out = join(env.workDir, 'codes.txt');
    const r = await runCli(['onec', 'statement', '--account', OURS, '--from', day, '--to', day, '--out', out], { env: env.env, cwd: env.workDir });
    expect(r.stderr).not.toMatch(/warning/);
    expect(r.code).toBe(0);
    const bytes = readFileSync(out);
    // The write-back renders the same file from the same rows.
    const rendered = (await renderStatementFile(orm.em.fork(), [OURS], day, day, 'windows')).render(new Date(0));
    for (const text of [iconv.decode(bytes, 'cp1251'), iconv.decode(rendered, 'cp1251')]) {
      const docs = Object.fromEntries(text.split('СекцияДокумент=').slice(1).map((d) => [/ИдентификаторОперацииБанка=(.*)\r\n/.exec(d)![1], d.split('\r\n')]));
      expect(docs['C-1']).toEqual(expect.arrayContaining(['ПлательщикКБЕ=17', 'ПолучательКБЕ=17']));
      expect(docs['C-3']).toEqual(expect.arrayContaining(['ПолучательКБЕ=11', 'КодНазначенияПлатежа=911', 'КБК=101202']));
      // The fee names P-1, but its counterparty is the bank; C-5 went to another party; C-4's payer is unknown.
      for (const id of ['C-2', 'C-5']) expect(docs[id].filter((l) => /^ПолучательКБЕ=|^КБК=/.test(l))).toEqual([]);
      expect(docs['C-4'].filter((l) => l.startsWith('ПлательщикКБЕ='))).toEqual([]);
      expect(docs['C-4']).toContain('ПолучательКБЕ=17');
      // 1C finds its order N-1 by number and date: the order's, not the bank's line id and booking date.
      expect(docs['C-6']).toEqual(expect.arrayContaining(['НомерДокумента=N-1', `ДатаДокумента=${onecDate(previousDay(day))}`, `ДатаСписано=${onecDate(day)}`]));
      // And under its number when the bank wrote one of its own: 1C would not find R-1 under BANK-000777.
      expect(docs['C-7']).toEqual(expect.arrayContaining(['НомерДокумента=R-1', `ДатаДокумента=${onecDate(day)}`]));
      // Another ERP's order keeps the bank's number: 1C may have an order of its own numbered A-1.
      expect(docs['C-8']).toContain('НомерДокумента=BANK-000888');
      expect(docs['C-9']).toContain('НомерДокумента=R-2');
    }

    const parsed = await runCli(['onec', 'parse', out, '--json'], { env: env.env, cwd: env.workDir });
    expect(parsed.code).toBe(0);
    const [summary, ...documents] = parsed.stdout.trim().split('\n').map((l) => JSON.parse(l)).reverse();
    documents.reverse();
    const warnings = documents.map((d: { ok: boolean; order: { raw: Record<string, string> }; warnings: Array<{ field: string; code: string }> }) => [d.ok, d.order.raw['ИдентификаторОперацииБанка'], d.warnings.map((w) => `${w.field}:${w.code}`)]);
    expect(warnings).toEqual([
      [true, 'C-1', []],
      [true, 'C-2', ['beneficiary.kbe:NOT_IN_STATEMENT']],
      [true, 'C-3', []],
      [true, 'C-4', ['payer.kod:NOT_IN_STATEMENT']],
      [true, 'C-5', ['beneficiary.kbe:NOT_IN_STATEMENT']],
      [true, 'C-6', []],
      [true, 'C-7', []],
      [true, 'C-8', []],
      // The bank gave no account: said; and no КБе, as nobody knows the party for sure.
      [true, 'C-9', ['beneficiary.iban:REQUIRED', 'beneficiary.kbe:NOT_IN_STATEMENT']],
    ]);
    expect(summary.summary).toMatchObject({ documents: 9, ok: 9, invalid: 0, warnings: 5 });
    // R-1 leaves 1C's source: the status report's test below expects 1C's documents of its own only.
    await orm.em.fork().execute("update payment_order set source = 'codes' where id in (?, ?)", fromOnec.map((o) => o.orderId));
  });

  it('one day: opening from the stored statement of that day; utf8 on request', async () => {
    const out = join(env.workDir, 'day.txt');
    const r = await runCli(['onec', 'statement', '--account', ACCOUNT, '--from', '2026-11-24', '--to', '2026-11-24', '--out', out, '--encoding', 'utf8'], { env: env.env, cwd: env.workDir });
    expect(r.code).toBe(0);
    const parsed = parseOnecExchange(readFileSync(out));
    expect(parsed.file.encoding).toBe('utf8');
    expect(parsed.balances[0]).toMatchObject({ opening: '850000.00', totalIn: '220000.00', totalOut: '500.00', closing: '1069500.00' });
  });

  it('connector onec statuses: each exported document with its state in Russian, refusals with the reason', async () => {
    const em = orm.em.fork();
    const [ok, bad] = await intakeOrders(em, 'onec', [{ order: sampleOrder({ number: 'S-1' }) }, { order: sampleOrder({ number: 'S-2', amount: '0.00' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await transitionOrder(orm.em.fork(), ok.orderId, 'validated', { actor: 'test' });
    await transitionOrder(orm.em.fork(), bad.orderId, 'invalid', { actor: 'test', patch: { errors: [{ field: 'amount', code: 'AMOUNT_NOT_POSITIVE', message: 'Сумма должна быть больше нуля' }] } });
    const out = join(env.workDir, 'inbox', 'statuses.txt');
    const r = await runCli(['onec', 'statuses', '--out', out], { env: env.env, cwd: env.workDir });
    expect(r.code).toBe(0);
    const parsed = parseOnecExchange(readFileSync(out));
    expect(parsed.file).toMatchObject({ exchange: true, complete: true, encoding: 'cp1251' });
    expect(parsed.documents.map((d) => [d.order.number, d.order.raw['Статус'], d.order.raw['КодСтатуса'], d.order.raw['ПричинаОтказа']])).toEqual([
      ['S-1', 'Проверен, готовится к подписи', 'validated', undefined],
      ['S-2', 'Не принят: ошибки в реквизитах', 'invalid', 'Сумма должна быть больше нуля'],
    ]);
    expect(parsed.documents[1].order.raw['КодПричиныОтказа']).toBe('AMOUNT_NOT_POSITIVE');

    // A source no order has (a typo, or the ERP's own name instead of api:<key>): an empty report, and a warning naming the real ones.
    const typo = await runCli(['onec', 'statuses', '--out', join(env.workDir, 'inbox', 'statuses-erp.txt'), '--source', 'erp'], { env: env.env, cwd: env.workDir });
    expect(typo.code).toBe(0);
    expect(parseOnecExchange(readFileSync(join(env.workDir, 'inbox', 'statuses-erp.txt'))).documents).toEqual([]);
    expect(typo.stderr).toMatch(/^warning: no orders of source "erp" exist; sources with orders: (.+, )?onec(, .+)?$/m);
    // A source that has orders but none changed since the moment given: empty, and nothing to warn of.
    const quiet = await runCli(['onec', 'statuses', '--out', join(env.workDir, 'inbox', 'statuses-quiet.txt'), '--since', new Date(Date.now() + 3_600_000).toISOString()], { env: env.env, cwd: env.workDir });
    expect([quiet.code, quiet.stderr]).toEqual([0, expect.stringContaining(': 0 documents')]);
    expect(quiet.stderr).not.toMatch(/warning/);
  });

  it('pages of the status report: every order of the source once, by document date, number and id, whatever the page size', async () => {
    const em = orm.em.fork();
    const payer = (iban: string) => ({ ...sampleOrder().payer, iban });
    // Ties on (date, number) across payers, and a second source that must not show up.
    const taken = await intakeOrders(
      em,
      'paging',
      [
        { order: sampleOrder({ number: 'Q-2', date: '2026-11-20' }) },
        { order: sampleOrder({ number: 'Q-1', date: '2026-11-21', erpDocumentId: 'a' }) },
        { order: sampleOrder({ number: 'Q-1', date: '2026-11-21', erpDocumentId: 'b', payer: payer('KZ34998CTB0000000003') }) },
        { order: sampleOrder({ number: 'Q-1', date: '2026-11-21', erpDocumentId: 'c', payer: payer('KZ88998CTB0000000001') }) },
        { order: sampleOrder({ number: 'Q-0', date: '2026-11-22' }) },
      ],
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    await intakeOrders(em, 'elsewhere', [{ order: sampleOrder({ number: 'Q-9', date: '2026-11-20' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const read = async (pageSize: number, since?: Date) => {
      const pages: string[][] = [];
      for await (const page of statusReportPages(orm.em.fork(), { source: 'paging', since }, pageSize)) pages.push(page.map((e) => `${e.date} ${e.number}`));
      return pages;
    };
    const whole = (await read(100)).flat();
    expect(whole).toEqual(['2026-11-20 Q-2', '2026-11-21 Q-1', '2026-11-21 Q-1', '2026-11-21 Q-1', '2026-11-22 Q-0']);
    for (const size of [1, 2, 3]) {
      const pages = await read(size);
      expect(pages.flat()).toEqual(whole);
      expect(pages.every((p) => p.length <= size)).toBe(true);
    }
    // The three tied Q-1 are three different orders, each once, however the pages cut them.
    const tied = [];
    for await (const page of statusReportPages(orm.em.fork(), { source: 'paging' }, 1)) tied.push(...page.filter((e) => e.number === 'Q-1').map((e) => e.erpDocumentId));
    expect(tied.sort()).toEqual(['a', 'b', 'c']);
    // --since: only orders whose state changed at or after the moment.
    const moment = new Date();
    await transitionOrder(orm.em.fork(), taken[4].orderId as string, 'validated', { actor: 'test', now: new Date(moment.getTime() + 1_000) });
    expect((await read(2, new Date(moment.getTime() + 500))).flat()).toEqual(['2026-11-22 Q-0']);
  });

  it('connector onec statuses --encoding utf8 --since: one BOM, the changed orders only; the previous report stays when the database is unreachable', async () => {
    const em = orm.em.fork();
    const [order] = await intakeOrders(em, 'since', [{ order: sampleOrder({ number: 'U-1' }) }, { order: sampleOrder({ number: 'U-2' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const moment = new Date(Date.now() + 60_000);
    await transitionOrder(orm.em.fork(), order.orderId as string, 'validated', { actor: 'test', now: new Date(moment.getTime() + 1_000) });
    const out = join(env.workDir, 'inbox', 'statuses-utf8.txt');
    const r = await runCli(['onec', 'statuses', '--out', out, '--source', 'since', '--since', moment.toISOString(), '--encoding', 'utf8'], { env: env.env, cwd: env.workDir });
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(': 1 documents');
    const bytes = readFileSync(out);
    expect([...bytes.subarray(0, 3)]).toEqual([0xef, 0xbb, 0xbf]);
    expect(bytes.indexOf(Buffer.from([0xef, 0xbb, 0xbf]), 3)).toBe(-1);
    const parsed = parseOnecExchange(bytes);
    expect(parsed.file).toMatchObject({ complete: true, encoding: 'utf8' });
    expect(parsed.documents.map((d) => [d.order.number, d.order.raw['КодСтатуса']])).toEqual([['U-1', 'validated']]);

    const down = await runCli(['onec', 'statuses', '--out', out, '--source', 'since'], { env: { ...env.env, CONNECTOR_DATABASE_URL: 'postgres://root@127.0.0.1:1/nowhere' }, cwd: env.workDir });
    expect(down.code).not.toBe(0);
    expect(readFileSync(out)).toEqual(bytes);
    expect(readdirSync(join(env.workDir, 'inbox')).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('connector onec statuses --since without an offset, or a date alone, is Kazakhstan time whatever the zone of the machine', async () => {
    const [early, late] = await intakeOrders(orm.em.fork(), 'sincekz', [{ order: sampleOrder({ number: 'K-1' }) }, { order: sampleOrder({ number: 'K-2' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    // 23:00 on the 25th and 02:00 on the 26th in Almaty (UTC+5).
    await transitionOrder(orm.em.fork(), early.orderId as string, 'validated', { actor: 'test', now: new Date('2026-11-25T18:00:00Z') });
    await transitionOrder(orm.em.fork(), late.orderId as string, 'validated', { actor: 'test', now: new Date('2026-11-25T21:00:00Z') });
    for (const since of ['2026-11-26', '2026-11-26T01:00', '2026-11-26T01:00:00+05:00']) {
      const out = join(env.workDir, 'inbox', 'statuses-kz.txt');
      const r = await runCli(['onec', 'statuses', '--out', out, '--source', 'sincekz', '--since', since, '--encoding', 'utf8'], { env: { ...env.env, TZ: 'America/New_York' }, cwd: env.workDir });
      expect([since, r.code]).toEqual([since, 0]);
      expect([since, parseOnecExchange(readFileSync(out)).documents.map((d) => d.order.number)]).toEqual([since, ['K-2']]);
    }
    expect((await runCli(['onec', 'statuses', '--out', join(env.workDir, 'x.txt'), '--source', 'sincekz', '--since', 'last week'], { env: env.env, cwd: env.workDir })).code).toBe(2);
  });

  it('refuses a period no stored statement covers (exit 1), and bad dates (exit 2)', async () => {
    const none = await runCli(['onec', 'statement', '--account', ACCOUNT, '--from', '2026-11-01', '--to', '2026-11-02', '--out', join(env.workDir, 'x.txt')], { env: env.env, cwd: env.workDir });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^NO_STATEMENT: /m);
    const bad = await runCli(['onec', 'statement', '--account', ACCOUNT, '--from', '2026-11-31', '--to', '2026-11-24', '--out', join(env.workDir, 'x.txt')], { env: env.env, cwd: env.workDir });
    expect(bad.code).toBe(2);
  });

  it('refuses a mistyped --account as a usage error naming the IBAN and the rule (it was NO_STATEMENT, "add it to pipeline.accounts")', async () => {
    const out = join(env.workDir, 'typo.txt');
    // The account above with two digits swapped: mod-97 fails.
    const typo = await runCli(['onec', 'statement', '--account', 'KZ69998CTA0000000110', '--from', '2026-11-23', '--to', '2026-11-24', '--out', out], { env: env.env, cwd: env.workDir });
    expect([typo.code, typo.stderr]).toEqual([1, expect.stringMatching(/^INVALID_ACCOUNT: --account "KZ69998CTA0000000110" breaks IBAN_CHECKSUM: /m)]);
    const short = await runCli(['onec', 'statement', '--account', 'KZ69998CTA000000010', '--from', '2026-11-23', '--to', '2026-11-24', '--out', out], { env: env.env, cwd: env.workDir });
    expect([short.code, short.stderr]).toEqual([1, expect.stringMatching(/^INVALID_ACCOUNT: --account "KZ69998CTA000000010" breaks IBAN_FORMAT: /m)]);
    expect(readdirSync(env.workDir)).not.toContain('typo.txt');
    // Lower case and spaces around it are still the account.
    expect((await runCli(['onec', 'statement', '--account', ` ${ACCOUNT.toLowerCase()} `, '--from', '2026-11-23', '--to', '2026-11-24', '--out', out], { env: env.env, cwd: env.workDir })).code).toBe(0);
  });
});
