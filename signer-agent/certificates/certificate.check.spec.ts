import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import forge from 'node-forge';
import { at, CA, CRL, crls, P12, readP12, testTrust } from '../../test/fixtures/nca/fixtures';
import { makeTestPki, testCrlNumber, type TestPkiOptions } from '../../scripts/make-test-pki';
import { openPkcs12 } from '../keystore/pkcs12.reader';
import { checkCertificate } from './certificate.check';
import { parseCrl } from './crl.parser';
import { verifyIssuedSignature } from './signature.verify';
import { followedCrls, loadCrls, loadTrustStore } from './trust.store';

const cert = (p: { path: string; password: string }) => openPkcs12(readP12(p), p.password).certificate;
const trust = testTrust();

describe('checkCertificate on the real NCA RSA test certificates', () => {
  const sign2021 = cert(P12.rsaSign2021);

  it('valid inside its window (2021-06-01), with revocation unchecked when no CRL is given', () => {
    const r = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z') });
    expect(r).toMatchObject({ ok: true, code: null, revocation: 'unchecked' });
    expect(r.warnings.join()).toMatch(/revocation unchecked/);
    expect(r.chain.map((c) => c.serial)).toHaveLength(2);
  });

  it('REVOCATION_UNKNOWN instead of a warning when revocation is required', () => {
    const r = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), requireRevocation: true });
    expect(r.code).toBe('REVOCATION_UNKNOWN');
  });

  it('CERT_EXPIRED after its window, CERT_NOT_YET_VALID before it', () => {
    expect(checkCertificate(sign2021, { trust, at: at('2022-01-19T00:00:00Z') })).toMatchObject({ ok: false, code: 'CERT_EXPIRED' });
    expect(checkCertificate(sign2021, { trust, at: at('2021-01-17T00:00:00Z') }).code).toBe('CERT_NOT_YET_VALID');
  });

  it('each moment counts: valid at the first, expired at the second -> CERT_EXPIRED', () => {
    expect(checkCertificate(sign2021, { trust, at: [at('2021-06-01T00:00:00Z'), at('2022-09-28T00:00:00Z')] }).code).toBe('CERT_EXPIRED');
  });

  it('CHAIN_UNTRUSTED against another CA or an empty trust store', () => {
    const gostOnly = loadTrustStore([CA.gost2004]);
    expect(checkCertificate(sign2021, { trust: gostOnly, at: at('2021-06-01T00:00:00Z') }).code).toBe('CHAIN_UNTRUSTED');
    expect(checkCertificate(sign2021, { trust: { anchors: [], sources: [] }, at: at('2021-06-01T00:00:00Z') }).code).toBe('CHAIN_UNTRUSTED');
  });

  it('CHAIN_UNTRUSTED when the issuer signature on the certificate is broken (one bit)', () => {
    const der = Buffer.from(sign2021.der);
    der[der.length - 10] ^= 0x01;
    expect(checkCertificate(der, { trust, at: at('2021-06-01T00:00:00Z') }).code).toBe('CHAIN_UNTRUSTED');
  });

  it('CERT_REVOKED per the NCA RSA CRL (revoked 2022-01-18), judged 2022-09-01', () => {
    const r = checkCertificate(cert(P12.rsaSignRevoked), { trust, at: at('2022-09-01T00:00:00Z'), crls: crls(CRL.rsa) });
    expect(r).toMatchObject({ ok: false, code: 'CERT_REVOKED', revocation: 'revoked' });
    expect(r.message).toMatch(/2022-01-18T04:40:24/);
  });

  it('not revoked before its revocation date with a CRL that covers the moment', () => {
    // Revoked at 04:40:24; the certificate is valid from 04:39:33; the CRL (2022-03-29) is later news, still current then.
    const r = checkCertificate(cert(P12.rsaSignRevoked), { trust, at: at('2022-01-18T04:40:00Z'), crls: crls(CRL.rsa), requireRevocation: true });
    expect(r).toMatchObject({ ok: true, revocation: 'good' });
  });

  it('a CRL current at the moment gives "good"; a stale CRL still proves a revocation', () => {
    const r = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), crls: crls(CRL.rsa) });
    expect(r.revocation).toBe('good'); // nextUpdate 2022-09-25 is after the moment: current
    const late = checkCertificate(cert(P12.rsaSignRevoked), { trust, at: at('2022-12-01T00:00:00Z'), crls: crls(CRL.rsa) });
    expect(late.code).toBe('CERT_REVOKED'); // a stale CRL still proves a revocation
  });

  it('AUTH key: NOT_A_SIGNING_KEY (before its revocation is even considered)', () => {
    const r = checkCertificate(cert(P12.rsaAuthRevoked), { trust, at: at('2022-09-01T00:00:00Z'), crls: crls(CRL.rsa) });
    expect(r.code).toBe('NOT_A_SIGNING_KEY');
    expect(r.message).toMatch(/keyEncipherment/);
    expect(r.message).toMatch(/clientAuth/);
  });

  it('a CRL that fails its signature check is never "not revoked": REVOCATION_UNKNOWN', () => {
    const der = Buffer.from(readFileSync(CRL.rsa));
    der[der.length - 5] ^= 0x01;
    const set = { crls: [{ source: 'tampered.crl', crl: parseCrl(der) }], unreadable: [] };
    const r = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), crls: set });
    expect(r).toMatchObject({ code: 'REVOCATION_UNKNOWN', revocation: 'failed' });
    expect(r.message).toMatch(/tampered\.crl does not verify/);
  });

  it('an unreadable CRL file is never "not revoked": REVOCATION_UNKNOWN', () => {
    const set = loadCrls([CA.rsa]); // a certificate, not a CRL
    expect(set.unreadable).toHaveLength(1);
    expect(checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), crls: set }).code).toBe('REVOCATION_UNKNOWN');
  });

  it('expected IIN/BIN must match', () => {
    expect(checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), expectedIin: '123456789011' }).ok).toBe(true);
    expect(checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), expectedIin: '123456789012' }).code).toBe('IDENTITY_MISMATCH');
    expect(checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), expectedBin: '123456789021' }).code).toBe('IDENTITY_MISMATCH');
  });

  it("an individual's certificate (no BIN) acts for the payer of its own IIN: an individual entrepreneur's orders can be signed", () => {
    const ok = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), expectedBin: '123456789011' });
    expect([ok.ok, ok.code]).toEqual([true, null]);
    const other = checkCertificate(sign2021, { trust, at: at('2021-06-01T00:00:00Z'), expectedBin: '123456789012' });
    expect([other.code, other.message]).toEqual(['IDENTITY_MISMATCH', "the certificate is an individual's (IIN 123456789011, no BIN): it signs only for a payer of that IIN, not 123456789012"]);
  });

  it("an organisation's certificate acts for its BIN only, never for its holder's IIN", () => {
    const ceo = cert(P12.gostCeoRevoked);
    const moment = at('2022-09-01T00:00:00Z');
    const base = checkCertificate(ceo, { trust, at: moment, purpose: 'any' });
    expect(base.info?.bin).toMatch(/^\d{12}$/);
    expect(base.info?.iin).toMatch(/^\d{12}$/);
    expect(checkCertificate(ceo, { trust, at: moment, purpose: 'any', expectedBin: base.info!.bin! }).code).toBeNull();
    expect(checkCertificate(ceo, { trust, at: moment, purpose: 'any', expectedBin: base.info!.iin! }).code).toBe('IDENTITY_MISMATCH');
  });
});

