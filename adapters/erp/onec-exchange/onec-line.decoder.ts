import { isUtf8 } from 'node:buffer';
import * as iconv from 'iconv-lite';

/**
 * Turns the bytes of a 1CClientBankExchange file into decoded lines, streaming.
 *
 * The declared `Кодировка=` is only a hint (INTERFACES.md "1C files"): real files lie, e.g. UTF-8
 * labelled `Windows`, or one UTF-8 line appended to a cp1251 file. So the bytes decide: a BOM,
 * else valid UTF-8 in the first 64 KiB, else the declared legacy code page (DOS = cp866, anything
 * else cp1251). Every later line is still checked: a line that does not fit the file's encoding
 * is decoded the other way and reported as a warning with its line number; so is a line of a
 * legacy file whose key is in the file's code page and whose value alone is UTF-8.
 *
 * Memory stays flat: a block of lines is decoded at once (fast path) and only the partial last
 * line is carried over; a line longer than `maxLineBytes` is cut (its head kept, the rest
 * skipped up to the next LF) and flagged, never accumulated.
 */
export type OnecEncoding = 'utf8' | 'cp1251' | 'cp866';

/**
 * Receives each line as soon as it is decoded: `line` is 1-based, `text` has no line ending;
 * `tooLong` says the line was longer than maxLineBytes and `text` is only its head.
 * A callback rather than objects: a 200 MB file has millions of lines (allocation is the cost).
 */
export type LineSink = (line: number, text: string, tooLong: boolean, byteLength: number) => void;

export interface LineIssue {
  line: number;
  code: string;
  message: string;
  messageEn: string;
}

export interface EncodingDecision {
  encoding: OnecEncoding;
  /** The `Кодировка=` value as written, when present in the first 64 KiB. */
  declared?: string;
  bom: boolean;
}

const SNIFF_BYTES = 64 * 1024;
const LF = 0x0a;

/** True when the bytes hold a UTF-8 two-byte sequence for Cyrillic or Kazakh letters. */
export function hasUtf8Pair(bytes: Buffer): boolean {
  for (let lead = 0xd0; lead <= 0xd3; lead += 1) {
    let pos = bytes.indexOf(lead);
    while (pos >= 0 && pos + 1 < bytes.length) {
      const next = bytes[pos + 1];
      if (next >= 0x80 && next <= 0xbf) return true;
      pos = bytes.indexOf(lead, pos + 1);
    }
  }
  return false;
}

/**
 * Legacy code pages: the platform's TextDecoder (ICU, about 6x faster than iconv-lite's JS loop)
 * when Node has it, iconv-lite otherwise. They differ only on control bytes (cp1251 0x98 is
 * U+0098 there, U+FFFD in iconv-lite); both are reported as damaged characters by the reader.
 */
function legacyDecoder(enc: 'cp1251' | 'cp866'): (bytes: Buffer) => string {
  try {
    const td = new TextDecoder(enc === 'cp1251' ? 'windows-1251' : 'ibm866');
    return (bytes) => td.decode(bytes);
  } catch {
    return (bytes) => iconv.decode(bytes, enc);
  }
}
const LEGACY = { cp1251: legacyDecoder('cp1251'), cp866: legacyDecoder('cp866') };

/** In cp1251, a UTF-8 Cyrillic letter reads as Р/С followed by one of the characters of bytes 0x80..0xBF. */
const CP1251_HIGH = LEGACY.cp1251(Buffer.from(Array.from({ length: 64 }, (_, i) => 0x80 + i))) + '\uFFFD';
const MOJIBAKE: Record<'cp1251' | 'cp866', RegExp> = {
  cp1251: new RegExp(`[РС][${CP1251_HIGH.replace(/[\]\\^-]/g, '\\$&')}]`),
  // in cp866 the lead bytes 0xD0/0xD1 are box-drawing characters, followed by a Cyrillic letter
  cp866: /[╨╤][\u0410-\u044F\u0401\u0451]/,
};

