import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import * as iconv from 'iconv-lite';
import { judgeOnecDocument } from './onec-document.judge';
import { utf8ValueOf } from './onec-line.decoder';
import { parseOnecExchange, readOnecExchange } from './onec-exchange.reader';
import type { OnecEvent } from './onec-exchange.types';

const FIXTURES = join(__dirname, '../../../test/fixtures/onec');
const fixture = (name: string): Buffer => readFileSync(join(FIXTURES, name));
const KZ_ORDER = 'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt';
const KZ_STATEMENT = 'SYNTHETIC_kz_statement_kl_to_1c.cp1251.crlf.txt';
const RU_STATEMENT = 'dronm-clbnk__kl_to_1c.txt';
const RU_ORDERS = 'dronm-clbnk__to_bank.txt';
const cp1251 = (text: string): Buffer => iconv.encode(text, 'cp1251');

const ORDER_TEXT = [
  '1CClientBankExchange',
  'ВерсияФормата=1.02',
  'Кодировка=Windows',
  'СекцияДокумент=ПлатежноеПоручение',
  'НомерДокумента=17',
  'ДатаДокумента=05.03.2025',
  'Сумма=150000.00',
  'ПлательщикНаименование=ТОО "Пример"',
  'ПлательщикБИН_ИИН=200540000019',
  'ПлательщикКБЕ=17',
  'ПлательщикИИК=KZ35601A000000012345',
  'ПлательщикБанкБИК=HSBKKZKX',
  'ПолучательНаименование=ТОО "Получатель"',
  'ПолучательБИН_ИИН=190840000015',
  'ПолучательКБЕ=17',
  'ПолучательИИК=KZ78722S000000067890',
  'ПолучательБанкБИК=CASPKZKA',
  'НазначениеПлатежа=Оплата по счету №12',
  'КодНазначенияПлатежа=710',
  'КонецДокумента',
  'КонецФайла',
];

