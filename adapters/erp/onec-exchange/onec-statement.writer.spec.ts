import * as iconv from 'iconv-lite';
import type { StatementData } from '../../../connector/statements/statement.model';
import { checkStatementBalance } from '../../../connector/statements/statement.model';
import { judgeOnecDocument } from './onec-document.judge';
import { parseOnecExchange } from './onec-exchange.reader';
import { onecToStatement } from './onec-statement.mapper';
import { encodeOnecText, writeOnecStatement, type OnecStatementWriteOptions } from './onec-statement.writer';
import { renderOnecStatusBody, renderOnecStatusHeader, type StatusReportEntry } from './onec-status.writer';

const statement = (): StatementData => ({
  account: 'KZ35601A000000012345',
  currency: 'KZT',
  periodFrom: '2025-03-03',
  periodTo: '2025-03-04',
  kind: 'booked',
  openingBalance: 100_000_000,
  closingBalance: 106_950_000,
  source: 'bank-json',
  lines: [
    {
      bankLineId: 'BL-1',
      bookingDate: '2025-03-03',
      valueDate: '2025-03-03',
      direction: 'debit',
      amount: 15_000_000,
      currency: 'KZT',
      status: 'booked',
      kind: 'payment',
      counterparty: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', code: '17' },
      purpose: 'Оплата по счету №12 от 01.03.2025 за товары, в т.ч. НДС',
      knp: '710',
      documentNumber: '15',
      documentDate: '2025-03-03',
      bankReference: 'ACB-000123',
      externalId: 'ord_8d1c',
    },
    {
      bankLineId: 'BL-2',
      bookingDate: '2025-03-04',
      valueDate: '2025-03-04',
      direction: 'debit',
      amount: 50_000,
      currency: 'KZT',
      status: 'booked',
      kind: 'fee',
      counterparty: { name: 'АО "Alatau City Bank"', iinBin: '920140000084', iban: 'KZ24070105KSN0000000', bic: 'TSESKZKA' },
      purpose: 'Комиссия за платёж №15 = 500 тенге',
      documentNumber: 'F-77',
      documentDate: '2025-03-04',
    },
    {
      bankLineId: 'BL-3',
      bookingDate: '2025-03-04',
      valueDate: '2025-03-05',
      direction: 'credit',
      amount: 22_000_000,
      currency: 'KZT',
      status: 'booked',
      kind: 'payment',
      counterparty: { name: 'Иванов Иван Иванович', iinBin: '850315300019', iban: 'KZ288562203000011111', bic: 'KCJBKZKX', code: '19' },
      purpose: 'Оплата по договору №5 "ЖК "Юнис" (кавычки не парные)',
      knp: '859',
      documentNumber: 'NT-000777',
      documentDate: '2025-03-01',
    },
  ],
});

