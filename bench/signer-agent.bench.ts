/**
 * The signer agent's HTTP overhead (issue 11: "the agent's HTTP overhead reported on its own
 * line"): signatures/s through `connector signer-agent` (real child process, loopback HTTP, token,
 * certificate check at the signing moment, journal fsync) next to the library's in-process CMS
 * rate from bench/sign.bench.ts. Prints figures; asserts nothing about time.
 * Run: npx tsc -p tsconfig.build.json && node dist/bench/signer-agent.bench.js [requests-per-figure]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SignerAgentClient } from '../signer-agent/agent/signer-agent.client';
import { runSignBench } from './sign.bench';

const ROOT = resolve(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'nca');

async function startAgent(dir: string, workers: number) {
  writeFileSync(join(dir, 'connector.config.json'), JSON.stringify({ testMode: true, signer: { workers } }));
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'connector', 'cli', 'main.js'), 'signer-agent', '--url', 'http://127.0.0.1:0'], {
    cwd: dir,
    env: { ...process.env, CONNECTOR_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  const deadline = Date.now() + 15_000;
  let url: string | undefined;
  while (!(url = /"event":"signer-agent\.listening","url":"([^"]+)"/.exec(err)?.[1])) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`signer agent did not start:\n${err}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const client = new SignerAgentClient({ url, tokenFile: '.connector/signer.token', cwd: dir, timeoutMs: 120_000 });
  const stop = () => new Promise<void>((r) => (child.kill('SIGTERM'), child.on('exit', () => r())));
  return { client, stop };
}

async function rate(requests: number, concurrency: number, sign: (i: number) => Promise<unknown>): Promise<{ perSecond: number; meanMs: number }> {
  for (let i = 0; i < 5; i++) await sign(-1 - i);
  let next = 0;
  const latencies: number[] = [];
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) {
        const i = next++;
        const t = process.hrtime.bigint();
        await sign(i);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return { perSecond: requests / seconds, meanMs: latencies.reduce((a, b) => a + b, 0) / latencies.length };
}

async function main(): Promise<void> {
  const requests = Number(process.argv[2] ?? '300');
  const workers = cpus().length;
  const inProcess = runSignBench(1, FIXTURES);
  const dir = mkdtempSync(join(tmpdir(), 'signer-agent-bench-'));
  const agent = await startAgent(dir, workers);
  try {
    await agent.client.enroll('rsa', { keystorePath: join(FIXTURES, 'rsa', 'ncanode_individual_sign_rsa_2021.p12') });
    await agent.client.unlock('rsa', 'Qwerty12');
    await agent.client.enroll('gost', { keystorePath: join(FIXTURES, 'gost2015', 'ncanode_individual_gost2015_2022.p12') });
    await agent.client.unlock('gost', 'Aa123456');
    const doc = Buffer.alloc(2048, 0x41);
    const signer = (userId: string, at: string) => (i: number) =>
      agent.client.sign(userId, { orderId: `bench-${userId}-${i}`, document: Buffer.concat([doc, Buffer.from(String(i))]), signingTime: at });
    const rsa1 = await rate(requests, 1, signer('rsa', '2021-06-01T00:00:00Z'));
    const rsaN = await rate(requests, 4 * workers, signer('rsa', '2021-06-01T00:00:00Z'));
    const gost1 = await rate(requests, 1, signer('gost', '2022-09-01T00:00:00Z'));
    const gostN = await rate(requests, 4 * workers, signer('gost', '2022-09-01T00:00:00Z'));
    const lockdown = await agent.client.lockdown('bench');
    const overhead = (viaHttp: { meanMs: number }, inProc: number) => (viaHttp.meanMs - 1000 / inProc).toFixed(2);
    const f = (n: number) => n.toFixed(0).padStart(6);
    process.stdout.write(
      [
        `signer agent over loopback HTTP (${workers} signing workers, ${requests} requests per figure; includes certificate check and journal fsync):`,
        `  RSA  in-process CMS sign/s (1 core): ${f(inProcess.rsaCmsSign)} | agent c=1: ${f(rsa1.perSecond)}/s, mean ${rsa1.meanMs.toFixed(2)} ms | agent c=${4 * workers}: ${f(rsaN.perSecond)}/s`,
        `  GOST in-process CMS sign/s (1 core): ${f(inProcess.gostCmsSign)} | agent c=1: ${f(gost1.perSecond)}/s, mean ${gost1.meanMs.toFixed(2)} ms | agent c=${4 * workers}: ${f(gostN.perSecond)}/s`,
        `agent HTTP overhead per signature (c=1 mean latency minus in-process time): RSA ${overhead(rsa1, inProcess.rsaCmsSign)} ms, GOST ${overhead(gost1, inProcess.gostCmsSign)} ms`,
        `agent lockdown elapsedMs (measured inside the agent): ${lockdown.elapsedMs.toFixed(2)} ms`,
      ].join('\n') + '\n',
    );
  } finally {
    await agent.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
