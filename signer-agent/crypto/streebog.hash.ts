/**
 * Streebog: GOST R 34.11-2012 = GOST 34.11-2015 (Kazakhstan) hash function, 512- and 256-bit
 * output. Specification: RFC 6986 (an English rendering of GOST R 34.11-2012).
 *
 * Byte order. RFC 6986 writes every vector as one big number, most significant byte first
 * (so the ASCII message "0123...012" appears as 0x3231...30). Every implementation and every
 * NCA/KalkanCrypt artefact works on byte strings instead: byte 0 of the input is the least
 * significant byte a_0 of the standard's vector, and the digest is returned least significant
 * byte first (the standard's h as a little-endian byte string). So the RFC's numbers are the
 * byte reversal of what this module consumes and returns; the spec tests show both sides.
 * NCA's CMS messageDigest attribute holds the digest exactly as returned here
 * (shared/testdata/nca/README.md, established on KalkanCrypt output).
 *
 * Speed. The S (Pi substitution), P (byte transposition tau) and L (multiplication by the
 * 64x64 bit matrix A) steps are fused into eight 256-entry tables of 64-bit words (the
 * classical "Ax" precomputation, built once at load from Pi and A, so no opaque 16 KiB table
 * is pasted in). Words are held as (lo, hi) pairs of 32-bit integers: no BigInt on the hot
 * path. The state of one 512-bit vector is an Int32Array(16): word k (bytes 8k..8k+7 of the
 * byte string) is at [2k] (low 32 bits) and [2k+1] (high 32 bits).
 */

/** RFC 6986 section 6.2: the substitution Pi (the same S-box as Kuznyechik). */
const PI = new Uint8Array([
  252, 238, 221, 17, 207, 110, 49, 22, 251, 196, 250, 218, 35, 197, 4, 77,
  233, 119, 240, 219, 147, 46, 153, 186, 23, 54, 241, 187, 20, 205, 95, 193,
  249, 24, 101, 90, 226, 92, 239, 33, 129, 28, 60, 66, 139, 1, 142, 79,
  5, 132, 2, 174, 227, 106, 143, 160, 6, 11, 237, 152, 127, 212, 211, 31,
  235, 52, 44, 81, 234, 200, 72, 171, 242, 42, 104, 162, 253, 58, 206, 204,
  181, 112, 14, 86, 8, 12, 118, 18, 191, 114, 19, 71, 156, 183, 93, 135,
  21, 161, 150, 41, 16, 123, 154, 199, 243, 145, 120, 111, 157, 158, 178, 177,
  50, 117, 25, 61, 255, 53, 138, 126, 109, 84, 198, 128, 195, 189, 13, 87,
  223, 245, 36, 169, 62, 168, 67, 201, 215, 121, 214, 246, 124, 34, 185, 3,
  224, 15, 236, 222, 122, 148, 176, 188, 220, 232, 40, 80, 78, 51, 10, 74,
  167, 151, 96, 115, 30, 0, 98, 68, 26, 184, 56, 130, 100, 159, 38, 65,
  173, 69, 70, 146, 39, 94, 85, 47, 140, 163, 165, 125, 105, 213, 149, 59,
  7, 88, 179, 64, 134, 172, 29, 247, 48, 55, 107, 228, 136, 217, 231, 137,
  225, 27, 131, 73, 76, 63, 248, 254, 141, 83, 170, 144, 202, 216, 133, 97,
  32, 113, 103, 164, 45, 43, 9, 91, 203, 155, 37, 208, 190, 229, 108, 82,
  89, 166, 116, 210, 230, 244, 180, 192, 209, 102, 175, 194, 57, 75, 99, 182,
]);

/**
 * RFC 6986 section 6.4: the rows A_0..A_63 of the matrix of the linear map l. The standard's
 * l(a_63 || ... || a_0) = XOR of A_(63-i) over the set bits a_i (bit 63 = most significant),
 * i.e. the most significant bit selects A_0 and the least significant bit selects A_63.
 */
