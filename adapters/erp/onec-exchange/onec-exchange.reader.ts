import { open } from 'node:fs/promises';
import { MAX_AMOUNT, MoneyError, formatAmount, parseAmount } from '../../../connector/shared/money';
import { OnecLineDecoder, type LineIssue } from './onec-line.decoder';
import type { OnecBalance, OnecDocument, OnecEvent, OnecFileSummary, OnecHeader, OnecIssue, OnecOrder } from './onec-exchange.types';

/**
 * Streaming reader of 1CClientBankExchange files (ONEC-KZ.md "Grammar"): the header, balance
 * blocks `СекцияРасчСчет`..`КонецРасчСчет`, documents `СекцияДокумент=`..`КонецДокумента`, and
 * `КонецФайла`. Versions 1.01-1.03 and 2.0; the Kazakhstan and the Russian field sets.
 *
 * Liberal in what it reads (banks' files are the truth): keys are matched case-insensitively,
 * values kept verbatim, unknown keys kept in `raw`, CRLF or LF. Strict in what it reports: a
 * document that cannot be read faithfully (not closed, conflicting duplicate keys, garbage bytes,
 * a cut line, a missing or malformed number/date/amount) carries errors naming the line and the
 * field, and the documents around it still come through. It never throws on content.
 *
 * Memory is flat: bytes are decoded block by block and only the current document is held.
 */
export interface OnecReaderOptions {
  /** Named in every issue. */
  fileName?: string;
  /** A longer line is cut and reported (default 64 KiB). */
  maxLineBytes?: number;
  /** A document with more lines stops growing and is reported (default 5000). */
  maxDocumentLines?: number;
}

const KNOWN_VERSIONS = new Set(['1.01', '1.02', '1.03', '2.0', '2.00', '2.01', '2.02', '2.03']);
// Control characters (C0 and C1) and U+FFFD (bytes that do not exist in the code page) mean a damaged file.
// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uFFFD]/;
const DEFAULT_MAX_DOCUMENT_LINES = 5000;
const KEY_BUCKETS = 1024;
const MAX_CACHED_KEYS = 4096;

const lower = (s: string): string => s.toLowerCase();
const M = {
  exchange: lower('1CClientBankExchange'),
  docStart: lower('СекцияДокумент'),
  docEnd: lower('КонецДокумента'),
  balStart: lower('СекцияРасчСчет'),
  balEnd: lower('КонецРасчСчет'),
  fileEnd: lower('КонецФайла'),
};

/** The keys each order field is read from, first non-empty wins (KZ names first, then Russian). */
const K = (...keys: string[]): string[] => keys.map(lower);
const FIELD_KEYS = {
  number: K('НомерДокумента', 'Номер'),
  date: K('ДатаДокумента', 'Дата'),
  amount: K('Сумма', 'СуммаРасход', 'СуммаПриход'),
  currency: K('Валюта', 'КодВалюты'),
  'payer.name': K('ПлательщикНаименование', 'Плательщик1', 'Плательщик'),
  'payer.iinBin': K('ПлательщикБИН_ИИН', 'ПлательщикИИН_БИН', 'ПлательщикБИНИИН', 'ПлательщикБИН', 'ПлательщикИИН', 'ПлательщикИНН'),
  'payer.iban': K('ПлательщикИИК', 'ПлательщикСчет', 'ПлательщикРасчСчет'),
  'payer.bic': K('ПлательщикБанкБИК', 'ПлательщикБИК'),
  'payer.kod': K('ПлательщикКБЕ', 'ПлательщикКОд', 'КОд'),
  'beneficiary.name': K('ПолучательНаименование', 'Получатель1', 'Получатель'),
  'beneficiary.iinBin': K('ПолучательБИН_ИИН', 'ПолучательИИН_БИН', 'ПолучательБИНИИН', 'ПолучательБИН', 'ПолучательИИН', 'ПолучательИНН'),
  'beneficiary.iban': K('ПолучательИИК', 'ПолучательСчет', 'ПолучательРасчСчет'),
  'beneficiary.bic': K('ПолучательБанкБИК', 'ПолучательБИК'),
  'beneficiary.kbe': K('ПолучательКБЕ', 'КБе'),
  knp: K('КодНазначенияПлатежа', 'КНП', 'КодНазПлатежа'),
  purpose: K('НазначениеПлатежа'),
  kbk: K('КБК', 'КодБК', 'ПоказательКБК'),
  valueDate: K('ДатаВалютирования'),
} as const;
const PURPOSE_LINES = K('НазначениеПлатежа1', 'НазначениеПлатежа2', 'НазначениеПлатежа3', 'НазначениеПлатежа4', 'НазначениеПлатежа5', 'НазначениеПлатежа6');
const KEY_IN = lower('СуммаПриход');
const KEY_OUT = lower('СуммаРасход');
const KEY_SUM = lower('Сумма');
const KEY_OPERATION = lower('ДатаОперации');
const KEY_DEBITED = lower('ДатаСписано');
const KEY_CREDITED = lower('ДатаПоступило');
const STATEMENT_KEYS = K('СуммаПриход', 'СуммаРасход', 'ДатаСписано', 'ДатаПоступило', 'ДатаОперации');
const KZ_MARKERS = K('ПлательщикБИН_ИИН', 'ПолучательБИН_ИИН', 'ПлательщикИИК', 'ПолучательИИК', 'КодНазначенияПлатежа', 'ПлательщикКБЕ', 'ПолучательКБЕ');
const RU_MARKERS = K('ПлательщикИНН', 'ПолучательИНН', 'ПлательщикКПП', 'ПлательщикКорсчет', 'ПлательщикСчет', 'Плательщик1');

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const RU_DATE = /^(\d{1,2})\.(\d{1,2})\.(\d{4})$/;

