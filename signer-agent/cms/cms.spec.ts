import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { at, CA, CRL, crls, nca, P12, readP12, testTrust } from '../../test/fixtures/nca/fixtures';
import { openPkcs12 } from '../keystore/pkcs12.reader';
import { cmsSignerSerials, parseCms } from './cms.parser';
import { signDocument } from './cms.signer';
import { verifyCms, verifySignerCryptography } from './cms.verifier';

const trust = testTrust();
const DOC = Buffer.from('<payment><amount>7745.70</amount><purpose>Оплата по счёту №12</purpose></payment>\n', 'utf8');
const SIGN_AT = at('2021-06-01T10:00:00Z');
const key = (p: { path: string; password: string }) => openPkcs12(readP12(p), p.password);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cms-spec-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl cms -verify` exactly as the issue states it; returns [exit status, stderr]. */
function opensslVerify(cms: Buffer, content: Buffer, when: Date): [number | null, string] {
  const sig = join(dir, `sig-${Math.random()}.p7s`);
  const doc = join(dir, `doc-${Math.random()}.bin`);
  writeFileSync(sig, cms);
  writeFileSync(doc, content);
  const r = spawnSync('openssl', [
    'cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', doc,
    '-CAfile', CA.rsa, '-partial_chain', '-attime', String(Math.floor(when.getTime() / 1000)), '-out', '/dev/null',
  ]);
  return [r.status, r.stderr.toString()];
}

describe('RSA detached CMS', () => {
  it('signs; our verifier and OpenSSL both accept it, OpenSSL refuses other bytes', () => {
    const { cms, signingTime } = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust });
    expect(signingTime.toISOString()).toBe('2021-06-01T10:00:00.000Z');
    const result = verifyCms(cms, { content: DOC, trust, at: at('2021-07-01T00:00:00Z') });
    expect(result).toMatchObject({ valid: true, attached: false });
    expect(result.signers[0]).toMatchObject({
      iin: '123456789011', bin: null, algorithm: 'RSA-SHA256', signingTime: '2021-06-01T10:00:00.000Z',
      serial: '4279390A141F5353A62947B61ED65E81741467D1', verdict: 'valid', code: null,
    });
    expect(opensslVerify(cms, DOC, at('2021-07-01T00:00:00Z'))[0]).toBe(0);
    const [status, stderr] = opensslVerify(cms, Buffer.concat([DOC, Buffer.from(' ')]), at('2021-07-01T00:00:00Z'));
    expect(status).not.toBe(0);
    expect(stderr).toMatch(/content verify error/);
  });

  it('writes contentType, signingTime (= the signing moment) and messageDigest; issuer copied verbatim', () => {
    const k = key(P12.rsaSign2021);
    const { cms } = signDocument({ key: k, content: DOC, signingTime: SIGN_AT, trust });
    const parsed = parseCms(cms);
    expect(parsed.content).toBeNull();
    expect(parsed.certificatesRaw[0].equals(k.certificateDer)).toBe(true);
    const si = parsed.signerInfos[0];
    expect([...si.attributes.keys()].sort()).toEqual(['1.2.840.113549.1.9.3', '1.2.840.113549.1.9.4', '1.2.840.113549.1.9.5']);
    expect(si.attributes.get('1.2.840.113549.1.9.5')![0].time().toISOString()).toBe('2021-06-01T10:00:00.000Z');
    expect('issuerDer' in si.sid && si.sid.issuerDer.equals(k.certificate.issuerDer)).toBe(true);
    const printed = execFileSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER'], { input: cms }).toString();
    expect(printed).toMatch(/signingTime[\s\S]*Jun {2}1 10:00:00 2021 GMT/);
  });

  it("verifySignerCryptography (the pipeline's check of what the agent returns): the named signer over these bytes, nothing else", () => {
    const { cms } = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust });
    const serial = '4279390A141F5353A62947B61ED65E81741467D1';
    expect(verifySignerCryptography(cms, DOC, serial)).toBeNull();
    expect(verifySignerCryptography(cms, Buffer.from('other'), serial)).toMatchObject({ code: 'DIGEST_MISMATCH' });
    expect(verifySignerCryptography(cms, DOC, '01')).toMatchObject({ code: 'CHAIN_UNTRUSTED', message: expect.stringContaining('no signer with certificate serial 01') });
    const broken = Buffer.from(cms);
    broken[broken.length - 1] ^= 0x01;
    expect(verifySignerCryptography(broken, DOC, serial)).toMatchObject({ code: 'BAD_SIGNATURE' });
  });

  it('our verifier: DIGEST_MISMATCH for other bytes, BAD_SIGNATURE for a broken signature value', () => {
    const { cms } = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust });
    expect(verifyCms(cms, { content: Buffer.from('other'), trust, at: SIGN_AT }).signers[0].code).toBe('DIGEST_MISMATCH');
    const broken = Buffer.from(cms);
    broken[broken.length - 1] ^= 0x01; // last byte of the signature OCTET STRING
    expect(verifyCms(broken, { content: DOC, trust, at: SIGN_AT })).toMatchObject({ valid: false, signers: [{ code: 'BAD_SIGNATURE' }] });
  });

  it('verify judges at the signing-time and at --at: CERT_EXPIRED when verified after the certificate expired', () => {
    const { cms } = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust });
    expect(verifyCms(cms, { content: DOC, trust, at: at('2022-09-01T00:00:00Z') }).signers[0].code).toBe('CERT_EXPIRED');
  });

  it('sign refuses an expired certificate, a revoked one, an AUTH key and an untrusted chain, each with its code', () => {
    const refuse = (p: { path: string; password: string }, when: string, extra: object = {}) => {
      try {
        signDocument({ key: key(p), content: DOC, signingTime: at(when), trust, ...extra });
        return 'signed';
      } catch (err) {
        return (err as { code: string }).code;
      }
    };
    expect(refuse(P12.rsaSign2021, '2022-09-01T00:00:00Z')).toBe('CERT_EXPIRED');
    expect(refuse(P12.rsaSign2021, '2020-09-01T00:00:00Z')).toBe('CERT_NOT_YET_VALID');
    expect(refuse(P12.rsaSignRevoked, '2022-09-01T00:00:00Z', { crls: crls(CRL.rsa) })).toBe('CERT_REVOKED');
    expect(refuse(P12.rsaAuthRevoked, '2022-09-01T00:00:00Z')).toBe('NOT_A_SIGNING_KEY');
    expect(refuse(P12.rsaSign2021, '2021-06-01T00:00:00Z', { trust: { anchors: [], sources: [] } })).toBe('CHAIN_UNTRUSTED');
    expect(refuse(P12.rsaSign2021, '2021-06-01T00:00:00Z', { requireRevocation: true })).toBe('REVOCATION_UNKNOWN');
  });

  it('co-signing keeps the first SignerInfo byte for byte; OpenSSL verifies both signers', () => {
    const first = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust }).cms;
    const second = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: at('2021-06-02T09:00:00Z'), trust, cosign: first }).cms;
    const a = parseCms(first);
    const b = parseCms(second);
    expect(b.signerInfos).toHaveLength(2);
    expect(b.signerInfos[0].raw.equals(a.signerInfos[0].raw)).toBe(true);
    expect(b.certificatesRaw).toHaveLength(1); // the same certificate is not added twice
    const r = verifyCms(second, { content: DOC, trust, at: at('2021-07-01T00:00:00Z') });
    expect(r.valid).toBe(true);
    expect(r.signers.map((s) => s.signingTime)).toEqual(['2021-06-01T10:00:00.000Z', '2021-06-02T09:00:00.000Z']);
    const [status, stderr] = opensslVerify(second, DOC, at('2021-07-01T00:00:00Z'));
    expect([status, stderr]).toEqual([0, expect.stringContaining('Verification successful')]);
  });

  it('refuses to co-sign a CMS made over other bytes (DIGEST_MISMATCH)', () => {
    const first = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: SIGN_AT, trust }).cms;
    expect(() => signDocument({ key: key(P12.rsaSign2021), content: Buffer.from('x'), signingTime: SIGN_AT, trust, cosign: first })).toThrow(
      expect.objectContaining({ code: 'DIGEST_MISMATCH' }),
    );
  });
});

describe('KalkanCrypt CMS (real NCA files)', () => {
  it('kalkan_rsa_attached.p7s: the signature verifies; the certificate had expired at its signing time -> CERT_EXPIRED', () => {
    const cms = readFileSync(nca('cms', 'kalkan_rsa_attached.p7s'));
    const r = verifyCms(cms, { trust, at: at('2022-09-29T00:00:00Z') });
    expect(r.attached).toBe(true);
    expect(r.signers[0]).toMatchObject({ algorithm: 'RSA-SHA256', signingTime: '2022-09-28T14:40:30.000Z', code: 'CERT_EXPIRED' });
    // Crypto passed (the expiry is judged after it): other content is a DIGEST_MISMATCH instead.
    expect(verifyCms(cms, { content: Buffer.from('test124'), trust, at: at('2022-09-29T00:00:00Z') }).signers[0].code).toBe('DIGEST_MISMATCH');
  });

  it('kalkan_rsa+gost2015_attached.p7s judged 2022-09-28: GOST signer valid, RSA signer CERT_EXPIRED', () => {
    const cms = readFileSync(nca('cms', 'kalkan_rsa+gost2015_attached.p7s'));
    const r = verifyCms(cms, { trust, at: at('2022-09-28T00:00:00Z'), crls: crls(CRL.gost2022, CRL.rsa) });
    expect(r.valid).toBe(false);
    expect(r.signers).toMatchObject([
      { algorithm: 'GOST34.10-2015-512', iin: '123456789012', verdict: 'valid', code: null },
      { algorithm: 'RSA-SHA256', iin: '123456789011', verdict: 'invalid', code: 'CERT_EXPIRED' },
    ]);
    const detached = verifyCms(cms, { content: readFileSync(nca('cms', 'content.txt')), trust, at: at('2022-09-28T00:00:00Z') });
    expect(detached.signers[0].verdict).toBe('valid');
    expect(verifyCms(cms, { content: Buffer.from('test124'), trust, at: at('2022-09-28T00:00:00Z') }).signers.map((s) => s.code)).toEqual([
      'DIGEST_MISMATCH',
      'DIGEST_MISMATCH',
    ]);
  });
});

describe('GOST 34.10-2015 detached CMS', () => {
  const GOST_AT = at('2022-09-01T00:00:00Z');
  it('has the structure of the KalkanCrypt CMS and verifies', () => {
    const { cms } = signDocument({ key: key(P12.gostIndividual), content: DOC, signingTime: GOST_AT, trust });
    const si = parseCms(cms).signerInfos[0];
    const kalkan = parseCms(readFileSync(nca('cms', 'kalkan_rsa+gost2015_attached.p7s'))).signerInfos[0];
    expect([si.digestAlgorithm, si.signatureAlgorithm]).toEqual([kalkan.digestAlgorithm, kalkan.signatureAlgorithm]);
    expect([...si.attributes.keys()].sort()).toEqual([...kalkan.attributes.keys()].sort());
    expect(si.signature).toHaveLength(128);
    expect(verifyCms(cms, { content: DOC, trust, at: at('2022-10-01T00:00:00Z'), crls: crls(CRL.gost2022) }).signers[0]).toMatchObject({
      verdict: 'valid', algorithm: 'GOST34.10-2015-512', revocation: 'good',
    });
    const broken = Buffer.from(cms);
    broken[broken.length - 40] ^= 0x01;
    expect(verifyCms(broken, { content: DOC, trust, at: GOST_AT }).signers[0].code).toBe('BAD_SIGNATURE');
  });

  it('co-signing both ways keeps the existing SignerInfo verbatim and both signers verify', () => {
    const rsaAt = at('2021-12-01T00:00:00Z');
    // Judged where both certificates are valid is impossible (RSA 2021-01..2022-01, GOST 2022-07..): judge each at its own moment.
    const rsaFirst = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: rsaAt, trust }).cms;
    const rsaThenGost = signDocument({ key: key(P12.gostIndividual), content: DOC, signingTime: GOST_AT, trust, cosign: rsaFirst }).cms;
    expect(parseCms(rsaThenGost).signerInfos[0].raw.equals(parseCms(rsaFirst).signerInfos[0].raw)).toBe(true);
    const gostFirst = signDocument({ key: key(P12.gostIndividual), content: DOC, signingTime: GOST_AT, trust }).cms;
    const gostThenRsa = signDocument({ key: key(P12.rsaSign2021), content: DOC, signingTime: rsaAt, trust, cosign: gostFirst }).cms;
    expect(parseCms(gostThenRsa).signerInfos[0].raw.equals(parseCms(gostFirst).signerInfos[0].raw)).toBe(true);
    // Who signed, read cheaply (no certificate parsed): each SignerInfo's certificate serial, in order.
    const serialOf = (cms: Buffer) => parseCms(cms).certificates.map((c) => c.serial);
    expect(cmsSignerSerials(rsaThenGost)).toEqual([...serialOf(rsaFirst), ...serialOf(signDocument({ key: key(P12.gostIndividual), content: DOC, signingTime: GOST_AT, trust }).cms)]);
    expect(cmsSignerSerials(gostFirst)).toEqual(serialOf(gostFirst));
    expect(() => cmsSignerSerials(Buffer.from('not a cms'))).toThrow(expect.objectContaining({ code: 'INPUT_UNREADABLE' }));
    for (const cms of [rsaThenGost, gostThenRsa]) {
      const r = verifyCms(cms, { content: DOC, trust, at: at('2022-09-02T00:00:00Z') });
      const byAlg = Object.fromEntries(r.signers.map((s) => [s.algorithm, s.code]));
      // Both signatures are cryptographically sound; the RSA certificate has expired by the verification moment.
      expect(byAlg).toEqual({ 'GOST34.10-2015-512': null, 'RSA-SHA256': 'CERT_EXPIRED' });
      const digestsOnly = verifyCms(cms, { content: Buffer.from('x'), trust, at: at('2022-09-02T00:00:00Z') });
      expect(digestsOnly.signers.map((s) => s.code)).toEqual(['DIGEST_MISMATCH', 'DIGEST_MISMATCH']);
    }
  });
});