const A_ROWS = [
  '8e20faa72ba0b470', '47107ddd9b505a38', 'ad08b0e0c3282d1c', 'd8045870ef14980e',
  '6c022c38f90a4c07', '3601161cf205268d', '1b8e0b0e798c13c8', '83478b07b2468764',
  'a011d380818e8f40', '5086e740ce47c920', '2843fd2067adea10', '14aff010bdd87508',
  '0ad97808d06cb404', '05e23c0468365a02', '8c711e02341b2d01', '46b60f011a83988e',
  '90dab52a387ae76f', '486dd4151c3dfdb9', '24b86a840e90f0d2', '125c354207487869',
  '092e94218d243cba', '8a174a9ec8121e5d', '4585254f64090fa0', 'accc9ca9328a8950',
  '9d4df05d5f661451', 'c0a878a0a1330aa6', '60543c50de970553', '302a1e286fc58ca7',
  '18150f14b9ec46dd', '0c84890ad27623e0', '0642ca05693b9f70', '0321658cba93c138',
  '86275df09ce8aaa8', '439da0784e745554', 'afc0503c273aa42a', 'd960281e9d1d5215',
  'e230140fc0802984', '71180a8960409a42', 'b60c05ca30204d21', '5b068c651810a89e',
  '456c34887a3805b9', 'ac361a443d1c8cd2', '561b0d22900e4669', '2b838811480723ba',
  '9bcf4486248d9f5d', 'c3e9224312c8c1a0', 'effa11af0964ee50', 'f97d86d98a327728',
  'e4fa2054a80b329c', '727d102a548b194e', '39b008152acb8227', '9258048415eb419d',
  '492c024284fbaec0', 'aa16012142f35760', '550b8e9e21f7a530', 'a48b474f9ef5dc18',
  '70a6a56e2440598e', '3853dc371220a247', '1ca76e95091051ad', '0edd37c48a08a6d8',
  '07e095624504536c', '8d70c431ac02a736', 'c83862965601dd1b', '641c314b2b8ee083',
];

/** RFC 6986 section 6.5: the iteration constants C_1..C_12, as the RFC's big numbers. */
const C_HEX = [
  'b1085bda1ecadae9ebcb2f81c0657c1f2f6a76432e45d016714eb88d7585c4fc4b7ce09192676901a2422a08a460d31505767436cc744d23dd806559f2a64507',
  '6fa3b58aa99d2f1a4fe39d460f70b5d7f3feea720a232b9861d55e0f16b501319ab5176b12d699585cb561c2db0aa7ca55dda21bd7cbcd56e679047021b19bb7',
  'f574dcac2bce2fc70a39fc286a3d843506f15e5f529c1f8bf2ea7514b1297b7bd3e20fe490359eb1c1c93a376062db09c2b6f443867adb31991e96f50aba0ab2',
  'ef1fdfb3e81566d2f948e1a05d71e4dd488e857e335c3c7d9d721cad685e353fa9d72c82ed03d675d8b71333935203be3453eaa193e837f1220cbebc84e3d12e',
  '4bea6bacad4747999a3f410c6ca923637f151c1f1686104a359e35d7800fffbdbfcd1747253af5a3dfff00b723271a167a56a27ea9ea63f5601758fd7c6cfe57',
  'ae4faeae1d3ad3d96fa4c33b7a3039c02d66c4f95142a46c187f9ab49af08ec6cffaa6b71c9ab7b40af21f66c2bec6b6bf71c57236904f35fa68407a46647d6e',
  'f4c70e16eeaac5ec51ac86febf240954399ec6c7e6bf87c9d3473e33197a93c90992abc52d822c3706476983284a05043517454ca23c4af38886564d3a14d493',
  '9b1f5b424d93c9a703e7aa020c6e41414eb7f8719c36de1e89b4443b4ddbc49af4892bcb929b069069d18d2bd1a5c42f36acc2355951a8d9a47f0dd4bf02e71e',
  '378f5a541631229b944c9ad8ec165fde3a7d3a1b258942243cd955b7e00d0984800a440bdbb2ceb17b2b8a9aa6079c540e38dc92cb1f2a607261445183235adb',
  'abbedea680056f52382ae548b2e4f3f38941e71cff8a78db1fffe18a1b3361039fe76702af69334b7a1e6c303b7652f43698fad1153bb6c374b4c7fb98459ced',
  '7bcd9ed0efc889fb3002c6cd635afe94d8fa6bbbebab076120018021148466798a1d71efea48b9caefbacd1d7d476e98dea2594ac06fd85d6bcaa4cd81f32d1b',
  '378ee767f11631bad21380b00449b17acda43c32bcdf1d77f82012d430219f9b5d80ef9d1891cc86e71da4aa88e12852faf417d5d9b21b9948bc924af11bd720',
];