/** `dd.mm.yyyy` (1C) or ISO to ISO; undefined when it is not a calendar date. */
export function onecDateToIso(text: string): string | undefined {
  let t = text;
  if (t.length !== 10 || t.charCodeAt(0) <= 32 || t.charCodeAt(9) <= 32) t = t.trim();
  let y: number;
  let m: number;
  let d: number;
  // Fast path for the form 1C writes (dd.mm.yyyy): no regex, no Date (millions of dates in a big file).
  if (t.length === 10 && t.charCodeAt(2) === 46 && t.charCodeAt(5) === 46) {
    d = digits(t, 0, 2);
    m = digits(t, 3, 5);
    y = digits(t, 6, 10);
  } else {
    let match = RU_DATE.exec(t);
    if (match) {
      d = Number(match[1]);
      m = Number(match[2]);
      y = Number(match[3]);
    } else {
      match = ISO_DATE.exec(t);
      if (!match) return undefined;
      y = Number(match[1]);
      m = Number(match[2]);
      d = Number(match[3]);
    }
  }
  // There is no year 0 (PostgreSQL refuses it): read as a date, it failed the whole batch's insert.
  if (y < 1 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return undefined;
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

/** The number written by t[from..to), or -1 when a character is not a digit. */
function digits(t: string, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i += 1) {
    const c = t.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    n = n * 10 + c;
  }
  return n;
}

function daysInMonth(y: number, m: number): number {
  if (m === 2) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28;
  return m === 4 || m === 6 || m === 9 || m === 11 ? 30 : 31;
}

/** `"Выписка"` -> `Выписка`: some banks quote the kind. */
function unquote(value: string): string {
  const v = value.trim();
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1).trim() : v;
}

export function isStatementKind(kind: string): boolean {
  const k = kind.toLowerCase().replace(/\s+/g, '');
  return k === 'выписка' || k === 'банковскийордер';
}

/**
 * The kinds that are payment orders (`Платежное поручение`, `ПлатежноеПоручение`, any case). The
 * 1C standard has others under the same grammar (`Платежное требование`, `Инкассовое поручение`,
 * `Денежный чек`, `Объявление на взнос наличными`, ...), whose parties and meaning differ: none of
 * them may be sent to the bank as a payment order. A bare `СекцияДокумент` (kind '') whose header
 * does not announce one kind is not known to be one either.
 */
export function isPaymentOrderKind(kind: string): boolean {
  // `Платёжное` (with ё) is the same word, as people and some configurations write it.
  return kind.toLowerCase().replace(/\s+/g, '').replace(/ё/g, 'е') === 'платежноепоручение';
}

/**
 * One lower-cased key: `stamp`/`entry` say which line of the current document holds it, so a
 * document is indexed by writing two fields per line instead of filling a Map.
 */
interface LkInfo {
  lk: string;
  stamp: number;
  entry: Entry | undefined;
}

interface KeyInfo {
  key: string;
  lk: string;
  li: LkInfo;
  /** Which grammar marker the key is (MARKER_*), computed once per distinct key. */
  marker: number;
}

const MARKER_NONE = 0;
const MARKER_DOC_START = 1;
const MARKER_BAL_START = 2;
const MARKER_DOC_END = 3;
const MARKER_BAL_END = 4;
const MARKER_FILE_END = 5;

function markerOf(lk: string): number {
  if (lk === M.docStart) return MARKER_DOC_START;
  if (lk === M.balStart) return MARKER_BAL_START;
  if (lk === M.docEnd) return MARKER_DOC_END;
  if (lk === M.balEnd) return MARKER_BAL_END;
  if (lk === M.fileEnd) return MARKER_FILE_END;
  return MARKER_NONE;
}

interface Entry {
  key: string;
  lk: string;
  li: LkInfo;
  value: string | undefined;
  line: number;
}

/** A line after КонецФайла that is more than whitespace and padding. */
// eslint-disable-next-line no-control-regex
const AFTER_END_CONTENT = /[^\s\0\x1a]/;

type State = 'start' | 'header' | 'between' | 'balance' | 'document' | 'ended' | 'rejected';

export class OnecExchangeParser {
  private readonly decoder: OnecLineDecoder;
  private readonly fileName?: string;
  private readonly maxDocumentLines: number;
  private state: State = 'start';
  private lineCount = 0;
  private readonly header: OnecHeader = { line: 0, accounts: [], documentKinds: [], raw: {} };
  private headerEmitted = false;
  private readonly fileErrors: OnecIssue[] = [];
  private readonly fileWarnings: OnecIssue[] = [];
  private complete = false;
  private documents = 0;
  private balances = 0;
  private sawBalance = false;
  private readonly statementAccounts = new Set<string>();
  private afterEndWarned = false;
  private decoderIssuesTaken = 0;
  // the open section
  private sectionLine = 0;
  private sectionKind = '';
  private entries: Entry[] = [];
  // The section's original text: slices of the decoder's blocks (no per-line copies).
  private textPieces: string[] = [];
  private segBlock: string | undefined;
  private segStart = 0;
  private segEnd = 0;
  private sectionIssues: OnecIssue[] = [];
  private sectionOverflow = false;
  private readonly keyBuckets: (KeyInfo[] | undefined)[] = new Array(KEY_BUCKETS);
  private keysCached = 0;
  private readonly lkInfos = new Map<string, LkInfo>();
  private readonly known: KnownKeys;
  private stamp = 0;

  /** Events produced by the current push/end. */
  private out: OnecEvent[] = [];

  constructor(options: OnecReaderOptions = {}) {
    this.decoder = new OnecLineDecoder((line, text, tooLong, byteLength) => this.onLine(line, text, tooLong, byteLength), { maxLineBytes: options.maxLineBytes });
    this.fileName = options.fileName;
    this.maxDocumentLines = options.maxDocumentLines ?? DEFAULT_MAX_DOCUMENT_LINES;
    const infos = (lks: readonly string[]): LkInfo[] => lks.map((lk) => this.lkInfo(lk));
    const fields = {} as Record<FieldName, LkInfo[]>;
    for (const f of Object.keys(FIELD_KEYS) as FieldName[]) fields[f] = infos(FIELD_KEYS[f]);
    this.known = {
      fields,
      purposeLines: infos(PURPOSE_LINES),
      in: this.lkInfo(KEY_IN),
      out: this.lkInfo(KEY_OUT),
      sum: this.lkInfo(KEY_SUM),
      operation: this.lkInfo(KEY_OPERATION),
      debited: this.lkInfo(KEY_DEBITED),
      credited: this.lkInfo(KEY_CREDITED),
      kz: infos(KZ_MARKERS),
      ru: infos(RU_MARKERS),
      statement: infos(STATEMENT_KEYS),
    };
  }

