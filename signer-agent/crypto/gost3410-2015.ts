/**
 * GOST 34.10-2015 (Kazakhstan) = GOST R 34.10-2012, 512-bit signatures, as NCA RK issues them.
 *
 * Curve: NCA's parameter OID 1.2.398.3.10.1.1.2.2.1 is TC26 512-bit paramSetA
 * (id-tc26-gost-3410-12-512-paramSetA, 1.2.643.7.1.2.1.2.1; RFC 7836 appendix A.2):
 * p = 2^512 - 569, a = p - 3, cofactor 1. Point arithmetic is @noble/curves' (complete
 * projective formulas); the GOST equations on top of it are written out here.
 *
 * Equations (GOST R 34.10-2012 sections 6.1/6.2, RFC 7091 section 6):
 *   e = (digest as an integer) mod q, e = 1 when that is 0;
 *   sign: k random in [1, q-1], C = kG, r = x_C mod q (r != 0), s = (r d + k e) mod q (s != 0);
 *   verify: 0 < r, s < q, v = e^-1 mod q, z1 = s v mod q, z2 = -r v mod q,
 *           C = z1 G + z2 Q, valid iff x_C mod q == r.
 *
 * Byte conventions (source: shared/testdata/nca/README.md, where each was established by
 * verifying NCA's own signatures; RFC 4491 section 2.2.2 and RFC 7091 are the upstream
 * documents they differ from or follow):
 * - Digest: Streebog-512 (GOST 34.11-2015, RFC 6986) output bytes exactly as the hash returns
 *   them; the integer alpha is those 64 bytes read LITTLE-endian.
 * - Public key (certificate subjectPublicKey, inside its OCTET STRING): 128 bytes = x || y,
 *   each 64 bytes LITTLE-endian (the RFC 4491 / RFC 7091 convention).
 * - Signature value (certificates, CRLs, CMS): 128 bytes = r || s, each 64 bytes
 *   LITTLE-endian. This is RFC 4491's layout (s || r, big-endian) byte-reversed as a whole.
 *   Code written from RFC 4491 as-is fails silently on NCA data; the spec keeps a real-data
 *   test and a must-fail test.
 * - Private key: the PKCS#8 privateKey field wraps a 64-byte d, LITTLE-endian.
 *
 * The nonce k comes from the OS CSPRNG (node:crypto randomBytes) for every signature, widened
 * by 64 bits before reduction so its bias is negligible (FIPS 186-5 A.4.1 style); a repeated
 * or predictable k reveals d.
 */
import { randomBytes } from 'node:crypto';
import { weierstrassN, type WeierstrassPoint } from '@noble/curves/abstract/weierstrass';
import { Field, type IField } from '@noble/curves/abstract/modular';
import { streebog512 } from './streebog.hash';

/** NCA RK GOST 34.10-2015 512-bit public key algorithm (SubjectPublicKeyInfo algorithm). */
export const OID_GOST_2015_512_PUBLIC_KEY = '1.2.398.3.10.1.1.2.2';
/** NCA RK curve parameter set = TC26 512-bit paramSetA (RFC 7836 A.2). */
export const OID_GOST_2015_512_PARAM_SET_A = '1.2.398.3.10.1.1.2.2.1';
/** NCA RK GOST 34.11-2015 512-bit digest (Streebog-512). */
export const OID_GOST_2015_512_DIGEST = '1.2.398.3.10.1.3.3';
/** NCA RK signature algorithm: GOST 34.10-2015 512-bit with GOST 34.11-2015 512-bit. */
export const OID_GOST_2015_512_SIGNATURE = '1.2.398.3.10.1.1.2.3.2';

export const GOST_2015_512_OIDS = Object.freeze({
  publicKey: OID_GOST_2015_512_PUBLIC_KEY,
  paramSetA: OID_GOST_2015_512_PARAM_SET_A,
  digest: OID_GOST_2015_512_DIGEST,
  signature: OID_GOST_2015_512_SIGNATURE,
});

/** Verifies a signature (128 bytes r || s) over a Streebog-512 digest for one fixed key. */
export type GostVerifier = (digest: Uint8Array, signature: Uint8Array) => boolean;

export type GostErrorCode = 'INVALID_KEY' | 'INVALID_SIGNATURE_FORMAT' | 'INVALID_DIGEST';

export class GostError extends Error {
  constructor(
    readonly code: GostErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GostError';
  }
}

/** Sizes in bytes. */
export const GOST_2015_512_SIZES = Object.freeze({
  privateKey: 64,
  publicKey: 128,
  digest: 64,
  signature: 128,
});