/** A 512-bit big number in hex (most significant first) as 16 (lo, hi) words, word 0 least significant. */
function vectorFromHex(hex: string): Int32Array {
  const v = new Int32Array(16);
  for (let k = 0; k < 8; k++) {
    const word = hex.slice((7 - k) * 16, (8 - k) * 16);
    v[2 * k + 1] = parseInt(word.slice(0, 8), 16) | 0;
    v[2 * k] = parseInt(word.slice(8, 16), 16) | 0;
  }
  return v;
}

const C = C_HEX.map(vectorFromHex);

/**
 * Fused LPS tables. After S and the transposition P, output word i is made of byte i of every
 * input word j, placed at byte j; L then maps that word through A. Hence
 * LPS(x).word[i] = XOR_j T_j[byte i of x.word[j]], with
 * T_j[b] = XOR over set bits k of Pi[b] of A_(63 - (8j + k)).
 */
const T_LO = new Int32Array(8 * 256);
const T_HI = new Int32Array(8 * 256);
(() => {
  const aLo = A_ROWS.map((r) => parseInt(r.slice(8), 16) | 0);
  const aHi = A_ROWS.map((r) => parseInt(r.slice(0, 8), 16) | 0);
  for (let j = 0; j < 8; j++) {
    for (let b = 0; b < 256; b++) {
      const s = PI[b];
      let lo = 0;
      let hi = 0;
      for (let k = 0; k < 8; k++) {
        if ((s >>> k) & 1) {
          const row = 63 - (8 * j + k);
          lo ^= aLo[row];
          hi ^= aHi[row];
        }
      }
      T_LO[j * 256 + b] = lo;
      T_HI[j * 256 + b] = hi;
    }
  }
})();

/**
 * out = LPS(x XOR y). `out` may alias neither x nor y (the loop reads all of x and y for every
 * output word). Byte i of word j: i < 4 from the low half, else from the high half.
 */