  /** True once the file proved not to be an exchange file: callers may stop reading. */
  get rejected(): boolean {
    return this.state === 'rejected';
  }

  push(chunk: Buffer): OnecEvent[] {
    if (this.state === 'rejected') return [];
    this.out = [];
    this.decoder.push(chunk);
    if (this.decoder.issues.length > this.decoderIssuesTaken) this.takeDecoderIssues();
    return this.out;
  }

  end(): OnecEvent[] {
    this.out = [];
    const out = this.out;
    if (this.state !== 'rejected') this.decoder.end();
    this.takeDecoderIssues();
    if (this.state === 'document') {
      this.sectionIssues.push(this.issue(this.lineCount, 'КонецДокумента', 'DOCUMENT_NOT_CLOSED', `Документ со строки ${this.sectionLine} не завершён строкой КонецДокумента: файл оборван; документ не принят`, `document at line ${this.sectionLine} has no КонецДокумента: the file is truncated`));
      out.push(this.finishDocument(false, this.lineCount));
    } else if (this.state === 'balance') {
      out.push(this.finishBalance(false, this.lineCount));
    }
    if (this.state === 'start') {
      this.fileErrors.push(this.issue(0, 'file', 'NOT_EXCHANGE_FILE', 'Файл пуст: это не файл обмена 1С (1CClientBankExchange)', 'the file is empty: not a 1CClientBankExchange file'));
    } else if (this.state !== 'rejected' && !this.complete) {
      this.fileWarnings.push(this.issue(this.lineCount, 'КонецФайла', 'FILE_NOT_COMPLETE', 'В файле нет строки КонецФайла: файл мог быть записан не полностью', 'no КонецФайла: the file may be incomplete'));
    }
    if (!this.headerEmitted && this.state !== 'rejected' && this.state !== 'start') this.emitHeader(out);
    const exchange = this.state !== 'rejected' && this.state !== 'start';
    const file: OnecFileSummary = {
      file: this.fileName,
      exchange,
      encoding: this.decoder.encoding,
      declaredEncoding: this.decoder.decision?.declared,
      complete: this.complete,
      lines: this.lineCount,
      bytes: this.decoder.bytes,
      documents: this.documents,
      balances: this.balances,
      errors: this.fileErrors,
      warnings: this.fileWarnings,
    };
    out.push({ type: 'end', file, header: this.header });
    return out;
  }

  private takeDecoderIssues(): void {
    const issues = this.decoder.issues;
    for (; this.decoderIssuesTaken < issues.length; this.decoderIssuesTaken += 1) {
      const i: LineIssue = issues[this.decoderIssuesTaken];
      this.fileWarnings.push(this.issue(i.line, i.line === 0 ? 'Кодировка' : 'line', i.code, i.message, i.messageEn));
    }
  }

  private issue(line: number, field: string, code: string, message: string, messageEn: string, key?: string): OnecIssue {
    const issue: OnecIssue = { line, field, code, message, messageEn };
    if (key !== undefined) issue.key = key;
    if (this.fileName !== undefined) issue.file = this.fileName;
    return issue;
  }

  /**
   * The key as first seen (one string instance per distinct key, so V8 reuses its internalized
   * form when the key becomes a property of `raw`) and its lower-case form for matching.
   */
  /**
   * The key of `text` (its first `n` characters). A small open hash on length and three
   * characters, compared in place: no hashing of a fresh string, no slice for a known key (a big
   * file has millions of lines and a few dozen distinct keys).
   */
  private keyInfo(text: string, n: number): KeyInfo {
    const h = n === 0 ? 0 : (n * 31 + text.charCodeAt(0) * 7 + text.charCodeAt(n - 1) * 13 + text.charCodeAt(n >> 1)) & (KEY_BUCKETS - 1);
    let bucket = this.keyBuckets[h];
    if (bucket !== undefined) {
      for (let i = 0; i < bucket.length; i += 1) {
        const k = bucket[i].key;
        if (k.length === n && text.startsWith(k)) return bucket[i];
      }
    }
    const key = n === text.length ? text : text.slice(0, n);
    const lk = key.toLowerCase();
    const info: KeyInfo = { key, lk, li: this.lkInfo(lk), marker: markerOf(lk) };
    // Bounded: a garbage file with millions of distinct "keys" must not grow the cache.
    if (this.keysCached < MAX_CACHED_KEYS) {
      if (bucket === undefined) bucket = this.keyBuckets[h] = [];
      bucket.push(info);
      this.keysCached += 1;
    }
    return info;
  }

  private lkInfo(lk: string): LkInfo {
    let li = this.lkInfos.get(lk);
    if (li === undefined) {
      li = { lk, stamp: 0, entry: undefined };
      // Bounded like the key cache; an unregistered key still works, only without duplicate detection.
      if (this.lkInfos.size < MAX_CACHED_KEYS) this.lkInfos.set(lk, li);
    }
    return li;
  }

