import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue, Worker, type ConnectionOptions } from 'bullmq';
import IORedis from 'ioredis';
import { Client } from 'pg';
import { loadConfig } from '../config/load-config';
import { migrate } from '../connector/persistence/database';
import { createAppContext } from '../connector/app/app-context';
import { intakeOrders } from '../connector/intake/order-intake';
import { bullmqIntakePort } from '../queue/bullmq-intake.port';
import type { QueueSet } from '../queue/queue.factory';
import { createLogger } from '../connector/logging/logger';
import { bulkOrders, ensureBankCredentials, ensureSigners, FUNDED_ACCOUNTS, makeWorldPki, startWorld, worldConfig, type WorldSigner } from '../connector/demo/pipeline-world';
import { DEMO } from '../adapters/bank/sandbox/sandbox.config';
import { Session } from 'node:inspector/promises';

/**
 * `npm run bench [-- --orders N --workers W --rate R]`: N payment orders (default 5000) through the
 * whole pipeline (intake -> validate -> RSA signature by the signer agent -> exactly-once submit ->
 * status tracking until executed) against the bank sandbox on loopback, with the real Redis and
 * PostgreSQL (its own database and key prefix, dropped after). Prints orders/s end to end,
 * p50/p95/p99 intake->submitted and intake->executed (from order_event timestamps), the time each
 * stage took, peak RSS; then a bare 4-stage BullMQ chain of no-op jobs on the same Redis, and the
 * ratio. W connector worker processes (default 1, as PM2's ecosystem runs) run as children (`connector worker`); the
 * sandbox and the signer agent run in this process. --rate R offers R orders/s instead of all at once;
 * BENCH_DUMP=<file> writes each order's transition times, BENCH_WORKER_PROFILE_DIR and BENCH_CPU_PROFILE CPU profiles.
 * --batch B sets worker.batchSize and worker.batchConcurrency (default 16 each); --batch-wait MS worker.batchWaitMs (default 25).
 * --warmup K (default 1000, or the run's order count when fewer; 0 for none) runs K orders first, not counted, and K chains before the bare chain's.
 * Issue 15 "Figures": a benchmark that prints figures, never a timed test.
 */
