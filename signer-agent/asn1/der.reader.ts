import { SignerError } from '../signer.errors';

/**
 * A minimal DER reader that keeps the exact bytes of every element. Signatures cover bytes
 * (a certificate's TBS, a CRL's TBS, CMS signed attributes) and CMS co-signing must copy
 * existing SignerInfos verbatim, so nothing here re-encodes (re-encoding is how node-forge
 * ends up double-encoding Cyrillic issuer names, forge issue #847).
 * Definite lengths only (DER); single-byte tags only (all X.509/CMS/PKCS#12 tags we read).
 */
export class DerNode {
  private childCache?: DerNode[];

  constructor(
    readonly buf: Buffer,
    /** Offset of the tag byte. */
    readonly start: number,
    readonly headerLength: number,
    readonly length: number,
  ) {}

  get tag(): number {
    return this.buf[this.start];
  }
  get constructed(): boolean {
    return (this.tag & 0x20) !== 0;
  }
  /** 0 universal, 1 application, 2 context, 3 private. */
  get tagClass(): number {
    return this.tag >> 6;
  }
  get tagNumber(): number {
    return this.tag & 0x1f;
  }
  get end(): number {
    return this.start + this.headerLength + this.length;
  }
  /** The whole element: tag, length and content. */
  get raw(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }
  get content(): Buffer {
    return this.buf.subarray(this.start + this.headerLength, this.end);
  }

  children(): DerNode[] {
    if (this.childCache) return this.childCache;
    if (!this.constructed) throw malformed(`element with tag 0x${this.tag.toString(16)} has no children`);
    const out: DerNode[] = [];
    let offset = this.start + this.headerLength;
    while (offset < this.end) {
      const node = readNode(this.buf, offset, this.end);
      out.push(node);
      offset = node.end;
    }
    this.childCache = out;
    return out;
  }

  child(index: number): DerNode {
    const c = this.children()[index];
    if (!c) throw malformed(`expected element #${index} inside tag 0x${this.tag.toString(16)}`);
    return c;
  }

  /** Children of a constructed element reinterpreted from an implicit [n] tag (the content is the same). */
  is(tag: number): boolean {
    return this.tag === tag;
  }

  expect(tag: number, what: string): this {
    if (this.tag !== tag) throw malformed(`${what}: expected tag 0x${tag.toString(16)}, found 0x${this.tag.toString(16)}`);
    return this;
  }

  oid(): string {
    this.expect(0x06, 'OBJECT IDENTIFIER');
    return decodeOid(this.content);
  }

  /** INTEGER as upper-case hex without leading zero bytes (the way certificate serials are shown). */
  integerHex(): string {
    this.expect(0x02, 'INTEGER');
    let c = this.content;
    while (c.length > 1 && c[0] === 0) c = c.subarray(1);
    return c.toString('hex').toUpperCase();
  }

  integerNumber(): number {
    const hex = this.integerHex();
    return parseInt(hex, 16);
  }

  /** BIT STRING content without the unused-bits byte. */
  bitStringBytes(): Buffer {
    this.expect(0x03, 'BIT STRING');
    return this.content.subarray(1);
  }

  /** BIT STRING as named bit flags: bit 0 is the most significant bit of the first byte. */
  bitFlags(): boolean[] {
    this.expect(0x03, 'BIT STRING');
    const unused = this.content[0] ?? 0;
    const bytes = this.content.subarray(1);
    const flags: boolean[] = [];
    for (let i = 0; i < bytes.length * 8 - unused; i++) flags.push((bytes[i >> 3] & (0x80 >> (i & 7))) !== 0);
    return flags;
  }

  octets(): Buffer {
    this.expect(0x04, 'OCTET STRING');
    return this.content;
  }

  time(): Date {
    const text = this.content.toString('latin1');
    if (this.tag === 0x17) return parseUtcTime(text);
    if (this.tag === 0x18) return parseGeneralizedTime(text);
    throw malformed(`expected a UTCTime or GeneralizedTime, found tag 0x${this.tag.toString(16)}`);
  }

  /** Directory string value as text (UTF8String, PrintableString, IA5String, BMPString, ...). */
  text(): string {
    switch (this.tag) {
      case 0x0c: // UTF8String
        return this.content.toString('utf8');
      case 0x1e: {
        // BMPString: UTF-16 big-endian
        const swapped = Buffer.from(this.content);
        swapped.swap16();
        return swapped.toString('utf16le');
      }
      case 0x13: // PrintableString
      case 0x16: // IA5String
      case 0x14: // TeletexString (treated as Latin-1)
      case 0x1a: // VisibleString
        return this.content.toString('latin1');
      default:
        return this.content.toString('utf8');
    }
  }
}

function malformed(message: string): SignerError {
  return new SignerError('INPUT_UNREADABLE', `malformed DER: ${message}`);
}

export function readNode(buf: Buffer, offset: number, limit: number = buf.length): DerNode {
  if (offset + 2 > limit) throw malformed(`truncated at byte ${offset}`);
  const tag = buf[offset];
  if ((tag & 0x1f) === 0x1f) throw malformed(`multi-byte tag at byte ${offset}`);
  let lengthByte = buf[offset + 1];
  let headerLength = 2;
  let length: number;
  if (lengthByte < 0x80) {
    length = lengthByte;
  } else {
    const count = lengthByte & 0x7f;
    if (count === 0) throw malformed(`indefinite length (BER) at byte ${offset}; expected DER`);
    if (count > 4) throw malformed(`length of ${count} bytes at byte ${offset}`);
    if (offset + 2 + count > limit) throw malformed(`truncated length at byte ${offset}`);
    length = 0;
    for (let i = 0; i < count; i++) {
      lengthByte = buf[offset + 2 + i];
      length = length * 256 + lengthByte;
    }
    headerLength += count;
  }
  if (offset + headerLength + length > limit) throw malformed(`element at byte ${offset} runs past its container`);
  return new DerNode(buf, offset, headerLength, length);
}

/** Parses one DER element that must span the whole buffer. */
export function parseDer(buf: Buffer): DerNode {
  const node = readNode(buf, 0, buf.length);
  if (node.end !== buf.length) throw malformed(`${buf.length - node.end} trailing bytes after the element`);
  return node;
}

export function decodeOid(bytes: Buffer): string {
  if (bytes.length === 0) throw malformed('empty OBJECT IDENTIFIER');
  const parts: number[] = [];
  let value = 0;
  for (const byte of bytes) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

function parseUtcTime(text: string): Date {
  const m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) throw malformed(`UTCTime "${text}"`);
  const yy = Number(m[1]);
  // RFC 5280 4.1.2.5.1: YY >= 50 is 19YY, else 20YY.
  const year = yy >= 50 ? 1900 + yy : 2000 + yy;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function parseGeneralizedTime(text: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(text);
  if (!m) throw malformed(`GeneralizedTime "${text}"`);
  const ms = m[7] ? Math.round(Number(`0.${m[7]}`) * 1000) : 0;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
}
