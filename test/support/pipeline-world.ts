import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import IORedis from 'ioredis';
import type { Job } from 'bullmq';
import type { Orm } from '../../connector/persistence/database';
import { bulkOrders, ensureBankCredentials, ensureSigners, FUNDED_ACCOUNTS, makeWorldPki, startWorld, worldConfig, type World, type WorldSigner } from '../../connector/demo/pipeline-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { REGISTERED_JOBS } from '../../queue/jobs';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import type { ConnectorConfig } from '../../config/config.schema';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger, type Logger } from '../../connector/logging/logger';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { createTestEnv, eventually, type TestEnv } from './test-env';
import { loadConfig } from '../../config/load-config';
import type { TestPkiResult } from '../../scripts/make-test-pki';

/**
 * What the pipeline proofs share beyond the demo's world (connector/demo/pipeline-world.ts):
 * free ports, a private Redis server, many valid orders, the sandbox ledger and the final-state check.
 */

/** The signer agent's signing worker as built by the global setup (jest loads the agent from sources). */
export const SIGNING_WORKER_SCRIPT = join(__dirname, '..', '..', 'dist', 'signer-agent', 'agent', 'signing.worker.js');

/** One RSA signer and a single-signature policy: the cheapest signing, so the proofs test the pipeline, not the crypto. */
export const PROOF_SIGNERS: WorldSigner[] = [{ login: 'proof.ceo', keystore: 'rsa-ceo', level: 'first' }];

/** Where an order stops: final states, and `failed` (visible, retryable: a proof counts it as not done). */
export const FINAL_STATES = ['executed', 'rejected', 'invalid', 'deemed_executed'];

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export { bulkOrders as proofOrders, FUNDED_ACCOUNTS } from '../../connector/demo/pipeline-world';

export interface Ledger {
  total: number;
  duplicates: number;
  submissions: Array<{ externalId: string; document: string; requests: number; accepted: boolean; afterAccepted: number }>;
}