const SIGNERS: WorldSigner[] = [{ login: 'bench.ceo', keystore: 'rsa-ceo', level: 'first' }];
const SOURCE = 'bench';
const WARMUP_SOURCE = 'bench-warmup';
const CLI = join(__dirname, '..', 'connector', 'cli', 'main.js');

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} expects a number`);
  return value;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Peak resident set of a process (VmHWM), in MiB; undefined once it is gone. */
function peakRssMiB(pid: number): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system) a process has used so far, in seconds; undefined once it is gone. */
function cpuSeconds(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // After "pid (comm) ": state is field 0, utime field 11, stime field 12 (proc(5)), in clock ticks (100/s on Linux).
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/**
 * CPU time used by the processes of some programs on this machine (PostgreSQL's server and its
 * backends, Redis) since `start`, read from /proc: what the bench's own processes do not show.
 * A process first seen after the start counts from zero; one that comes and goes between two
 * samples (every 500 ms) is missed. Zero when the services run elsewhere.
 */
class ServiceCpu {
  private readonly base = new Map<number, number>();
  private readonly last = new Map<number, { comm: string; seconds: number }>();
  private started = false;

  constructor(private readonly comms: ReadonlySet<string>) {}

  start(): void {
    this.base.clear();
    this.last.clear();
    this.started = false;
    this.sample();
    for (const [pid, seen] of this.last) this.base.set(pid, seen.seconds);
    this.started = true;
  }

  sample(): void {
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
    } catch {
      return;
    }
    for (const pid of pids) {
      let comm: string;
      try {
        comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        continue;
      }
      if (!this.comms.has(comm)) continue;
      const seconds = cpuSeconds(Number(pid));
      if (seconds === undefined) continue;
      if (this.started && !this.base.has(Number(pid))) this.base.set(Number(pid), 0);
      this.last.set(Number(pid), { comm, seconds });
    }
  }

  /** Seconds of CPU per program since `start`. */
  totals(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [pid, { comm, seconds }] of this.last) out.set(comm, (out.get(comm) ?? 0) + seconds - (this.base.get(pid) ?? 0));
    return out;
  }
}

const fmt = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);

/**
 * The bare chain: N chains of 4 no-op jobs on 4 queues, each job adding the next; chains/s. `warmup`
 * chains run first on the same queues and workers, not counted (as the pipeline's warm-up orders).
 */
async function bareChain(redisUrl: string, prefix: string, n: number, concurrency: number, warmup: number): Promise<{ perSecond: number; ms: number }> {
  const names = ['bare-a', 'bare-b', 'bare-c', 'bare-d'];
  const connection = new IORedis(redisUrl, { maxRetriesPerRequest: null });
  const queues = names.map((name) => new Queue(name, { connection: connection as unknown as ConnectionOptions, prefix }));
  let done = 0;
  let target = 0;
  let finish: () => void = () => undefined;
  const opts = { removeOnComplete: true, removeOnFail: true };
  const workerConnections = names.map(() => new IORedis(redisUrl, { maxRetriesPerRequest: null }));
  const workers = names.map(
    (name, i) =>
      new Worker(
        name,
        async (job) => {
          if (i < names.length - 1) await queues[i + 1].add('step', job.data, { ...opts, jobId: `${names[i + 1]}-${(job.data as { i: number }).i}` });
          else if (++done === target) finish();
        },
        { connection: workerConnections[i] as unknown as ConnectionOptions, prefix, concurrency },
      ),
  );
  /** Runs chains [from, from + count) to their end; milliseconds. */
  const chains = async (from: number, count: number): Promise<number> => {
    done = 0;
    target = count;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const started = Date.now();
    for (let i = 0; i < count; i += 1000) {
      await queues[0].addBulk(Array.from({ length: Math.min(1000, count - i) }, (_, k) => ({ name: 'step', data: { i: from + i + k }, opts: { ...opts, jobId: `${names[0]}-${from + i + k}` } })));
    }
    await finished;
    return Date.now() - started;
  };
  if (warmup > 0) await chains(0, warmup);
  const ms = await chains(warmup, n);
  await Promise.all(workers.map((w) => w.close()));
  for (const q of queues) await q.obliterate({ force: true }).catch(() => undefined);
  await Promise.all(queues.map((q) => q.close()));
  connection.disconnect();
  // BullMQ does not close a connection it was handed.
  for (const c of workerConnections) c.disconnect();
  return { perSecond: (n * 1000) / ms, ms };
}

const STAGES = ['validate', 'sign', 'submit', 'track'] as const;

/**
 * Milliseconds until `count` worker processes serve each pipeline stage's queue (BullMQ's list of
 * the workers connected to a queue); fails when one of them exits first or the time runs out.
 */
async function workersServing(queues: QueueSet, count: number, children: ChildProcess[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const exited = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (exited) throw new Error(`worker process ${exited.pid} exited (${exited.exitCode ?? exited.signalCode}) before it served the pipeline`);
    const serving = await Promise.all(STAGES.map((stage) => queues.get(stage).getWorkersCount()));
    if (serving.every((n) => n >= count)) return Date.now() - started;
    if (Date.now() - started > timeoutMs) {
      throw new Error(`the worker processes did not serve every stage within ${timeoutMs / 1000} s (workers per queue: ${STAGES.map((s, i) => `${s} ${serving[i]}`).join(', ')})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The sandbox's request counts since `before` (the warm-up's calls left out). */
function sinceWarmup(now: Record<string, number>, before: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(now).map(([key, value]) => [key, value - (before[key] ?? 0)]));
}

/** The sandbox's request counts per order: what the pipeline asked of the bank (the status polls above all). */
function bankCalls(stats: Record<string, number>, orders: number): string {
  const per = (n: number) => (n / orders).toFixed(2);
  return `submit ${per(stats.submitRequests)}, status ${per(stats.statusRequests)}, lookup ${per(stats.lookupRequests)}; tokens ${stats.tokenRequests} in all`;
}