describe('1CClientBankExchange reader on the samples', () => {
  it('reads the KZ payment order export into the normalised order', () => {
    const parsed = parseOnecExchange(fixture(KZ_ORDER));
    expect(parsed.file).toMatchObject({ exchange: true, encoding: 'cp1251', declaredEncoding: 'Windows', complete: true, documents: 1, errors: [], warnings: [] });
    expect(parsed.header).toMatchObject({ formatVersion: '1.02', accounts: ['KZ35601A000000012345'], documentKinds: ['ПлатежноеПоручение'], createdDate: '2025-03-05' });
    const [doc] = parsed.documents;
    expect(doc).toMatchObject({ line: 12, endLine: 32, kind: 'ПлатежноеПоручение', statement: false, variant: 'kz', closed: true, errors: [], warnings: [] });
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
    expect(raw['ПлательщикБанкНаименование']).toBe('АО "Народный Банк Казахстана"');
    // The archive keeps the document's original text.
    expect(doc.text.split('\r\n')[0]).toBe('СекцияДокумент=ПлатежноеПоручение');
    expect(doc.text.split('\r\n').pop()).toBe('КонецДокумента');
    expect(judgeOnecDocument(doc, { now: new Date('2025-03-05T04:00:00Z') })).toMatchObject({ ok: true, errors: [], warnings: [] });
  });

  it('a Kazakh name in a cp1251 export (1C writes the letters cp1251 lacks as "?") is not ok: it would be paid to «?лем-??рылыс»', () => {
    const text = ORDER_TEXT.map((l) => (l.startsWith('ПолучательНаименование=') ? 'ПолучательНаименование=ЖШС «Әлем-Құрылыс»' : l)).join('\r\n');
    const [doc] = parseOnecExchange(cp1251(text)).documents;
    expect(doc.order.beneficiary.name).toBe('ЖШС «?лем-??рылыс»');
    const judged = judgeOnecDocument(doc, { now: new Date('2025-03-05T04:00:00Z') });
    expect(judged.ok).toBe(false);
    expect(judged.errors).toEqual([expect.objectContaining({ field: 'beneficiary.name', code: 'TEXT_LOST_LETTERS', key: 'ПолучательНаименование', line: 13 })]);
    // The same document in UTF-8 keeps its letters and is ok.
    expect(judgeOnecDocument(parseOnecExchange(Buffer.from(text.replace('Кодировка=Windows', 'Кодировка=UTF8'), 'utf8')).documents[0], { now: new Date('2025-03-05T04:00:00Z') })).toMatchObject({ ok: true, errors: [] });
  });

  it('reads the KZ statement: balance block, directions, budget fields', () => {
    const parsed = parseOnecExchange(fixture(KZ_STATEMENT));
    expect(parsed.balances).toEqual([
      expect.objectContaining({ account: 'KZ35601A000000012345', dateFrom: '2025-03-03', dateTo: '2025-03-04', opening: '1000000.00', totalIn: '250000.00', totalOut: '180500.00', closing: '1069500.00', closed: true }),
    ]);
    expect(parsed.documents.map((d) => [d.order.number, d.statement, d.order.direction, d.order.amount])).toEqual([
      ['15', true, 'out', '150000.00'],
      ['16', true, 'out', '30500.00'],
      ['NT-000777', true, 'in', '250000.00'],
    ]);
    expect(parsed.documents[1].order).toMatchObject({ kbk: '101201', knp: '911', beneficiary: { bic: 'KKMFKZ2A', kbe: '11' } });
    expect(parsed.documents[2].operationDate).toBe('2025-03-04');
  });

  it('reads a Russian statement (cp1251, Банковский ордер) with its Russian keys', () => {
    const parsed = parseOnecExchange(fixture(RU_STATEMENT));
    expect(parsed.file).toMatchObject({ exchange: true, complete: true, documents: 3, balances: 1 });
    expect(parsed.documents.map((d) => [d.kind, d.variant, d.order.direction, d.order.payer.iinBin, d.order.currency])).toEqual([
      ['Банковский ордер', 'ru', 'out', '7777777777', 'RUB'],
      ['Платежное поручение', 'ru', 'out', '7123456789', 'RUB'],
      ['Платежное поручение', 'ru', 'out', '7123456777', 'RUB'],
    ]);
    expect(parsed.documents[0].debitedDate).toBe('2024-01-01');
    // A statement line is a fact: rule breaches (an ИНН is no BIN) are warnings, the line is ok.
    const judged = judgeOnecDocument(parsed.documents[0], { now: new Date('2024-04-12T00:00:00Z') });
    expect(judged.ok).toBe(true);
    expect(judged.warnings.map((w) => w.code)).toContain('IIN_BIN_FORMAT');
  });

  it('reads the Russian orders with a bare СекцияДокумент and a UTF-8 line inside cp1251', () => {
    const parsed = parseOnecExchange(fixture(RU_ORDERS), { fileName: RU_ORDERS });
    expect(parsed.file.encoding).toBe('cp1251');
    // The last line is КонецФайла written in UTF-8: detected, decoded, reported.
    expect(parsed.file.complete).toBe(true);
    expect(parsed.file.warnings).toEqual([expect.objectContaining({ code: 'LINE_ENCODING', line: 75, file: RU_ORDERS })]);
    expect(parsed.documents).toHaveLength(2);
    expect(parsed.documents[0]).toMatchObject({ kind: 'Платежное поручение', statement: false });
    expect(parsed.documents[0].warnings.map((w) => w.code)).toEqual(['MISSING_KIND']);
    expect(parsed.documents[1].order.purpose).toBe('За товары, по счету №777 на сумму 375-25 Plus NDS 111-16');
  });
});