const EQUALS = 0x3d;
/** What a payment document's UTF-8 text is made of: ASCII, Latin-1, Cyrillic (Kazakh letters too), punctuation, currency signs, №. */
// eslint-disable-next-line no-control-regex
const DOCUMENT_TEXT = /^[\u0000-\u007F\u00A0-\u00FF\u0400-\u052F\u2010-\u205E\u20A0-\u20CF\u2116]*$/u;
const PLAIN_CYRILLIC = /[\u0401\u0410-\u044F\u0451]/g;

/**
 * The value of a `Key=Value` line of a legacy-code-page file when that value alone is UTF-8 (the
 * key written by 1C in the file's code page, the text pasted from elsewhere): where it starts and
 * its text; undefined when it is not convincingly UTF-8. Genuine cp1251 (or KZ-1048) text is
 * practically never valid UTF-8: a lower-case letter (0xE0-0xFF) opens a three- or four-byte
 * sequence, two capitals in a row break a two-byte one. What short runs of capitals and
 * punctuation do form valid UTF-8 decode to letters outside plain Cyrillic, or to one plain letter
 * at most ("РЁ" -> "Ш"): the value must decode to document text with two plain Cyrillic letters.
 */
export function utf8ValueOf(bytes: Buffer): { start: number; text: string } | undefined {
  const eq = bytes.indexOf(EQUALS);
  if (eq < 0) return undefined;
  const value = bytes.subarray(eq + 1);
  if (!isUtf8(value)) return undefined;
  const text = value.toString('utf8');
  if (!DOCUMENT_TEXT.test(text) || (text.match(PLAIN_CYRILLIC)?.length ?? 0) < 2) return undefined;
  return { start: eq + 1, text };
}

export function declaredToEncoding(declared: string | undefined): OnecEncoding | undefined {
  if (declared === undefined) return undefined;
  const d = declared.trim().toLowerCase().replace(/[\s_-]/g, '');
  if (d === 'dos' || d === 'cp866' || d === 'ibm866' || d === '866') return 'cp866';
  if (d === 'utf8') return 'utf8';
  if (d === 'windows' || d === 'windows1251' || d === 'cp1251' || d === '1251') return 'cp1251';
  return undefined;
}

/** Keys of the exchange format (1CClientBankExchange) that begin a line, counted: readable only in the file's code page. */
const FORMAT_KEYS = /^\s*(ВерсияФормата|Отправитель|Получатель|ДатаСоздания|ВремяСоздания|ДатаНачала|ДатаКонца|РасчСчет|СекцияРасчСчет|КонецРасчСчет|СекцияДокумент|КонецДокумента|Документ|НомерДокумента|ДатаДокумента|Сумма)\s*=/gm;

function knownKeys(text: string): number {
  return text.match(FORMAT_KEYS)?.length ?? 0;
}

function findDeclared(text: string): string | undefined {
  const m = /^\s*кодировка\s*=([^\r\n]*)/im.exec(text);
  return m ? m[1].trim() : undefined;
}