async function main(): Promise<void> {
  const orders = arg('orders', 5000);
  const workerCount = arg('workers', 1);
  const rate = arg('rate', 0);
  // Never more warm-up than the run itself (a quick run of 100 stays quick).
  const warmup = arg('warmup', Math.min(1000, orders));
  // --batch N: worker.batchSize and worker.batchConcurrency (jobs a process takes at once per batched stage).
  const batch = arg('batch', 0);
  // --batch-wait MS: worker.batchWaitMs (how long a batch's first order waits for others).
  const batchWait = process.argv.includes('--batch-wait') ? arg('batch-wait', 0) : undefined;
  const suffix = randomBytes(4).toString('hex');
  const server = process.env.CONNECTOR_BENCH_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432';
  const redisUrl = process.env.CONNECTOR_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const dbName = `connector_bench_${suffix}`;
  const prefix = `bench-${suffix}`;
  const dir = mkdtempSync(join(tmpdir(), 'connector-bench-'));
  const configFile = join(dir, 'connector.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      signing: { rules: [{ account: '*', fromAmount: '0', signatures: 1 }], mandates: SIGNERS.map((s) => ({ login: s.login, account: '*', upTo: '100000000' })), pollEveryMs: 300 },
      tracking: { pollEveryMs: 200, maxPollEveryMs: 1_000 },
      queue: { backoffMs: 200 },
      worker: { ...(batch ? { batchSize: batch, batchConcurrency: batch } : {}), ...(batchWait !== undefined ? { batchWaitMs: batchWait } : {}) },
      log: { level: 'warn' },
    }),
  );
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CONNECTOR_CONFIG: configFile,
    CONNECTOR_DATABASE_URL: `${server}/${dbName}`,
    CONNECTOR_REDIS_URL: redisUrl,
    CONNECTOR_REDIS_PREFIX: prefix,
    CONNECTOR_TEST_MODE: '1',
    CONNECTOR_LOG_LEVEL: 'warn',
    CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`,
    CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}`,
    CONNECTOR_SIGNER_TOKEN_FILE: join(dir, 'signer.token'),
    CONNECTOR_MASTER_KEY_FILE: join(dir, 'master.key'),
  };
  const logger = createLogger({ level: 'warn', name: 'bench' });
  const pki = makeWorldPki(join(dir, 'pki'), SIGNERS);
  const config = worldConfig(loadConfig({ env, cwd: dir }), dir, pki, SIGNERS);
  let context: Awaited<ReturnType<typeof createAppContext>> | undefined;
  let world: Awaited<ReturnType<typeof startWorld>>;
  try {
    await migrate(config);
    context = await createAppContext({ config, logger, role: workerCount === 0 ? 'worker' : 'producer' });
    world = await startWorld({
      config,
      pki,
      logger,
      dir,
      env: {},
      sandbox: { accounts: FUNDED_ACCOUNTS, clock: { acceptedToProcessingMs: 100, processingToFinalMs: 100, tickMs: 50 } },
    });
  } catch (err) {
    // A bench that could not start leaves no database behind (each run makes its own).
    await context?.close().catch(() => undefined);
    await dropBenchState({ server, dbName, redisUrl, prefix, dir });
    throw err;
  }
  const children: ChildProcess[] = [];
  const peaks = new Map<number, number>();
  const cpu = new Map<number, number>();
  const services = new ServiceCpu(new Set(['postgres', 'redis-server']));
  const sample = setInterval(() => {
    services.sample();
    for (const c of children) {
      if (!c.pid) continue;
      peaks.set(c.pid, Math.max(peaks.get(c.pid) ?? 0, peakRssMiB(c.pid) ?? 0));
      cpu.set(c.pid, cpuSeconds(c.pid) ?? cpu.get(c.pid) ?? 0);
    }
  }, 500);
  try {
    await ensureBankCredentials(context);
    await ensureSigners(context, pki, SIGNERS, [DEMO.payerIban]);
    for (let i = 0; i < workerCount; i++) {
      // BENCH_WORKER_PROFILE_DIR=<dir>: a V8 CPU profile of each worker process, written when it stops.
      const profile = process.env.BENCH_WORKER_PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_WORKER_PROFILE_DIR}`] : [];
      const child = spawn(process.execPath, [...profile, CLI, 'worker'], { env, cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
      children.push(child);
    }
    const inProcess = workerCount === 0 ? (await import('../queue/worker.runner')).startWorkers(context, context.redis) : undefined;
    // The clock starts once every worker process serves every stage: a process start (seconds on
    // a busy machine) is not pipeline time. In-process workers serve as soon as they exist.
    const readyMs = workerCount === 0 ? 0 : await workersServing(context.queues, workerCount, children, 60_000);

    const em = () => context.orm.em.fork();
    /** Offers `list` under `source` (all at once, or at --rate) and waits until every one of them is final. */
    const offerAndFollow = async (source: string, list: ReturnType<typeof bulkOrders>, label: string) => {
      const started = Date.now();
      const chunk = rate ? Math.max(1, Math.round(rate / 10)) : 500;
      for (let i = 0; i < list.length; i += chunk) {
        const slice = list.slice(i, i + chunk).map((order) => ({ order }));
        await intakeOrders(em(), source, slice, bullmqIntakePort(context.queues), { actor: 'bench' });
        if (rate) {
          const due = started + ((i + chunk) / rate) * 1000;
          const wait = due - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
      }
      const intakeMs = Date.now() - started;
      for (let lastLine = '';;) {
        const rows = await em().execute<Array<{ state: string; n: string }>>('select state, count(*) as n from payment_order where source = ? group by state', [source]);
        const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
        const final = (byState.executed ?? 0) + (byState.rejected ?? 0) + (byState.invalid ?? 0) + (byState.failed ?? 0) + (byState.deemed_executed ?? 0);
        const line = `  ${label}${((Date.now() - started) / 1000).toFixed(0)} s ${JSON.stringify(byState)}`;
        if (line !== lastLine) process.stderr.write(`${line}\n`);
        lastLine = line;
        if (final === list.length) break;
        await new Promise((r) => setTimeout(r, 1_000));
      }
      return { started, intakeMs };
    };

    const offered = rate ? `${rate} orders/s offered` : 'all offered at once';
    // --warmup K (default 1000, or the run's count when fewer; 0: none): K orders through the same pipeline first, not counted. A
    // worker under PM2 runs for days; the first thousand orders of a fresh process also pay V8's
    // compilation of the code they run (a quarter of the worker's CPU in a cold 3,000-order run).
    if (warmup > 0) {
      process.stderr.write(`bench: warm-up, ${warmup} orders (${offered}), not counted\n`);
      await offerAndFollow(WARMUP_SOURCE, bulkOrders(`W${Date.now().toString(36)}`, warmup), 'warm-up ');
    }
    const callsBefore = { ...world.sandbox.stats };

    const all = bulkOrders(`B${Date.now().toString(36)}`, orders);
    process.stderr.write(`bench: ${orders} orders, ${workerCount || 'in-process'} worker process(es) x concurrency ${config.worker.concurrency}, RSA-2048 keys, 1 signature per order, ${offered}\n`);
    // BENCH_CPU_PROFILE=<file>: a V8 CPU profile of this process over the run (node --cpu-prof does not
    // cover the main thread of a process that exits through its own handles).
    const profiler = process.env.BENCH_CPU_PROFILE ? new Session() : undefined;
    if (profiler) {
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.start');
    }
    const cpuAtStart = process.cpuUsage();
    const childCpuAtStart = new Map(children.map((c) => [c.pid ?? 0, cpuSeconds(c.pid ?? 0) ?? 0]));
    services.start();
    const { started, intakeMs } = await offerAndFollow(SOURCE, all, '');
    const wallMs = Date.now() - started;
    if (profiler) {
      const { profile } = await profiler.post('Profiler.stop');
      writeFileSync(process.env.BENCH_CPU_PROFILE as string, JSON.stringify(profile));
      profiler.disconnect();
    }
    const ownCpu = process.cpuUsage(cpuAtStart);
    const benchCpuS = (ownCpu.user + ownCpu.system) / 1e6;
    const workerCpuS = children.map((c) => (cpuSeconds(c.pid ?? 0) ?? 0) - (childCpuAtStart.get(c.pid ?? 0) ?? 0));
    services.sample();
    const serviceCpuS = services.totals();
    const postgresCpuS = serviceCpuS.get('postgres') ?? 0;
    const redisCpuS = serviceCpuS.get('redis-server') ?? 0;
    const ownProcessesCpuS = benchCpuS + workerCpuS.reduce((a, b) => a + b, 0);
    await inProcess?.close(5_000);

    // Latencies from the order events (PostgreSQL's own timestamps of each transition).
    const [lat] = await em().execute<Array<Record<string, number | null>>>(
      `with t as (
         select o.id,
           min(e.at) filter (where e.to_state = 'received') as received,
           min(e.at) filter (where e.to_state = 'validated') as validated,
           min(e.at) filter (where e.to_state = 'signed') as signed,
           min(e.at) filter (where e.to_state = 'submitting') as submitting,
           min(e.at) filter (where e.to_state = 'submitted') as submitted,
           min(e.at) filter (where e.to_state = 'executed') as executed
         from payment_order o join order_event e on e.order_id = o.id where o.source = ? group by o.id),
       d as (select extract(epoch from submitted - received) * 1000 as to_submitted, extract(epoch from executed - received) * 1000 as to_executed,
                    extract(epoch from validated - received) * 1000 as s_validate, extract(epoch from signed - validated) * 1000 as s_sign,
                    extract(epoch from submitting - signed) * 1000 as s_claim, extract(epoch from submitted - submitting) * 1000 as s_submit,
                    extract(epoch from executed - submitted) * 1000 as s_track, received, executed from t)
       select
         percentile_cont(0.5) within group (order by to_submitted) as sub50, percentile_cont(0.95) within group (order by to_submitted) as sub95, percentile_cont(0.99) within group (order by to_submitted) as sub99,
         percentile_cont(0.5) within group (order by to_executed) as exe50, percentile_cont(0.95) within group (order by to_executed) as exe95, percentile_cont(0.99) within group (order by to_executed) as exe99,
         avg(s_validate) as v_avg, percentile_cont(0.5) within group (order by s_validate) as v50,
         avg(s_sign) as g_avg, percentile_cont(0.5) within group (order by s_sign) as g50,
         avg(s_claim) as c_avg, percentile_cont(0.5) within group (order by s_claim) as c50,
         avg(s_submit) as u_avg, percentile_cont(0.5) within group (order by s_submit) as u50,
         avg(s_track) as k_avg, percentile_cont(0.5) within group (order by s_track) as k50,
         extract(epoch from max(executed) - min(received)) * 1000 as span,
         count(executed) as executed,
         -- The same after the run's first seconds (the worker's JIT and pools warm up then): what a long-running worker shows.
         percentile_cont(0.5) within group (order by to_submitted) filter (where received >= (select min(received) from d) + interval '5 seconds') as warm50,
         percentile_cont(0.99) within group (order by to_submitted) filter (where received >= (select min(received) from d) + interval '5 seconds') as warm99,
         count(*) filter (where received < (select min(received) from d) + interval '5 seconds') as cold
       from d`,
      [SOURCE],
    );
    // BENCH_DUMP=<file>: one line per order, its transitions in ms after its intake (to study the tails).
    if (process.env.BENCH_DUMP) {
      const rows = await em().execute<Array<{ received: Date | string; id: string; times: string }>>(
        `select o.id, r.at as received, string_agg(e.to_state || '=' || round(extract(epoch from e.at - r.at) * 1000), ' ' order by e.at) as times
           from payment_order o
           join lateral (select min(at) as at from order_event where order_id = o.id and to_state = 'received') r on true
           join order_event e on e.order_id = o.id
          where o.source = ? group by o.id, r.at order by r.at`,
        [SOURCE],
      );
      writeFileSync(process.env.BENCH_DUMP, rows.map((r) => `${new Date(r.received).toISOString()} ${r.id} ${r.times}\n`).join(''));
    }
    const ledger = (await (await fetch(`${world.admin}/submissions`)).json()) as { total: number; duplicates: number };
    const n = (k: string) => (lat[k] === null ? null : Number(lat[k]));
    const e2e = (Number(lat.executed) * 1000) / (n('span') ?? wallMs);
    for (const c of children) if (c.pid) peaks.set(c.pid, Math.max(peaks.get(c.pid) ?? 0, peakRssMiB(c.pid) ?? 0));
    const workerPeaks = [...peaks.values()];

    const bare = await bareChain(redisUrl, `${prefix}-bare`, orders, config.worker.concurrency * Math.max(1, workerCount), warmup);
    const out = [
      `pipeline: ${orders} orders, ${Number(lat.executed)} executed, ledger total ${ledger.total}${warmup ? ` (the warm-up's ${warmup} included)` : ''} duplicates ${ledger.duplicates}`,
      `setup: ${workerCount ? `${workerCount} worker process(es)` : '1 process (workers in-process)'} x concurrency ${config.worker.concurrency}, batched stages ${config.worker.batchConcurrency} jobs in batches of ${config.worker.batchSize} (a batch waits up to ${config.worker.batchWaitMs} ms to fill); RSA-2048 test keys, 1 signature per order (standing mandate); sandbox + signer agent (${config.signer.workers ?? 'one thread per core'}) in the bench process; Redis + PostgreSQL on loopback; ${warmup ? `measured after a warm-up of ${warmup} orders through the same worker(s), not counted` : 'no warm-up (a cold worker)'}${workerCount ? `; the clock started once the worker process(es) served every stage, ${fmt(readyMs)} after their start` : ''}`,
      `intake: ${fmt(intakeMs)} for ${orders} orders (${rate ? `${rate}/s offered` : 'all at once, 500 per batch'})`,
      `orders/s end to end (first received -> last executed): ${e2e.toFixed(1)}  (wall ${fmt(wallMs)})`,
      `intake->submitted p50 ${fmt(n('sub50'))}  p95 ${fmt(n('sub95'))}  p99 ${fmt(n('sub99'))}${
        rate && !warmup ? `  (leaving out the ${Number(lat.cold)} orders offered in the run's first 5 s, while the worker warms up: p50 ${fmt(n('warm50'))}  p99 ${fmt(n('warm99'))})` : ''
      }`,
      `intake->executed  p50 ${fmt(n('exe50'))}  p95 ${fmt(n('exe95'))}  p99 ${fmt(n('exe99'))}`,
      `per stage (avg / p50): validate ${fmt(n('v_avg'))} / ${fmt(n('v50'))} | sign ${fmt(n('g_avg'))} / ${fmt(n('g50'))} | claim ${fmt(n('c_avg'))} / ${fmt(n('c50'))} | submit ${fmt(n('u_avg'))} / ${fmt(n('u50'))} | track to executed ${fmt(n('k_avg'))} / ${fmt(n('k50'))}`,
      `bank calls per order (the sandbox's count): ${bankCalls(sinceWarmup(world.sandbox.stats, callsBefore), orders)}`,
      `peak RSS: bench process (sandbox + signer agent + intake) ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB; worker processes ${workerPeaks.map((p) => `${p.toFixed(0)} MiB`).join(', ') || '-'}`,
      `CPU during the run: bench process (sandbox + signer agent with its signing threads + intake) ${benchCpuS.toFixed(1)} s; worker processes ${workerCpuS.map((c) => `${c.toFixed(1)} s`).join(', ') || '-'}; per order ${((ownProcessesCpuS * 1000) / orders).toFixed(1)} ms (PostgreSQL and Redis not counted)`,
      `CPU of the services on this machine (from /proc; 0 when they run elsewhere): PostgreSQL ${postgresCpuS.toFixed(1)} s, Redis ${redisCpuS.toFixed(1)} s; all together ${(((ownProcessesCpuS + postgresCpuS + redisCpuS) * 1000) / orders).toFixed(1)} ms per order, at most ${(
        (cpus().length * orders) / (ownProcessesCpuS + postgresCpuS + redisCpuS)
      ).toFixed(0)} orders/s on ${cpus().length} cores`,
      `bare BullMQ chain (4 no-op stages, ${orders} chains, 1 process, concurrency ${config.worker.concurrency * Math.max(1, workerCount)} per queue, same Redis${warmup ? `, after ${warmup} chains of warm-up` : ''}): ${bare.perSecond.toFixed(1)} chains/s`,
      `ratio pipeline / bare chain: ${(e2e / bare.perSecond).toFixed(3)}`,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    clearInterval(sample);
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(null) : c.once('exit', r)))));
    await world.close();
    await context.close();
    await dropBenchState({ server, dbName, redisUrl, prefix, dir });
  }
}

/** The bench's own database, Redis keys and directory: gone after a run, and after a run that failed to start. */
async function dropBenchState(state: { server: string; dbName: string; redisUrl: string; prefix: string; dir: string }): Promise<void> {
  const admin = new Client({ connectionString: `${state.server}/postgres` });
  await admin.connect();
  await admin.query(`drop database if exists "${state.dbName}" with (force)`).catch(() => undefined);
  await admin.end();
  const redis = new IORedis(state.redisUrl);
  for (const pattern of [`${state.prefix}:*`, `${state.prefix}-bare:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  }
  redis.disconnect();
  rmSync(state.dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
