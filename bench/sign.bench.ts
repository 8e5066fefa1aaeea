/**
 * In-process signing figures of the library (CMS included, certificate check excluded):
 * RSA-2048 and GOST 34.10-2015 512 detached CMS signatures/s and verifications/s, next to
 * `openssl speed rsa2048` measured in the same run. Prints figures; asserts nothing about time.
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/sign.bench.js [seconds-per-figure]
 * The signer agent adds its HTTP overhead on its own line (runSignBench is exported for it).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash, sign as cryptoSign } from 'node:crypto';
import { createDetachedCms } from '../signer-agent/cms/cms.signer';
import { parseCms } from '../signer-agent/cms/cms.parser';
import { verifyCms } from '../signer-agent/cms/cms.verifier';
import { loadTrustStore, TEST_TRUST_DIR } from '../signer-agent/certificates/trust.store';
import { openPkcs12, type LoadedKey } from '../signer-agent/keystore/pkcs12.reader';

function rate(seconds: number, fn: (i: number) => void): number {
  for (let i = 0; i < 5; i++) fn(i);
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let elapsed = 0n;
  while (elapsed < budget) {
    fn(n++);
    elapsed = process.hrtime.bigint() - start;
  }
  return n / (Number(elapsed) / 1e9);
}

/** `openssl speed -seconds N rsa2048` signs/s, or null when openssl is not there. */
export function opensslRsa2048SignRate(seconds: number): number | null {
  try {
    const out = execFileSync('openssl', ['speed', '-seconds', String(Math.max(1, Math.round(seconds))), 'rsa2048'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    }).toString();
    const line = out.split('\n').find((l) => /^rsa\s+2048 bits/.test(l.trim()));
    const cols = line?.trim().split(/\s+/) ?? [];
    // "rsa 2048 bits 0.000654s 0.000019s 1529.0 52631.6": sign/s is the second to last column.
    const value = Number(cols[cols.length - 2]);
    return Number.isFinite(value) ? value : null;
  } catch {
    return null;
  }
}

export interface SignBenchFigures {
  cpu: string;
  cores: number;
  opensslRsa2048Sign: number | null;
  nodeRsa2048Sign: number;
  rsaCmsSign: number;
  rsaCmsVerify: number;
  gostCmsSign: number;
  gostCmsVerify: number;
}

export function runSignBench(seconds = 2, fixturesDir = resolve(__dirname, '..', '..', 'test', 'fixtures', 'nca')): SignBenchFigures {
  const rsa = openPkcs12(readFileSync(join(fixturesDir, 'rsa', 'ncanode_individual_sign_rsa_2021.p12')), 'Qwerty12');
  const gost = openPkcs12(readFileSync(join(fixturesDir, 'gost2015', 'ncanode_individual_gost2015_2022.p12')), 'Aa123456');
  const trust = loadTrustStore([TEST_TRUST_DIR]);
  const doc = Buffer.alloc(2048, 0x41);
  const cms = (key: LoadedKey, i: number) => createDetachedCms({ key, content: Buffer.concat([doc, Buffer.from(String(i))]), signingTime: new Date('2022-09-01T00:00:00Z') });
  const verifyRate = (key: LoadedKey, at: string) => {
    const sig = cms(key, 0);
    const content = Buffer.concat([doc, Buffer.from('0')]);
    parseCms(sig);
    return rate(seconds, () => {
      const r = verifyCms(sig, { content, trust, at: new Date(at) });
      if (r.signers[0].code === 'BAD_SIGNATURE' || r.signers[0].code === 'DIGEST_MISMATCH') throw new Error('bench signature does not verify');
    });
  };
  const rsaMaterial = rsa.material();
  const figures: SignBenchFigures = {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    opensslRsa2048Sign: opensslRsa2048SignRate(seconds),
    nodeRsa2048Sign: rate(seconds, (i) => {
      if (rsaMaterial.algorithm === 'RSA-SHA256') cryptoSign('sha256', createHash('sha256').update(String(i)).digest(), rsaMaterial.privateKey);
    }),
    rsaCmsSign: rate(seconds, (i) => cms(rsa, i)),
    // RSA certificate expired 2022-01-18: verified "as of" inside its window (the check is part of the figure).
    rsaCmsVerify: verifyRate(rsa, '2021-06-01T00:00:00Z'),
    gostCmsSign: rate(seconds, (i) => cms(gost, i)),
    gostCmsVerify: verifyRate(gost, '2022-09-02T00:00:00Z'),
  };
  rsa.wipe();
  gost.wipe();
  return figures;
}

if (require.main === module) {
  const seconds = Number(process.argv[2] ?? '2');
  const f = runSignBench(seconds);
  const fmt = (n: number | null) => (n === null ? 'n/a' : n.toFixed(0).padStart(7));
  process.stdout.write(
    [
      `cpu: ${f.cpu} x${f.cores} (figures are one core, in-process)`,
      `openssl speed rsa2048 sign/s:        ${fmt(f.opensslRsa2048Sign)}`,
      `node:crypto RSA-2048 sign/s:         ${fmt(f.nodeRsa2048Sign)}`,
      `RSA CMS sign/s:                      ${fmt(f.rsaCmsSign)}  (${f.opensslRsa2048Sign ? (f.rsaCmsSign / f.opensslRsa2048Sign).toFixed(2) : 'n/a'} of OpenSSL)`,
      `RSA CMS verify/s (with cert check):  ${fmt(f.rsaCmsVerify)}`,
      `GOST 2015 CMS sign/s:                ${fmt(f.gostCmsSign)}`,
      `GOST 2015 CMS verify/s (cert check): ${fmt(f.gostCmsVerify)}`,
    ].join('\n') + '\n',
  );
}