function lpsx(x: Int32Array, y: Int32Array, out: Int32Array): void {
  const r0l = x[0] ^ y[0], r0h = x[1] ^ y[1];
  const r1l = x[2] ^ y[2], r1h = x[3] ^ y[3];
  const r2l = x[4] ^ y[4], r2h = x[5] ^ y[5];
  const r3l = x[6] ^ y[6], r3h = x[7] ^ y[7];
  const r4l = x[8] ^ y[8], r4h = x[9] ^ y[9];
  const r5l = x[10] ^ y[10], r5h = x[11] ^ y[11];
  const r6l = x[12] ^ y[12], r6h = x[13] ^ y[13];
  const r7l = x[14] ^ y[14], r7h = x[15] ^ y[15];
  const tl = T_LO, th = T_HI;
  // Output words 0..3 take their bytes from the low halves, words 4..7 from the high halves;
  // unrolled because this is the inner loop of everything GOST does.
  {
    const b0 = r0l & 255, b1 = (r1l & 255) | 256, b2 = (r2l & 255) | 512, b3 = (r3l & 255) | 768,
      b4 = (r4l & 255) | 1024, b5 = (r5l & 255) | 1280, b6 = (r6l & 255) | 1536, b7 = (r7l & 255) | 1792;
    out[0] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[1] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = (r0l >>> 8) & 255, b1 = ((r1l >>> 8) & 255) | 256, b2 = ((r2l >>> 8) & 255) | 512, b3 = ((r3l >>> 8) & 255) | 768,
      b4 = ((r4l >>> 8) & 255) | 1024, b5 = ((r5l >>> 8) & 255) | 1280, b6 = ((r6l >>> 8) & 255) | 1536, b7 = ((r7l >>> 8) & 255) | 1792;
    out[2] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[3] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = (r0l >>> 16) & 255, b1 = ((r1l >>> 16) & 255) | 256, b2 = ((r2l >>> 16) & 255) | 512, b3 = ((r3l >>> 16) & 255) | 768,
      b4 = ((r4l >>> 16) & 255) | 1024, b5 = ((r5l >>> 16) & 255) | 1280, b6 = ((r6l >>> 16) & 255) | 1536, b7 = ((r7l >>> 16) & 255) | 1792;
    out[4] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[5] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = r0l >>> 24, b1 = (r1l >>> 24) | 256, b2 = (r2l >>> 24) | 512, b3 = (r3l >>> 24) | 768,
      b4 = (r4l >>> 24) | 1024, b5 = (r5l >>> 24) | 1280, b6 = (r6l >>> 24) | 1536, b7 = (r7l >>> 24) | 1792;
    out[6] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[7] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = r0h & 255, b1 = (r1h & 255) | 256, b2 = (r2h & 255) | 512, b3 = (r3h & 255) | 768,
      b4 = (r4h & 255) | 1024, b5 = (r5h & 255) | 1280, b6 = (r6h & 255) | 1536, b7 = (r7h & 255) | 1792;
    out[8] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[9] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = (r0h >>> 8) & 255, b1 = ((r1h >>> 8) & 255) | 256, b2 = ((r2h >>> 8) & 255) | 512, b3 = ((r3h >>> 8) & 255) | 768,
      b4 = ((r4h >>> 8) & 255) | 1024, b5 = ((r5h >>> 8) & 255) | 1280, b6 = ((r6h >>> 8) & 255) | 1536, b7 = ((r7h >>> 8) & 255) | 1792;
    out[10] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[11] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = (r0h >>> 16) & 255, b1 = ((r1h >>> 16) & 255) | 256, b2 = ((r2h >>> 16) & 255) | 512, b3 = ((r3h >>> 16) & 255) | 768,
      b4 = ((r4h >>> 16) & 255) | 1024, b5 = ((r5h >>> 16) & 255) | 1280, b6 = ((r6h >>> 16) & 255) | 1536, b7 = ((r7h >>> 16) & 255) | 1792;
    out[12] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[13] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
  {
    const b0 = r0h >>> 24, b1 = (r1h >>> 24) | 256, b2 = (r2h >>> 24) | 512, b3 = (r3h >>> 24) | 768,
      b4 = (r4h >>> 24) | 1024, b5 = (r5h >>> 24) | 1280, b6 = (r6h >>> 24) | 1536, b7 = (r7h >>> 24) | 1792;
    out[14] = tl[b0] ^ tl[b1] ^ tl[b2] ^ tl[b3] ^ tl[b4] ^ tl[b5] ^ tl[b6] ^ tl[b7];
    out[15] = th[b0] ^ th[b1] ^ th[b2] ^ th[b3] ^ th[b4] ^ th[b5] ^ th[b6] ^ th[b7];
  }
}

// Scratch vectors of the compression function. JavaScript runs one compression at a time and
// g() never yields, so sharing them across instances is safe and keeps the hot path free of
// allocation.
const K = new Int32Array(16);
const K2 = new Int32Array(16);
const ST = new Int32Array(16);
const ST2 = new Int32Array(16);
const ZERO = new Int32Array(16);

/** RFC 6986 section 7: h <- g_N(h, m) = E(LPS(h ^ N), m) ^ h ^ m. */
function compress(h: Int32Array, n: Int32Array, m: Int32Array): void {
  lpsx(h, n, K); // K_1
  lpsx(K, m, ST); // first round of E: LPSX[K_1](m)
  let k = K, k2 = K2, st = ST, st2 = ST2;
  for (let i = 0; i < 11; i++) {
    lpsx(k, C[i], k2); // K_(i+2) = LPS(K_(i+1) ^ C_(i+1))
    let t = k; k = k2; k2 = t;
    lpsx(st, k, st2);
    t = st; st = st2; st2 = t;
  }
  lpsx(k, C[11], k2); // K_13
  for (let w = 0; w < 16; w++) h[w] ^= st[w] ^ k2[w] ^ m[w];
}

/** v = v + u mod 2^512, both as 16 little-endian 32-bit limbs. */
function add512(v: Int32Array, u: Int32Array): void {
  let carry = 0;
  for (let w = 0; w < 16; w++) {
    const s = (v[w] >>> 0) + (u[w] >>> 0) + carry;
    v[w] = s | 0;
    carry = s > 0xffffffff ? 1 : 0;
  }
}

/** v = v + small mod 2^512 (small < 2^32). */
function addSmall(v: Int32Array, small: number): void {
  let carry = small;
  for (let w = 0; w < 16 && carry !== 0; w++) {
    const s = (v[w] >>> 0) + carry;
    v[w] = s | 0;
    carry = s > 0xffffffff ? 1 : 0;
  }
}

function loadBlock(src: Uint8Array, off: number, m: Int32Array): void {
  for (let w = 0; w < 16; w++) {
    const p = off + 4 * w;
    m[w] = src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24);
  }
}