  private onLine(lineNo: number, text: string, tooLong: boolean, byteLength: number): void {
    const state = this.state;
    if (state === 'rejected') return;
    const out = this.out;
    this.lineCount = lineNo;
    if (state === 'start') {
      const t = text.trim();
      if (t === '') return;
      if (t.toLowerCase() !== M.exchange) {
        this.state = 'rejected';
        this.fileErrors.push(this.issue(lineNo, 'file', 'NOT_EXCHANGE_FILE', 'Это не файл обмена 1С: первая строка должна быть 1CClientBankExchange', 'not a 1CClientBankExchange file: its first non-empty line must be 1CClientBankExchange'));
        return;
      }
      this.state = 'header';
      this.header.line = lineNo;
      return;
    }
    if (state === 'ended') {
      // Blank lines and padding (NUL, DOS end-of-file Ctrl-Z) after the end are nothing; any other
      // line is content the file does not read, e.g. a second export appended to the first.
      if (!this.afterEndWarned && AFTER_END_CONTENT.test(text)) {
        this.afterEndWarned = true;
        this.fileWarnings.push(this.issue(lineNo, 'КонецФайла', 'CONTENT_AFTER_END', `После КонецФайла есть строки (с ${lineNo}); они не прочитаны`, `lines after КонецФайла (from ${lineNo}) are ignored`));
      }
      return;
    }
    const inSection = state === 'document' || state === 'balance';
    if (tooLong) {
      if (inSection && !this.sectionOverflow) this.textAdd(text);
      const eq = text.indexOf('=');
      const key = eq > 0 ? text.slice(0, eq).trim() : 'line';
      const issue = this.issue(lineNo, key, 'LINE_TOO_LONG', `Строка ${lineNo} слишком длинная (${byteLength} байт, допустимо ${this.decoder.maxLineBytes}); значение не прочитано`, `line ${lineNo} is ${byteLength} bytes, over the ${this.decoder.maxLineBytes} limit`, eq > 0 ? key : undefined);
      if (inSection) this.sectionIssues.push(issue);
      else this.fileErrors.push(issue);
      return;
    }
    if (text.length === 0) {
      if (inSection && !this.sectionOverflow) this.textAdd(text);
      return;
    }
    const eq = text.indexOf('=');
    const keyEnd = eq < 0 ? text.length : eq;
    let info: KeyInfo;
    if (keyEnd > 0 && text.charCodeAt(0) > 32 && text.charCodeAt(keyEnd - 1) > 32) {
      info = this.keyInfo(text, keyEnd);
    } else {
      const trimmed = text.slice(0, keyEnd).trim();
      if (trimmed === '' && eq < 0) {
        if (inSection && !this.sectionOverflow) this.textAdd(text);
        return; // blank line with spaces
      }
      info = this.keyInfo(trimmed, trimmed.length);
    }
    const key = info.key;
    const lk = info.lk;
    const value = eq < 0 ? undefined : text.slice(eq + 1);

    const marker = info.marker;
    if (marker === MARKER_DOC_START) {
      this.closeOpenSection(lineNo, out, 'СекцияДокумент');
      if (!this.headerEmitted) this.emitHeader(out);
      this.openSection('document', lineNo, text, value === undefined ? '' : unquote(value));
      return;
    }
    if (marker === MARKER_BAL_START) {
      this.closeOpenSection(lineNo, out, 'СекцияРасчСчет');
      if (!this.headerEmitted) this.emitHeader(out);
      this.openSection('balance', lineNo, text, '');
      this.sawBalance = true;
      return;
    }
    if (marker === MARKER_DOC_END) {
      if (state === 'document') {
        this.textAdd(text);
        out.push(this.finishDocument(true, lineNo));
      }
      else this.fileWarnings.push(this.issue(lineNo, 'КонецДокумента', 'STRAY_END', `Строка ${lineNo}: КонецДокумента без начала документа`, `line ${lineNo}: КонецДокумента outside a document`));
      return;
    }
    if (marker === MARKER_BAL_END) {
      if (state === 'balance') {
        this.textAdd(text);
        out.push(this.finishBalance(true, lineNo));
      }
      else this.fileWarnings.push(this.issue(lineNo, 'КонецРасчСчет', 'STRAY_END', `Строка ${lineNo}: КонецРасчСчет без СекцияРасчСчет`, `line ${lineNo}: КонецРасчСчет outside a balance block`));
      return;
    }
    if (marker === MARKER_FILE_END) {
      this.closeOpenSection(lineNo, out, 'КонецФайла');
      if (!this.headerEmitted) this.emitHeader(out);
      this.complete = true;
      this.state = 'ended';
      return;
    }
    if (inSection) {
      if (this.entries.length >= this.maxDocumentLines) {
        if (!this.sectionOverflow) {
          this.sectionOverflow = true;
          this.sectionIssues.push(this.issue(lineNo, 'line', 'DOCUMENT_TOO_LARGE', `Раздел со строки ${this.sectionLine} длиннее ${this.maxDocumentLines} строк: вероятно, пропущен КонецДокумента`, `section at line ${this.sectionLine} exceeds ${this.maxDocumentLines} lines`));
        }
        return;
      }
      this.textAdd(text);
      this.entries.push({ key, lk, li: info.li, value, line: lineNo });
      return;
    }
    // header (or stray lines between sections)
    if (value === undefined) {
      this.fileWarnings.push(this.issue(lineNo, 'line', 'MALFORMED_LINE', `Строка ${lineNo} не вида Ключ=Значение; пропущена`, `line ${lineNo} is not Key=Value; skipped`));
      return;
    }
    if (state === 'between') {
      this.fileWarnings.push(this.issue(lineNo, key, 'LINE_OUTSIDE_SECTION', `Строка ${lineNo} (${key}) вне документа; пропущена`, `line ${lineNo} (${key}) is outside any section; skipped`, key));
      return;
    }
    this.headerKey(key, lk, value, lineNo);
  }

  private headerKey(key: string, lk: string, value: string, line: number): void {
    const h = this.header;
    const v = value.trim();
    if (BAD_CHARS.test(value)) this.fileWarnings.push(this.issue(line, key, 'BAD_CHARACTERS', `Строка ${line} (${key}): недопустимые символы`, `line ${line} (${key}): control or undecodable characters`, key));
    if (lk === 'расчсчет') {
      h.accounts.push(v);
      this.statementAccounts.add(v);
    } else if (lk === 'документ') h.documentKinds.push(unquote(v));
    else if (lk === 'версияформата') {
      h.formatVersion = v;
      if (!KNOWN_VERSIONS.has(v)) this.fileWarnings.push(this.issue(line, key, 'UNKNOWN_VERSION', `Версия формата ${v} не известна; файл прочитан как 1.03`, `format version ${v} is unknown; read as 1.03`, key));
    } else if (lk === 'кодировка') h.declaredEncoding = v;
    else if (lk === 'отправитель') h.sender = v;
    else if (lk === 'получатель') h.recipient = v;
    else if (lk === 'датасоздания') h.createdDate = onecDateToIso(v) ?? v;
    else if (lk === 'времясоздания') h.createdTime = v;
    else if (lk === 'датаначала') h.dateFrom = onecDateToIso(v) ?? v;
    else if (lk === 'датаконца') h.dateTo = onecDateToIso(v) ?? v;
    if (!(key in h.raw)) h.raw[key] = value;
  }

  private emitHeader(out: OnecEvent[]): void {
    this.headerEmitted = true;
    out.push({ type: 'header', header: this.header });
  }

