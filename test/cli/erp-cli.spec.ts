import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as iconv from 'iconv-lite';

/** `connector onec parse` and `connector validate` as an operator runs them: real child processes. */
const ROOT = resolve(__dirname, '../..');
const MAIN = join(ROOT, 'dist/connector/cli/main.js');
const FIXTURES = join(ROOT, 'test/fixtures/onec');
let cwd: string;

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'pipe' });
  cwd = mkdtempSync(join(tmpdir(), 'erp-cli-'));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function run(args: string[], env: Record<string, string> = {}) {
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('CONNECTOR_')) delete base[k];
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd, env: { ...base, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}
const ON_DATE = { CONNECTOR_TEST_MODE: '1', CONNECTOR_FAKE_NOW: '2025-03-05T04:00:00Z' };

describe('connector onec parse', () => {
  it('prints the JSON lines of INTERFACES.md for a valid KZ payment order', () => {
    const r = run(['onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt'), '--json'], ON_DATE);
    expect(r.code).toBe(0);
    expect(r.lines).toHaveLength(2);
    const doc = JSON.parse(r.lines[0]);
    expect(doc).toMatchObject({ line: 12, kind: 'ПлатежноеПоручение', ok: true, warnings: [] });
    const { raw, ...order } = doc.order;
    expect(order).toEqual({
      number: '17',
      date: '2025-03-05',
      amount: '150000.00',
      currency: 'KZT',
      payer: { name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban: 'KZ35601A000000012345', bic: 'HSBKKZKX', kod: '17' },
      beneficiary: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17' },
      knp: '710',
      purpose: 'Оплата по счету №12 от 01.03.2025 за товары, в т.ч. НДС',
      valueDate: '2025-03-05',
    });
    expect(raw['КодНазначенияПлатежа']).toBe('710');
    expect(JSON.parse(r.lines[1])).toEqual({ summary: expect.objectContaining({ documents: 1, ok: 1, invalid: 0, warnings: 0, encoding: 'cp1251' }) });
  });

  it('a payment order that breaks a rule is invalid (exit 0: the file was read)', () => {
    const r = run(['onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt'), '--json'], { CONNECTOR_TEST_MODE: '1', CONNECTOR_FAKE_NOW: '2025-03-20T04:00:00Z' });
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.lines[0]);
    expect(doc.ok).toBe(false);
    // Fifteen days on, the document is past its 10 days of validity too (DATE_STALE is an error in an order).
    expect(doc.errors).toEqual([
      expect.objectContaining({ field: 'date', code: 'DATE_STALE', line: 14, key: 'ДатаДокумента' }),
      expect.objectContaining({ field: 'valueDate', code: 'VALUE_DATE_PAST', line: 31, key: 'ДатаВалютирования' }),
    ]);
    expect(doc.errors[1].message).toMatch(/Дата валютирования 05\.03\.2025 уже прошла/);
    expect(JSON.parse(r.lines[1]).summary).toMatchObject({ documents: 1, ok: 0, invalid: 1 });
  });

  it('statement documents are ok when read; breaches are warnings', () => {
    const r = run(['onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_statement_kl_to_1c.cp1251.crlf.txt'), '--json'], ON_DATE);
    expect(r.code).toBe(0);
    const docs = r.lines.slice(0, -1).map((l) => JSON.parse(l));
    expect(docs.map((d) => [d.line, d.kind, d.ok, d.order.direction])).toEqual([
      [20, 'Выписка', true, 'out'],
      [44, 'Выписка', true, 'out'],
      [67, 'Выписка', true, 'in'],
    ]);
    expect(docs[2].warnings).toEqual([expect.objectContaining({ field: 'knp', code: 'KNP_UNKNOWN', line: 86 })]);
    expect(JSON.parse(r.lines[3]).summary).toMatchObject({ documents: 3, ok: 3, invalid: 0, warnings: 1, encoding: 'cp1251' });
  });

  it("a document number longer than the bank's 64 characters is invalid here, naming the line, the key and the rule", () => {
    const text = iconv.decode(readFileSync(join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt')), 'cp1251');
    const file = join(cwd, 'long-number.txt');
    writeFileSync(file, iconv.encode(text.replace('НомерДокумента=17', `НомерДокумента=${'1234567890'.repeat(7)}`), 'cp1251'));
    const r = run(['onec', 'parse', file, '--json'], ON_DATE);
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.lines[0]);
    expect(doc.ok).toBe(false);
    expect(doc.errors).toEqual([
      { line: 13, key: 'НомерДокумента', field: 'number', code: 'NUMBER_TOO_LONG', message: 'Номер документа длиннее 64 знаков (70); сократите номер', messageEn: 'number is 70 characters, limit 64' },
    ]);
  });

  it('a broken exchange file: exit 0, the broken document invalid with line and field, the others through', () => {
    const text = readFileSync(join(FIXTURES, 'SYNTHETIC_kz_statement_kl_to_1c.cp1251.crlf.txt'));
    const cut = text.subarray(0, text.length - 200);
    const file = join(cwd, 'cut.txt');
    writeFileSync(file, cut);
    const r = run(['onec', 'parse', file, '--json'], ON_DATE);
    expect(r.code).toBe(0);
    const docs = r.lines.slice(0, -1).map((l) => JSON.parse(l));
    expect(docs.map((d) => d.ok)).toEqual([true, true, false]);
    expect(docs[2].errors[0]).toMatchObject({ code: 'DOCUMENT_NOT_CLOSED', field: 'КонецДокумента' });
    const summary = JSON.parse(r.lines[r.lines.length - 1]).summary;
    expect(summary).toMatchObject({ documents: 3, ok: 2, invalid: 1, complete: false });
  });

  it('exit 2 for a file that is not an exchange file, or cannot be read', () => {
    const file = join(cwd, 'not.txt');
    writeFileSync(file, 'hello\n');
    const r = run(['onec', 'parse', file, '--json']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^NOT_EXCHANGE_FILE: /m);
    const missing = run(['onec', 'parse', join(cwd, 'missing.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/ENOENT/);
  });

  it('human output names file, line, field and rule', () => {
    const r = run(['onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt')], { CONNECTOR_TEST_MODE: '1', CONNECTOR_FAKE_NOW: '2025-03-20T04:00:00Z' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/SYNTHETIC_kz_payment_order_1c_to_kl\.cp1251\.crlf\.txt:31: valueDate: VALUE_DATE_PAST: /);
  });

  it('warnings go to stderr, the verdicts and the summary to stdout (INTERFACES.md, CLI conventions)', () => {
    // Declared Windows (cp1251), written in UTF-8: the bytes decide, the mismatch is a warning.
    const text = iconv.decode(readFileSync(join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt')), 'cp1251');
    expect(text).toMatch(/^Кодировка=Windows\r$/m);
    const file = join(cwd, 'declared-windows-is-utf8.txt');
    writeFileSync(file, text, 'utf8');
    const r = run(['onec', 'parse', file], ON_DATE);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/^warning .*declared-windows-is-utf8\.txt:\d+: Кодировка: ENCODING_MISMATCH: /m);
    expect(r.stdout).not.toMatch(/^\s*warning |ENCODING_MISMATCH/m);
    expect(r.lines).toEqual([
      'line 12 ПлатежноеПоручение №17 2025-03-05 150000.00 KZT: OK',
      `${file}: 1 documents, 1 ok, 0 invalid, 1 warnings, encoding utf8`,
    ]);
    // A document's own warning too (an unknown KNP in a statement line).
    const statement = run(['onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_statement_kl_to_1c.cp1251.crlf.txt')], ON_DATE);
    expect(statement.stderr).toMatch(/^warning .*:86: knp: KNP_UNKNOWN: /m);
    expect(statement.stdout).not.toMatch(/^\s*warning |KNP_UNKNOWN/m);
    // With --json, stdout is the JSON lines only, the warning inside them.
    const json = run(['onec', 'parse', file, '--json'], ON_DATE);
    expect(json.code).toBe(0);
    const parsed = json.lines.map((l) => JSON.parse(l));
    expect(parsed).toHaveLength(2);
    expect(parsed[1].summary.fileWarnings).toEqual([expect.objectContaining({ code: 'ENCODING_MISMATCH' })]);
  });
});

describe('connector validate', () => {
  it.each([
    [['--iin', '850315300019'], 0],
    [['--bin', '940140000385'], 0],
    [['--iban', 'KZ22722C000024901213'], 0],
    [['--bic', 'TSESKZKA'], 0],
    [['--knp', '911'], 0],
    [['--iin', '850315300018'], 1],
    [['--bin', '850315300019'], 1],
    [['--iban', 'KZ23722C000024901213'], 1],
    [['--bic', 'ABCDKZKA'], 1],
    [['--knp', '91'], 1],
  ])('%j -> exit %d', (args, code) => {
    expect(run(['validate', ...(args as string[])]).code).toBe(code);
  });

  it('names the broken rule on stderr and in --json', () => {
    const r = run(['validate', '--iban', 'KZ23722C000024901213', '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^IBAN_CHECKSUM: /);
    expect(JSON.parse(r.stdout)).toMatchObject({ valid: false, kind: 'iban', code: 'IBAN_CHECKSUM' });
    const ok = run(['validate', '--bic', 'CASPKZKA', '--json']);
    expect(JSON.parse(ok.stdout)).toMatchObject({ valid: true, code: null, bank: { code: '722' } });
  });

  it('usage errors exit 2', () => {
    expect(run(['validate']).code).toBe(2);
    expect(run(['validate', '--iin', '850315300019', '--bin', '940140000385']).code).toBe(2);
    expect(run(['validate', '--iin']).code).toBe(2);
  });

  it('an unknown KNP is valid with a warning, invalid when the config says so', () => {
    const lenient = run(['validate', '--knp', '555']);
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/KNP_UNKNOWN/);
    const config = join(cwd, 'strict.json');
    writeFileSync(config, JSON.stringify({ requisites: { unknownKnp: 'error' } }));
    const strict = run(['validate', '--knp', '555'], { CONNECTOR_CONFIG: config });
    expect(strict.code).toBe(1);
    expect(strict.stderr).toMatch(/^KNP_UNKNOWN: /);
  });
});

describe('output into a reader that left (`| head`, `less` quit early)', () => {
  it('finishes with its own exit code, without a stack trace', async () => {
    const base = { ...process.env };
    for (const k of Object.keys(base)) if (k.startsWith('CONNECTOR_')) delete base[k];
    const child = spawn(process.execPath, [MAIN, 'onec', 'parse', join(FIXTURES, 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt'), '--json'], {
      cwd,
      env: { ...base, ...ON_DATE },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The reader is gone before the command writes its first line: every write meets EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const code = await new Promise<number | null>((done) => child.on('close', done));
    expect(stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
    expect(code).toBe(0);
  });
});
