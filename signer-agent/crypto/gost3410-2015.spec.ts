import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import {
  GOST_2015_512_CURVE,
  GOST_2015_512_FP,
  GostError,
  OID_GOST_2015_512_DIGEST,
  OID_GOST_2015_512_PARAM_SET_A,
  OID_GOST_2015_512_PUBLIC_KEY,
  OID_GOST_2015_512_SIGNATURE,
  createGostVerifier,
  gostDigest,
  gostPublicKeyFromPrivate,
  gostSign,
  gostSignDigest,
  gostVerify,
  gostVerifyDigest,
} from './gost3410-2015';
import {
  certificateSerialHex,
  ncaFile,
  ncaFiles,
  openGostKeystore,
  parseAttachedCms,
  parseGostCertificate,
  parseSignedObject,
} from '../../test/support/nca-gost.fixtures';

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const copy = Uint8Array.from(bytes);
  copy[bit >> 3] ^= 1 << (bit & 7);
  return copy;
};

/** A random valid private key: 64 bytes little-endian d, 0 < d < q. */
const randomPrivateKey = (): Uint8Array => {
  for (;;) {
    const d = randomBytes(64);
    const n = BigInt('0x' + Buffer.from(d).reverse().toString('hex'));
    if (n > 0n && n < GOST_2015_512_CURVE.q) return d;
  }
};

const ca = parseGostCertificate(ncaFile('ca/nca_gost2022_test.cer'));
const userP12 = ncaFiles('gost2015', '.p12');
const individual = openGostKeystore('gost2015/ncanode_individual_gost2015_2022.p12', 'Aa123456');

describe('NCA GOST 2015 test data as this module reads it', () => {
  it('the test CA certificate is a GOST 2015 512-bit paramSetA key, self-describing with the NCA OIDs', () => {
    expect(ca.publicKeyAlgorithm).toBe(OID_GOST_2015_512_PUBLIC_KEY);
    expect(ca.publicKeyParamSet).toBe(OID_GOST_2015_512_PARAM_SET_A);
    expect(ca.publicKey).toHaveLength(128);
  });

  it('has the user certificates to check', () => {
    expect(userP12.length).toBeGreaterThanOrEqual(2);
  });
});

describe("the test CA's GOST signatures verify (r || s and x || y little-endian)", () => {
  it.each(userP12)("CA signature on the certificate in %s", (file) => {
    const { certificate } = openGostKeystore(file, 'Aa123456');
    expect(certificate.signatureAlgorithm).toBe(OID_GOST_2015_512_SIGNATURE);
    expect(certificate.publicKeyAlgorithm).toBe(OID_GOST_2015_512_PUBLIC_KEY);
    expect(gostVerify(ca.publicKey, certificate.tbs, certificate.signature)).toBe(true);
    // the precomputing verifier must give the same answers
    const verifier = createGostVerifier(ca.publicKey);
    expect(verifier(gostDigest(certificate.tbs), certificate.signature)).toBe(true);
  });

  it.each(userP12)('a flipped bit in the TBS or in the signature of %s fails', (file) => {
    const { certificate } = openGostKeystore(file, 'Aa123456');
    const verifier = createGostVerifier(ca.publicKey);
    for (const bit of [0, 77, certificate.tbs.length * 8 - 1]) {
      const tbs = flipBit(certificate.tbs, bit);
      expect(gostVerify(ca.publicKey, tbs, certificate.signature)).toBe(false);
      expect(verifier(gostDigest(tbs), certificate.signature)).toBe(false);
    }
    for (const bit of [0, 511, 512, 1023]) {
      const sig = flipBit(certificate.signature, bit);
      expect(gostVerify(ca.publicKey, certificate.tbs, sig)).toBe(false);
      expect(verifier(gostDigest(certificate.tbs), sig)).toBe(false);
    }
  });

  it('CA signature on crl/nca_gost2022_test.crl, and a flipped bit fails', () => {
    const crl = parseSignedObject(ncaFile('crl/nca_gost2022_test.crl'));
    expect(crl.signatureAlgorithm).toBe(OID_GOST_2015_512_SIGNATURE);
    expect(gostVerify(ca.publicKey, crl.tbs, crl.signature)).toBe(true);
    expect(gostVerify(ca.publicKey, flipBit(crl.tbs, 100), crl.signature)).toBe(false);
    expect(gostVerify(ca.publicKey, crl.tbs, flipBit(crl.signature, 700))).toBe(false);
  });

  it('the RFC 4491 reading (big-endian s || r) does NOT verify NCA data: the convention matters', () => {
    const crl = parseSignedObject(ncaFile('crl/nca_gost2022_test.crl'));
    const rfc4491AsIs = Uint8Array.from(crl.signature).reverse(); // reinterpreting the layout
    expect(gostVerify(ca.publicKey, crl.tbs, rfc4491AsIs)).toBe(false);
    const swapped = new Uint8Array(128);
    swapped.set(crl.signature.subarray(64), 0);
    swapped.set(crl.signature.subarray(0, 64), 64);
    expect(gostVerify(ca.publicKey, crl.tbs, swapped)).toBe(false);
  });

  it("a user's key does not verify the CA's signature", () => {
    const crl = parseSignedObject(ncaFile('crl/nca_gost2022_test.crl'));
    expect(gostVerify(individual.certificate.publicKey, crl.tbs, crl.signature)).toBe(false);
  });
});