// RFC 7836 A.2, id-tc26-gost-3410-12-512-paramSetA.
const P = (1n << 512n) - 569n;
const Q = BigInt(
  '0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF27E69532F48D89116FF22B8D4E0560609B4B38ABFAD2B85DCACDB1411F10B275',
);
const B = BigInt(
  '0xE8C2505DEDFC86DDC1BD0B2B6667F1DA34B82574761CB0E879BD081CFD0B6265EE3CB090F30D27614CB4574010DA90DD862EF9D4EBEE4761503190785A71C760',
);
const GX = 3n;
const GY = BigInt(
  '0x7503CFE87A836AE3A61B8816E25450E6CE5E1C93ACF1ABC1778064FDCBEFA921DF1626BE4FD036E93D75E6A50E3A41E98028FE5FC235F5B889A589CB5215F2A4',
);

const M512 = (1n << 512n) - 1n;

/**
 * x mod p for 0 <= x < 2^1024. Since p = 2^512 - 569, 2^512 = 569 (mod p): folding the high
 * half onto the low half twice leaves x < 2^512 + 570 * 569, and one subtraction of p ends it.
 * About twice as fast as BigInt `%` on this machine, and field multiplication is what every
 * point operation is made of.
 */
function reduceP(x: bigint): bigint {
  x = (x & M512) + (x >> 512n) * 569n;
  x = (x & M512) + (x >> 512n) * 569n;
  return x >= P ? x - P : x;
}

/**
 * The field of the curve: @noble/curves' generic Field(p) with multiplication, squaring,
 * addition and subtraction specialised to p = 2^512 - 569 (noble takes a custom Fp for
 * exactly this). Operands are field elements, 0 <= a, b < p, as everywhere inside noble.
 */
const Fp: IField<bigint> = Object.freeze({
  ...Field(P),
  add: (a: bigint, b: bigint): bigint => {
    const sum = a + b;
    return sum >= P ? sum - P : sum;
  },
  sub: (a: bigint, b: bigint): bigint => {
    const diff = a - b;
    return diff < 0n ? diff + P : diff;
  },
  mul: (a: bigint, b: bigint): bigint => reduceP(a * b),
  sqr: (a: bigint): bigint => reduceP(a * a),
});
/** The curve's field, exported so that its specialised reduction is tested against plain BigInt arithmetic. */
export const GOST_2015_512_FP: Readonly<IField<bigint>> = Fp;
const Fn = Field(Q);
const Point = weierstrassN({ p: P, n: Q, h: 1n, a: P - 3n, b: B, Gx: GX, Gy: GY }, { Fp, Fn });
type GostPoint = WeierstrassPoint<bigint>;

/** The curve as used here, for callers that need the raw parameters (e.g. an independent check). */
export const GOST_2015_512_CURVE = Object.freeze({ p: P, q: Q, a: P - 3n, b: B, gx: GX, gy: GY });

function leToBigInt(bytes: Uint8Array, from: number, to: number): bigint {
  let hex = '';
  for (let i = to - 1; i >= from; i--) hex += (bytes[i] < 16 ? '0' : '') + bytes[i].toString(16);
  return hex === '' ? 0n : BigInt('0x' + hex);
}

function bigIntToLe(value: bigint, out: Uint8Array, offset: number, length: number): void {
  const hex = value.toString(16).padStart(length * 2, '0');
  if (hex.length > length * 2) throw new RangeError('value does not fit');
  for (let i = 0; i < length; i++) {
    out[offset + i] = parseInt(hex.slice(hex.length - 2 * (i + 1), hex.length - 2 * i), 16);
  }
}

function asBytes(value: unknown, what: string, code: GostErrorCode): Uint8Array {
  if (!(value instanceof Uint8Array)) throw new GostError(code, `${what} must be a Uint8Array`);
  return value;
}

function privateScalar(privateKeyLE: Uint8Array): bigint {
  asBytes(privateKeyLE, 'private key', 'INVALID_KEY');
  if (privateKeyLE.length !== 64) {
    throw new GostError('INVALID_KEY', `GOST 2015 512-bit private key must be 64 bytes, got ${privateKeyLE.length}`);
  }
  const d = leToBigInt(privateKeyLE, 0, 64);
  // GOST R 34.10-2012 section 6: 0 < d < q.
  if (d <= 0n || d >= Q) throw new GostError('INVALID_KEY', 'GOST 2015 private key is out of range (0 < d < q)');
  return d;
}

