import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * TOTP (RFC 6238) over HOTP (RFC 4226) with HMAC-SHA1, 30-second steps, 6 digits: what every
 * authenticator app supports. A code of the previous or the next step is accepted too
 * (clock drift of a phone), as RFC 6238 section 5.2 recommends for one step.
 */
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

export function base32Encode(bytes: Buffer): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.toUpperCase().replace(/=+$/, '').replace(/\s+/g, '');
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const ch of clean) {
    const index = ALPHABET.indexOf(ch);
    if (index < 0) throw new Error('not a base32 string');
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** HOTP (RFC 4226 section 5.3) with dynamic truncation. */
export function hotp(secret: Buffer, counter: number, digits = 6, algorithm: 'sha1' | 'sha256' | 'sha512' = 'sha1'): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac(algorithm, secret).update(message).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, '0');
}

export function totp(secret: Buffer, at: Date, options: { step?: number; digits?: number; algorithm?: 'sha1' | 'sha256' | 'sha512' } = {}): string {
  const counter = Math.floor(at.getTime() / 1000 / (options.step ?? 30));
  return hotp(secret, counter, options.digits ?? 6, options.algorithm ?? 'sha1');
}

/** Accepts the code of the current step or one step either side; compares in constant time. */
export function verifyTotp(secret: Buffer, code: string, at: Date): boolean {
  return matchTotpStep(secret, code, at) !== null;
}

/**
 * The time step (counter) whose code `code` is, among the current step and one either side; null
 * when none. The caller keeps the last step used so that a code is good for one login only
 * (RFC 6238 section 5.2: "the verifier MUST NOT accept the second attempt of the same OTP").
 */
export function matchTotpStep(secret: Buffer, code: string, at: Date): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  const now = Math.floor(at.getTime() / 1000 / 30);
  let matched: number | null = null;
  for (const drift of [-1, 0, 1]) {
    const expected = hotp(secret, now + drift);
    if (timingSafeEqual(Buffer.from(expected), Buffer.from(code))) matched ??= now + drift;
  }
  return matched;
}

/** A new 160-bit seed (RFC 4226 recommends 160 bits for SHA-1), base32 for authenticator apps. */
export function newTotpSecret(): string {
  return base32Encode(randomBytes(20));
}

export function otpauthUri(secretBase32: string, login: string, issuer = 'Bank Connector'): string {
  return `otpauth://totp/${encodeURIComponent(issuer)}:${encodeURIComponent(login)}?secret=${secretBase32}&issuer=${encodeURIComponent(issuer)}&algorithm=SHA1&digits=6&period=30`;
}