describe('the test private key', () => {
  it('is a GOST 2015 key whose d * G is the public key of its certificate', () => {
    expect(individual.privateKeyAlgorithm).toBe(OID_GOST_2015_512_PUBLIC_KEY);
    expect(individual.privateKeyLE).toHaveLength(64);
    expect(Buffer.from(gostPublicKeyFromPrivate(individual.privateKeyLE)).toString('hex')).toBe(
      individual.certificate.publicKey.toString('hex'),
    );
  });

  it.each(userP12)('d * G == Q for %s', (file) => {
    const ks = openGostKeystore(file, 'Aa123456');
    expect(Buffer.from(gostPublicKeyFromPrivate(ks.privateKeyLE)).equals(ks.certificate.publicKey)).toBe(true);
  });

  it("signs so that the certificate's public key verifies, and a flipped bit fails", () => {
    const data = Buffer.from('Payment order 42: 1 000 000,00 KZT', 'utf8');
    const sig = gostSign(individual.privateKeyLE, data);
    expect(sig).toHaveLength(128);
    expect(gostVerify(individual.certificate.publicKey, data, sig)).toBe(true);
    expect(gostVerify(individual.certificate.publicKey, flipBit(data, 3), sig)).toBe(false);
    expect(gostVerify(individual.certificate.publicKey, data, flipBit(sig, 1000))).toBe(false);
    expect(gostVerify(ca.publicKey, data, sig)).toBe(false);
  });

  it('uses a fresh nonce every time: two signatures of the same data differ, both verify', () => {
    const digest = gostDigest(Buffer.from('same'));
    const a = gostSignDigest(individual.privateKeyLE, digest);
    const b = gostSignDigest(individual.privateKeyLE, digest);
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false);
    expect(Buffer.from(a.subarray(0, 64)).equals(Buffer.from(b.subarray(0, 64)))).toBe(false); // r = (kG).x differs
    expect(gostVerifyDigest(individual.certificate.publicKey, digest, a)).toBe(true);
    expect(gostVerifyDigest(individual.certificate.publicKey, digest, b)).toBe(true);
  });
});

describe('the KalkanCrypt CMS (cms/kalkan_rsa+gost2015_attached.p7s), GOST signer at the raw level', () => {
  const cms = parseAttachedCms(ncaFile('cms/kalkan_rsa+gost2015_attached.p7s'));
  const gostSigner = cms.signers.find((s) => s.signatureAlgorithm === OID_GOST_2015_512_SIGNATURE);

  it('carries content.txt and a GOST 2015 signer', () => {
    expect(cms.content.equals(ncaFile('cms/content.txt'))).toBe(true);
    expect(cms.content.toString('latin1')).toBe('test123');
    expect(gostSigner).toBeDefined();
    expect(gostSigner!.digestAlgorithm).toBe(OID_GOST_2015_512_DIGEST);
  });

  it('messageDigest == Streebog-512 of the content, bytes as the hash returns them', () => {
    expect(Buffer.from(gostDigest(ncaFile('cms/content.txt'))).toString('hex')).toBe(
      gostSigner!.messageDigest.toString('hex'),
    );
  });

  it('the signature over Streebog-512(DER of signedAttrs as SET) verifies with the signer certificate', () => {
    const certDer = cms.certificates.find((c) => certificateSerialHex(c) === gostSigner!.issuerAndSerial.serialHex);
    expect(certDer).toBeDefined();
    const cert = parseGostCertificate(certDer!);
    expect(cert.publicKey.equals(individual.certificate.publicKey)).toBe(true);
    // and the CA signed that certificate
    expect(gostVerify(ca.publicKey, cert.tbs, cert.signature)).toBe(true);
    expect(gostSigner!.signature).toHaveLength(128);
    expect(gostVerify(cert.publicKey, gostSigner!.signedAttrsAsSet, gostSigner!.signature)).toBe(true);
    // over the [0]-tagged bytes (not re-tagged), or with a flipped bit, it must fail
    const asTagged = Buffer.from(gostSigner!.signedAttrsAsSet);
    asTagged[0] = 0xa0;
    expect(gostVerify(cert.publicKey, asTagged, gostSigner!.signature)).toBe(false);
    expect(gostVerify(cert.publicKey, gostSigner!.signedAttrsAsSet, flipBit(gostSigner!.signature, 5))).toBe(false);
  });
});

