import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Worker } from 'node:worker_threads';
import pino from 'pino';
import { respawnDelayMs, SigningPool } from './signing.pool';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Signing workers (real worker threads running the built signing.worker.js) whose trust file is
 * removed while the agent runs: a worker lost then is replaced at once, as before, but replacements
 * that die as they start are spaced out (1 s, 2 s, 4 s ... up to 30 s), with one log line when that
 * begins and one when the workers start again, instead of a replacement and two error lines per
 * few milliseconds, forever.
 */
describe('SigningPool: replacing workers that die as they start', () => {
  let dir: string;
  let trust: string;
  let lines: Array<{ event?: string; level: number }>;
  let lost: number;
  let pool: SigningPool;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'signing-pool-'));
    trust = join(dir, 'ca.pem');
    copyFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'nca', 'ca', 'nca_rsa_test.pem'), trust);
    lines = [];
    lost = 0;
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as { event?: string; level: number });
        done();
      },
    });
    pool = new SigningPool({
      size: 1,
      setup: { testMode: false, trust: [trust], crl: [], requireRevocation: false },
      logger: pino({ level: 'info' }, sink),
      onWorkerLost: () => void (lost += 1),
    });
    await pool.start();
  });
  afterEach(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** The worker crashing under the agent (the pool's workers are its own: reached for the test only). */
  const crashWorker = () => void (pool as unknown as { slots: Array<{ worker: Worker }> }).slots[0].worker.terminate();
  const answers = async () => (await pool.wipeAll(1_000)).acknowledged;

  test('a worker lost once is replaced at once', async () => {
    crashWorker();
    await pause(300);
    expect(lost).toBe(1);
    expect(await answers()).toBe(1);
  });

  test('with the trust file gone, replacements are spaced out and logged once; back when the file is', async () => {
    rmSync(trust);
    crashWorker();
    await pause(3_500);
    // Lost once, replaced at once, that one died starting and was replaced at once (as before), then
    // after 1 s and 2 s: a handful, not thousands.
    expect(lost).toBeGreaterThanOrEqual(3);
    expect(lost).toBeLessThanOrEqual(5);
    expect(lines.filter((l) => l.event === 'signer.worker.respawn_backoff')).toHaveLength(1);
    expect(lines.filter((l) => l.level >= 50).length).toBeLessThanOrEqual(5);
    expect(await answers()).toBe(0);

    copyFileSync(join(__dirname, '..', '..', 'test', 'fixtures', 'nca', 'ca', 'nca_rsa_test.pem'), trust);
    await pause(5_000);
    expect(await answers()).toBe(1);
    expect(lines.filter((l) => l.event === 'signer.worker.recovered')).toHaveLength(1);
    // Up again: the next loss is replaced at once.
    const before = lost;
    crashWorker();
    await pause(300);
    expect(lost).toBe(before + 1);
    expect(await answers()).toBe(1);
  }, 20_000);

  test('the pause doubles from 1 s and stops at 30 s; none for the first death', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 10].map(respawnDelayMs)).toEqual([0, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });
});
