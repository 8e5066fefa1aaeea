import { loadTrustStore, openPkcs12, signDocument, TEST_TRUST_DIR } from '../../../signer-agent';
import { CRL, P12, readP12 } from '../../../test/fixtures/nca/fixtures';
import { CmsSignatureVerifier } from './sandbox.verifier';
import { createTestCa, issueSigner, signDetached } from './test-ca';
import { makeIinBin } from '../test/fixtures';

describe('the sandbox signature verifier (signer-agent rules)', () => {
  const ca = createTestCa();
  const otherCa = createTestCa('Not trusted');
  const bin = makeIinBin('04054000000');
  const iin = makeIinBin('80010130000');
  const signer = issueSigner(ca, { commonName: 'Директор', iin, bin });
  const verifier = CmsSignatureVerifier.from({ trustPaths: [], trustPem: [ca.certPem], crlPaths: [] });
  const content = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<PaymentOrder/>\n');
  const now = new Date();

  it('accepts a detached signature over the exact bytes by a trusted signer of the payer', async () => {
    const res = await verifier.verify({ content, signatures: [signDetached(content, signer)], payerIinBin: bin, at: now });
    expect(res).toMatchObject({ ok: true, signers: [{ iin, bin, algorithm: 'RSA-SHA256' }] });
  });

  it('accepts an individual entrepreneur signing for their own IIN, and two signatures', async () => {
    const person = issueSigner(ca, { commonName: 'ИП Иванов', iin });
    const res = await verifier.verify({ content, signatures: [signDetached(content, person), signDetached(content, signer)], payerIinBin: iin, at: now });
    expect(res).toMatchObject({ ok: true });
  });

  it('refuses unsigned documents, changed bytes, a foreign CA, another payer, expiry, a missing role and garbage', async () => {
    const sig = signDetached(content, signer);
    const noRole = issueSigner(ca, { commonName: 'Бухгалтер', iin, bin, roles: ['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.5'] });
    const cases: Array<[Parameters<CmsSignatureVerifier['verify']>[0], string]> = [
      [{ content, signatures: [], payerIinBin: bin, at: now }, 'SIGNATURE_INVALID'],
      [{ content: Buffer.concat([content, Buffer.from(' ')]), signatures: [sig], payerIinBin: bin, at: now }, 'SIGNATURE_INVALID'],
      [{ content, signatures: [signDetached(content, issueSigner(otherCa, { commonName: 'X', iin, bin }))], payerIinBin: bin, at: now }, 'CERTIFICATE_INVALID'],
      [{ content, signatures: [sig], payerIinBin: makeIinBin('99999900000'), at: now }, 'SIGNER_NOT_AUTHORISED'],
      [{ content, signatures: [sig], payerIinBin: bin, at: new Date(now.getTime() + 400 * 86_400_000) }, 'CERTIFICATE_INVALID'],
      [{ content, signatures: [signDetached(content, noRole)], payerIinBin: bin, at: now }, 'CERTIFICATE_INVALID'],
      [{ content, signatures: [Buffer.from('not a cms')], payerIinBin: bin, at: now }, 'SIGNATURE_INVALID'],
    ];
    for (const [input, code] of cases) expect(await verifier.verify(input)).toMatchObject({ ok: false, code });
  });

  it('refuses a signature whose value was tampered with', async () => {
    const sig = Buffer.from(signDetached(content, signer));
    sig[sig.length - 5] ^= 0x01;
    expect(await verifier.verify({ content, signatures: [sig], payerIinBin: bin, at: now })).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
  });
});

describe('the sandbox signature verifier on real NCA test keys (GOST 34.10-2015, RSA)', () => {
  const content = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<PaymentOrder/>\n');
  const at = new Date('2022-09-01T00:00:00Z');
  const trust = loadTrustStore([TEST_TRUST_DIR]);
  const verifier = CmsSignatureVerifier.from({ trustPaths: [TEST_TRUST_DIR], trustPem: [], crlPaths: [CRL.gost2022, CRL.rsa] });
  const sign = (p: { path: string; password: string }, when: Date) =>
    signDocument({ key: openPkcs12(readP12(p), p.password), content, signingTime: when, trust }).cms;

  it('accepts a GOST 2015 signature of an individual for their own IIN', async () => {
    const res = await verifier.verify({ content, signatures: [sign(P12.gostIndividual, at)], payerIinBin: '123456789012', at });
    expect(res).toMatchObject({ ok: true, signers: [{ iin: '123456789012', algorithm: expect.stringMatching(/GOST/) }] });
  });

  it('refuses a revoked CEO certificate (CRL) and a GOST signature over other bytes', async () => {
    const revoked = signDocument({ key: openPkcs12(readP12(P12.gostCeoRevoked), P12.gostCeoRevoked.password), content, signingTime: new Date('2022-07-28T00:00:00Z'), trust }).cms;
    expect(await verifier.verify({ content, signatures: [revoked], payerIinBin: '123456789021', at })).toMatchObject({ ok: false, code: 'CERTIFICATE_INVALID' });
    const sig = sign(P12.gostIndividual, at);
    expect(await verifier.verify({ content: Buffer.from('other'), signatures: [sig], payerIinBin: '123456789012', at })).toMatchObject({ ok: false, code: 'SIGNATURE_INVALID' });
  });
});

describe('the demo payer', () => {
  it('is the demo company of the test PKI, so the demo keys sign for it', async () => {
    const { testBin } = await import('../../../scripts/make-test-pki');
    const { DEMO } = await import('./sandbox.config');
    expect(DEMO.payerBin).toBe(testBin('demo-company'));
  });
});
