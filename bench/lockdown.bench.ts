import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { loadConfig } from '../config/load-config';
import { migrate } from '../connector/persistence/database';
import { createAppContext } from '../connector/app/app-context';
import { createLogger } from '../connector/logging/logger';
import { lockdownKey } from '../connector/lockdown/lockdown.flag';
import { intakeOrders } from '../connector/intake/order-intake';
import { sessionStoreFor } from '../connector/users/session.store';
import { bullmqIntakePort } from '../queue/bullmq-intake.port';
import { triggerLockdown } from '../queue/lockdown.trigger';
import { deleteKeysWithPrefix } from '../queue/redis-keys';
import { SignerAgentClient } from '../signer-agent/agent/signer-agent.client';
import { defaultTestUsers, makeTestPki } from '../scripts/make-test-pki';
import { DEMO } from '../adapters/bank/sandbox/sandbox.config';

/**
 * `npm run bench:lockdown`: the time from a trigger to "every queue paused (BullMQ, under the
 * prefix) and every key wiped in the signer agent" (issue 16 target: <= 1 s), over repeated runs.
 * Real PostgreSQL (a throwaway database on the server of CONNECTOR_DATABASE_URL), real Redis (a
 * throwaway prefix), the real signer agent as a child process with BENCH_KEYS unlocked keys, and
 * BENCH_ORDERS orders to hold and BENCH_SESSIONS sessions to end (the rest of the lockdown: "total").
 */
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const KEYS = Number(process.env.BENCH_KEYS ?? 4);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 1000);
const SESSIONS = Number(process.env.BENCH_SESSIONS ?? 50);
const MAIN = join(__dirname, '..', 'connector', 'cli', 'main.js');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function startAgent(dir: string, trust: string[], crl: string[]): Promise<{ url: string; stop: () => void }> {
  writeFileSync(join(dir, 'connector.config.json'), JSON.stringify({ testMode: true, signer: { trust, crl, keysFile: join(dir, 'keys.json'), journalFile: join(dir, 'journal.jsonl') } }));
  const child = spawn(process.execPath, [MAIN, 'signer-agent', '--url', 'http://127.0.0.1:0'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME, CONNECTOR_TEST_MODE: '1', CONNECTOR_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const match = /"event":"signer-agent\.listening","url":"([^"]+)"/.exec(out);
      if (match) {
        clearInterval(timer);
        resolve(match[1]);
      }
    }, 20);
    child.on('exit', (code) => {
      clearInterval(timer);
      reject(new Error(`signer agent exited (${code}):\n${out}`));
    });
  });
  return { url, stop: () => child.kill('SIGTERM') };
}