export type StreebogOutputBits = 512 | 256;

/** Incremental Streebog (RFC 6986 section 8). */
export class Streebog {
  private readonly h = new Int32Array(16);
  private readonly n = new Int32Array(16);
  private readonly sigma = new Int32Array(16);
  private readonly m = new Int32Array(16);
  private readonly buffer = new Uint8Array(64);
  private buffered = 0;
  private finished = false;

  constructor(readonly outputBits: StreebogOutputBits = 512) {
    if (outputBits !== 512 && outputBits !== 256) throw new RangeError('Streebog output is 256 or 512 bits');
    // Stage 1: IV = 0^512 for the 512-bit hash, (00000001)^64 for the 256-bit hash.
    if (outputBits === 256) this.h.fill(0x01010101);
  }

  update(data: Uint8Array): this {
    if (this.finished) throw new Error('Streebog: update after digest');
    let off = 0;
    const len = data.length;
    if (this.buffered > 0) {
      const take = Math.min(64 - this.buffered, len);
      this.buffer.set(data.subarray(0, take), this.buffered);
      this.buffered += take;
      off = take;
      if (this.buffered < 64) return this;
      this.processBlock(this.buffer, 0);
      this.buffered = 0;
    }
    // Stage 2: every complete 512-bit block, in input order (the standard's "rightmost"
    // 512 bits are the first 64 bytes of the byte string).
    for (; off + 64 <= len; off += 64) this.processBlock(data, off);
    if (off < len) {
      this.buffer.set(data.subarray(off), 0);
      this.buffered = len - off;
    }
    return this;
  }

  digest(): Uint8Array {
    if (this.finished) throw new Error('Streebog: digest called twice');
    this.finished = true;
    // Stage 3: pad the remainder (possibly empty) as 0...0 1 || M, i.e. a 0x01 byte after it.
    const last = new Uint8Array(64);
    last.set(this.buffer.subarray(0, this.buffered), 0);
    last[this.buffered] = 0x01;
    loadBlock(last, 0, this.m);
    compress(this.h, this.n, this.m);
    addSmall(this.n, this.buffered * 8);
    add512(this.sigma, this.m);
    compress(this.h, ZERO, this.n);
    compress(this.h, ZERO, this.sigma);
    const out = new Uint8Array(64);
    for (let w = 0; w < 16; w++) {
      const v = this.h[w];
      out[4 * w] = v & 255;
      out[4 * w + 1] = (v >>> 8) & 255;
      out[4 * w + 2] = (v >>> 16) & 255;
      out[4 * w + 3] = (v >>> 24) & 255;
    }
    // The 256-bit hash is MSB_256(h): the most significant half, i.e. bytes 32..63.
    return this.outputBits === 512 ? out : out.slice(32);
  }

  private processBlock(src: Uint8Array, off: number): void {
    loadBlock(src, off, this.m);
    compress(this.h, this.n, this.m);
    addSmall(this.n, 512);
    add512(this.sigma, this.m);
  }
}

/** Streebog-512 of `data`, 64 bytes in the byte order every implementation returns. */
export function streebog512(data: Uint8Array): Uint8Array {
  return new Streebog(512).update(data).digest();
}

/** Streebog-256 of `data`, 32 bytes. */
export function streebog256(data: Uint8Array): Uint8Array {
  return new Streebog(256).update(data).digest();
}