  private openSection(state: 'document' | 'balance', line: number, text: string, kind: string): void {
    this.state = state;
    this.sectionLine = line;
    this.sectionKind = kind;
    this.entries = [];
    this.textPieces = [];
    this.segBlock = undefined;
    this.textAdd(text);
    this.sectionIssues = [];
    this.sectionOverflow = false;
  }

  /** Adds the current line to the section's text: extends the slice of the current block when it can. */
  private textAdd(text: string): void {
    const block = this.decoder.blockText;
    if (block !== undefined && block === this.segBlock) {
      this.segEnd = this.decoder.lineEnd;
      return;
    }
    if (this.segBlock !== undefined) this.textPieces.push(this.segBlock.slice(this.segStart, this.segEnd));
    if (block === undefined) {
      // a cut line: only its head is known
      this.textPieces.push(`${text}\r\n`);
      this.segBlock = undefined;
    } else {
      this.segBlock = block;
      this.segStart = this.decoder.lineStart;
      this.segEnd = this.decoder.lineEnd;
    }
  }

  /** The section's original text, line breaks as in the file, without the last one. */
  private textValue(): string {
    const tail = this.segBlock !== undefined ? this.segBlock.slice(this.segStart, this.segEnd) : '';
    let t = this.textPieces.length > 0 ? this.textPieces.join('') + tail : tail;
    if (t.endsWith('\n')) t = t.slice(0, t.endsWith('\r\n') ? -2 : -1);
    return t;
  }

  /** A new section (or the file's end) while one is open: the open one was never closed. */
  private closeOpenSection(line: number, out: OnecEvent[], by: string): void {
    if (this.state === 'document') {
      this.sectionIssues.push(this.issue(line, 'КонецДокумента', 'DOCUMENT_NOT_CLOSED', `Документ со строки ${this.sectionLine} не завершён строкой КонецДокумента (в строке ${line} уже ${by}); документ не принят`, `document at line ${this.sectionLine} is not closed by КонецДокумента before ${by} at line ${line}`));
      out.push(this.finishDocument(false, line - 1));
    } else if (this.state === 'balance') {
      out.push(this.finishBalance(false, line - 1));
    }
  }

  private finishBalance(closed: boolean, endLine: number): OnecEvent {
    const raw: Record<string, string> = {};
    const errors = this.sectionIssues;
    const byKey = new Map<string, Entry>();
    for (const e of this.entries) {
      if (e.value === undefined) {
        errors.push(this.issue(e.line, 'line', 'MALFORMED_LINE', `Строка ${e.line} не вида Ключ=Значение`, `line ${e.line} is not Key=Value`));
        continue;
      }
      if (!(e.key in raw)) raw[e.key] = e.value;
      if (!byKey.has(e.lk)) byKey.set(e.lk, e);
    }
    if (!closed) errors.push(this.issue(endLine, 'КонецРасчСчет', 'BALANCE_NOT_CLOSED', `Блок остатков со строки ${this.sectionLine} не завершён строкой КонецРасчСчет`, `balance block at line ${this.sectionLine} has no КонецРасчСчет`));
    const amount = (name: string): string | undefined => {
      const e = byKey.get(lower(name));
      if (!e || e.value === undefined || e.value.trim() === '') return undefined;
      const parsed = parseSignedAmount(e.value);
      if (parsed === undefined) {
        errors.push(this.issue(e.line, name, 'BAD_AMOUNT', `Строка ${e.line}: ${name}=«${e.value.trim()}» не является суммой`, `line ${e.line}: ${name} "${e.value.trim()}" is not an amount`, e.key));
      }
      return parsed;
    };
    const date = (name: string): string | undefined => {
      const e = byKey.get(lower(name));
      if (!e || e.value === undefined || e.value.trim() === '') return undefined;
      return onecDateToIso(e.value) ?? e.value.trim();
    };
    const account = (byKey.get(lower('РасчСчет'))?.value ?? '').trim();
    if (account) this.statementAccounts.add(account);
    const balance: OnecBalance = {
      line: this.sectionLine,
      endLine,
      closed,
      account,
      dateFrom: date('ДатаНачала'),
      dateTo: date('ДатаКонца'),
      opening: amount('НачальныйОстаток'),
      totalIn: amount('ВсегоПоступило'),
      totalOut: amount('ВсегоСписано'),
      closing: amount('КонечныйОстаток'),
      raw,
      errors,
    };
    this.balances += 1;
    this.state = 'between';
    return { type: 'balance', balance };
  }

  /** A bare `СекцияДокумент` takes its kind from the header's `Документ=` when that names one kind. */
  private announcedKind(): string {
    const kinds = new Set(this.header.documentKinds);
    return kinds.size === 1 ? [...kinds][0] : '';
  }

  private finishDocument(closed: boolean, endLine: number): OnecEvent {
    const document = buildDocument({
      line: this.sectionLine,
      endLine,
      closed,
      kind: this.sectionKind || this.announcedKind(),
      kindWritten: this.sectionKind !== '',
      entries: this.entries,
      known: this.known,
      stamp: ++this.stamp,
      text: this.textValue(),
      issues: this.sectionIssues,
      statementFile: this.sawBalance,
      accounts: this.statementAccounts,
      makeIssue: (line, field, code, ru, en, key) => this.issue(line, field, code, ru, en, key),
    });
    if (this.fileName !== undefined) document.file = this.fileName;
    this.documents += 1;
    this.state = 'between';
    this.entries = [];
    this.textPieces = [];
    this.segBlock = undefined;
    return { type: 'document', document };
  }
}

/** An amount as written in 1C (`150000.00`, `175000`, `-5.10` for a balance) normalised to 2 places. */
function parseSignedAmount(text: string): string | undefined {
  let t = text.trim();
  let sign = '';
  if (t.startsWith('-')) {
    sign = '-';
    t = t.slice(1);
  }
  try {
    return sign + formatAmount(parseAmount(t));
  } catch (err) {
    if (err instanceof MoneyError) return undefined;
    throw err;
  }
}

/** `0`, `0.00`, `-0.00`: an amount that moves nothing (a malformed one is not zero: its own rule reports it). */
function isZeroAmount(text: string): boolean {
  const parsed = parseSignedAmount(text);
  return parsed === '0.00' || parsed === '-0.00';
}