describe('round trips with random keys', () => {
  it('sign/verify, plain and precomputed verifier agree; other data or other key fails', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.uint8Array({ minLength: 1, maxLength: 50 }), (data, other) => {
        const d = randomPrivateKey();
        const q = gostPublicKeyFromPrivate(d);
        const sig = gostSign(d, data);
        expect(gostVerify(q, data, sig)).toBe(true);
        const verify = createGostVerifier(q);
        expect(verify(gostDigest(data), sig)).toBe(true);
        const different = Buffer.concat([data, other]);
        expect(gostVerify(q, different, sig)).toBe(false);
        const otherKey = gostPublicKeyFromPrivate(randomPrivateKey());
        expect(gostVerify(otherKey, data, sig)).toBe(false);
      }),
      { numRuns: 6 },
    );
  });

  it('zero-length data signs and verifies', () => {
    const d = randomPrivateKey();
    const sig = gostSign(d, new Uint8Array(0));
    expect(gostVerify(gostPublicKeyFromPrivate(d), new Uint8Array(0), sig)).toBe(true);
    expect(gostVerify(gostPublicKeyFromPrivate(d), new Uint8Array(1), sig)).toBe(false);
  });

  it('a digest whose integer is 0 mod q is signed with e = 1 (GOST R 34.10-2012 6.1 step 2)', () => {
    const d = randomPrivateKey();
    const q = gostPublicKeyFromPrivate(d);
    const zero = new Uint8Array(64);
    const qLE = Buffer.from(GOST_2015_512_CURVE.q.toString(16).padStart(128, '0'), 'hex').reverse();
    const one = new Uint8Array(64);
    one[0] = 1;
    const sig = gostSignDigest(d, zero);
    expect(gostVerifyDigest(q, zero, sig)).toBe(true);
    expect(gostVerifyDigest(q, qLE, sig)).toBe(true); // q mod q = 0, so e = 1 as well
    expect(gostVerifyDigest(q, one, sig)).toBe(true); // e = 1 literally
  });
});

describe('rejections', () => {
  const d = randomPrivateKey();
  const q = gostPublicKeyFromPrivate(d);
  const digest = gostDigest(Buffer.from('x'));
  const sig = gostSignDigest(d, digest);

  const code = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(GostError);
      return (e as GostError).code;
    }
    return undefined;
  };

  it('private keys of the wrong length or out of range: INVALID_KEY', () => {
    expect(code(() => gostSignDigest(new Uint8Array(63), digest))).toBe('INVALID_KEY');
    expect(code(() => gostSignDigest(new Uint8Array(65), digest))).toBe('INVALID_KEY');
    expect(code(() => gostSignDigest(new Uint8Array(64), digest))).toBe('INVALID_KEY'); // d = 0
    const qLE = Buffer.from(GOST_2015_512_CURVE.q.toString(16).padStart(128, '0'), 'hex').reverse();
    expect(code(() => gostSignDigest(qLE, digest))).toBe('INVALID_KEY'); // d = q
    expect(code(() => gostPublicKeyFromPrivate(new Uint8Array(32)))).toBe('INVALID_KEY');
  });

  it('public keys of the wrong length, off the curve, or the big-endian reading: INVALID_KEY', () => {
    expect(code(() => gostVerifyDigest(q.subarray(0, 127), digest, sig))).toBe('INVALID_KEY');
    expect(code(() => gostVerifyDigest(new Uint8Array(128), digest, sig))).toBe('INVALID_KEY');
    expect(code(() => gostVerifyDigest(flipBit(q, 9), digest, sig))).toBe('INVALID_KEY');
    expect(code(() => createGostVerifier(flipBit(q, 600)))).toBe('INVALID_KEY');
    const bigEndian = new Uint8Array(128);
    bigEndian.set(Uint8Array.from(q.subarray(0, 64)).reverse(), 0);
    bigEndian.set(Uint8Array.from(q.subarray(64)).reverse(), 64);
    expect(code(() => gostVerifyDigest(bigEndian, digest, sig))).toBe('INVALID_KEY');
  });

  it('signatures of the wrong length: INVALID_SIGNATURE_FORMAT', () => {
    expect(code(() => gostVerifyDigest(q, digest, sig.subarray(0, 127)))).toBe('INVALID_SIGNATURE_FORMAT');
    expect(code(() => gostVerifyDigest(q, digest, new Uint8Array(129)))).toBe('INVALID_SIGNATURE_FORMAT');
    expect(code(() => gostVerifyDigest(q, digest, new Uint8Array(0)))).toBe('INVALID_SIGNATURE_FORMAT');
    expect(code(() => createGostVerifier(q)(digest, new Uint8Array(64)))).toBe('INVALID_SIGNATURE_FORMAT');
  });

  it('digests that are not 64 bytes: INVALID_DIGEST', () => {
    expect(code(() => gostSignDigest(d, new Uint8Array(32)))).toBe('INVALID_DIGEST');
    expect(code(() => gostVerifyDigest(q, new Uint8Array(65), sig))).toBe('INVALID_DIGEST');
  });

  it('r or s of 0 or >= q is an invalid signature (false), not an exception', () => {
    const qLE = Buffer.from(GOST_2015_512_CURVE.q.toString(16).padStart(128, '0'), 'hex').reverse();
    const withR = (r: Uint8Array): Uint8Array => Buffer.concat([r, sig.subarray(64)]);
    const withS = (s: Uint8Array): Uint8Array => Buffer.concat([sig.subarray(0, 64), s]);
    expect(gostVerifyDigest(q, digest, sig)).toBe(true);
    expect(gostVerifyDigest(q, digest, withR(new Uint8Array(64)))).toBe(false);
    expect(gostVerifyDigest(q, digest, withS(new Uint8Array(64)))).toBe(false);
    expect(gostVerifyDigest(q, digest, withR(qLE))).toBe(false);
    expect(gostVerifyDigest(q, digest, withS(qLE))).toBe(false);
    expect(gostVerifyDigest(q, digest, new Uint8Array(128).fill(0xff))).toBe(false);
  });
});

