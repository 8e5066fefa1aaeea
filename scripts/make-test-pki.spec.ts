import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCertificate } from '../signer-agent/certificates/certificate.check';
import { loadCrls, loadTrustStore } from '../signer-agent/certificates/trust.store';
import { parseCms } from '../signer-agent/cms/cms.parser';
import { signDocument } from '../signer-agent/cms/cms.signer';
import { verifyCms } from '../signer-agent/cms/cms.verifier';
import { openPkcs12 } from '../signer-agent/keystore/pkcs12.reader';
import { makeTestPki, testBin, testIin, withKzChecksum, type TestPkiResult } from './make-test-pki';

let dir: string;
let pki: TestPkiResult;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'test-pki-'));
  pki = makeTestPki(dir);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const open = (name: string) => {
  const ks = pki.keystores.find((k) => k.name === name)!;
  return openPkcs12(readFileSync(ks.path), ks.password);
};
const trust = () => loadTrustStore([pki.caCertificates.RSA!, pki.caCertificates.GOST!]);
const crls = () => loadCrls([pki.crls.RSA!, pki.crls.GOST!]);
const verdict = (name: string) => checkCertificate(open(name).certificate, { trust: trust(), at: new Date(), crls: crls(), requireRevocation: true });

describe('makeTestPki', () => {
  it('IINs and BINs carry a valid Kazakh check digit', () => {
    for (const v of [testIin('a'), testIin('b'), testBin('c')]) {
      expect(v).toMatch(/^\d{12}$/);
      expect(withKzChecksum(v.slice(0, 11))).toBe(v);
    }
    // Hand-computed: 1*8+2*5+3*0+4*4+5*1+6*2+7*3+8*0+9*0+10*0+11*0 = 72 -> 72 mod 11 = 6
    expect(withKzChecksum('85041230000')).toBe('850412300006');
  });

  it('the NCA profile: IIN, BIN, roles, key usage, policy; keystores open with our reader and with OpenSSL', () => {
    const ceo = open('rsa-ceo');
    expect(ceo.info).toMatchObject({
      algorithm: 'RSA-SHA256',
      bin: pki.keystores.find((k) => k.name === 'rsa-ceo')!.bin,
      roles: ['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.1'],
      keyUsage: ['digitalSignature', 'nonRepudiation'],
      policies: ['1.2.398.3.3.2.3'],
      organisation: true,
      financialSigningRole: true,
    });
    expect(ceo.info.subject).toMatch(/^CN=СЕРИКОВА АЙГЕРИМ, SURNAME=СЕРИКОВА, SERIALNUMBER=IIN\d{12}, C=KZ, O=ТОО "ДЕМО КОМПАНИЯ", OU=BIN\d{12}, G=АЙГЕРИМ$/);
    const r = spawnSync('openssl', ['pkcs12', '-in', pki.keystores[0].path, '-passin', `pass:${pki.keystores[0].password}`, '-nokeys']);
    expect(r.status).toBe(0);
  });

  it('each user gets its verdict: valid signers; no financial role, AUTH key and revoked refused', () => {
    for (const name of ['rsa-individual', 'rsa-ceo', 'rsa-accountant', 'gost-ceo', 'gost-accountant']) {
      expect([name, verdict(name).code]).toEqual([name, null]);
    }
    expect(verdict('rsa-employee-no-finance')).toMatchObject({ code: 'NOT_A_SIGNING_KEY', message: expect.stringMatching(/financial/) });
    expect(verdict('rsa-auth').code).toBe('NOT_A_SIGNING_KEY');
    expect(verdict('rsa-revoked').code).toBe('CERT_REVOKED');
  });

  it('a CRL of another CA key with the same CA name is not applied (NCA re-keys CAs under one name)', () => {
    const other = makeTestPki(join(dir, 'other'), { algorithms: ['RSA'], users: [] });
    const cert = open('rsa-individual').certificate;
    const withOwn = checkCertificate(cert, { trust: trust(), at: new Date(), crls: loadCrls([pki.crls.RSA!]) });
    expect(withOwn).toMatchObject({ revocation: 'good', revocationSource: expect.stringContaining('ca-rsa.crl') });
    const withOther = checkCertificate(cert, { trust: trust(), at: new Date(), crls: loadCrls([other.crls.RSA!]) });
    expect(withOther).toMatchObject({ ok: true, revocation: 'unchecked' });
  });

  it('a GOST test key signs a CMS that verifies now; OpenSSL verifies an RSA CMS without -attime; co-signed both ways', () => {
    const doc = Buffer.from('<order>1</order>');
    const now = new Date();
    const gost = signDocument({ key: open('gost-ceo'), content: doc, signingTime: now, trust: trust(), crls: crls(), requireRevocation: true });
    const both = signDocument({ key: open('rsa-accountant'), content: doc, signingTime: now, trust: trust(), cosign: gost.cms }).cms;
    const r = verifyCms(both, { content: doc, trust: trust(), crls: crls(), at: new Date(now.getTime() + 1000), requireRevocation: true });
    expect(r.valid).toBe(true);
    expect(r.signers.map((s) => s.algorithm)).toEqual(['GOST34.10-2015-512', 'RSA-SHA256']);
    expect(parseCms(both).signerInfos[0].raw.equals(parseCms(gost.cms).signerInfos[0].raw)).toBe(true);
    const rsa = signDocument({ key: open('rsa-individual'), content: doc, signingTime: now, trust: trust() }).cms;
    writeFileSync(join(dir, 'doc'), doc);
    writeFileSync(join(dir, 'doc.p7s'), rsa);
    const ossl = spawnSync('openssl', ['cms', '-verify', '-binary', '-inform', 'DER', '-in', join(dir, 'doc.p7s'), '-content', join(dir, 'doc'), '-CAfile', pki.caCertificates.RSA!, '-out', '/dev/null']);
    expect([ossl.status, ossl.stderr.toString()]).toEqual([0, expect.stringContaining('Verification successful')]);
  });
});