type FieldName = keyof typeof FIELD_KEYS;

/** The fields whose alias keys must agree when several are written (see buildDocument). */
const ALIAS_CHECKED: readonly FieldName[] = (Object.keys(FIELD_KEYS) as FieldName[]).filter(
  (f) => FIELD_KEYS[f].length > 1 && f !== 'amount' && f !== 'currency' && f !== 'payer.name' && f !== 'beneficiary.name',
);

/**
 * Alias keys that may differ from the others of their field: in the Russian variant, with indirect
 * settlements, `ПлательщикРасчСчет`/`ПолучательРасчСчет` hold the settlement account beside the
 * party's own `...Счет` (and such documents are not KZ payments anyway).
 */
const ALIAS_UNCHECKED_KEYS: ReadonlySet<string> = new Set(K('ПлательщикРасчСчет', 'ПолучательРасчСчет'));

/** Two values of one field agree: dates as dates (`05.03.2025` and `5.3.2025`), the rest as written. */
function sameValue(field: FieldName, a: string, b: string): boolean {
  if (a === b) return true;
  if (field === 'date' || field === 'valueDate') {
    const isoA = onecDateToIso(a);
    return isoA !== undefined && isoA === onecDateToIso(b);
  }
  return false;
}

/** `trim()` only when there is something to trim (most 1C values have no surrounding spaces). */
function trimmed(v: string): string {
  const n = v.length;
  return n === 0 || (v.charCodeAt(0) > 32 && v.charCodeAt(n - 1) > 32) ? v : v.trim();
}

interface KnownKeys {
  fields: Record<FieldName, LkInfo[]>;
  purposeLines: LkInfo[];
  in: LkInfo;
  out: LkInfo;
  sum: LkInfo;
  operation: LkInfo;
  debited: LkInfo;
  credited: LkInfo;
  kz: LkInfo[];
  ru: LkInfo[];
  statement: LkInfo[];
}

interface BuildInput {
  line: number;
  endLine: number;
  closed: boolean;
  kind: string;
  kindWritten: boolean;
  entries: Entry[];
  known: KnownKeys;
  stamp: number;
  text: string;
  issues: OnecIssue[];
  statementFile: boolean;
  accounts: ReadonlySet<string>;
  makeIssue: (line: number, field: string, code: string, ru: string, en: string, key?: string) => OnecIssue;
}