describe('document kinds', () => {
  it('onec parse judges a document of another kind (a payment request, no kind at all) as no payment order, as the outbox refuses it', () => {
    const text = (kind: string) => cp1251(ORDER_TEXT.map((l) => (l.startsWith('СекцияДокумент') ? kind : l)).join('\r\n'));
    for (const kind of ['СекцияДокумент=Платежное требование', 'СекцияДокумент']) {
      const judged = judgeOnecDocument(parseOnecExchange(text(kind)).documents[0], { now: new Date('2025-03-05T04:00:00Z') });
      expect({ kind, ok: judged.ok, errors: judged.errors.map((e) => [e.line, e.field, e.code]) }).toEqual({ kind, ok: false, errors: [[4, 'СекцияДокумент', 'UNSUPPORTED_KIND']] });
    }
    for (const kind of ['СекцияДокумент="платежное поручение"', 'СекцияДокумент=Платёжное поручение']) {
      const order = judgeOnecDocument(parseOnecExchange(text(kind)).documents[0], { now: new Date('2025-03-05T04:00:00Z') });
      expect({ kind, ok: order.ok, errors: order.errors }).toEqual({ kind, ok: true, errors: [] });
    }
  });
});

describe('encodings: the bytes decide', () => {
  const text = ORDER_TEXT.join('\r\n') + '\r\n';
  it.each<[string, Buffer, string, string[]]>([
    ['cp1251 labelled Windows', cp1251(text), 'cp1251', []],
    ['UTF-8 labelled Windows', Buffer.from(text, 'utf8'), 'utf8', ['ENCODING_MISMATCH']],
    ['UTF-8 with a BOM', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text.replace('Кодировка=Windows', 'Кодировка=UTF8'), 'utf8')]), 'utf8', []],
    ['cp866 labelled DOS', iconv.encode(text.replace('Кодировка=Windows', 'Кодировка=DOS'), 'cp866'), 'cp866', []],
    ['cp866 labelled Windows', iconv.encode(text, 'cp866'), 'cp866', ['ENCODING_MISMATCH']],
    ['cp1251 labelled UTF8', cp1251(text.replace('Кодировка=Windows', 'Кодировка=UTF8')), 'cp1251', ['ENCODING_MISMATCH']],
    ['cp1251 labelled DOS', cp1251(text.replace('Кодировка=Windows', 'Кодировка=DOS')), 'cp1251', ['ENCODING_MISMATCH']],
    ['LF line ends', cp1251(text.replace(/\r\n/g, '\n')), 'cp1251', []],
    // No Кодировка line (the format asks for one): the code page in which the format's keys read.
    ['cp866 without a Кодировка line', iconv.encode(text.replace('Кодировка=Windows\r\n', ''), 'cp866'), 'cp866', []],
    ['cp1251 without a Кодировка line', cp1251(text.replace('Кодировка=Windows\r\n', '')), 'cp1251', []],
  ])('%s', (_name, bytes, encoding, warnings) => {
    const parsed = parseOnecExchange(bytes);
    expect(parsed.file.encoding).toBe(encoding);
    expect(parsed.file.warnings.map((w) => w.code)).toEqual(warnings);
    expect(parsed.documents).toHaveLength(1);
    expect(parsed.documents[0].order.payer.name).toBe('ТОО "Пример"');
    expect(parsed.documents[0].errors).toEqual([]);
  });
});