async function main(): Promise<void> {
  const suffix = randomBytes(4).toString('hex');
  const server = new URL(process.env.CONNECTOR_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/connector');
  const dbName = `connector_bench_lockdown_${suffix}`;
  server.pathname = `/${dbName}`;
  const dir = mkdtempSync(join(tmpdir(), 'connector-bench-lockdown-'));
  const pki = makeTestPki(join(dir, 'pki'), { algorithms: ['RSA'], users: defaultTestUsers().filter((u) => u.algorithm === 'RSA') });
  const agent = await startAgent(dir, Object.values(pki.caCertificates), Object.values(pki.crls));
  const config = loadConfig({
    env: {},
    cwd: dir,
    overrides: {
      'database.url': server.toString(),
      'redis.url': process.env.CONNECTOR_REDIS_URL ?? 'redis://127.0.0.1:6379',
      'redis.prefix': `bench-lockdown-${suffix}`,
      'signer.url': agent.url,
      'signer.tokenFile': join(dir, '.connector', 'signer.token'),
      masterKeyFile: join(dir, 'master.key'),
      testMode: true,
    },
  });
  await migrate(config);
  const context = await createAppContext({ config, logger: createLogger({ level: 'silent', name: 'bench-lockdown' }), role: 'worker' });
  const client = new SignerAgentClient({ url: agent.url, tokenFile: join(dir, '.connector', 'signer.token') });
  const keystore = pki.keystores.find((k) => k.name === 'rsa-ceo')!;
  const userIds = Array.from({ length: KEYS }, (_, i) => `bench-user-${i}`);
  try {
    for (const id of userIds) await client.enroll(id, { keystorePath: keystore.path, expectedIin: keystore.iin });
    const payer = { name: 'ТОО "ДЕМО КОМПАНИЯ"', iinBin: DEMO.payerBin, iban: DEMO.payerIban, bic: 'TSESKZKA', kod: '17' };
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    for (let i = 0; i < ORDERS; i += 500) {
      const items = Array.from({ length: Math.min(500, ORDERS - i) }, (_, j) => ({
        order: {
          number: `B-${i + j}`, date: today, valueDate: today, amount: '1000.00', currency: 'KZT', payer,
          beneficiary: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17' },
          knp: '710', purpose: 'bench',
        },
      }));
      await intakeOrders(context.orm.em.fork(), 'bench', items, bullmqIntakePort(context.queues), { actor: 'bench' });
    }
    const sessions = sessionStoreFor(context);
    const pausedAndWiped: number[] = [];
    const totals: number[] = [];
    process.stderr.write(`bench:lockdown: ${RUNS} runs, ${context.queues.all().length} queues, ${KEYS} unlocked keys, ${ORDERS} orders to hold, ${SESSIONS} sessions\n`);
    for (let run = 1; run <= RUNS; run += 1) {
      // Back to normal: keys unlocked, sessions open, orders pending, queues running (bench set-up only).
      const em = context.orm.em.fork();
      await em.execute("update lockdown_state set state = 'normal', since = null, reason = null, scope = null, trigger = null, incident_id = null where id = 1");
      await em.execute("update incident set status = 'resolved' where status = 'open'");
      await em.execute("update payment_order set state = 'received', held_from = null where state = 'held'");
      await context.redis.del(lockdownKey(config.redis.prefix));
      await Promise.all(context.queues.all().map((q) => q.resume()));
      for (const id of userIds) await client.unlock(id, keystore.password);
      for (let s = 0; s < SESSIONS; s += 1) await sessions.create({ id: `bench-session-user-${s}`, login: `u${s}` }, new Date());

      const t0 = performance.now();
      const result = await triggerLockdown(context, { trigger: 'manual', reason: `bench run ${run}`, scope: 'all', actor: 'bench' });
      const total = performance.now() - t0;
      // Checked after the clock stopped: the figure counts only what really happened.
      const paused = (await Promise.all(context.queues.all().map((q) => q.isPaused()))).every(Boolean);
      const wiped = (await Promise.all(userIds.map(async (id) => !(await client.keyStatus(id)).unlocked))).every(Boolean);
      if (!paused || !wiped || result.warnings.length) throw new Error(`run ${run}: paused=${paused} wiped=${wiped} warnings=${result.warnings.join('; ')}`);
      pausedAndWiped.push(result.pausedAndWipedMs);
      totals.push(total);
      process.stderr.write(`  run ${String(run).padStart(2)}: paused+wiped ${result.pausedAndWipedMs.toFixed(1)} ms, whole lockdown ${total.toFixed(1)} ms (${result.heldOrders} orders held)\n`);
    }
    const sorted = [...pausedAndWiped].sort((a, b) => a - b);
    const sortedTotal = [...totals].sort((a, b) => a - b);
    const fmt = (a: number[]) => `min ${a[0].toFixed(1)} ms, median ${percentile(a, 50).toFixed(1)} ms, p95 ${percentile(a, 95).toFixed(1)} ms, max ${a[a.length - 1].toFixed(1)} ms`;
    process.stdout.write(`trigger -> all queues paused and all keys wiped: ${fmt(sorted)} over ${RUNS} runs (target <= 1000 ms: ${sorted[sorted.length - 1] <= 1000 ? 'met' : 'NOT met'})\n`);
    process.stdout.write(`whole lockdown (flag, pause, wipe, record, ${SESSIONS} sessions, ${ORDERS} orders held, incident, audit): ${fmt(sortedTotal)}\n`);
  } finally {
    await context.close();
    agent.stop();
    const admin = new Client({ connectionString: `${server.protocol}//${server.username ? `${server.username}@` : ''}${server.host}/postgres` });
    await admin.connect();
    await admin.query(`drop database if exists "${dbName}" with (force)`).catch(() => undefined);
    await admin.end();
    await deleteKeysWithPrefix(config.redis.url, config.redis.prefix);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:lockdown failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