/** Normalises one document's key/value lines into the order shape, with its structural issues. */
function buildDocument(input: BuildInput): OnecDocument {
  const { entries, makeIssue } = input;
  const errors: OnecIssue[] = [...input.issues];
  const warnings: OnecIssue[] = [];
  const { known, stamp } = input;
  const get = (li: LkInfo): Entry | undefined => (li.stamp === stamp ? li.entry : undefined);
  // One scan of the whole text; the lines are looked at only when it finds something.
  const suspect = BAD_CHARS.test(input.text);
  for (let i = 0; i < entries.length; i += 1) {
    const e = entries[i];
    if (e.value === undefined) {
      errors.push(makeIssue(e.line, 'line', 'MALFORMED_LINE', `Строка ${e.line} («${e.key.slice(0, 40)}») не вида Ключ=Значение; документ не принят`, `line ${e.line} is not Key=Value`));
      continue;
    }
    if (suspect && (BAD_CHARS.test(e.key) || BAD_CHARS.test(e.value))) {
      errors.push(makeIssue(e.line, e.key, 'BAD_CHARACTERS', `Строка ${e.line} (${e.key}): недопустимые символы — файл повреждён или в другой кодировке`, `line ${e.line} (${e.key}): control or undecodable characters`, e.key));
    }
    const li = e.li;
    const prior = li.stamp === stamp ? li.entry : undefined;
    if (prior) {
      if (prior.value !== e.value) {
        errors.push(makeIssue(e.line, e.key, 'DUPLICATE_KEY', `Строка ${e.line}: ключ ${e.key} повторяется (строка ${prior.line}) с другим значением; неясно, какое верно`, `line ${e.line}: key ${e.key} repeats line ${prior.line} with another value`, e.key));
      } else {
        warnings.push(makeIssue(e.line, e.key, 'DUPLICATE_KEY', `Строка ${e.line}: ключ ${e.key} повторяется (строка ${prior.line}) с тем же значением`, `line ${e.line}: key ${e.key} repeats line ${prior.line} with the same value`, e.key));
      }
      continue;
    }
    li.stamp = stamp;
    li.entry = e;
  }
  if (!input.kindWritten) {
    warnings.push(makeIssue(input.line, 'СекцияДокумент', 'MISSING_KIND', `Строка ${input.line}: у СекцияДокумент не указан вид документа`, `line ${input.line}: СекцияДокумент has no kind`, 'СекцияДокумент'));
  }

  // Two keys for one field (ПолучательИИК and ПолучательСчет, ПолучательБанкБИК and ПолучательБИК,
  // КодНазначенияПлатежа and КНП) with different values: taking the first silently could pay an
  // account, bank or purpose code the 1C user never saw chosen. The document is refused naming
  // both lines. Not for the amount (Сумма beside СуммаРасход/СуммаПриход has its own rule,
  // AMOUNT_CONFLICT) nor the names (the Russian variant writes `Плательщик` as "ИНН ... name"
  // beside `Плательщик1`, the name alone) nor the currency (`Валюта=KZT` beside `КодВалюты=398`).
  for (const field of ALIAS_CHECKED) {
    let first: { e: Entry; v: string } | undefined;
    for (const li of known.fields[field]) {
      const e = get(li);
      if (e === undefined || e.value === undefined || ALIAS_UNCHECKED_KEYS.has(e.lk)) continue;
      const v = trimmed(e.value);
      if (v === '') continue;
      if (first === undefined) first = { e, v };
      else if (!sameValue(field, first.v, v)) {
        errors.push(
          makeIssue(
            e.line,
            field,
            'CONFLICTING_KEYS',
            `Строка ${e.line}: ${e.key}=«${v}» не совпадает с ${first.e.key}=«${first.v}» (строка ${first.e.line}); это одно поле документа, неясно, какое значение верно — оставьте один ключ`,
            `line ${e.line}: ${e.key} "${v}" differs from ${first.e.key} "${first.v}" (line ${first.e.line}); both give ${field}, which one is meant is unknown`,
            e.key,
          ),
        );
        break;
      }
    }
  }

  const sources: Record<string, { key: string; line: number }> = {};
  // The first non-empty value; with `unless`, the first that is not `unless`, else the first non-empty.
  const pick = (field: FieldName, unless?: (value: string) => boolean): string => {
    const candidates = known.fields[field];
    let first: { e: Entry; v: string } | undefined;
    for (let i = 0; i < candidates.length; i += 1) {
      const e = get(candidates[i]);
      if (e !== undefined && e.value !== undefined) {
        const v = trimmed(e.value);
        if (v === '') continue;
        first ??= { e, v };
        if (unless?.(v)) continue;
        sources[field] = e; // an Entry is a {key, line}
        return v;
      }
    }
    if (first) sources[field] = first.e;
    return first?.v ?? '';
  };
  let variant: 'kz' | 'ru' = 'kz';
  if (!known.kz.some((k) => get(k)) && known.ru.some((k) => get(k))) variant = 'ru';

  const number = pick('number');
  if (!number) errors.push(makeIssue(input.line, 'number', 'MISSING_FIELD', 'Нет номера документа (НомерДокумента)', 'no document number (НомерДокумента)', 'НомерДокумента'));
  const dateText = pick('date');
  let date = '';
  if (!dateText) errors.push(makeIssue(input.line, 'date', 'MISSING_FIELD', 'Нет даты документа (ДатаДокумента)', 'no document date (ДатаДокумента)', 'ДатаДокумента'));
  else {
    date = onecDateToIso(dateText) ?? '';
    if (!date) errors.push(makeIssue(sources.date.line, 'date', 'BAD_DATE', `Строка ${sources.date.line}: дата «${dateText}» не вида ДД.ММ.ГГГГ`, `line ${sources.date.line}: date "${dateText}" is not dd.mm.yyyy`, sources.date.key));
  }
  // Without Сумма, a statement line's amount is the side that moved: `СуммаРасход=0.00` beside
  // `СуммаПриход=5000.00` is a credit of 5000.00, not of 0.00.
  const amountText = pick('amount', isZeroAmount);
  let amount = '';
  if (!amountText) errors.push(makeIssue(input.line, 'amount', 'MISSING_FIELD', 'Нет суммы документа (Сумма)', 'no amount (Сумма)', 'Сумма'));
  else {
    try {
      amount = formatAmount(parseAmount(amountText));
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
      const at = sources.amount.line;
      if (err.rule === 'too_large') {
        errors.push(makeIssue(at, 'amount', 'BAD_AMOUNT', `Строка ${at}: сумма «${amountText}» больше наибольшей допустимой (${MAX_AMOUNT})`, `line ${at}: amount "${amountText}" exceeds the largest amount ${MAX_AMOUNT}`, sources.amount.key));
      } else {
        errors.push(makeIssue(at, 'amount', 'BAD_AMOUNT', `Строка ${at}: сумма «${amountText}» записана неверно (нужны цифры, точка и не более 2 знаков, например 7745.70)`, `line ${at}: amount "${amountText}" is not a decimal with at most 2 places`, sources.amount.key));
      }
    }
  }
  // A statement line may carry Сумма and СуммаРасход/СуммаПриход (BCC writes both): they must agree.
  const inE = get(known.in);
  const outE = get(known.out);
  const sumE = get(known.sum);
  for (const side of [inE, outE]) {
    if (amount && side && sumE && side.value?.trim() && sumE.value?.trim() && parseSignedAmount(side.value) !== parseSignedAmount(sumE.value)) {
      warnings.push(makeIssue(side.line, 'amount', 'AMOUNT_CONFLICT', `Строка ${side.line}: ${side.key}=${side.value.trim()} не совпадает с Сумма=${sumE.value.trim()}`, `line ${side.line}: ${side.key} ${side.value.trim()} differs from Сумма ${sumE.value.trim()}`, side.key));
    }
  }

  let purpose = pick('purpose');
  if (!purpose) {
    const parts: string[] = [];
    for (const k of known.purposeLines) {
      const e = get(k);
      if (e && e.value && e.value.trim()) {
        parts.push(e.value.trim());
        sources.purpose ??= { key: e.key, line: e.line };
      }
    }
    purpose = parts.join(' ');
  }
  const valueText = pick('valueDate');
  let valueDate: string | undefined;
  if (valueText) {
    valueDate = onecDateToIso(valueText);
    if (!valueDate) errors.push(makeIssue(sources.valueDate.line, 'valueDate', 'BAD_DATE', `Строка ${sources.valueDate.line}: дата валютирования «${valueText}» не вида ДД.ММ.ГГГГ`, `line ${sources.valueDate.line}: value date "${valueText}" is not dd.mm.yyyy`, sources.valueDate.key));
  }
  // A statement is told by its kind, by the file's balance block, or by keys only a bank writes
  // (the debit/credit dates and amounts): the last makes each line self-describing.
  // An empty `ДатаСписано=` (some configurations write the bank's keys empty into an order) tells nothing.
  const statement = isStatementKind(input.kind) || input.statementFile || known.statement.some((k) => !!get(k)?.value?.trim());
  const order: OnecOrder = new ReadOrder(entries, {
    number,
    date,
    amount: amount || amountText,
    currency: pick('currency') || (variant === 'ru' ? 'RUB' : 'KZT'),
    payer: { name: pick('payer.name'), iinBin: pick('payer.iinBin'), iban: pick('payer.iban'), bic: pick('payer.bic'), kod: pick('payer.kod') },
    beneficiary: { name: pick('beneficiary.name'), iinBin: pick('beneficiary.iinBin'), iban: pick('beneficiary.iban'), bic: pick('beneficiary.bic'), kbe: pick('beneficiary.kbe') },
    knp: pick('knp'),
    purpose,
  });
  const kbk = pick('kbk');
  if (kbk) order.kbk = kbk;
  if (valueDate) order.valueDate = valueDate;

  const doc: OnecDocument = {
    line: input.line,
    endLine: input.endLine,
    kind: input.kind,
    statement,
    variant,
    closed: input.closed,
    text: input.text,
    order,
    sources,
    errors,
    warnings,
  };
  const dateOf = (li: LkInfo): string | undefined => {
    const e = get(li);
    if (!e || !e.value || !e.value.trim()) return undefined;
    const iso = onecDateToIso(e.value);
    if (!iso) warnings.push(makeIssue(e.line, e.key, 'BAD_DATE', `Строка ${e.line}: дата «${e.value.trim()}» не вида ДД.ММ.ГГГГ`, `line ${e.line}: date "${e.value.trim()}" is not dd.mm.yyyy`, e.key));
    return iso;
  };
  doc.operationDate = dateOf(known.operation);
  doc.debitedDate = dateOf(known.debited);
  doc.creditedDate = dateOf(known.credited);
  if (statement) {
    // Which way the money went for the statement's own account.
    // Which side moved money decides; a side written as 0.00 only when neither did.
    const written = (e: Entry | undefined): e is Entry & { value: string } => !!e?.value?.trim();
    if (written(inE) && !isZeroAmount(inE.value)) order.direction = 'in';
    else if (written(outE) && !isZeroAmount(outE.value)) order.direction = 'out';
    else if (written(inE)) order.direction = 'in';
    else if (written(outE)) order.direction = 'out';
    else if (doc.creditedDate && !doc.debitedDate) order.direction = 'in';
    else if (doc.debitedDate && !doc.creditedDate) order.direction = 'out';
    else if (input.accounts.has(order.payer.iban)) order.direction = 'out';
    else if (input.accounts.has(order.beneficiary.iban)) order.direction = 'in';
  }
  return doc;
}