describe('checkCertificate: GOST 34.310-2004', () => {
  it('UNSUPPORTED_ALGORITHM naming GOST 34.310-2004 and its replacement', () => {
    // The certificate itself (openPkcs12 refuses the keystore earlier): read from the fixture via forge's bag.
    const p12 = forge.pkcs12.pkcs12FromAsn1(forge.asn1.fromDer(readP12(P12.gost2004).toString('binary')), P12.gost2004.password);
    const bag = p12.getBags({ bagType: forge.pki.oids.certBag })[forge.pki.oids.certBag]![0] as { asn1: forge.asn1.Asn1 };
    const der = Buffer.from(forge.asn1.toDer(bag.asn1).getBytes(), 'binary');
    const r = checkCertificate(der, { trust, at: at('2022-09-01T00:00:00Z') });
    expect(r.code).toBe('UNSUPPORTED_ALGORITHM');
    expect(r.message).toMatch(/GOST 34\.310-2004.*replaced.*GOST 34\.10-2015/);
  });
});

describe('checkCertificate on the real NCA GOST 2015 test certificates', () => {
  const individual = () => cert(P12.gostIndividual);
  const ceo = () => cert(P12.gostCeoRevoked);

  it('valid inside its window, chain signature verified with GOST', () => {
    const r = checkCertificate(individual(), { trust, at: at('2022-09-28T00:00:00Z'), crls: crls(CRL.gost2022), requireRevocation: true });
    expect(r).toMatchObject({ ok: true, revocation: 'good' });
    expect(r.info.iin).toBe('123456789012');
  });

  it('CERT_EXPIRED after 2023-07-28', () => {
    expect(checkCertificate(individual(), { trust, at: at('2023-08-01T00:00:00Z') }).code).toBe('CERT_EXPIRED');
  });

  it('the CEO certificate (organisation, CEO role) is a valid signer without a CRL (revocation unchecked)', () => {
    const r = checkCertificate(ceo(), { trust, at: at('2022-09-01T00:00:00Z') });
    expect(r).toMatchObject({ ok: true, revocation: 'unchecked' });
    expect(r.info).toMatchObject({ bin: '123456789021', organisation: true, financialSigningRole: true });
  });

  it('CERT_REVOKED: the CEO certificate per the GOST CRL (signature of the CRL checked with GOST)', () => {
    expect(checkCertificate(ceo(), { trust, at: at('2022-09-01T00:00:00Z'), crls: crls(CRL.gost2022) }).code).toBe('CERT_REVOKED');
  });

  it('a CRL stale at the moment judged (nextUpdate 2023-01-23): unchecked with a warning, never "good"', () => {
    const r = checkCertificate(individual(), { trust, at: at('2023-02-01T00:00:00Z'), crls: crls(CRL.gost2022) });
    expect(r).toMatchObject({ ok: true, revocation: 'unchecked' });
    expect(r.warnings.join()).toMatch(/stale/);
    expect(checkCertificate(individual(), { trust, at: at('2023-02-01T00:00:00Z'), crls: crls(CRL.gost2022), requireRevocation: true }).code).toBe(
      'REVOCATION_UNKNOWN',
    );
  });

  it('a flipped bit in the certificate signature breaks the chain', () => {
    const der = Buffer.from(individual().der);
    der[der.length - 3] ^= 0x01;
    expect(checkCertificate(der, { trust, at: at('2022-09-28T00:00:00Z') }).code).toBe('CHAIN_UNTRUSTED');
  });
});

