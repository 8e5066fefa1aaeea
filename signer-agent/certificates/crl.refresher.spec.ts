import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crlCacheFile, crlPathsFromConfig, refreshCrl } from './crl.refresher';
import { loadCrls, loadTrustStore, TEST_TRUST_DIR, TEST_CRL_DIR } from './trust.store';
import { checkCertificate } from './certificate.check';
import { openPkcs12 } from '../keystore/pkcs12.reader';
import { P12, readP12 } from '../../test/fixtures/nca/fixtures';

describe('configured CRL URLs are cached and refreshed, fail closed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'crl-'));
  const rsaCrl = readFileSync(join(TEST_CRL_DIR, 'nca_rsa_test.crl'));
  const gostCrl = readFileSync(join(TEST_CRL_DIR, 'nca_gost2022_test.crl'));
  const trust = loadTrustStore([TEST_TRUST_DIR]);
  let served: Buffer = rsaCrl;
  let status = 200;
  const server = http.createServer((_req, res) => {
    res.statusCode = status;
    res.end(served);
  });
  let url = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/nca_rsa.crl`;
  });
  afterAll(() => new Promise((resolve) => server.close(resolve)));
  const now = new Date('2022-05-01T00:00:00Z');

  it('maps URL entries of signer.crl to their cache files and keeps file entries', () => {
    const paths = crlPathsFromConfig({ signer: { crl: ['/etc/a.crl', 'http://crl.pki.gov.kz/nca_rsa.crl'], crlCacheDir: '/var/cache/crl' } });
    expect(paths[0]).toBe('/etc/a.crl');
    expect(paths[1]).toMatch(/^\/var\/cache\/crl\/[0-9a-f]{32}\.crl$/);
  });

  it('downloads a CRL signed by a trusted CA into the cache, then reports it unchanged', async () => {
    const file = crlCacheFile(url, dir);
    const first = await refreshCrl(url, file, trust, now);
    expect(first).toMatchObject({ status: 'updated', stale: false });
    expect(readFileSync(file).equals(rsaCrl)).toBe(true);
    expect((await refreshCrl(url, file, trust, now)).status).toBe('unchanged');
  });

  it('keeps the cached copy when the download fails, is not a CRL, or is not signed by a trusted CA', async () => {
    const file = crlCacheFile(url, dir);
    status = 500;
    expect((await refreshCrl(url, file, trust, now)).status).toBe('failed');
    status = 200;
    served = Buffer.from('<html>maintenance</html>');
    expect((await refreshCrl(url, file, trust, now)).status).toBe('rejected');
    const tampered = Buffer.from(rsaCrl);
    tampered[tampered.length - 5] ^= 0x01;
    served = tampered;
    const bad = await refreshCrl(url, file, trust, now);
    expect(bad).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/signature/) });
    served = gostCrl;
    expect((await refreshCrl(url, file, loadTrustStore([join(TEST_TRUST_DIR, 'nca_rsa_test.pem')]), now)).reason).toMatch(/issuer is not in the trust store/);
    expect(readFileSync(file).equals(rsaCrl)).toBe(true);
    served = rsaCrl;
  });

  it("keeps the cached CRL when the URL serves another trusted CA's CRL: a revoked certificate of the first CA stays refused", async () => {
    const file = join(dir, 'moved.crl');
    writeFileSync(file, rsaCrl);
    // The RSA test CA's CRL lists this key; the GOST 2022 CA's CRL (newer, trusted, correctly signed) knows nothing of it.
    const revoked = openPkcs12(readP12(P12.rsaSignRevoked), P12.rsaSignRevoked.password);
    const judged = () => checkCertificate(revoked.certificate, { trust, at: new Date('2022-06-01T00:00:00Z'), crls: loadCrls([file]) });
    expect(judged().code).toBe('CERT_REVOKED');
    served = gostCrl;
    try {
      const result = await refreshCrl(url, file, trust, now);
      expect(result).toMatchObject({ status: 'rejected', reason: expect.stringMatching(/another CA.*delete .*moved\.crl/) });
    } finally {
      served = rsaCrl;
    }
    expect(readFileSync(file).equals(rsaCrl)).toBe(true);
    expect(judged().code).toBe('CERT_REVOKED');
  });

  it('says when the copy in use is past its nextUpdate', async () => {
    const file = join(dir, 'stale.crl');
    writeFileSync(file, rsaCrl);
    const later = await refreshCrl(url, file, trust, new Date('2030-01-01T00:00:00Z'));
    expect(later).toMatchObject({ status: 'unchanged', stale: true });
    expect(existsSync(file)).toBe(true);
  });
});