function publicPoint(publicKey: Uint8Array): GostPoint {
  asBytes(publicKey, 'public key', 'INVALID_KEY');
  if (publicKey.length !== 128) {
    throw new GostError('INVALID_KEY', `GOST 2015 512-bit public key must be 128 bytes (x || y), got ${publicKey.length}`);
  }
  const x = leToBigInt(publicKey, 0, 64);
  const y = leToBigInt(publicKey, 64, 128);
  if (x >= P || y >= P) throw new GostError('INVALID_KEY', 'GOST 2015 public key coordinate is not a field element');
  const point = Point.fromAffine({ x, y });
  try {
    point.assertValidity(); // on the curve and not the point at infinity (cofactor 1: in the group)
  } catch {
    throw new GostError('INVALID_KEY', 'GOST 2015 public key is not a point of the paramSetA curve');
  }
  return point;
}

/** e = alpha mod q, alpha = the digest read little-endian; e = 1 if 0 (GOST R 34.10-2012 6.1 step 2). */
function digestScalar(digest: Uint8Array): bigint {
  asBytes(digest, 'digest', 'INVALID_DIGEST');
  if (digest.length !== 64) {
    throw new GostError('INVALID_DIGEST', `GOST 2015 512-bit digest must be 64 bytes (Streebog-512), got ${digest.length}`);
  }
  const e = Fn.create(leToBigInt(digest, 0, 64));
  return e === 0n ? 1n : e;
}

function splitSignature(signature: Uint8Array): { r: bigint; s: bigint } {
  asBytes(signature, 'signature', 'INVALID_SIGNATURE_FORMAT');
  if (signature.length !== 128) {
    throw new GostError(
      'INVALID_SIGNATURE_FORMAT',
      `GOST 2015 512-bit signature must be 128 bytes (r || s), got ${signature.length}`,
    );
  }
  return { r: leToBigInt(signature, 0, 64), s: leToBigInt(signature, 64, 128) };
}

/** A uniformly random k in [1, q-1] from the OS CSPRNG: 576 random bits reduced mod (q-1), plus 1. */
function randomNonce(): bigint {
  const wide = leToBigInt(randomBytes(72), 0, 72);
  return (wide % (Q - 1n)) + 1n;
}

/** Streebog-512 of data, bytes as the hash returns them (the form CMS messageDigest holds). */
export function gostDigest(data: Uint8Array): Uint8Array {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Uint8Array');
  return streebog512(data);
}

/** Signs a Streebog-512 digest; returns 128 bytes r || s, each little-endian (NCA layout). */
export function gostSignDigest(privateKeyLE: Uint8Array, digest: Uint8Array): Uint8Array {
  const d = privateScalar(privateKeyLE);
  const e = digestScalar(digest);
  for (;;) {
    const k = randomNonce();
    const c = Point.BASE.multiply(k);
    const r = Fn.create(c.x);
    if (r === 0n) continue; // GOST R 34.10-2012 6.1 step 4: choose another k
    const s = Fn.add(Fn.mul(r, d), Fn.mul(k, e));
    if (s === 0n) continue; // step 5
    const out = new Uint8Array(128);
    bigIntToLe(r, out, 0, 64);
    bigIntToLe(s, out, 64, 64);
    return out;
  }
}

/**
 * Fixed-base signed-window table for a point that is used many times (the generator, a known
 * signer's key): table[w][i] = (i + 1) 2^(W w) P. A multiplication is then about 512/W point
 * additions and no doubling. Variable-time: only for public scalars (verification).
 */
class FixedBaseTable {
  private readonly windows: number;
  private readonly half: number;
  private readonly table: GostPoint[];

  constructor(
    point: GostPoint,
    private readonly w: number,
  ) {
    this.windows = Math.ceil(512 / w) + 1; // +1: a carry out of the top signed digit
    this.half = 1 << (w - 1);
    const table: GostPoint[] = [];
    let base = point;
    for (let win = 0; win < this.windows; win++) {
      let acc = base;
      table.push(acc);
      for (let i = 1; i < this.half; i++) {
        acc = acc.add(base);
        table.push(acc);
      }
      base = acc.double(); // half * 2^(W win) P doubled = 2^(W (win + 1)) P
    }
    this.table = table;
  }

  /** scalar * P for 0 <= scalar < q, added to acc. */
  mulAdd(scalar: bigint, acc: GostPoint): GostPoint {
    const mask = BigInt((1 << this.w) - 1);
    const shift = BigInt(this.w);
    const full = 1 << this.w;
    let n = scalar;
    for (let win = 0; win < this.windows && n !== 0n; win++) {
      let digit = Number(n & mask);
      n >>= shift;
      if (digit > this.half) {
        digit -= full; // signed digit in (-2^(W-1), 2^(W-1)], borrow into the next window
        n += 1n;
      }
      if (digit === 0) continue;
      const entry = this.table[win * this.half + Math.abs(digit) - 1];
      acc = acc.add(digit < 0 ? entry.negate() : entry);
    }
    return acc;
  }
}