export async function sandboxAdmin<T>(admin: string, path: string, init?: { method: string; body?: unknown }): Promise<T> {
  const res = await fetch(`${admin}${path}`, {
    method: init?.method ?? 'GET',
    headers: init?.body !== undefined ? { 'content-type': 'application/json' } : undefined,
    body: init?.body !== undefined ? JSON.stringify(init.body) : undefined,
  });
  if (!res.ok) throw new Error(`sandbox ${path}: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

export async function statesOf(orm: Orm, source: string): Promise<Record<string, number>> {
  const rows = await orm.em.fork().execute<Array<{ state: string; n: string }>>('select state, count(*) as n from payment_order where source = ? group by state', [source]);
  return Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
}

export function finalCount(states: Record<string, number>): number {
  return FINAL_STATES.reduce((sum, s) => sum + (states[s] ?? 0), 0);
}

/**
 * A private `redis-server` on a free port with its own directory: the machine's shared Redis keeps
 * nothing on disk and must not be restarted by a test. AOF on, no RDB snapshots.
 */
export class PrivateRedis {
  private child?: ChildProcess;
  constructor(
    readonly port: number,
    public dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--appendfsync', 'everysec', '--dir', this.dir, '--maxmemory-policy', 'noeviction'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    const probe = new IORedis(this.url, { maxRetriesPerRequest: 1, lazyConnect: true, retryStrategy: () => 100 });
    try {
      for (let i = 0; ; i++) {
        try {
          await probe.connect().catch(() => undefined);
          if ((await probe.ping()) === 'PONG') {
            // Loading the AOF answers LOADING until done.
            return;
          }
        } catch {
          if (i > 100 || child.exitCode !== null) throw new Error(`redis-server on port ${this.port} did not start`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  /**
   * SIGTERM: Redis flushes and fsyncs the AOF before exiting, so a restart on the same directory
   * has every acknowledged write. SIGKILL: what survives is what the AOF had (fsync every second).
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}

/**
 * The in-process proof world: a test database and key prefix, the test PKI, the sandbox bank and
 * the signer agent on free ports, bank credentials stored and the proof signer's key unlocked.
 * `tune` adjusts the connector's configuration (timeouts, attempts) before anything starts.
 */
export async function startProofWorld(
  label: string,
  options: { tune?: (config: ConnectorConfig) => ConnectorConfig; sandbox?: Parameters<typeof startWorld>[0]['sandbox']; logLevel?: string } = {},
): Promise<{ env: TestEnv; context: AppContext; world: World }> {
  const env = await createTestEnv(label, { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
  const pki = makeWorldPki(join(env.workDir, 'pki'), PROOF_SIGNERS);
  const base = worldConfig(env.config, env.workDir, pki, PROOF_SIGNERS);
  const config = options.tune ? options.tune(base) : base;
  const logger = createLogger({ level: (options.logLevel ?? 'silent') as 'silent', name: `proof-${label}` });
  const context = await createAppContext({ config, logger, role: 'worker' });
  const world = await startWorld({ config, pki, logger, dir: env.workDir, env: {}, signerWorkerScript: SIGNING_WORKER_SCRIPT, sandbox: options.sandbox ?? { accounts: FUNDED_ACCOUNTS } });
  await ensureBankCredentials(context);
  await ensureSigners(context, pki, PROOF_SIGNERS, [DEMO.payerIban]);
  return { env, context, world };
}

/**
 * The configuration of a proof world's worker processes (children of the test): one signature by
 * the proof signer's standing mandate, quick signing and status polls, and `overrides` per
 * section. Written where the children read it (CONNECTOR_CONFIG in `childEnv`) and loaded for the
 * test process too, so both run on the same settings.
 */
export function proofChildConfig(env: TestEnv, pki: TestPkiResult, overrides: Record<string, unknown> = {}, extraEnv: NodeJS.ProcessEnv = {}): { childEnv: NodeJS.ProcessEnv; config: ConnectorConfig } {
  const configFile = join(env.workDir, 'connector.config.json');
  writeFileSync(
    configFile,
    JSON.stringify({
      signing: { rules: [{ account: '*', fromAmount: '0', signatures: 1 }], mandates: PROOF_SIGNERS.map((s) => ({ login: s.login, account: '*', upTo: '100000000' })), pollEveryMs: 300 },
      tracking: { pollEveryMs: 300, maxPollEveryMs: 1_000 },
      ...overrides,
    }),
  );
  const childEnv = { ...env.env, CONNECTOR_CONFIG: configFile, ...extraEnv };
  return { childEnv, config: worldConfig(loadConfig({ env: childEnv, cwd: env.workDir }), env.workDir, pki, PROOF_SIGNERS) };
}

/**
 * The bank sandbox and the signer agent of a proof world whose workers are child processes, on a
 * fast day: a document goes accepted -> in_processing -> executed in about 0.2 s. The clock itself
 * runs at real speed: a faster one would carry documents dated today past midnight (Kazakhstan
 * time) and the bank would refuse their value date. `sandbox` adds to those settings.
 */
export function startFastWorld(env: TestEnv, pki: TestPkiResult, config: ConnectorConfig, logger: Logger, sandbox: Parameters<typeof startWorld>[0]['sandbox'] = {}): Promise<World> {
  return startWorld({
    config,
    pki,
    logger,
    dir: env.workDir,
    env: {},
    signerWorkerScript: SIGNING_WORKER_SCRIPT,
    sandbox: { accounts: FUNDED_ACCOUNTS, clock: { acceptedToProcessingMs: 100, processingToFinalMs: 100, tickMs: 100 }, ...sandbox },
  });
}

/**
 * The submit job as BullMQ hands it to its handler, for a test that runs the handler itself:
 * `attemptsMade` tries made of `attempts`, extra job `data`; moving it to delayed does nothing.
 */
export function fakeSubmitJob(orderId: string, attemptsMade = 0, attempts = 8, data: Record<string, unknown> = {}): Job {
  return {
    id: `submit-${orderId}`,
    name: 'order.submit',
    data: { orderId, ...data },
    attemptsMade,
    opts: { attempts },
    token: 'test',
    moveToDelayed: async () => undefined,
    updateData: async () => undefined,
  } as unknown as Job;
}

/**
 * `base` as BullMQ hands a job over to a handler a test runs by hand, again and again: its data kept
 * between runs (updateData), the delays it asks for (moveToDelayed) recorded, in ms from then.
 */
export function recordingJob(base: Job): { job: Job; data: Record<string, unknown>; delays: number[] } {
  const data: Record<string, unknown> = { ...(base.data as Record<string, unknown>) };
  const delays: number[] = [];
  const job = {
    ...base,
    data,
    updateData: async (next: Record<string, unknown>) => void Object.assign(data, next),
    moveToDelayed: async (at: number) => void delays.push(at - Date.now()),
  } as unknown as Job;
  return { job, data, delays };
}

/**
 * A world's workers for every stage but submit, started on first use: a test takes orders in, lets
 * them be validated and signed, and runs the submit job itself (fakeSubmitJob).
 */
export class AllButSubmit {
  workers: RunningWorkers | undefined;

  constructor(private readonly context: AppContext) {}

  /** One order of `source` (numbers starting with `prefix`) taken in and signed, its submit job not run. */
  async signedOrder(source: string, prefix: string): Promise<string> {
    const { context } = this;
    this.workers ??= startWorkers(context, context.redis, REGISTERED_JOBS.filter((j) => j.definition.queue !== 'submit'));
    const signedBefore = (await statesOf(context.orm, source)).signed ?? 0;
    const [result] = await intakeOrders(context.orm.em.fork(), source, bulkOrders(`${prefix}${Date.now().toString(36)}`, 1).map((order) => ({ order })), bullmqIntakePort(context.queues), { actor: 'proof' });
    await eventually(async () => ((await statesOf(context.orm, source)).signed ?? 0) > signedBefore, { timeoutMs: 30_000, what: 'the order to be signed' });
    return result.orderId as string;
  }

  async close(): Promise<void> {
    await this.workers?.close(5_000);
  }
}
