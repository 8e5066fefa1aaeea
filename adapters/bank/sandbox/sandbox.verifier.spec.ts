import { InterimRsaCmsVerifier } from './sandbox.verifier';
import { createTestCa, issueSigner, signDetached } from './test-ca';
import { makeIinBin } from '../test/fixtures';

describe('the sandbox interim CMS verifier', () => {
  const ca = createTestCa();
  const otherCa = createTestCa('Not trusted');
  const bin = makeIinBin('04054000000');
  const iin = makeIinBin('80010130000');
  const signer = issueSigner(ca, { commonName: 'Директор', iin, bin });
  const verifier = new InterimRsaCmsVerifier([ca.certPem]);
  const content = Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n<PaymentOrder/>\n');
  const now = new Date();

  it('accepts a detached signature over the exact bytes by a trusted signer of the payer', async () => {
    const res = await verifier.verify({ content, signatures: [signDetached(content, signer)], payerIinBin: bin, at: now });
    expect(res).toMatchObject({ ok: true, signers: [{ iin, bin }] });
  });

  it('refuses unsigned documents, changed bytes, a foreign CA, another payer, expiry and garbage', async () => {
    const sig = signDetached(content, signer);
    const cases: Array<[Parameters<InterimRsaCmsVerifier['verify']>[0], string]> = [
      [{ content, signatures: [], payerIinBin: bin, at: now }, 'SIGNATURE_INVALID'],
      [{ content: Buffer.concat([content, Buffer.from(' ')]), signatures: [sig], payerIinBin: bin, at: now }, 'SIGNATURE_INVALID'],
      [{ content, signatures: [signDetached(content, issueSigner(otherCa, { commonName: 'X', iin, bin }))], payerIinBin: bin, at: now }, 'CERTIFICATE_INVALID'],
      [{ content, signatures: [sig], payerIinBin: makeIinBin('99999900000'), at: now }, 'SIGNER_NOT_AUTHORISED'],
      [{ content, signatures: [sig], payerIinBin: bin, at: new Date(now.getTime() + 400 * 86_400_000) }, 'CERTIFICATE_INVALID'],
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