describe('a line whose key is in the file\'s code page and whose value is UTF-8', () => {
  /** ORDER_TEXT in `encoding`, with the value of `key` written as `value` (raw bytes). */
  const fileWith = (encoding: 'cp1251' | 'cp866', key: string, value: Buffer): Buffer =>
    Buffer.concat(
      ORDER_TEXT.flatMap((line) => [
        line.startsWith(`${key}=`) ? Buffer.concat([iconv.encode(`${key}=`, encoding), value]) : iconv.encode(encoding === 'cp866' ? line.replace('Кодировка=Windows', 'Кодировка=DOS') : line, encoding),
        Buffer.from('\r\n'),
      ]),
    );
  const PURPOSE_LINE = ORDER_TEXT.findIndex((l) => l.startsWith('НазначениеПлатежа=')) + 1;
  const NAME_LINE = ORDER_TEXT.findIndex((l) => l.startsWith('ПлательщикНаименование=')) + 1;

  it.each<[string, 'cp1251' | 'cp866', string, string, number]>([
    ['a Russian purpose in a cp1251 file', 'cp1251', 'НазначениеПлатежа', 'Оплата по счёту №5 от 20.11.2026, в т.ч. НДС 12% — 16 071,43 ₸', PURPOSE_LINE],
    ['a Kazakh purpose in a cp1251 file', 'cp1251', 'НазначениеПлатежа', 'Қызмет көрсеткені үшін төлем, ҚҚС-сыз', PURPOSE_LINE],
    ['a Kazakh name in a cp1251 file', 'cp1251', 'ПлательщикНаименование', 'ЖШС «Әлем-Құрылыс»', NAME_LINE],
    ['a Russian purpose in a cp866 file', 'cp866', 'НазначениеПлатежа', 'Оплата по счёту №5', PURPOSE_LINE],
  ])('%s is read as UTF-8 and reported on its line, like a wholly UTF-8 line', (_name, encoding, key, value, line) => {
    const parsed = parseOnecExchange(fileWith(encoding, key, Buffer.from(value, 'utf8')), { fileName: 'mixed.txt' });
    expect(parsed.file.encoding).toBe(encoding);
    const order = parsed.documents[0].order;
    expect(key === 'НазначениеПлатежа' ? order.purpose : order.payer.name).toBe(value);
    expect(parsed.file.warnings).toEqual([
      expect.objectContaining({ code: 'LINE_ENCODING', line, file: 'mixed.txt', messageEn: `line ${line}: the value after "=" is utf8, unlike the file (${encoding}); decoded as utf8` }),
    ]);
    expect(parsed.documents[0].errors).toEqual([]);
  });

  // Real text as Kazakh 1C files hold it: cp1251 (only І/і of the Kazakh letters exist there) and
  // KZ-1048, the Kazakh cp1251 whose Ә Ғ Қ Ң Ө Ұ Ү Һ sit on bytes 0x80-0xBF, the continuation bytes of UTF-8.
  const REAL_TEXT = [
    'Оплата по счёту №12 от 01.03.2025 за товары, в т.ч. НДС 12% — 16 071,43 тг.',
    'Возврат ошибочно перечисленных средств',
    'ЗАРАБОТНАЯ ПЛАТА ЗА ФЕВРАЛЬ 2025 Г.',
    'АО "Народный Банк Казахстана"',
    'ТОО «РОМАШКА»',
    'ИП «ЁЛКИН Ё.Ё.»',
    'СЧЁТ',
    'Қазақстан Республикасының Ұлттық Банкі',
    'ҚАЗАҚСТАН РЕСПУБЛИКАСЫНЫҢ ҰЛТТЫҚ БАНКІ',
    'Жалақы аудару, ақпан 2025 ж.',
    'ЖШС «Әлем-Құрылыс»',
    'ӨСКЕМЕН ҚАЛАСЫ',
    'Салық төлеу, ҚҚС',
    'Білім беру қызметі үшін төлем',
    'ҚР ҰБ',
    'ТІСІ',
    'КІСІ',
    'ТІЛІ',
    'ІІ',
    'ҮЙ',
  ];
  it.each(['cp1251', 'rk1048'])('genuine %s text is never taken for UTF-8', (encoding) => {
    for (const text of REAL_TEXT) {
      const bytes = iconv.encode(text, encoding);
      for (const key of ['НазначениеПлатежа', 'ПлательщикНаименование']) {
        const parsed = parseOnecExchange(fileWith('cp1251', key, bytes));
        const order = parsed.documents[0].order;
        expect({ text, value: key === 'НазначениеПлатежа' ? order.purpose : order.payer.name }).toEqual({ text, value: new TextDecoder('windows-1251').decode(bytes) });
        expect(parsed.file.warnings).toEqual([]);
      }
    }
  });

  it('no run of up to three letters and punctuation of cp1251 or KZ-1048 reads as a UTF-8 value', () => {
    const upper = 'АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯӘҒҚҢӨҰҮҺІ';
    const alphabet = [...`${upper}${upper.toLowerCase()} «»№—-".,`];
    const key = iconv.encode('НазначениеПлатежа=', 'cp1251');
    const taken: string[] = [];
    for (const encoding of ['cp1251', 'rk1048']) {
      for (const a of alphabet) for (const b of alphabet) for (const c of ['', ...alphabet]) {
        if (utf8ValueOf(Buffer.concat([key, iconv.encode(a + b + c, encoding)]))) taken.push(`${encoding}:${a + b + c}`);
      }
    }
    expect(taken).toEqual([]);
  });
});

