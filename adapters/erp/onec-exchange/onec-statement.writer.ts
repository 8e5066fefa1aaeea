import * as iconv from 'iconv-lite';
import { formatAmount, sumTiyn } from '../../../connector/shared/money';
import type { StatementData, StatementLineData } from '../../../connector/statements/statement.model';

/**
 * Writes the statement file 1C imports (`kl_to_1c.txt`, ONEC-KZ.md): the header, one
 * `СекцияРасчСчет` with the opening balance, totals in and out and the closing balance, and one
 * `СекцияДокумент` per statement line with what 1C needs to match its own documents (number,
 * date, amounts, both parties with their КБе/КОд when known, `ДатаСписано`/`ДатаПоступило`, КНП,
 * the КБК of a budget payment when known, purpose). Keys are the Kazakhstan set seen in banks'
 * statements; a few connector keys (`ИдентификаторОперацииБанка`, `ВидОперации`, ...) carry what
 * the statement model holds beyond them: 1C skips keys it does not know, and our reader gets every
 * field back (round trip).
 */
export interface StatementOwner {
  /** The account holder, written on our side of every document. */
  name: string;
  iinBin: string;
  bic: string;
  /** КБе/КОд of the holder, e.g. 17. */
  code?: string;
}

export interface OnecStatementWriteOptions {
  encoding: 'windows' | 'utf8';
  owner: StatementOwner;
  /** When the file is made (ДатаСоздания/ВремяСоздания). */
  createdAt: Date;
  /** Kazakhstan time, UTC+5 (config requisites.utcOffsetMinutes). */
  utcOffsetMinutes?: number;
  sender?: string;
  recipient?: string;
  /** Pending (not yet booked) lines are left out unless asked for: 1C would book them. */
  includePending?: boolean;
}

export interface WrittenStatement {
  bytes: Buffer;
  text: string;
  /** Characters the code page cannot hold (Kazakh letters in cp1251: written as the nearest Russian ones; others as "?"). */
  warnings: string[];
}

/** Extension keys (not in the 1C standard; 1C skips them). */
export const EXT = {
  bankLineId: 'ИдентификаторОперацииБанка',
  bankReference: 'СсылкаБанка',
  externalId: 'ВнешнийИдентификатор',
  kind: 'ВидОперации',
  status: 'СтатусОперации',
  statementKind: 'ВидВыписки',
  currency: 'ВалютаСчета',
} as const;

/** ISO `2025-03-04` -> 1C `04.03.2025`. */
export function isoToOnecDate(iso: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(iso);
  return m ? `${m[3]}.${m[2]}.${m[1]}` : iso;
}

/**
 * A value goes on one line: line breaks become spaces (the grammar has no escaping), and so do the
 * other control characters and Unicode's line and paragraph separators a bank's text may carry (a
 * vertical tab, NUL, NEL): 1C may split or cut the line there, and our own reader refuses the
 * document (BAD_CHARACTERS).
 */
export function onecValue(value: string | undefined): string {
  return (
    (value ?? '')
      // eslint-disable-next-line no-control-regex
      .replace(/[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\u2028\u2029\uFFFD]/g, ' ')
      // A lone surrogate (half of a character) is written as U+FFFD, which our reader refuses too.
      .replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, ' ')
      .replace(/[\r\n]+/g, ' ')
  );
}

function localParts(at: Date, offsetMinutes: number): { date: string; time: string } {
  const iso = new Date(at.getTime() + offsetMinutes * 60_000).toISOString();
  return { date: isoToOnecDate(iso.slice(0, 10)), time: iso.slice(11, 19) };
}