/** Decides the file's encoding from its first bytes (up to 64 KiB). */
export function decideEncoding(sample: Buffer): EncodingDecision & { issues: LineIssue[] } {
  const issues: LineIssue[] = [];
  if (sample.length >= 3 && sample[0] === 0xef && sample[1] === 0xbb && sample[2] === 0xbf) {
    const declared = findDeclared(sample.toString('utf8'));
    const hint = declaredToEncoding(declared);
    if (hint && hint !== 'utf8') issues.push(mismatch(declared as string, 'utf8'));
    return { encoding: 'utf8', declared, bom: true, issues };
  }
  // Cut the sample at its last LF so a multi-byte sequence split by the sample's end is not "invalid".
  const lastLf = sample.lastIndexOf(LF);
  const whole = lastLf >= 0 && sample.length >= SNIFF_BYTES ? sample.subarray(0, lastLf + 1) : sample;
  let ascii = true;
  for (let i = 0; i < whole.length; i += 1) {
    if (whole[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  const declaredUtf = findDeclared(whole.toString('utf8'));
  const declared1251 = findDeclared(iconv.decode(whole, 'cp1251'));
  const declared866 = findDeclared(iconv.decode(whole, 'cp866'));
  if (!ascii && isUtf8(whole)) {
    const declared = declaredUtf ?? declared1251 ?? declared866;
    const hint = declaredToEncoding(declared);
    if (hint && hint !== 'utf8') issues.push(mismatch(declared as string, 'utf8'));
    return { encoding: 'utf8', declared, bom: false, issues };
  }
  // Legacy: the key "Кодировка" is only readable in the right code page, which itself tells us.
  const declared = declared1251 ?? declared866 ?? declaredUtf;
  // A key readable in cp1251 only is cp1251 whatever its value says (`Кодировка=DOS` on cp1251
  // bytes: read as cp866 every key was garbage and not one document of the file came through).
  let encoding: OnecEncoding = 'cp1251';
  if (declared866 !== undefined && declared1251 === undefined) encoding = 'cp866';
  else if (declared1251 === undefined && declaredToEncoding(declared) === 'cp866') encoding = 'cp866';
  // No "Кодировка" line at all (the format asks for one; some programs leave it out): the code page
  // in which the format's own keys read is the file's (read as cp1251, a cp866 file lost every document).
  else if (declared === undefined && !ascii && knownKeys(iconv.decode(whole, 'cp866')) > knownKeys(iconv.decode(whole, 'cp1251'))) encoding = 'cp866';
  const hint = declaredToEncoding(declared);
  if (!ascii && hint && hint !== encoding) issues.push(mismatch(declared as string, encoding));
  return { encoding, declared, bom: false, issues };
}

function mismatch(declared: string, actual: OnecEncoding): LineIssue {
  return {
    line: 0,
    code: 'ENCODING_MISMATCH',
    message: `В файле указано «Кодировка=${declared}», но по содержимому файл в кодировке ${actual}; файл прочитан как ${actual}`,
    messageEn: `the file declares Кодировка=${declared} but its bytes are ${actual}; read as ${actual}`,
  };
}

export interface LineDecoderOptions {
  maxLineBytes?: number;
}

/**
 * Push bytes in, decoded lines go to the sink. `end` flushes the last line (a file need not
 * end with a line break).
 */
export class OnecLineDecoder {
  readonly maxLineBytes: number;
  decision: EncodingDecision | undefined;
  readonly issues: LineIssue[] = [];
  private sniff: Buffer[] = [];
  private sniffBytes = 0;
  private carry: Buffer = Buffer.alloc(0);
  /** The current line overflowed: its head was emitted, the rest is skipped up to the next LF. */
  private skipping = false;
  private lineNo = 0;
  private firstBlock = true;
  bytes = 0;
  private legacyWarned = 0;
  /** While the sink runs: the decoded block holding the line (undefined for a cut line). */
  blockText: string | undefined;
  /** While the sink runs: where the line starts in `blockText`, and where the next one starts. */
  lineStart = 0;
  lineEnd = 0;

  constructor(
    private readonly sink: LineSink,
    options: LineDecoderOptions = {},
  ) {
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
  }

  get encoding(): OnecEncoding {
    return this.decision?.encoding ?? 'cp1251';
  }

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    if (!this.decision) {
      // Copied: the caller may reuse its buffer for the next read.
      this.sniff.push(Buffer.from(chunk));
      this.sniffBytes += chunk.length;
      if (this.sniffBytes < SNIFF_BYTES) return;
      this.startWith(Buffer.concat(this.sniff));
      return;
    }
    this.consume(chunk);
  }

  end(): void {
    if (!this.decision) this.startWith(Buffer.concat(this.sniff));
    if (this.carry.length > 0 || this.skipping) {
      if (!this.skipping) this.decodeBlock(this.carry, false);
      this.carry = Buffer.alloc(0);
      this.skipping = false;
    }
  }

  private startWith(sample: Buffer): void {
    const decision = decideEncoding(sample.subarray(0, SNIFF_BYTES));
    this.decision = { encoding: decision.encoding, declared: decision.declared, bom: decision.bom };
    this.issues.push(...decision.issues);
    this.sniff = [];
    const body = decision.bom ? sample.subarray(3) : sample;
    this.consume(body);
  }

  private consume(chunk: Buffer): void {
    let start = 0;
    if (this.skipping) {
      const lf = chunk.indexOf(LF);
      if (lf < 0) return;
      this.skipping = false;
      start = lf + 1;
    }
    if (this.carry.length > 0) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0) {
        this.appendCarry(chunk.subarray(start));
        return;
      }
      if (this.carry.length + (lf - start) > this.maxLineBytes) {
        this.emitTooLong(Buffer.concat([this.carry.subarray(0, 512), chunk.subarray(start, Math.min(lf, start + 512))]), this.carry.length + (lf - start));
      } else {
        this.decodeBlock(Buffer.concat([this.carry, chunk.subarray(start, lf + 1)]), true);
      }
      this.carry = Buffer.alloc(0);
      start = lf + 1;
    }
    const lastLf = chunk.lastIndexOf(LF);
    if (lastLf >= start) this.decodeBlock(chunk.subarray(start, lastLf + 1), true);
    if (lastLf + 1 < chunk.length) this.appendCarry(chunk.subarray(Math.max(start, lastLf + 1)));
  }

  private appendCarry(part: Buffer): void {
    if (this.carry.length + part.length > this.maxLineBytes) {
      const head = Buffer.concat([this.carry.subarray(0, 512), part.subarray(0, 512)]);
      const total = this.carry.length + part.length;
      this.carry = Buffer.alloc(0);
      this.emitTooLong(head, total);
      this.skipping = true;
      return;
    }
    this.carry = this.carry.length > 0 ? Buffer.concat([this.carry, part]) : Buffer.from(part);
  }

  /** The partial last line is bounded too: a 200 MB line without LF never sits in memory. */
  private emitTooLong(head: Buffer, byteLength: number): void {
    this.lineNo += 1;
    // Keep a head long enough to name the key; the value is useless anyway.
    const head512 = head.subarray(0, 512);
    const enc = this.encoding;
    const text = (enc === 'utf8' ? head512.toString('utf8') : LEGACY[enc](head512)).replace(/\r$/, '');
    this.blockText = undefined;
    this.sink(this.lineNo, text, true, byteLength);
  }

  private decodeOne(bytes: Buffer, line: number): string {
    const enc = this.encoding;
    if (enc === 'utf8') {
      if (isUtf8(bytes)) return bytes.toString('utf8');
      this.legacyLine(line, 'cp1251');
      return LEGACY[this.legacyFallback()](bytes);
    }
    return LEGACY[enc](bytes);
  }

  private legacyFallback(): 'cp1251' | 'cp866' {
    const hint = declaredToEncoding(this.decision?.declared);
    return hint === 'cp866' ? 'cp866' : 'cp1251';
  }

  /** `part`: the whole line, or only its value (after the first `=`) is in the other encoding. */
  private legacyLine(line: number, actual: OnecEncoding, part: 'line' | 'value' = 'line'): void {
    // One warning per line, but a file of a million such lines must not grow a million warnings.
    this.legacyWarned += 1;
    if (this.legacyWarned > 100) return;
    this.issues.push(
      part === 'line'
        ? {
            line,
            code: 'LINE_ENCODING',
            message: `Строка ${line} записана в другой кодировке (${actual}), чем файл (${this.encoding}); прочитана как ${actual}`,
            messageEn: `line ${line} is ${actual}, unlike the file (${this.encoding}); decoded as ${actual}`,
          }
        : {
            line,
            code: 'LINE_ENCODING',
            message: `Строка ${line}: значение после «=» записано в другой кодировке (${actual}), чем файл (${this.encoding}); прочитано как ${actual}`,
            messageEn: `line ${line}: the value after "=" is ${actual}, unlike the file (${this.encoding}); decoded as ${actual}`,
          },
    );
  }

  /** Decodes a block of whole lines (ending with LF when `terminated`) and splits it. */
  private decodeBlock(block: Buffer, terminated: boolean): void {
    if (block.length === 0) return;
    const enc = this.encoding;
    let text: string;
    if (enc === 'utf8') {
      text = isUtf8(block) ? block.toString('utf8') : this.decodeLinesOneByOne(block);
    } else {
      // Only a block holding a UTF-8 Cyrillic/Kazakh pair (lead 0xD0-0xD3, then 0x80-0xBF) can
      // hide a UTF-8 line: checked on the bytes, natively, before any per-line work.
      text = hasUtf8Pair(block) ? this.decodeLinesOneByOne(block) : LEGACY[enc](block);
    }
    if (this.firstBlock) {
      this.firstBlock = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    this.emitBlock(text, terminated);
  }

  /**
   * Hands each line of a decoded block to the sink. While the sink runs, `blockText`,
   * `lineStart` and `lineEnd` (after the line break) locate the line in the block, so a reader
   * can keep a document's original text as one slice instead of joining its lines again.
   */
  private emitBlock(text: string, terminated: boolean): void {
    this.blockText = text;
    let pos = 0;
    const length = text.length;
    while (pos < length) {
      let nl = text.indexOf('\n', pos);
      if (nl < 0) {
        if (terminated) break;
        nl = length;
      }
      const end = nl > pos && text.charCodeAt(nl - 1) === 13 ? nl - 1 : nl;
      this.lineNo += 1;
      this.lineStart = pos;
      this.lineEnd = nl < length ? nl + 1 : nl;
      // A long line inside one block: the block bounds memory; only the head travels on.
      if (end - pos > this.maxLineBytes) {
        this.blockText = undefined;
        this.sink(this.lineNo, text.slice(pos, pos + 512), true, end - pos);
        this.blockText = text;
      } else {
        this.sink(this.lineNo, text.slice(pos, end), false, end - pos);
      }
      pos = nl + 1;
    }
    this.blockText = undefined;
  }

  /**
   * Slow path: a block holding at least one line in another encoding than the file's. Each line
   * is decoded on its own, the line breaks kept as they were.
   */
  private decodeLinesOneByOne(block: Buffer): string {
    const enc = this.encoding;
    const parts: string[] = [];
    let pos = 0;
    let lineNo = this.lineNo;
    while (pos < block.length) {
      let lf = block.indexOf(LF, pos);
      const terminator = lf < 0 ? '' : lf > pos && block[lf - 1] === 13 ? '\r\n' : '\n';
      if (lf < 0) lf = block.length;
      const end = terminator === '\r\n' ? lf - 1 : lf;
      const bytes = block.subarray(pos, end);
      lineNo += 1;
      let text: string;
      if (enc === 'utf8') {
        text = this.decodeOne(bytes, lineNo);
      } else {
        text = LEGACY[enc](bytes);
        if (MOJIBAKE[enc].test(text)) {
          if (isUtf8(bytes)) {
            text = bytes.toString('utf8');
            this.legacyLine(lineNo, 'utf8');
          } else {
            // The key in the file's code page, the value in UTF-8: the value is read as UTF-8.
            const value = utf8ValueOf(bytes);
            if (value) {
              text = LEGACY[enc](bytes.subarray(0, value.start)) + value.text;
              this.legacyLine(lineNo, 'utf8', 'value');
            }
          }
        }
      }
      parts.push(text, terminator);
      pos = lf + 1;
    }
    return parts.join('');
  }
}