describe('the real NCA CA certificates and CRLs', () => {
  it('the trust loader reads the PEM and DER CA files and a directory of them', () => {
    expect(loadTrustStore([CA.rsa, CA.gost2004, CA.gost2022]).anchors.map((c) => c.isCa)).toEqual([true, true, true]);
    expect(testTrust().anchors).toHaveLength(3);
  });

  it('each CRL parses with its issuer, dates and entries; the 2015 and RSA CRL signatures verify against their CA', () => {
    const read = (p: string) => parseCrl(readFileSync(p));
    const rsa = read(CRL.rsa);
    const g2004 = read(CRL.gost2004);
    const g2022 = read(CRL.gost2022);
    expect([rsa.revoked.size, g2004.revoked.size, g2022.revoked.size]).toEqual([126, 31, 6]);
    // Complete CRLs, numbered: NCA's base CRLs carry no delta indicator and no distribution point.
    expect([rsa.crlNumber, rsa.deltaOf, rsa.incomplete, g2022.crlNumber]).toEqual([9n, null, [], 4n]);
    expect(g2022.thisUpdate.toISOString()).toBe('2022-07-27T11:26:06.000Z');
    expect(rsa.nextUpdate?.toISOString()).toBe('2022-09-25T04:18:29.000Z');
    const [rsaCa, , gostCa] = loadTrustStore([CA.rsa, CA.gost2004, CA.gost2022]).anchors;
    expect(verifyIssuedSignature(rsa.tbs, rsa.signatureAlgorithm, rsa.signature, rsaCa)).toBe('valid');
    expect(verifyIssuedSignature(g2022.tbs, g2022.signatureAlgorithm, g2022.signature, gostCa)).toBe('valid');
    const flipped = Buffer.from(g2022.signature);
    flipped[0] ^= 1;
    expect(verifyIssuedSignature(g2022.tbs, g2022.signatureAlgorithm, flipped, gostCa)).toBe('invalid');
    // GOST 34.310-2004 signatures are not verified at all (unsupported), so that CRL can never say "not revoked".
    expect(verifyIssuedSignature(g2004.tbs, g2004.signatureAlgorithm, g2004.signature, gostCa)).toBe('unsupported');
  });
});