const TABLE_WINDOW = 8;
let generatorTable: FixedBaseTable | undefined;
function generator(): FixedBaseTable {
  generatorTable ??= new FixedBaseTable(Point.BASE, TABLE_WINDOW);
  return generatorTable;
}

/** z * Q by a width-5 signed sliding window (about 512 doublings + 85 additions), for a key seen once. */
function mulVarBase(point: GostPoint, scalar: bigint): GostPoint {
  // odd multiples P, 3P, ..., 15P
  const odd: GostPoint[] = [point];
  const twice = point.double();
  for (let i = 1; i < 8; i++) odd.push(odd[i - 1].add(twice));
  // width-5 NAF digits, least significant first
  const digits: number[] = [];
  let n = scalar;
  while (n > 0n) {
    if (n & 1n) {
      let digit = Number(n & 31n);
      if (digit >= 16) digit -= 32;
      digits.push(digit);
      n -= BigInt(digit);
    } else {
      digits.push(0);
    }
    n >>= 1n;
  }
  let acc = Point.ZERO;
  for (let i = digits.length - 1; i >= 0; i--) {
    acc = acc.double();
    const digit = digits[i];
    if (digit > 0) acc = acc.add(odd[(digit - 1) >> 1]);
    else if (digit < 0) acc = acc.add(odd[(-digit - 1) >> 1].negate());
  }
  return acc;
}

function verifyWith(
  mulQ: (z2: bigint, acc: GostPoint) => GostPoint,
  digest: Uint8Array,
  signature: Uint8Array,
): boolean {
  const { r, s } = splitSignature(signature);
  const e = digestScalar(digest);
  // GOST R 34.10-2012 6.2 step 1: 0 < r < q and 0 < s < q, else the signature is invalid.
  if (r <= 0n || r >= Q || s <= 0n || s >= Q) return false;
  const v = Fn.inv(e);
  const z1 = Fn.mul(s, v);
  const z2 = Fn.neg(Fn.mul(r, v));
  const c = mulQ(z2, generator().mulAdd(z1, Point.ZERO));
  if (c.is0()) return false;
  return Fn.create(c.x) === r;
}

/** Verifies r || s (NCA layout) over a Streebog-512 digest with a 128-byte x || y public key. */
export function gostVerifyDigest(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  const q = publicPoint(publicKey);
  return verifyWith((z2, acc) => acc.add(mulVarBase(q, z2)), digest, signature);
}

/**
 * A verifier for one known signer key (a trust anchor, an issuing CA, a regular payer): it
 * precomputes 2^7 multiples of the key per 8-bit window (about 8,300 points: about 70 ms once
 * and about 3 MB, on first use), after which a verification costs about 130 point additions
 * instead of about 512 doublings and 150 additions, roughly 4x faster. Pays off from about the
 * fifteenth verification with the same key; hold one per such certificate.
 */
export function createGostVerifier(publicKey: Uint8Array): GostVerifier {
  const q = publicPoint(publicKey);
  let table: FixedBaseTable | undefined;
  // Built on first use, after the inputs passed their checks, so an unused verifier costs nothing.
  const mulQ = (z2: bigint, acc: GostPoint): GostPoint => {
    table ??= new FixedBaseTable(q, TABLE_WINDOW);
    return table.mulAdd(z2, acc);
  };
  return (digest, signature) => verifyWith(mulQ, digest, signature);
}

/** Public key for a private key: 128 bytes x || y, each little-endian (certificate layout). */
export function gostPublicKeyFromPrivate(privateKeyLE: Uint8Array): Uint8Array {
  const d = privateScalar(privateKeyLE);
  const q = Point.BASE.multiply(d);
  const out = new Uint8Array(128);
  bigIntToLe(q.x, out, 0, 64);
  bigIntToLe(q.y, out, 64, 64);
  return out;
}

/** Streebog-512 of data, then gostSignDigest. */
export function gostSign(privateKeyLE: Uint8Array, data: Uint8Array): Uint8Array {
  return gostSignDigest(privateKeyLE, gostDigest(data));
}

/** Streebog-512 of data, then gostVerifyDigest. */
export function gostVerify(publicKey: Uint8Array, data: Uint8Array, signature: Uint8Array): boolean {
  return gostVerifyDigest(publicKey, gostDigest(data), signature);
}
