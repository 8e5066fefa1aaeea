import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDetachedCms, loadTrustStore, openPkcs12, signDocument } from '../../../signer-agent';
import { makeTestPki, type TestPkiResult } from '../../../scripts/make-test-pki';
import { BankError } from '../business-api/business-api.errors';
import { buildPaymentOrderDocument, requisitesFromOrder } from '../business-api/payment-order.document';
import { kzDate } from '../sandbox/sandbox.clock';
import { DEMO } from '../sandbox/sandbox.config';
import { sampleOrder } from './fixtures';
import { startHarness, type Harness } from './sandbox.harness';

/**
 * The real chain from signature to bank: the demo's test PKI (scripts/make-test-pki.ts), the
 * signer library signing the canonical XML bytes (RSA and GOST 34.10-2015), the bank client
 * submitting, and the sandbox verifying with its trust store and CRLs.
 */
let dir: string;
let pki: TestPkiResult;
let h: Harness;
const today = kzDate(new Date());

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bank-pki-'));
  pki = makeTestPki(dir);
  h = await startHarness({
    trust: [pki.caCertificates.RSA!, pki.caCertificates.GOST!],
    crl: [pki.crls.RSA!, pki.crls.GOST!],
    requireRevocation: true,
    clock: { speed: 0 },
  });
});
afterAll(async () => {
  await h.stop();
  await h.drop();
  rmSync(dir, { recursive: true, force: true });
});

/** `careless`: build the CMS without the signer's own certificate check (what another tool could send). */
function signWith(names: string[], number: string, careless = false) {
  const order = sampleOrder({ number, date: today });
  const externalId = `pki-${number}`;
  const document = buildPaymentOrderDocument(order, externalId);
  const trust = loadTrustStore([pki.caCertificates.RSA!, pki.caCertificates.GOST!]);
  const signatures = names.map((name) => {
    const ks = pki.keystores.find((k) => k.name === name)!;
    const key = openPkcs12(readFileSync(ks.path), ks.password);
    if (careless) return createDetachedCms({ key, content: document, signingTime: new Date() });
    return signDocument({ key, content: document, signingTime: new Date(), trust }).cms;
  });
  return { externalId, document, signatures, requisites: requisitesFromOrder(order) };
}

describe('signed by the signer library, verified by the sandbox', () => {
  it('accepts the demo company CEO (RSA) and accountant (GOST 2015) signing one document', async () => {
    expect(pki.keystores.find((k) => k.name === 'rsa-ceo')!.bin).toBe(DEMO.payerBin);
    const doc = await h.client().submit(signWith(['rsa-ceo', 'gost-accountant'], '9001'));
    expect(doc).toMatchObject({ created: true, status: 'accepted' });
  });

  it('refuses an employee without the financial-signing role, a revoked key, an AUTH key and an outsider', async () => {
    const refusal = async (names: string[], number: string) => {
      try {
        await h.client().submit(signWith(names, number, true));
      } catch (err) {
        if (err instanceof BankError) return err.reasonCode;
        throw err;
      }
      return 'accepted';
    };
    expect(await refusal(['rsa-employee-no-finance'], '9002')).toBe('CERTIFICATE_INVALID');
    expect(await refusal(['rsa-revoked'], '9003')).toBe('CERTIFICATE_INVALID');
    expect(await refusal(['rsa-auth'], '9004')).toBe('CERTIFICATE_INVALID');
    expect(await refusal(['rsa-individual'], '9005')).toBe('SIGNER_NOT_AUTHORISED');
  });
});