type OrderFields = Omit<OnecOrder, 'raw' | 'kbk' | 'valueDate' | 'direction' | 'erpDocumentId'>;

/**
 * The order read from a document. `raw` (every key as written, first occurrence) is built on
 * first use from the document's lines: most consumers never read it, and building a 25..60-key
 * object for each document of a 200 MB file costs a fifth of the parse. `toJSON` includes it.
 */
class ReadOrder implements OnecOrder {
  number: string;
  date: string;
  amount: string;
  currency: string;
  payer: OnecOrder['payer'];
  beneficiary: OnecOrder['beneficiary'];
  knp: string;
  purpose: string;
  declare kbk?: string;
  declare valueDate?: string;
  declare direction?: 'in' | 'out';
  declare erpDocumentId?: string;
  readonly #entries: readonly Entry[];
  #raw: Record<string, string> | undefined;

  constructor(entries: readonly Entry[], fields: OrderFields) {
    this.#entries = entries;
    this.number = fields.number;
    this.date = fields.date;
    this.amount = fields.amount;
    this.currency = fields.currency;
    this.payer = fields.payer;
    this.beneficiary = fields.beneficiary;
    this.knp = fields.knp;
    this.purpose = fields.purpose;
  }

  get raw(): Record<string, string> {
    if (this.#raw === undefined) {
      const raw: Record<string, string> = {};
      const seen = new Set<string>();
      for (const e of this.#entries) {
        if (e.value === undefined || seen.has(e.lk)) continue;
        seen.add(e.lk);
        raw[e.key] = e.value;
      }
      this.#raw = raw;
    }
    return this.#raw;
  }

  set raw(value: Record<string, string>) {
    this.#raw = value;
  }

  toJSON(): OnecOrder {
    return { ...this, raw: this.raw };
  }
}

/**
 * Reads a stream of bytes and yields header, balance blocks and documents one by one, then `end`.
 * Chunks are handed to the parser in slices of at most 64 KiB: the decoded block strings (which
 * the documents' texts are slices of) stay small, so the live set, and RSS, stay flat.
 */
export async function* readOnecExchange(source: AsyncIterable<Buffer | string>, options: OnecReaderOptions = {}): AsyncGenerator<OnecEvent> {
  const parser = new OnecExchangeParser(options);
  for await (const chunk of source) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let at = 0; at < bytes.length; at += PUSH_BYTES) {
      const events = parser.push(at === 0 && bytes.length <= PUSH_BYTES ? bytes : bytes.subarray(at, at + PUSH_BYTES));
      for (let i = 0; i < events.length; i += 1) yield events[i];
      if (parser.rejected) break;
    }
    if (parser.rejected) break;
  }
  for (const e of parser.end()) yield e;
}

const PUSH_BYTES = 64 * 1024;

/**
 * Streams a file from disk: 256 KiB reads straight into the parser (no stream machinery between),
 * pushed in 64 KiB slices. I/O errors (missing file, no permission) are thrown.
 */
export async function* readOnecExchangeFile(path: string, options: OnecReaderOptions = {}): AsyncGenerator<OnecEvent> {
  const handle = await open(path, 'r');
  try {
    const parser = new OnecExchangeParser({ fileName: path, ...options });
    while (!parser.rejected) {
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      const { bytesRead } = await handle.read(buffer, 0, READ_BYTES, null);
      if (bytesRead === 0) break;
      for (let at = 0; at < bytesRead && !parser.rejected; at += PUSH_BYTES) {
        const events = parser.push(buffer.subarray(at, Math.min(bytesRead, at + PUSH_BYTES)));
        for (let i = 0; i < events.length; i += 1) yield events[i];
      }
    }
    for (const e of parser.end()) yield e;
  } finally {
    await handle.close();
  }
}

const READ_BYTES = 256 * 1024;

export interface ParsedOnecFile {
  header: OnecHeader;
  balances: OnecBalance[];
  documents: OnecDocument[];
  file: OnecFileSummary;
}

/** The whole file at once, for small files and tests. */
export function parseOnecExchange(bytes: Buffer, options: OnecReaderOptions = {}): ParsedOnecFile {
  const parser = new OnecExchangeParser(options);
  const events = [...parser.push(bytes), ...parser.end()];
  const balances: OnecBalance[] = [];
  const documents: OnecDocument[] = [];
  let end: Extract<OnecEvent, { type: 'end' }> | undefined;
  for (const e of events) {
    if (e.type === 'balance') balances.push(e.balance);
    else if (e.type === 'document') documents.push(e.document);
    else if (e.type === 'end') end = e;
  }
  const last = end as Extract<OnecEvent, { type: 'end' }>;
  return { header: last.header, balances, documents, file: last.file };
}
