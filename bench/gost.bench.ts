/**
 * GOST 2015 figures: Streebog-512 throughput, signatures/s, verifications/s (plain, and with a
 * verifier precomputed for a known signer key). Prints figures; asserts nothing about time.
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/gost.bench.js [seconds-per-figure]
 */
import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import {
  createGostVerifier,
  gostDigest,
  gostPublicKeyFromPrivate,
  gostSignDigest,
  gostVerifyDigest,
} from '../signer-agent/crypto/gost3410-2015';
import { streebog512 } from '../signer-agent/crypto/streebog.hash';

const seconds = Number(process.argv[2] ?? '2');

/** Runs fn repeatedly for about `seconds` and returns operations per second. */
function rate(fn: (i: number) => void): number {
  for (let i = 0; i < 20; i++) fn(i); // warm-up (JIT, lazy tables)
  const start = process.hrtime.bigint();
  const budget = BigInt(Math.round(seconds * 1e9));
  let n = 0;
  let elapsed = 0n;
  while (elapsed < budget) {
    for (let j = 0; j < 10; j++) fn(n++);
    elapsed = process.hrtime.bigint() - start;
  }
  return n / (Number(elapsed) / 1e9);
}

function main(): void {
  // A random valid key (d < q is overwhelmingly likely; gostPublicKeyFromPrivate checks it).
  const d = randomBytes(64);
  d[63] &= 0x7f;
  const q = gostPublicKeyFromPrivate(d);
  const digests = Array.from({ length: 64 }, (_, i) => gostDigest(Buffer.from(`order ${i}`)));
  const signatures = digests.map((dg) => gostSignDigest(d, dg));

  const mb = new Uint8Array(1 << 20).map((_, i) => i & 255);
  const small = new Uint8Array(1024).map((_, i) => i & 255);
  const streebogMBs = rate(() => streebog512(mb));
  const streebogSmall = rate(() => streebog512(small));
  const sign = rate((i) => gostSignDigest(d, digests[i & 63]));
  const verifyPlain = rate((i) => {
    if (!gostVerifyDigest(q, digests[i & 63], signatures[i & 63])) throw new Error('verification failed');
  });
  const t0 = process.hrtime.bigint();
  const verifier = createGostVerifier(q);
  verifier(digests[0], signatures[0]);
  const precomputeMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const verifyKnown = rate((i) => {
    if (!verifier(digests[i & 63], signatures[i & 63])) throw new Error('verification failed');
  });

  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(`GOST 34.10-2015 512-bit / Streebog-512, one core, node ${process.version}, ${cpu}`);
  console.log(`streebog512 1 MiB blocks   ${streebogMBs.toFixed(1)} MB/s`);
  console.log(`streebog512 1 KiB messages ${streebogSmall.toFixed(0)} hashes/s`);
  console.log(`sign (digest)              ${sign.toFixed(0)} signatures/s`);
  console.log(`verify, plain              ${verifyPlain.toFixed(0)} verifications/s`);
  console.log(`verify, known signer       ${verifyKnown.toFixed(0)} verifications/s (tables built once in ${precomputeMs.toFixed(0)} ms)`);
}

main();