describe('delta and partial CRLs never say "not revoked" by themselves (RFC 5280 5.2.4)', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const DAY = 86_400_000;
  /** An RSA test CA with alice (good) and bob (revoked in the delta CRL only). */
  function world(options: TestPkiOptions) {
    const dir = mkdtempSync(join(tmpdir(), 'delta-crl-'));
    dirs.push(dir);
    const pki = makeTestPki(dir, {
      algorithms: ['RSA'],
      users: [
        { name: 'alice', surname: 'A', givenName: 'A' },
        { name: 'bob', surname: 'B', givenName: 'B' },
      ],
      ...options,
    });
    const trustStore = loadTrustStore([pki.caCertificates.RSA!]);
    const certOf = (name: string) => cert(pki.keystores.find((k) => k.name === name)!);
    const check = (name: string, crlPaths: string[]) => checkCertificate(certOf(name), { trust: trustStore, at: new Date(), crls: loadCrls(crlPaths), requireRevocation: true });
    return { pki, check, base: pki.crls.RSA!, delta: pki.deltaCrls?.RSA };
  }

  it("a delta CRL alone: a certificate it does not list is REVOCATION_UNKNOWN, one it lists is CERT_REVOKED", () => {
    const { check, delta, base } = world({ deltaCrl: { revoked: ['bob'] } });
    const parsed = parseCrl(readFileSync(delta!));
    expect([parsed.deltaOf, parsed.crlNumber! > parsed.deltaOf!]).toEqual([BigInt(parseCrl(readFileSync(base)).crlNumber!), true]);
    const alice = check('alice', [delta!]);
    expect(alice.code).toBe('REVOCATION_UNKNOWN');
    expect(alice.message).toMatch(/no current complete CRL .*delta CRL of .* lists only changes since CRL number \d+, and no complete CRL that new was given/);
    expect(check('bob', [delta!]).code).toBe('CERT_REVOKED');
    // With its base, the pair is complete: alice is good, bob still revoked.
    expect([check('alice', [base, delta!]).revocation, check('bob', [base, delta!]).code]).toEqual(['good', 'CERT_REVOKED']);
  });

  it('a stale complete CRL with a current delta over it is current; a delta over a newer base than the one given is not', () => {
    const baseAt = new Date(Date.now() - 10 * DAY);
    const stale = { crlThisUpdate: baseAt, crlNextUpdate: new Date(Date.now() - 3 * DAY) };
    const over = world({ ...stale, deltaCrl: {} });
    expect(over.check('alice', [over.base]).code).toBe('REVOCATION_UNKNOWN');
    expect(over.check('alice', [over.base, over.delta!]).revocation).toBe('good');
    const newer = world({ ...stale, deltaCrl: { baseNumber: testCrlNumber(baseAt) + 1 } });
    expect(newer.check('alice', [newer.base, newer.delta!]).code).toBe('REVOCATION_UNKNOWN');
  });

  it('a hold ends when a later complete CRL no longer lists it (in either order of the files); a revocation stays', () => {
    // bob's certificate was suspended (certificateHold) 5 days ago; the CA's complete CRL of 3 days ago
    // lists it, today's complete CRL no longer does (the hold was released). carol's was revoked for good.
    const heldAt = new Date(Date.now() - 5 * DAY);
    const w = world({
      users: [
        { name: 'bob', surname: 'B', givenName: 'B', heldAt },
        { name: 'carol', surname: 'C', givenName: 'C', revokedAt: heldAt },
      ],
      crlThisUpdate: new Date(Date.now() - 3 * DAY),
      crlNextUpdate: new Date(Date.now() + 4 * DAY),
      laterCrl: { thisUpdate: new Date(Date.now() - 60_000) },
    });
    const held = w.base;
    const released = w.pki.laterCrls!.RSA!;
    const holdEntry = parseCrl(readFileSync(held)).revoked.get(w.pki.keystores.find((k) => k.name === 'bob')!.serial);
    expect(holdEntry?.reason).toBe(6);
    expect(w.check('bob', [held]).code).toBe('CERT_REVOKED');
    // Both CRLs configured (an old file beside the refreshed one), in either order: bob signs again.
    for (const order of [[held, released], [released, held]]) {
      const bob = w.check('bob', order);
      expect([bob.ok, bob.code, bob.revocation]).toEqual([true, null, 'good']);
      expect(w.check('carol', order).code).toBe('CERT_REVOKED');
    }
  });

  it('a hold listed by the newest complete CRL holds, whatever an older complete CRL without the entry says', () => {
    const heldAt = new Date(Date.now() - 5 * DAY);
    // The CRL listing the hold is the newer one here; the one without it was made 3 days before.
    const w = world({
      users: [{ name: 'bob', surname: 'B', givenName: 'B', heldAt }],
      crlThisUpdate: new Date(Date.now() - 60_000),
      laterCrl: { thisUpdate: new Date(Date.now() - 3 * DAY) },
    });
    for (const order of [[w.base, w.pki.laterCrls!.RSA!], [w.pki.laterCrls!.RSA!, w.base]]) expect(w.check('bob', order).code).toBe('CERT_REVOKED');
  });

  it('a CRL with a critical extension the reader does not know, or an issuing distribution point, is not complete', () => {
    for (const extra of [{ oid: '1.3.6.1.4.1.99999.1', critical: true }, { oid: '2.5.29.28', critical: true }]) {
      const { check, base } = world({ crlExtraExtension: extra });
      const alice = check('alice', [base]);
      expect(alice.code).toBe('REVOCATION_UNKNOWN');
      expect(alice.message).toMatch(extra.oid === '2.5.29.28' ? /has an issuing distribution point/ : /has a critical extension 1\.3\.6\.1\.4\.1\.99999\.1 this reader does not know/);
    }
    // A non-critical extension it does not know changes nothing.
    const { check, base } = world({ crlExtraExtension: { oid: '1.3.6.1.4.1.99999.1', critical: false } });
    expect(check('alice', [base]).revocation).toBe('good');
  });
});

