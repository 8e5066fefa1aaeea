/**
 * A minimal DER writer over Buffers. Existing elements (a certificate's issuer Name, an
 * existing SignerInfo) are embedded as their original bytes, never re-encoded.
 */
export function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

export function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), encodeLength(body.length), body]);
}

export const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
/** SET as given (for SET OF whose order must be kept, e.g. existing signerInfos). */
export const set = (...items: Buffer[]): Buffer => tlv(0x31, ...items);
/** SET OF in DER order: elements sorted by their encodings (X.690 11.6). */
export const setOfSorted = (...items: Buffer[]): Buffer => tlv(0x31, ...[...items].sort(Buffer.compare));
export const octetString = (bytes: Buffer | Uint8Array): Buffer => tlv(0x04, Buffer.from(bytes));
export const nullValue = (): Buffer => Buffer.from([0x05, 0x00]);
export const bitString = (bytes: Buffer | Uint8Array, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), Buffer.from(bytes));
export const boolean = (value: boolean): Buffer => Buffer.from([0x01, 0x01, value ? 0xff : 0x00]);
export const utf8String = (text: string): Buffer => tlv(0x0c, Buffer.from(text, 'utf8'));
export const printableString = (text: string): Buffer => tlv(0x13, Buffer.from(text, 'latin1'));
export const ia5String = (text: string): Buffer => tlv(0x16, Buffer.from(text, 'latin1'));
/** [n] EXPLICIT (constructed context tag). */
export const explicit = (n: number, ...content: Buffer[]): Buffer => tlv(0xa0 | n, ...content);
/** [n] IMPLICIT over a constructed type: same content, context tag. */
export const implicitConstructed = (n: number, ...content: Buffer[]): Buffer => tlv(0xa0 | n, ...content);

export function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map((p) => Number(p));
  if (parts.length < 2 || parts.some((p) => !Number.isSafeInteger(p) || p < 0)) throw new Error(`bad OID ${dotted}`);
  const bytes: number[] = [parts[0] * 40 + parts[1]];
  for (const part of parts.slice(2)) {
    const chunk: number[] = [part & 0x7f];
    for (let n = Math.floor(part / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

/** INTEGER from an unsigned big-endian magnitude (a leading 0x00 added when the top bit is set). */
export function unsignedInteger(magnitude: Buffer | number): Buffer {
  let bytes: Buffer;
  if (typeof magnitude === 'number') {
    const hex = magnitude.toString(16);
    bytes = Buffer.from(hex.length % 2 ? `0${hex}` : hex, 'hex');
  } else {
    bytes = magnitude;
  }
  let start = 0;
  while (start < bytes.length - 1 && bytes[start] === 0) start++;
  bytes = bytes.subarray(start);
  if (bytes.length === 0) bytes = Buffer.from([0]);
  if (bytes[0] & 0x80) bytes = Buffer.concat([Buffer.from([0]), bytes]);
  return tlv(0x02, bytes);
}

/** Time as RFC 5280/5652 want it: UTCTime for 1950-2049, GeneralizedTime otherwise; whole seconds, Z. */
export function time(at: Date): Buffer {
  const iso = at.toISOString();
  const year = at.getUTCFullYear();
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  if (year >= 1950 && year < 2050) return tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
  return tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'));
}

export const algorithmIdentifier = (algorithm: string, withNullParams = true): Buffer =>
  withNullParams ? seq(oid(algorithm), nullValue()) : seq(oid(algorithm));