describe('encoding decided on the first 64 KiB', () => {
  it('a UTF-8 file whose 64 KiB boundary cuts a Cyrillic letter is still UTF-8, with no line warnings', () => {
    const doc = ORDER_TEXT.slice(3, 20).join('\r\n') + '\r\n';
    let text = ORDER_TEXT.slice(0, 3).join('\r\n') + '\r\n';
    let n = 0;
    while (Buffer.byteLength(text) < 200_000) {
      text += doc.replace('НомерДокумента=17', `НомерДокумента=${++n}`);
    }
    text += 'КонецФайла\r\n';
    const bytes = Buffer.from(text, 'utf8');
    // the sniff boundary lands inside a two-byte letter in at least one of these shifts
    for (const pad of [0, 1]) {
      const shifted = Buffer.concat([Buffer.from(ORDER_TEXT[0] + '\r\n'), Buffer.from('Отправитель=' + 'x'.repeat(pad + 1) + '\r\n'), bytes.subarray(Buffer.byteLength(ORDER_TEXT[0] + '\r\n'))]);
      const parsed = parseOnecExchange(shifted);
      expect(parsed.file).toMatchObject({ encoding: 'utf8', complete: true, errors: [] });
      expect(parsed.file.warnings.map((w) => w.code)).toEqual(['ENCODING_MISMATCH']);
      expect(parsed.documents).toHaveLength(n);
      expect(parsed.documents.every((d) => d.errors.length === 0 && d.order.payer.name === 'ТОО "Пример"')).toBe(true);
    }
  });
});