describe('followedCrls: the CRLs of a long-running signer follow their files', () => {
  it('a CRL replaced as the refresh job does it (write, rename) is read at the next look: a certificate revoked since is refused', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crl-follow-'));
    try {
      const file = join(dir, 'nca_rsa.crl');
      let clock = 0;
      // No download yet: the cache file is missing, and read once it arrives.
      const crlsNow = followedCrls([file], { checkEveryMs: 1_000, now: () => clock });
      expect(crlsNow().unreadable).toHaveLength(1);
      // First the GOST CA's CRL (it says nothing of RSA certificates): the revoked RSA key still signs.
      writeFileSync(`${file}.tmp`, readFileSync(CRL.gost2022));
      renameSync(`${file}.tmp`, file);
      clock += 1_000;
      const revokedCert = cert(P12.rsaSignRevoked);
      const judged = () => checkCertificate(revokedCert, { trust, at: at('2022-06-01T00:00:00Z'), crls: crlsNow() });
      expect(judged()).toMatchObject({ ok: true, revocation: 'unchecked' });
      // The RSA CA's CRL lists it; within the look interval the files are not looked at again.
      writeFileSync(`${file}.tmp`, readFileSync(CRL.rsa));
      renameSync(`${file}.tmp`, file);
      clock += 500;
      expect(judged().ok).toBe(true);
      clock += 500;
      expect(judged()).toMatchObject({ ok: false, code: 'CERT_REVOKED' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
