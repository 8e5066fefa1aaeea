import fc from 'fast-check';
import { Streebog, streebog256, streebog512 } from './streebog.hash';

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
/** RFC 6986 prints vectors as big numbers; byte strings are their reversal (see the module header). */
const rfcNumber = (h: string): Buffer => Buffer.from(h, 'hex').reverse();

// RFC 6986 section 10.1 (M1) and 10.2 (M2), verbatim as printed there.
const M1 = '323130393837363534333231303938373635343332313039383736353433323130393837363534333231303938373635343332313039383736353433323130';
const M2 =
  'fbe2e5f0eee3c820fbeafaebef20fffbf0e1e0f0f520e0ed20e8ece0ebe5f0f2f120fff0eeec20f120faf2fee5e2202ce8f6f3ede220e8e6eee1e8f0f2d1202ce8f0f2e5e220e5d1';
const H512_M1 =
  '486f64c1917879417fef082b3381a4e211c324f074654c38823a7b76f830ad00fa1fbae42b1285c0352f227524bc9ab16254288dd6863dccd5b9f54a1ad0541b';
const H256_M1 = '00557be5e584fd52a449b16b0251d05d27f94ab76cbaa6da890b59d8ef1e159d';
const H512_M2 =
  '28fbc9bada033b1460642bdcddb90c3fb3e56c497ccd0f62b8a2ad4935e85f037613966de4ee00531ae60f3b5a47f8dae06915d5f2f194996fcabf2622e6881e';
const H256_M2 = '508f7e553c06501d749a66fc28c6cac0b005746d97537fa85d9e40904efed29d';

describe('Streebog (RFC 6986 test vectors)', () => {
  it('M1 is the ASCII digits "0123...012" once the RFC number is reversed', () => {
    expect(rfcNumber(M1).toString('latin1')).toBe('012345678901234567890123456789012345678901234567890123456789012');
  });

  it('hashes M1 to the RFC 512- and 256-bit values', () => {
    expect(hex(streebog512(rfcNumber(M1)))).toBe(hex(rfcNumber(H512_M1)));
    expect(hex(streebog256(rfcNumber(M1)))).toBe(hex(rfcNumber(H256_M1)));
  });

  it('hashes M2 (72 bytes, two blocks) to the RFC 512- and 256-bit values', () => {
    expect(hex(streebog512(rfcNumber(M2)))).toBe(hex(rfcNumber(H512_M2)));
    expect(hex(streebog256(rfcNumber(M2)))).toBe(hex(rfcNumber(H256_M2)));
  });

  it('returns 64 and 32 bytes', () => {
    expect(streebog512(new Uint8Array(0))).toHaveLength(64);
    expect(streebog256(new Uint8Array(0))).toHaveLength(32);
  });

  it('refuses to be used after digest', () => {
    const h = new Streebog();
    h.update(new Uint8Array(3));
    h.digest();
    expect(() => h.update(new Uint8Array(1))).toThrow();
    expect(() => h.digest()).toThrow();
  });
});

/**
 * A literal, slow transcription of RFC 6986 on BigInt (S, P, L as separate steps, the
 * 512-bit additions as BigInt arithmetic). It shares no code or table with the module, so
 * agreement on random inputs of every length exercises paths the two RFC vectors do not:
 * the empty message, exact multiples of 64 bytes, many blocks, carries in N and Sigma.
 */