describe('grammar details', () => {
  it('matches keys case-insensitively and keeps unknown keys', () => {
    const lines = ORDER_TEXT.map((l) => (l.startsWith('Сумма=') ? 'СУММА=10.5' : l));
    lines.splice(5, 0, 'НовыйКлючБанка=что-то');
    const parsed = parseOnecExchange(cp1251(lines.join('\r\n')));
    expect(parsed.documents[0].order.amount).toBe('10.50');
    expect(parsed.documents[0].order.raw['НовыйКлючБанка']).toBe('что-то');
    expect(parsed.documents[0].errors).toEqual([]);
  });

  it('accepts a quoted kind and values with "=" and unbalanced quotes', () => {
    const lines = ORDER_TEXT.map((l) => (l.startsWith('СекцияДокумент') ? 'СекцияДокумент="Выписка"' : l.startsWith('ПлательщикНаименование') ? 'ПлательщикНаименование=ОСИ  "ЖК "Юнис=Сити"' : l));
    const doc = parseOnecExchange(cp1251(lines.join('\r\n'))).documents[0];
    expect(doc.kind).toBe('Выписка');
    expect(doc.statement).toBe(true);
    expect(doc.order.payer.name).toBe('ОСИ  "ЖК "Юнис=Сити"');
  });

  it("an order with the bank's keys written empty (ДатаСписано=, ДатаПоступило=) is still an order, not a statement line", () => {
    const lines = [...ORDER_TEXT];
    lines.splice(7, 0, 'ДатаСписано=', 'ДатаПоступило=', 'ДатаОперации= ');
    const doc = parseOnecExchange(cp1251(lines.join('\r\n'))).documents[0];
    expect(doc.statement).toBe(false);
    expect(doc.errors).toEqual([]);
    expect(doc.order.amount).toBe('150000.00');
  });

  it('a statement line with both СуммаРасход and СуммаПриход: the side that moved money decides the amount and the direction', () => {
    const line = (sides: string[]) => {
      const lines = ORDER_TEXT.filter((l) => !l.startsWith('Сумма=')).map((l) => (l.startsWith('СекцияДокумент') ? 'СекцияДокумент=Выписка' : l));
      lines.splice(5, 0, ...sides);
      return parseOnecExchange(cp1251(lines.join('\r\n'))).documents[0];
    };
    const credit = line(['СуммаРасход=0.00', 'СуммаПриход=5000.00']);
    expect([credit.order.direction, credit.order.amount, credit.errors]).toEqual(['in', '5000.00', []]);
    const debit = line(['СуммаПриход=0.00', 'СуммаРасход=5000.00']);
    expect([debit.order.direction, debit.order.amount, debit.errors]).toEqual(['out', '5000.00', []]);
    // Only one side, written 0.00: a line of 0.00 on that side, as written.
    const zero = line(['СуммаПриход=0.00']);
    expect([zero.order.direction, zero.order.amount]).toEqual(['in', '0.00']);
  });

  it('reads upper-case balance markers of a real bank', () => {
    const text = ['1CClientBankExchange', 'ВерсияФормата=2.0', 'СЕКЦИЯРАСЧСЧЕТ', 'РасчСчет=KZ35601A000000012345', 'НачальныйОстаток=10.00', 'КонечныйОстаток=5.00', 'КОНЕЦРАСЧСЧЕТ'].join('\n');
    const parsed = parseOnecExchange(Buffer.from(text));
    expect(parsed.balances[0]).toMatchObject({ closed: true, opening: '10.00', closing: '5.00' });
    expect(parsed.file.warnings.map((w) => w.code)).toEqual(['FILE_NOT_COMPLETE']);
  });

  it('says a file that is not an exchange file is not one', () => {
    const parsed = parseOnecExchange(Buffer.from('{"orders":[]}\n'));
    expect(parsed.file.exchange).toBe(false);
    expect(parsed.file.errors[0]).toMatchObject({ code: 'NOT_EXCHANGE_FILE', line: 1 });
    expect(parseOnecExchange(Buffer.alloc(0)).file.exchange).toBe(false);
  });
});