describe('the specialised field p = 2^512 - 569 agrees with plain BigInt arithmetic', () => {
  const { p } = GOST_2015_512_CURVE;
  const mod = (x: bigint): bigint => ((x % p) + p) % p;
  // Structured operands reach the rare branches of the reduction (a second fold that still
  // exceeds p, sums equal to p, differences of 0) that random ones almost never do.
  const edges: bigint[] = [0n, 1n, 2n, 568n, 569n, 570n, p - 1n, p - 2n, p - 569n, p - 570n, (1n << 511n) - 1n, 1n << 511n,
    (1n << 511n) + 284n, (1n << 256n) - 1n, 1n << 256n, p >> 1n, (p >> 1n) + 1n, 569n * 569n, p - 569n * 569n];
  const field = fc.bigInt({ min: 0n, max: p - 1n });
  const operand = fc.oneof(fc.constantFrom(...edges), field);

  it('mul, sqr, add, sub on edge operands', () => {
    for (const a of edges) {
      for (const b of edges) {
        expect(GOST_2015_512_FP.mul(a, b)).toBe(mod(a * b));
        expect(GOST_2015_512_FP.add(a, b)).toBe(mod(a + b));
        expect(GOST_2015_512_FP.sub(a, b)).toBe(mod(a - b));
      }
      expect(GOST_2015_512_FP.sqr(a)).toBe(mod(a * a));
    }
  });

  it('mul, sqr, add, sub on random operands', () => {
    fc.assert(
      fc.property(operand, operand, (a, b) => {
        expect(GOST_2015_512_FP.mul(a, b)).toBe(mod(a * b));
        expect(GOST_2015_512_FP.sqr(a)).toBe(mod(a * a));
        expect(GOST_2015_512_FP.add(a, b)).toBe(mod(a + b));
        expect(GOST_2015_512_FP.sub(a, b)).toBe(mod(a - b));
      }),
      { numRuns: 2000 },
    );
  });

  it('products whose second fold lands in [p, 2^512 + 570 * 569) are reduced once more', () => {
    // a * b = 2^512 - 1 + k p for some k would be ideal; instead search a few products that
    // take the final subtraction, to be sure the branch is exercised at all.
    let hits = 0;
    for (let i = 1n; i < 4000n && hits < 3; i++) {
      const a = p - i;
      const b = p - 1n; // a * b = i (mod p), while a * b itself is close to p^2
      const x0 = a * b;
      const mask = (1n << 512n) - 1n;
      let x = (x0 & mask) + (x0 >> 512n) * 569n;
      x = (x & mask) + (x >> 512n) * 569n;
      if (x >= p) {
        hits++;
        expect(GOST_2015_512_FP.mul(a, b)).toBe(mod(x0));
      }
    }
    expect(hits).toBeGreaterThan(0);
  });
});