function referenceStreebog(msg: Uint8Array, bits: 512 | 256): Uint8Array {
  const PI = PI_REF;
  const MASK = (1n << 512n) - 1n;
  const toBytes = (v: bigint): Uint8Array => {
    const out = new Uint8Array(64);
    for (let i = 0; i < 64; i++) out[i] = Number((v >> BigInt(8 * i)) & 0xffn);
    return out;
  };
  const fromBytes = (b: Uint8Array): bigint => {
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    return v;
  };
  const S = (b: Uint8Array): Uint8Array => b.map((x) => PI[x]);
  const P = (b: Uint8Array): Uint8Array => {
    // a_63..a_0 -> a_tau(63)..a_tau(0), tau(i) = 8 (i mod 8) + floor(i / 8)
    const out = new Uint8Array(64);
    for (let i = 0; i < 64; i++) out[i] = b[8 * (i % 8) + Math.floor(i / 8)];
    return out;
  };
  const L = (b: Uint8Array): Uint8Array => {
    const v = fromBytes(b);
    let r = 0n;
    for (let w = 0; w < 8; w++) {
      const word = (v >> BigInt(64 * w)) & 0xffffffffffffffffn;
      let acc = 0n;
      for (let i = 0; i < 64; i++) if ((word >> BigInt(63 - i)) & 1n) acc ^= A_REF[i];
      r |= acc << BigInt(64 * w);
    }
    return toBytes(r);
  };
  const X = (a: bigint, b: bigint): bigint => a ^ b;
  const LPS = (v: bigint): bigint => fromBytes(L(P(S(toBytes(v)))));
  const E = (k: bigint, m: bigint): bigint => {
    let state = m;
    let key = k;
    for (let i = 0; i < 12; i++) {
      state = LPS(X(state, key));
      key = LPS(X(key, C_REF[i]));
    }
    return X(state, key);
  };
  const g = (n: bigint, h: bigint, m: bigint): bigint => E(LPS(X(h, n)), m) ^ h ^ m;
  let h = bits === 512 ? 0n : fromBytes(new Uint8Array(64).fill(1));
  let N = 0n;
  let sigma = 0n;
  let off = 0;
  while (msg.length - off >= 64) {
    const m = fromBytes(msg.subarray(off, off + 64));
    h = g(N, h, m);
    N = (N + 512n) & MASK;
    sigma = (sigma + m) & MASK;
    off += 64;
  }
  const rest = msg.subarray(off);
  const m = fromBytes(rest) | (1n << BigInt(8 * rest.length));
  h = g(N, h, m);
  N = (N + BigInt(8 * rest.length)) & MASK;
  sigma = (sigma + m) & MASK;
  h = g(0n, h, N);
  h = g(0n, h, sigma);
  const out = toBytes(h);
  return bits === 512 ? out : out.slice(32);
}