export function renderOnecStatement(statement: StatementData, options: OnecStatementWriteOptions): string {
  const lines = statement.lines.filter((l) => options.includePending || l.status === 'booked');
  const booked = lines.filter((l) => l.status === 'booked');
  const totalIn = sumTiyn(booked.filter((l) => l.direction === 'credit').map((l) => l.amount));
  const totalOut = sumTiyn(booked.filter((l) => l.direction === 'debit').map((l) => l.amount));
  const created = localParts(options.createdAt, options.utcOffsetMinutes ?? 300);
  const out: string[] = [];
  const kv = (key: string, value: string | undefined): void => {
    out.push(`${key}=${onecValue(value)}`);
  };
  out.push('1CClientBankExchange');
  kv('ВерсияФормата', '1.03');
  kv('Кодировка', options.encoding === 'windows' ? 'Windows' : 'UTF8');
  kv('Отправитель', options.sender ?? 'Bank connector (Alatau City Bank Business API)');
  kv('Получатель', options.recipient ?? '1С:Предприятие');
  kv('ДатаСоздания', created.date);
  kv('ВремяСоздания', created.time);
  kv('ДатаНачала', isoToOnecDate(statement.periodFrom));
  kv('ДатаКонца', isoToOnecDate(statement.periodTo));
  kv('РасчСчет', statement.account);
  kv(EXT.statementKind, statement.kind);
  kv(EXT.currency, statement.currency);
  out.push('СекцияРасчСчет');
  kv('ДатаНачала', isoToOnecDate(statement.periodFrom));
  kv('ДатаКонца', isoToOnecDate(statement.periodTo));
  kv('РасчСчет', statement.account);
  kv('НачальныйОстаток', formatAmount(statement.openingBalance));
  kv('ВсегоПоступило', formatAmount(totalIn));
  kv('ВсегоСписано', formatAmount(totalOut));
  kv('КонечныйОстаток', formatAmount(statement.closingBalance));
  out.push('КонецРасчСчет');
  for (const line of lines) writeLine(line, statement, options.owner, kv, out);
  out.push('КонецФайла');
  return `${out.join('\r\n')}\r\n`;
}

function writeLine(
  line: StatementLineData,
  statement: StatementData,
  owner: StatementOwner,
  kv: (key: string, value: string | undefined) => void,
  out: string[],
): void {
  const debit = line.direction === 'debit';
  const amount = formatAmount(line.amount);
  const ours = { name: owner.name, iinBin: owner.iinBin, iban: statement.account, bic: owner.bic, code: owner.code };
  // The counterparty's КБе/КОд only when known (the order the line executed, or a 1C file): never
  // guessed, since 1C books the operation with it. Unknown, the key is left out (ONEC-KZ.md).
  const theirs = line.counterparty;
  const payer = debit ? ours : theirs;
  const beneficiary = debit ? theirs : ours;
  const kind = line.kind === 'fee' ? 'Банковский ордер' : 'Платежное поручение';
  out.push(`СекцияДокумент=${kind}`);
  kv('ВидДокумента', kind);
  kv('НомерДокумента', line.documentNumber ?? line.bankLineId);
  kv('ДатаДокумента', isoToOnecDate(line.documentDate ?? line.bookingDate));
  kv('Сумма', amount);
  kv(debit ? 'СуммаРасход' : 'СуммаПриход', amount);
  kv('Валюта', line.currency);
  kv('ДатаОперации', isoToOnecDate(line.bookingDate));
  kv('ДатаВалютирования', isoToOnecDate(line.valueDate));
  // 1C matches its payment orders by the debit date and books receipts by the credit date.
  kv('ДатаСписано', debit ? isoToOnecDate(line.bookingDate) : '');
  kv('ДатаПоступило', debit ? '' : isoToOnecDate(line.bookingDate));
  for (const [prefix, party] of [
    ['Плательщик', payer],
    ['Получатель', beneficiary],
  ] as const) {
    kv(`${prefix}Наименование`, party.name);
    kv(`${prefix}БИН_ИИН`, party.iinBin);
    kv(`${prefix}ИИК`, party.iban);
    kv(`${prefix}БанкБИК`, party.bic);
    if (party.code) kv(`${prefix}КБЕ`, party.code);
  }
  kv('НазначениеПлатежа', line.purpose);
  if (line.knp !== undefined) kv('КодНазначенияПлатежа', line.knp);
  // ONEC-KZ.md: 1C-KZ's document attribute is КодБК and its key in the file was never seen (only
  // our own synthetic sample has КБК). Both, with one value: an import takes the key it knows and
  // skips the other, so a tax line keeps its КБК either way (our reader takes the pair as one).
  if (line.kbk !== undefined) {
    kv('КБК', line.kbk);
    kv('КодБК', line.kbk);
  }
  kv(EXT.bankLineId, line.bankLineId);
  if (line.bankReference !== undefined) kv(EXT.bankReference, line.bankReference);
  if (line.externalId !== undefined) kv(EXT.externalId, line.externalId);
  kv(EXT.kind, line.kind);
  kv(EXT.status, line.status);
  out.push('КонецДокумента');
}