const options = (encoding: 'windows' | 'utf8'): OnecStatementWriteOptions => ({
  encoding,
  owner: { name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', bic: 'HSBKKZKX', code: '17' },
  createdAt: new Date('2025-03-05T05:15:00Z'),
});

describe('1C statement writer', () => {
  it.each(['windows', 'utf8'] as const)('round trip writer -> reader keeps every field (%s)', (encoding) => {
    const input = statement();
    expect(checkStatementBalance(input).ok).toBe(true);
    const written = writeOnecStatement(input, options(encoding));
    expect(written.warnings).toEqual([]);
    const parsed = parseOnecExchange(written.bytes);
    expect(parsed.file).toMatchObject({ exchange: true, complete: true, encoding: encoding === 'windows' ? 'cp1251' : 'utf8', errors: [], warnings: [] });
    for (const d of parsed.documents) expect(d.errors).toEqual([]);
    const { statement: back, skipped } = onecToStatement(parsed);
    expect(skipped).toEqual([]);
    expect(back).toEqual({ ...input, source: 'onec' });
  });

  it('writes the header, balances with totals, and the dates 1C matches on', () => {
    const { bytes, text } = writeOnecStatement(statement(), options('windows'));
    expect(iconv.decode(bytes, 'cp1251')).toBe(text);
    expect(text.includes('\n') && !/[^\r]\n/.test(text)).toBe(true); // CRLF only
    const lines = text.split('\r\n');
    expect(lines.slice(0, 6)).toEqual(['1CClientBankExchange', 'ВерсияФормата=1.03', 'Кодировка=Windows', expect.stringMatching(/^Отправитель=/), 'Получатель=1С:Предприятие', 'ДатаСоздания=05.03.2025']);
    expect(lines).toContain('ВремяСоздания=10:15:00');
    expect(lines).toEqual(expect.arrayContaining(['НачальныйОстаток=1000000.00', 'ВсегоПоступило=220000.00', 'ВсегоСписано=150500.00', 'КонечныйОстаток=1069500.00']));
    const parsed = parseOnecExchange(bytes);
    expect(parsed.documents.map((d) => [d.kind, d.order.direction, d.debitedDate, d.creditedDate, d.order.payer.iinBin, d.order.beneficiary.iinBin])).toEqual([
      ['Платежное поручение', 'out', '2025-03-03', undefined, '200540000019', '190840000015'],
      ['Банковский ордер', 'out', '2025-03-04', undefined, '200540000019', '920140000084'],
      ['Платежное поручение', 'in', undefined, '2025-03-04', '850315300019', '200540000019'],
    ]);
    expect(lines[lines.length - 2]).toBe('КонецФайла');
  });

  it('writes the codes it knows under the keys of the KZ samples, only adding lines to each document', () => {
    const s = statement();
    // A budget payment: the Treasury's КБе and the КБК, as the order it executed holds them.
    Object.assign(s.lines[0], { knp: '911', kbk: '101202', counterparty: { name: 'РГУ "УГД"', iinBin: '081240000013', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', code: '11' } });
    const { text } = writeOnecStatement(s, options('windows'));
    const docs = text.split('СекцияДокумент=').slice(1).map((d) => d.split('\r\n').slice(1, -1).map((l) => l.split('=')[0]));
    expect(docs[0]).toEqual([
      'ВидДокумента', 'НомерДокумента', 'ДатаДокумента', 'Сумма', 'СуммаРасход', 'Валюта', 'ДатаОперации', 'ДатаВалютирования', 'ДатаСписано', 'ДатаПоступило',
      'ПлательщикНаименование', 'ПлательщикБИН_ИИН', 'ПлательщикИИК', 'ПлательщикБанкБИК', 'ПлательщикКБЕ',
      'ПолучательНаименование', 'ПолучательБИН_ИИН', 'ПолучательИИК', 'ПолучательБанкБИК', 'ПолучательКБЕ',
      'НазначениеПлатежа', 'КодНазначенияПлатежа', 'КБК', 'КодБК',
      'ИдентификаторОперацииБанка', 'СсылкаБанка', 'ВнешнийИдентификатор', 'ВидОперации', 'СтатусОперации', 'КонецДокумента',
    ]);
    expect(text).toContain('\r\nПолучательБанкБИК=KKMFKZ2A\r\nПолучательКБЕ=11\r\n');
    expect(text).toContain('\r\nКодНазначенияПлатежа=911\r\nКБК=101202\r\nКодБК=101202\r\n');
    // The payer of the credit is a stranger whose КОд is known here: written on its side.
    expect(text).toContain('\r\nПлательщикБанкБИК=KCJBKZKX\r\nПлательщикКБЕ=19\r\n');
    // The fee's counterparty code is unknown: the key is left out, never written empty or guessed.
    expect(docs[1]).not.toContain('ПолучательКБЕ');
    expect(docs[1]).not.toContain('КБК');
    expect(docs[1]).not.toContain('КодБК');
    // Without codes, the same file minus exactly those lines: nothing else moved.
    const bare = statement();
    Object.assign(bare.lines[0], { knp: '911', counterparty: { ...s.lines[0].counterparty, code: undefined } });
    delete bare.lines[2].counterparty.code;
    const added = ['ПолучательКБЕ=11', 'КБК=101202', 'КодБК=101202', 'ПлательщикКБЕ=19'];
    expect(writeOnecStatement(bare, options('windows')).text).toBe(text.split('\r\n').filter((l) => !added.includes(l)).join('\r\n'));
    // Our reader takes them back (КБе of the beneficiary, КОд of the payer, КБК).
    const parsed = parseOnecExchange(writeOnecStatement(s, options('windows')).bytes);
    expect(parsed.documents[0].order).toMatchObject({ kbk: '101202', beneficiary: { kbe: '11' }, payer: { kod: '17' } });
    expect(parsed.documents[2].order).toMatchObject({ payer: { kod: '19' }, beneficiary: { kbe: '17' } });
    expect(onecToStatement(parsed).statement.lines[0]).toMatchObject({ kbk: '101202', counterparty: { code: '11' } });
  });

  it('our own file passes our own parser: no warning where the codes are known, a plain statement of fact where the bank gave none', () => {
    const s = statement();
    Object.assign(s.lines[0], { knp: '911', kbk: '101202', counterparty: { name: 'РГУ "УГД"', iinBin: '081240000013', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', code: '11' } });
    // The fee as the bank books it: to its own income account.
    Object.assign(s.lines[1], { knp: '710', counterparty: { name: 'АО "Alatau City Bank"', iinBin: '990740000019', iban: 'KZ48998FEE0000000001', bic: 'TSESKZKA' } });
    s.lines[2].knp = '710'; // 859 is not in the connector's КНП list yet: a warning of its own
    const parsed = parseOnecExchange(writeOnecStatement(s, options('windows')).bytes, { fileName: 'kl_to_1c.txt' });
    const judged = parsed.documents.map((d) => judgeOnecDocument(d, { now: new Date('2025-03-05T04:00:00Z') }));
    expect(judged.map((j) => [j.ok, j.errors, j.warnings.map((w) => `${w.line} ${w.field}:${w.code}`)])).toEqual([
      [true, [], []],
      [true, [], [`${parsed.documents[1].line} beneficiary.kbe:NOT_IN_STATEMENT`]],
      [true, [], []],
    ]);
    expect(judged[1].warnings[0]).toMatchObject({
      file: 'kl_to_1c.txt',
      message: 'В выписке не указан КБе получателя (банк его не сообщил); операция уже исполнена, документ принят без него',
      messageEn: expect.stringMatching(/KBe is not in the statement/),
    });
  });

  it('a bank\'s purpose or name with control characters (vertical tab, NUL, NEL, a line separator) stays one readable line', () => {
    const s = statement();
    s.lines[0].purpose = 'Оплата\u000bпо\u0000счёту\u0085№ 17\u2028за\uFFFDноябрь\uD800';
    s.lines[0].counterparty = { ...s.lines[0].counterparty, name: 'ТОО\u001f"Бета"' };
    for (const encoding of ['windows', 'utf8'] as const) {
      const parsed = parseOnecExchange(writeOnecStatement(s, options(encoding)).bytes);
      const judged = parsed.documents.map((d) => judgeOnecDocument(d, { now: new Date('2025-03-05T04:00:00Z') }));
      expect(judged.flatMap((j) => [...j.errors, ...j.warnings]).filter((i) => i.code === 'BAD_CHARACTERS')).toEqual([]);
      expect([...parsed.file.errors, ...parsed.file.warnings].filter((w) => w.code === 'BAD_CHARACTERS')).toEqual([]);
      expect(judged.every((j) => j.ok)).toBe(true);
      expect(onecToStatement(parsed).statement.lines[0].purpose).toBe('Оплата по счёту № 17 за ноябрь');
    }
  });

  it('leaves pending lines out unless asked, and says when cp1251 cannot hold a letter', () => {
    const s = statement();
    s.lines[2].status = 'pending';
    s.lines[2].purpose = 'Төлем үшін';
    expect(parseOnecExchange(writeOnecStatement(s, options('windows')).bytes).documents).toHaveLength(2);
    const withPending = writeOnecStatement(s, { ...options('windows'), includePending: true });
    expect(withPending.warnings[0]).toMatch(/cp1251 cannot hold .*ө.*: Kazakh letters are written as the nearest Russian ones/);
    // In cp1251 the Kazakh letters become the nearest Russian ones (і is in cp1251), not "?".
    expect(onecToStatement(parseOnecExchange(withPending.bytes)).statement.lines[2].purpose).toBe('Толем ушін');
    expect(iconv.decode(encodeOnecText('ӘәҒғҚқҢңӨөҰұҮүҺһІі €', 'windows'), 'cp1251')).toBe('АаГгКкНнОоУуУуХхІі €');
    const utf = writeOnecStatement(s, { ...options('utf8'), includePending: true });
    expect(onecToStatement(parseOnecExchange(utf.bytes)).statement.lines[2]).toMatchObject({ status: 'pending', purpose: 'Төлем үшін' });
  });
});

describe('status report for exported documents', () => {
  it('a 1C user reads each state in Russian, with the refusal reason; our reader reads it back', () => {
    const entries: StatusReportEntry[] = [
        { number: '17', date: '2025-03-05', amount: '150000.00', beneficiaryName: 'ТОО "Получатель"', state: 'executed', at: new Date('2025-03-05T06:00:00Z'), bankReference: 'ACB-1' },
        { number: '18', date: '2025-03-05', amount: '10.00', state: 'rejected', reason: 'Недостаточно средств на счёте для платежа и комиссии', reasonCode: 'INSUFFICIENT_FUNDS', at: new Date('2025-03-05T07:30:00Z') },
        { number: '19', date: '2025-03-05', amount: '5.00', state: 'invalid', reason: 'ИИК получателя: неверные контрольные цифры', at: new Date('2025-03-05T05:00:00Z') },
    ];
    // As the write-back job and `connector onec statuses` put it together.
    const bytes = encodeOnecText(renderOnecStatusHeader({ encoding: 'windows', createdAt: new Date('2025-03-05T08:00:00Z') }) + renderOnecStatusBody(entries), 'windows');
    const parsed = parseOnecExchange(bytes);
    expect(parsed.file).toMatchObject({ exchange: true, complete: true, encoding: 'cp1251' });
    expect(parsed.documents.map((d) => [d.order.number, d.order.raw['Статус'], d.order.raw['ПричинаОтказа'], d.order.raw['ВремяСтатуса']])).toEqual([
      ['17', 'Исполнен банком', undefined, '11:00:00'],
      ['18', 'Отклонён банком', 'Недостаточно средств на счёте для платежа и комиссии', '12:30:00'],
      ['19', 'Не принят: ошибки в реквизитах', 'ИИК получателя: неверные контрольные цифры', '10:00:00'],
    ]);
  });
});