const PI_REF = [
  252, 238, 221, 17, 207, 110, 49, 22, 251, 196, 250, 218, 35, 197, 4, 77, 233, 119, 240, 219, 147, 46, 153, 186, 23, 54,
  241, 187, 20, 205, 95, 193, 249, 24, 101, 90, 226, 92, 239, 33, 129, 28, 60, 66, 139, 1, 142, 79, 5, 132, 2, 174, 227,
  106, 143, 160, 6, 11, 237, 152, 127, 212, 211, 31, 235, 52, 44, 81, 234, 200, 72, 171, 242, 42, 104, 162, 253, 58, 206,
  204, 181, 112, 14, 86, 8, 12, 118, 18, 191, 114, 19, 71, 156, 183, 93, 135, 21, 161, 150, 41, 16, 123, 154, 199, 243,
  145, 120, 111, 157, 158, 178, 177, 50, 117, 25, 61, 255, 53, 138, 126, 109, 84, 198, 128, 195, 189, 13, 87, 223, 245,
  36, 169, 62, 168, 67, 201, 215, 121, 214, 246, 124, 34, 185, 3, 224, 15, 236, 222, 122, 148, 176, 188, 220, 232, 40, 80,
  78, 51, 10, 74, 167, 151, 96, 115, 30, 0, 98, 68, 26, 184, 56, 130, 100, 159, 38, 65, 173, 69, 70, 146, 39, 94, 85, 47,
  140, 163, 165, 125, 105, 213, 149, 59, 7, 88, 179, 64, 134, 172, 29, 247, 48, 55, 107, 228, 136, 217, 231, 137, 225, 27,
  131, 73, 76, 63, 248, 254, 141, 83, 170, 144, 202, 216, 133, 97, 32, 113, 103, 164, 45, 43, 9, 91, 203, 155, 37, 208,
  190, 229, 108, 82, 89, 166, 116, 210, 230, 244, 180, 192, 209, 102, 175, 194, 57, 75, 99, 182,
];
const A_REF = [
  0x8e20faa72ba0b470n, 0x47107ddd9b505a38n, 0xad08b0e0c3282d1cn, 0xd8045870ef14980en, 0x6c022c38f90a4c07n,
  0x3601161cf205268dn, 0x1b8e0b0e798c13c8n, 0x83478b07b2468764n, 0xa011d380818e8f40n, 0x5086e740ce47c920n,
  0x2843fd2067adea10n, 0x14aff010bdd87508n, 0x0ad97808d06cb404n, 0x05e23c0468365a02n, 0x8c711e02341b2d01n,
  0x46b60f011a83988en, 0x90dab52a387ae76fn, 0x486dd4151c3dfdb9n, 0x24b86a840e90f0d2n, 0x125c354207487869n,
  0x092e94218d243cban, 0x8a174a9ec8121e5dn, 0x4585254f64090fa0n, 0xaccc9ca9328a8950n, 0x9d4df05d5f661451n,
  0xc0a878a0a1330aa6n, 0x60543c50de970553n, 0x302a1e286fc58ca7n, 0x18150f14b9ec46ddn, 0x0c84890ad27623e0n,
  0x0642ca05693b9f70n, 0x0321658cba93c138n, 0x86275df09ce8aaa8n, 0x439da0784e745554n, 0xafc0503c273aa42an,
  0xd960281e9d1d5215n, 0xe230140fc0802984n, 0x71180a8960409a42n, 0xb60c05ca30204d21n, 0x5b068c651810a89en,
  0x456c34887a3805b9n, 0xac361a443d1c8cd2n, 0x561b0d22900e4669n, 0x2b838811480723ban, 0x9bcf4486248d9f5dn,
  0xc3e9224312c8c1a0n, 0xeffa11af0964ee50n, 0xf97d86d98a327728n, 0xe4fa2054a80b329cn, 0x727d102a548b194en,
  0x39b008152acb8227n, 0x9258048415eb419dn, 0x492c024284fbaec0n, 0xaa16012142f35760n, 0x550b8e9e21f7a530n,
  0xa48b474f9ef5dc18n, 0x70a6a56e2440598en, 0x3853dc371220a247n, 0x1ca76e95091051adn, 0x0edd37c48a08a6d8n,
  0x07e095624504536cn, 0x8d70c431ac02a736n, 0xc83862965601dd1bn, 0x641c314b2b8ee083n,
];
const C_REF = [
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
].map((h) => BigInt('0x' + h));

describe('Streebog against a literal BigInt transcription of RFC 6986', () => {
  it('the reference itself reproduces the RFC vectors (so it is a valid oracle)', () => {
    expect(hex(referenceStreebog(rfcNumber(M2), 512))).toBe(hex(rfcNumber(H512_M2)));
    expect(hex(referenceStreebog(rfcNumber(M1), 256))).toBe(hex(rfcNumber(H256_M1)));
  });

  it('agrees on the empty message and on exact multiples of the block size', () => {
    for (const len of [0, 1, 63, 64, 65, 128, 191, 192]) {
      const msg = new Uint8Array(len).map((_, i) => (i * 37 + len) & 255);
      expect(hex(streebog512(msg))).toBe(hex(referenceStreebog(msg, 512)));
      expect(hex(streebog256(msg))).toBe(hex(referenceStreebog(msg, 256)));
    }
  });

  it('agrees on all-0xff blocks (carries through every limb of Sigma)', () => {
    const msg = new Uint8Array(64 * 3 + 5).fill(0xff);
    expect(hex(streebog512(msg))).toBe(hex(referenceStreebog(msg, 512)));
  });

  it('agrees on random messages fed in random pieces', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.array(fc.nat({ max: 300 }), { maxLength: 5 }),
        (msg, cuts) => {
          const h = new Streebog(512);
          const points = [...new Set(cuts.map((c) => c % (msg.length + 1)))].sort((a, b) => a - b);
          let prev = 0;
          for (const p of points) {
            h.update(msg.subarray(prev, p));
            prev = p;
          }
          h.update(msg.subarray(prev));
          expect(hex(h.digest())).toBe(hex(referenceStreebog(msg, 512)));
        },
      ),
      { numRuns: 40 },
    );
  });
});