/**
 * The Kazakh letters cp1251 has no place for, and the Russian letter each is written as there:
 * `ТОО «Казакстан Алемі»` is read by a person and found by 1C's search, `ТОО «?аза?стан ?лемі»`
 * is neither (і is in cp1251). Other characters cp1251 cannot hold are still "?".
 */
const KAZAKH_IN_CP1251: Readonly<Record<string, string>> = {
  ә: 'а', Ә: 'А', ғ: 'г', Ғ: 'Г', қ: 'к', Қ: 'К', ң: 'н', Ң: 'Н', ө: 'о', Ө: 'О', ұ: 'у', Ұ: 'У', ү: 'у', Ү: 'У', һ: 'х', Һ: 'Х',
};

const KAZAKH_LETTERS = new RegExp(`[${Object.keys(KAZAKH_IN_CP1251).join('')}]`, 'gu');

/** A 1C exchange text as bytes: `windows` = cp1251 (what 1C expects), `utf8` with a BOM. */
export function encodeOnecText(text: string, encoding: 'windows' | 'utf8', options: { continued?: boolean } = {}): Buffer {
  if (encoding === 'windows') return iconv.encode(text.replace(KAZAKH_LETTERS, (ch) => KAZAKH_IN_CP1251[ch]), 'cp1251');
  // The BOM opens the file only: a file written in parts encodes the later parts `continued`.
  return options.continued ? Buffer.from(text, 'utf8') : Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text, 'utf8')]);
}

/** The statement file in the configured encoding: `windows` = cp1251 (what 1C expects), `utf8` with a BOM. */
export function writeOnecStatement(statement: StatementData, options: OnecStatementWriteOptions): WrittenStatement {
  const text = renderOnecStatement(statement, options);
  const bytes = encodeOnecText(text, options.encoding);
  if (options.encoding === 'utf8') return { bytes, text, warnings: [] };
  const lost = lostInCp1251(text);
  const warnings = lost.length ? [`cp1251 cannot hold ${lost.join(' ')}: ${CP1251_LOSS}; use --encoding utf8 to keep them`] : [];
  return { bytes, text, warnings };
}

/** What becomes of the characters cp1251 cannot hold, for warnings and incidents. */
export const CP1251_LOSS = 'Kazakh letters are written as the nearest Russian ones (Қ as К, Ә as А), others as "?"';

/**
 * The characters of `text` that cp1251 cannot hold (written otherwise, KAZAKH_IN_CP1251): the Kazakh letters ә ғ қ ң ө ұ
 * ү һ і among them. Each distinct one once, in order of appearance; ASCII and Russian letters are
 * not looked at one by one.
 */
export function lostInCp1251(text: string): string[] {
  const lost = new Set<string>();
  const checked = new Set<string>();
  for (const [ch] of text.matchAll(/[^\t\n\r -~А-яЁё]/gu)) {
    if (checked.has(ch)) continue;
    checked.add(ch);
    if (iconv.decode(iconv.encode(ch, 'cp1251'), 'cp1251') !== ch) lost.add(ch);
  }
  return [...lost];
}