describe('bad input: clear errors, good documents still come through', () => {
  const twoDocs = (mutateFirst: (lines: string[]) => string[]): string => {
    const doc = ORDER_TEXT.slice(3, 20);
    const second = doc.map((l) => (l.startsWith('НомерДокумента') ? 'НомерДокумента=18' : l));
    return [...ORDER_TEXT.slice(0, 3), ...mutateFirst(doc), ...second, 'КонецФайла'].join('\r\n');
  };
  const read = (text: string | Buffer) => parseOnecExchange(typeof text === 'string' ? cp1251(text) : text, { fileName: 'x.txt' });

  it('a missing КонецДокумента fails that document only', () => {
    const parsed = read(twoDocs((d) => d.slice(0, -1)));
    expect(parsed.documents.map((d) => d.order.number)).toEqual(['17', '18']);
    expect(parsed.documents[0].errors).toEqual([expect.objectContaining({ code: 'DOCUMENT_NOT_CLOSED', field: 'КонецДокумента', line: 20, file: 'x.txt' })]);
    expect(parsed.documents[0].closed).toBe(false);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('a duplicate key with another value is an error naming both lines; the same value a warning', () => {
    const conflicting = read(twoDocs((d) => [...d.slice(0, 3), 'Сумма=1.00', ...d.slice(3)]));
    expect(conflicting.documents[0].errors).toEqual([expect.objectContaining({ code: 'DUPLICATE_KEY', field: 'Сумма', line: 8 })]);
    expect(conflicting.documents[0].errors[0].message).toMatch(/строка 7/);
    expect(conflicting.documents[1].errors).toEqual([]);
    const same = read(twoDocs((d) => [...d.slice(0, 3), 'Сумма=150000.00', ...d.slice(3)]));
    expect(same.documents[0].errors).toEqual([]);
    expect(same.documents[0].warnings.map((w) => w.code)).toEqual(['DUPLICATE_KEY']);
  });

  it.each<[string, string, string, string]>([
    ['ПолучательИИК and ПолучательСчет', 'ПолучательИИК', 'ПолучательСчет=KZ86125KZT5004100100', 'beneficiary.iban'],
    ['ПолучательБанкБИК and ПолучательБИК', 'ПолучательБанкБИК', 'ПолучательБИК=HSBKKZKX', 'beneficiary.bic'],
    ['КодНазначенияПлатежа and КНП', 'КодНазначенияПлатежа', 'КНП=911', 'knp'],
    ['НомерДокумента and Номер', 'НомерДокумента', 'Номер=71', 'number'],
    ['ДатаДокумента and Дата', 'ДатаДокумента', 'Дата=06.03.2025', 'date'],
  ])('two keys for one field with different values (%s) make the document invalid, naming both lines; the other document goes through', (_name, firstKey, added, field) => {
    const parsed = read(twoDocs((d) => [...d.slice(0, -1), added, d[d.length - 1]]));
    const firstLine = 4 + twoDocs((d) => d).split('\r\n').slice(3).findIndex((l) => l.startsWith(`${firstKey}=`));
    expect(parsed.documents[0].errors).toEqual([expect.objectContaining({ code: 'CONFLICTING_KEYS', field, line: 20, key: added.split('=')[0] })]);
    expect(parsed.documents[0].errors[0].message).toContain(`(строка ${firstLine})`);
    expect(parsed.documents[0].errors[0].message).toContain(firstKey);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('two keys for one field that agree (after trimming; dates as dates) are no conflict, and neither are a name and the RU settlement account', () => {
    for (const added of ['ПолучательСчет= KZ78722S000000067890 ', 'КНП=710', 'Дата=5.3.2025', 'ПолучательРасчСчет=KZ86125KZT5004100100', 'Получатель=ИНН 190840000015 ТОО "Получатель"', 'ПолучательБИК=']) {
      const parsed = read(twoDocs((d) => [...d.slice(0, -1), added, d[d.length - 1]]));
      expect([added, parsed.documents[0].errors]).toEqual([added, []]);
    }
  });

  it('garbage bytes are reported on their line and field', () => {
    const text = twoDocs((d) => d);
    const bytes = cp1251(text);
    const at = bytes.indexOf(cp1251('Оплата'));
    bytes[at + 2] = 0x98; // no character in cp1251
    bytes[at + 3] = 0x01;
    const parsed = read(bytes);
    expect(parsed.documents[0].errors).toEqual([expect.objectContaining({ code: 'BAD_CHARACTERS', field: 'НазначениеПлатежа', line: 18 })]);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('after КонецФайла: blank lines and padding are nothing, a second export appended is reported on its first line', () => {
    const padded = read(Buffer.concat([cp1251(`${twoDocs((d) => d)}\r\n\r\n   \r\n\t\r\n`), Buffer.from([0x00, 0x00, 0x1a])]));
    expect(padded.file.warnings).toEqual([]);
    expect(padded.documents.map((d) => d.order.number)).toEqual(['17', '18']);
    const glued = read(`${ORDER_TEXT.join('\r\n')}\r\n\r\n${ORDER_TEXT.join('\r\n').replace('НомерДокумента=17', 'НомерДокумента=99')}\r\n`);
    expect(glued.documents.map((d) => d.order.number)).toEqual(['17']);
    expect(glued.file.warnings).toEqual([expect.objectContaining({ code: 'CONTENT_AFTER_END', field: 'КонецФайла', line: ORDER_TEXT.length + 2, file: 'x.txt' })]);
  });

  it('a truncated file: the cut document fails, the file is flagged incomplete', () => {
    const text = twoDocs((d) => d);
    const cut = text.slice(0, text.lastIndexOf('ПолучательИИК'));
    const parsed = read(cut);
    expect(parsed.file.complete).toBe(false);
    expect(parsed.file.warnings.map((w) => w.code)).toEqual(['FILE_NOT_COMPLETE']);
    expect(parsed.documents[0].errors).toEqual([]);
    expect(parsed.documents[1].errors.map((e) => e.code)).toEqual(['DOCUMENT_NOT_CLOSED']);
  });

  it('a huge line is cut, reported with its key, and does not stop the file', () => {
    const parsed = read(twoDocs((d) => d.map((l) => (l.startsWith('НазначениеПлатежа') ? `НазначениеПлатежа=${'я'.repeat(300_000)}` : l))));
    expect(parsed.documents[0].errors).toEqual([expect.objectContaining({ code: 'LINE_TOO_LONG', field: 'НазначениеПлатежа', line: 18 })]);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('a huge line across stream chunks never sits in memory whole', async () => {
    const head = cp1251(ORDER_TEXT.slice(0, 17).join('\r\n') + '\r\nНазначениеПлатежа=');
    const chunks: Buffer[] = [head];
    for (let i = 0; i < 50; i += 1) chunks.push(Buffer.alloc(100_000, 0xef)); // 5 MB of "п", no line break
    chunks.push(cp1251('\r\n' + ORDER_TEXT.slice(18).join('\r\n')));
    const events: OnecEvent[] = [];
    for await (const e of readOnecExchange(Readable.from(chunks), { maxLineBytes: 64 * 1024 })) events.push(e);
    const doc = events.find((e) => e.type === 'document');
    expect(doc?.type === 'document' && doc.document.errors.map((e) => [e.code, e.field])).toEqual([['LINE_TOO_LONG', 'НазначениеПлатежа']]);
    expect(doc?.type === 'document' && doc.document.text.length).toBeLessThan(10_000);
  });

  it('a date in year 0 is a bad date (there is none; PostgreSQL refused it for the whole batch)', () => {
    const parsed = read(twoDocs((d) => d.map((l) => (l.startsWith('ДатаДокумента') ? 'ДатаДокумента=01.01.0000' : l))));
    expect(parsed.documents[0].errors.map((e) => [e.code, e.field])).toEqual([['BAD_DATE', 'date']]);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('missing number, bad date and bad amount name their fields', () => {
    const parsed = read(twoDocs((d) => d.filter((l) => !l.startsWith('НомерДокумента')).map((l) => (l.startsWith('ДатаДокумента') ? 'ДатаДокумента=31.02.2025' : l.startsWith('Сумма') ? 'Сумма=1 000,00' : l))));
    expect(parsed.documents[0].errors.map((e) => [e.code, e.field])).toEqual([
      ['MISSING_FIELD', 'number'],
      ['BAD_DATE', 'date'],
      ['BAD_AMOUNT', 'amount'],
    ]);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it.each(['12345678901234567890', '9999999999999999.99'])('an amount of %s breaks the size limit: the message says so, with the largest amount', (amount) => {
    const parsed = read(twoDocs((d) => d.map((l) => (l.startsWith('Сумма=') ? `Сумма=${amount}` : l))));
    expect(parsed.documents[0].errors).toEqual([
      expect.objectContaining({
        code: 'BAD_AMOUNT',
        field: 'amount',
        line: 7,
        key: 'Сумма',
        message: `Строка 7: сумма «${amount}» больше наибольшей допустимой (90071992547409.91)`,
        messageEn: `line 7: amount "${amount}" exceeds the largest amount 90071992547409.91`,
      }),
    ]);
    expect(parsed.documents[1].errors).toEqual([]);
  });

  it('streams chunk boundaries anywhere, even inside a UTF-8 character', async () => {
    const bytes = Buffer.from(twoDocs((d) => d), 'utf8');
    const whole = parseOnecExchange(bytes);
    for (const size of [1, 7, 64, 333]) {
      const chunks: Buffer[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const docs = [];
      for await (const e of readOnecExchange(Readable.from(chunks))) if (e.type === 'document') docs.push(e.document);
      expect(docs.map((d) => d.order)).toEqual(whole.documents.map((d) => d.order));
    }
  });
});
