import { createReadStream } from 'node:fs';
import { MoneyError, formatAmount, parseAmount } from '../../../connector/shared/money';
import { OnecLineDecoder, type DecodedLine, type LineIssue } from './onec-line.decoder';
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
// Control characters and U+FFFD (bytes that do not exist in the code page) mean a damaged file.
// eslint-disable-next-line no-control-regex
const BAD_CHARS = /[\x00-\x08\x0B\x0C\x0E-\x1F\x7F\uFFFD]/;
const DEFAULT_MAX_DOCUMENT_LINES = 5000;

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
  const t = text.trim();
  let y: number;
  let m: number;
  let d: number;
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
  const date = new Date(Date.UTC(y, m - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== m - 1 || date.getUTCDate() !== d) return undefined;
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
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

interface Entry {
  key: string;
  lk: string;
  value: string | undefined;
  line: number;
}

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
  private textLines: string[] = [];
  private sectionIssues: OnecIssue[] = [];
  private sectionOverflow = false;
  private readonly keyCache = new Map<string, string>();

  constructor(options: OnecReaderOptions = {}) {
    this.decoder = new OnecLineDecoder({ maxLineBytes: options.maxLineBytes });
    this.fileName = options.fileName;
    this.maxDocumentLines = options.maxDocumentLines ?? DEFAULT_MAX_DOCUMENT_LINES;
  }

  /** True once the file proved not to be an exchange file: callers may stop reading. */
  get rejected(): boolean {
    return this.state === 'rejected';
  }

  push(chunk: Buffer): OnecEvent[] {
    if (this.state === 'rejected') return [];
    const out: OnecEvent[] = [];
    this.onLines(this.decoder.push(chunk), out);
    return out;
  }

  end(): OnecEvent[] {
    const out: OnecEvent[] = [];
    if (this.state !== 'rejected') this.onLines(this.decoder.end(), out);
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

  private lowerKey(key: string): string {
    let lk = this.keyCache.get(key);
    if (lk === undefined) {
      lk = key.toLowerCase();
      if (this.keyCache.size < 4096) this.keyCache.set(key, lk);
    }
    return lk;
  }

  private onLines(lines: DecodedLine[], out: OnecEvent[]): void {
    if (this.decoder.issues.length > this.decoderIssuesTaken) this.takeDecoderIssues();
    for (let i = 0; i < lines.length; i += 1) {
      if (this.state === 'rejected') return;
      this.onLine(lines[i], out);
    }
  }

  private onLine(l: DecodedLine, out: OnecEvent[]): void {
    this.lineCount = l.line;
    const text = l.text;
    const state = this.state;
    if (state === 'start') {
      const t = text.trim();
      if (t === '') return;
      if (t.toLowerCase() !== M.exchange) {
        this.state = 'rejected';
        this.fileErrors.push(this.issue(l.line, 'file', 'NOT_EXCHANGE_FILE', 'Это не файл обмена 1С: первая строка должна быть 1CClientBankExchange', 'not a 1CClientBankExchange file: its first non-empty line must be 1CClientBankExchange'));
        return;
      }
      this.state = 'header';
      this.header.line = l.line;
      return;
    }
    if (state === 'ended') {
      if (text.trim() !== '' && !this.afterEndWarned) {
        this.afterEndWarned = true;
        this.fileWarnings.push(this.issue(l.line, 'КонецФайла', 'CONTENT_AFTER_END', `После КонецФайла есть строки (с ${l.line}); они не прочитаны`, `lines after КонецФайла (from ${l.line}) are ignored`));
      }
      return;
    }
    const inSection = state === 'document' || state === 'balance';
    if (inSection && !this.sectionOverflow) this.textLines.push(text);
    if (l.tooLong) {
      const eq = text.indexOf('=');
      const key = eq > 0 ? text.slice(0, eq).trim() : 'line';
      const issue = this.issue(l.line, key, 'LINE_TOO_LONG', `Строка ${l.line} слишком длинная (${l.byteLength} байт, допустимо ${this.decoder.maxLineBytes}); значение не прочитано`, `line ${l.line} is ${l.byteLength} bytes, over the ${this.decoder.maxLineBytes} limit`, eq > 0 ? key : undefined);
      if (inSection) this.sectionIssues.push(issue);
      else this.fileErrors.push(issue);
      return;
    }
    if (text.length === 0) return;
    const eq = text.indexOf('=');
    let key = eq < 0 ? text : text.slice(0, eq);
    if (key.charCodeAt(0) <= 32 || key.charCodeAt(key.length - 1) <= 32) key = key.trim();
    if (key === '') {
      if (eq < 0) return; // blank line with spaces
    }
    const lk = this.lowerKey(key);
    const value = eq < 0 ? undefined : text.slice(eq + 1);

    if (lk === M.docStart) {
      this.closeOpenSection(l.line, out, 'СекцияДокумент');
      if (!this.headerEmitted) this.emitHeader(out);
      this.openSection('document', l.line, text, value === undefined ? '' : unquote(value));
      return;
    }
    if (lk === M.balStart) {
      this.closeOpenSection(l.line, out, 'СекцияРасчСчет');
      if (!this.headerEmitted) this.emitHeader(out);
      this.openSection('balance', l.line, text, '');
      this.sawBalance = true;
      return;
    }
    if (lk === M.docEnd) {
      if (state === 'document') out.push(this.finishDocument(true, l.line));
      else this.fileWarnings.push(this.issue(l.line, 'КонецДокумента', 'STRAY_END', `Строка ${l.line}: КонецДокумента без начала документа`, `line ${l.line}: КонецДокумента outside a document`));
      return;
    }
    if (lk === M.balEnd) {
      if (state === 'balance') out.push(this.finishBalance(true, l.line));
      else this.fileWarnings.push(this.issue(l.line, 'КонецРасчСчет', 'STRAY_END', `Строка ${l.line}: КонецРасчСчет без СекцияРасчСчет`, `line ${l.line}: КонецРасчСчет outside a balance block`));
      return;
    }
    if (lk === M.fileEnd) {
      this.closeOpenSection(l.line, out, 'КонецФайла');
      if (!this.headerEmitted) this.emitHeader(out);
      this.complete = true;
      this.state = 'ended';
      return;
    }
    if (inSection) {
      if (this.entries.length >= this.maxDocumentLines) {
        if (!this.sectionOverflow) {
          this.sectionOverflow = true;
          this.sectionIssues.push(this.issue(l.line, 'line', 'DOCUMENT_TOO_LARGE', `Раздел со строки ${this.sectionLine} длиннее ${this.maxDocumentLines} строк: вероятно, пропущен КонецДокумента`, `section at line ${this.sectionLine} exceeds ${this.maxDocumentLines} lines`));
        }
        return;
      }
      this.entries.push({ key, lk, value, line: l.line });
      return;
    }
    // header (or stray lines between sections)
    if (value === undefined) {
      this.fileWarnings.push(this.issue(l.line, 'line', 'MALFORMED_LINE', `Строка ${l.line} не вида Ключ=Значение; пропущена`, `line ${l.line} is not Key=Value; skipped`));
      return;
    }
    if (state === 'between') {
      this.fileWarnings.push(this.issue(l.line, key, 'LINE_OUTSIDE_SECTION', `Строка ${l.line} (${key}) вне документа; пропущена`, `line ${l.line} (${key}) is outside any section; skipped`, key));
      return;
    }
    this.headerKey(key, lk, value, l.line);
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
    this.textLines = [text];
    this.sectionIssues = [];
    this.sectionOverflow = false;
  }

  /** A new section (or the file's end) while one is open: the open one was never closed. */
  private closeOpenSection(line: number, out: OnecEvent[], by: string): void {
    if (this.state === 'document') {
      this.textLines.pop(); // the marker line belongs to what follows
      this.sectionIssues.push(this.issue(line, 'КонецДокумента', 'DOCUMENT_NOT_CLOSED', `Документ со строки ${this.sectionLine} не завершён строкой КонецДокумента (в строке ${line} уже ${by}); документ не принят`, `document at line ${this.sectionLine} is not closed by КонецДокумента before ${by} at line ${line}`));
      out.push(this.finishDocument(false, line - 1));
    } else if (this.state === 'balance') {
      this.textLines.pop();
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
      text: this.textLines.join('\r\n'),
      issues: this.sectionIssues,
      statementFile: this.sawBalance,
      accounts: this.statementAccounts,
      makeIssue: (line, field, code, ru, en, key) => this.issue(line, field, code, ru, en, key),
    });
    if (this.fileName !== undefined) document.file = this.fileName;
    this.documents += 1;
    this.state = 'between';
    this.entries = [];
    this.textLines = [];
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

interface BuildInput {
  line: number;
  endLine: number;
  closed: boolean;
  kind: string;
  kindWritten: boolean;
  entries: Entry[];
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
  const raw: Record<string, string> = {};
  const byKey = new Map<string, Entry>();
  for (let i = 0; i < entries.length; i += 1) {
    const e = entries[i];
    if (e.value === undefined) {
      errors.push(makeIssue(e.line, 'line', 'MALFORMED_LINE', `Строка ${e.line} («${e.key.slice(0, 40)}») не вида Ключ=Значение; документ не принят`, `line ${e.line} is not Key=Value`));
      continue;
    }
    if (BAD_CHARS.test(e.key) || BAD_CHARS.test(e.value)) {
      errors.push(makeIssue(e.line, e.key, 'BAD_CHARACTERS', `Строка ${e.line} (${e.key}): недопустимые символы — файл повреждён или в другой кодировке`, `line ${e.line} (${e.key}): control or undecodable characters`, e.key));
    }
    const prior = byKey.get(e.lk);
    if (prior) {
      if (prior.value !== e.value) {
        errors.push(makeIssue(e.line, e.key, 'DUPLICATE_KEY', `Строка ${e.line}: ключ ${e.key} повторяется (строка ${prior.line}) с другим значением; неясно, какое верно`, `line ${e.line}: key ${e.key} repeats line ${prior.line} with another value`, e.key));
      } else {
        warnings.push(makeIssue(e.line, e.key, 'DUPLICATE_KEY', `Строка ${e.line}: ключ ${e.key} повторяется (строка ${prior.line}) с тем же значением`, `line ${e.line}: key ${e.key} repeats line ${prior.line} with the same value`, e.key));
      }
      continue;
    }
    byKey.set(e.lk, e);
    raw[e.key] = e.value;
  }
  if (!input.kindWritten) {
    warnings.push(makeIssue(input.line, 'СекцияДокумент', 'MISSING_KIND', `Строка ${input.line}: у СекцияДокумент не указан вид документа`, `line ${input.line}: СекцияДокумент has no kind`, 'СекцияДокумент'));
  }

  const sources: Record<string, { key: string; line: number }> = {};
  const pick = (field: keyof typeof FIELD_KEYS): string => {
    for (const k of FIELD_KEYS[field]) {
      const e = byKey.get(k);
      if (e && e.value !== undefined && e.value.trim() !== '') {
        sources[field] = { key: e.key, line: e.line };
        return e.value.trim();
      }
    }
    return '';
  };
  let variant: 'kz' | 'ru' = 'kz';
  if (!KZ_MARKERS.some((k) => byKey.has(k)) && RU_MARKERS.some((k) => byKey.has(k))) variant = 'ru';

  const number = pick('number');
  if (!number) errors.push(makeIssue(input.line, 'number', 'MISSING_FIELD', 'Нет номера документа (НомерДокумента)', 'no document number (НомерДокумента)', 'НомерДокумента'));
  const dateText = pick('date');
  let date = '';
  if (!dateText) errors.push(makeIssue(input.line, 'date', 'MISSING_FIELD', 'Нет даты документа (ДатаДокумента)', 'no document date (ДатаДокумента)', 'ДатаДокумента'));
  else {
    date = onecDateToIso(dateText) ?? '';
    if (!date) errors.push(makeIssue(sources.date.line, 'date', 'BAD_DATE', `Строка ${sources.date.line}: дата «${dateText}» не вида ДД.ММ.ГГГГ`, `line ${sources.date.line}: date "${dateText}" is not dd.mm.yyyy`, sources.date.key));
  }
  const amountText = pick('amount');
  let amount = '';
  if (!amountText) errors.push(makeIssue(input.line, 'amount', 'MISSING_FIELD', 'Нет суммы документа (Сумма)', 'no amount (Сумма)', 'Сумма'));
  else {
    try {
      amount = formatAmount(parseAmount(amountText));
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
      errors.push(makeIssue(sources.amount.line, 'amount', 'BAD_AMOUNT', `Строка ${sources.amount.line}: сумма «${amountText}» записана неверно (нужны цифры, точка и не более 2 знаков, например 7745.70)`, `line ${sources.amount.line}: amount "${amountText}" is not a decimal with at most 2 places`, sources.amount.key));
    }
  }
  // A statement line may carry Сумма and СуммаРасход/СуммаПриход (BCC writes both): they must agree.
  const inE = byKey.get(KEY_IN);
  const outE = byKey.get(KEY_OUT);
  const sumE = byKey.get(KEY_SUM);
  for (const side of [inE, outE]) {
    if (amount && side && sumE && side.value?.trim() && sumE.value?.trim() && parseSignedAmount(side.value) !== parseSignedAmount(sumE.value)) {
      warnings.push(makeIssue(side.line, 'amount', 'AMOUNT_CONFLICT', `Строка ${side.line}: ${side.key}=${side.value.trim()} не совпадает с Сумма=${sumE.value.trim()}`, `line ${side.line}: ${side.key} ${side.value.trim()} differs from Сумма ${sumE.value.trim()}`, side.key));
    }
  }

  let purpose = pick('purpose');
  if (!purpose) {
    const parts: string[] = [];
    for (const k of PURPOSE_LINES) {
      const e = byKey.get(k);
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
  const statement = isStatementKind(input.kind) || input.statementFile || STATEMENT_KEYS.some((k) => byKey.has(k));
  const order: OnecOrder = {
    number,
    date,
    amount: amount || amountText,
    currency: pick('currency') || (variant === 'ru' ? 'RUB' : 'KZT'),
    payer: { name: pick('payer.name'), iinBin: pick('payer.iinBin'), iban: pick('payer.iban'), bic: pick('payer.bic'), kod: pick('payer.kod') },
    beneficiary: { name: pick('beneficiary.name'), iinBin: pick('beneficiary.iinBin'), iban: pick('beneficiary.iban'), bic: pick('beneficiary.bic'), kbe: pick('beneficiary.kbe') },
    knp: pick('knp'),
    purpose,
    raw,
  };
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
  const dateOf = (lk: string): string | undefined => {
    const e = byKey.get(lk);
    if (!e || !e.value || !e.value.trim()) return undefined;
    const iso = onecDateToIso(e.value);
    if (!iso) warnings.push(makeIssue(e.line, e.key, 'BAD_DATE', `Строка ${e.line}: дата «${e.value.trim()}» не вида ДД.ММ.ГГГГ`, `line ${e.line}: date "${e.value.trim()}" is not dd.mm.yyyy`, e.key));
    return iso;
  };
  doc.operationDate = dateOf(KEY_OPERATION);
  doc.debitedDate = dateOf(KEY_DEBITED);
  doc.creditedDate = dateOf(KEY_CREDITED);
  if (statement) {
    // Which way the money went for the statement's own account.
    if (inE?.value?.trim()) order.direction = 'in';
    else if (outE?.value?.trim()) order.direction = 'out';
    else if (doc.creditedDate && !doc.debitedDate) order.direction = 'in';
    else if (doc.debitedDate && !doc.creditedDate) order.direction = 'out';
    else if (input.accounts.has(order.payer.iban)) order.direction = 'out';
    else if (input.accounts.has(order.beneficiary.iban)) order.direction = 'in';
  }
  return doc;
}

/** Reads a stream of bytes and yields header, balance blocks and documents one by one, then `end`. */
export async function* readOnecExchange(source: AsyncIterable<Buffer | string>, options: OnecReaderOptions = {}): AsyncGenerator<OnecEvent> {
  const parser = new OnecExchangeParser(options);
  for await (const chunk of source) {
    const events = parser.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
    for (const e of events) yield e;
    if (parser.rejected) break;
  }
  for (const e of parser.end()) yield e;
}

/** Streams a file from disk (1 MiB chunks); I/O errors (missing file, no permission) are thrown. */
export async function* readOnecExchangeFile(path: string, options: OnecReaderOptions = {}): AsyncGenerator<OnecEvent> {
  const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
  try {
    yield* readOnecExchange(stream, { fileName: path, ...options });
  } finally {
    stream.destroy();
  }
}

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
