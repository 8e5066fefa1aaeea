import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from 'pg';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { startCli, waitForExit } from '../support/cli';
import { freePort } from '../support/pipeline-world';
import { redisConnection, QueueSet } from '../../queue/queue.factory';
import { writeBackJob } from '../../queue/jobs/write-back.job';
import { SHUTDOWN_BOUND_MS } from '../../connector/cli/lifecycle';

/**
 * The shortest kill_timeout of the API, worker and scheduler (ecosystem.config.js): past it, PM2
 * SIGKILLs the process. Read as PM2 reads the file, in a process of its own (it makes its log folder).
 */
function pm2KillTimeoutMs(): number {
  const file = join(__dirname, '..', '..', 'ecosystem.config.js');
  const script = `const { apps } = require(${JSON.stringify(file)}); console.log(Math.min(...apps.filter((a) => /^connector-(api|worker|scheduler)$/.test(a.name)).map((a) => a.kill_timeout)))`;
  const logs = mkdtempSync(join(tmpdir(), 'connector-pm2-logs-'));
  try {
    return Number(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, CONNECTOR_LOG_DIR: logs } }).toString().trim());
  } finally {
    rmSync(logs, { recursive: true, force: true });
  }
}
const PM2_KILL_TIMEOUT_MS = pm2KillTimeoutMs();

/** SIGINT as PM2 sends it; the process must end, exit 1 naming the bound, before PM2 would SIGKILL it. */
async function expectBoundedExit(child: ReturnType<typeof startCli>, name: 'worker' | 'api'): Promise<void> {
  const signalled = Date.now();
  child.kill('SIGINT');
  const code = await waitForExit(child, PM2_KILL_TIMEOUT_MS).catch((err: Error) => {
    throw new Error(`${err.message}: PM2 would SIGKILL it now (${Math.round((Date.now() - signalled) / 1000)} s after SIGINT)\n${child.output().slice(-3000)}`);
  });
  expect(Date.now() - signalled).toBeLessThan(PM2_KILL_TIMEOUT_MS - 2_000);
  expect(code).toBe(1);
  expect(child.output()).toMatch(new RegExp(`"event":"${name}\\.shutdown\\.timeout".*"boundMs":${SHUTDOWN_BOUND_MS}`));
}

/**
 * `pm2 stop` / `pm2 reload` send SIGINT and SIGKILL kill_timeout (30 s) later. The worker bounds its
 * wait for running jobs (20 s, queue/worker.runner.ts) below that, but a job still running then kept
 * its PostgreSQL connection, and closing the pool waits for every connection in use: the shutdown
 * went on until the job ended, here a write-back waiting (up to 2 minutes) for its 1C file's lock,
 * which another worker holds while it writes the file (two worker processes on one database). PM2
 * then SIGKILLed a process that had logged nothing about why it did not stop.
 */
describe('a graceful shutdown that cannot finish ends before PM2 SIGKILLs it (real child process)', () => {
  let env: TestEnv;
  let holder: Client | undefined;

  beforeAll(async () => {
    env = await createTestEnv('shutdown_bound', {
      CONNECTOR_LOG_LEVEL: 'info',
      CONNECTOR_API_PORT: String(await freePort()),
      CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`,
      CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}`,
    });
  });
  afterAll(async () => {
    await holder?.end().catch(() => undefined);
    await env?.cleanup();
  });

  it('the bound is below PM2 kill_timeout', () => {
    expect(SHUTDOWN_BOUND_MS).toBeLessThan(PM2_KILL_TIMEOUT_MS - 3_000);
  });

  it('connector worker with a write-back waiting for its file lock exits 1 within the bound, saying why', async () => {
    // Another worker writing kl_to_1c.txt: it holds the statement file's lock.
    holder = new Client({ connectionString: env.env.CONNECTOR_DATABASE_URL });
    await holder.connect();
    await holder.query('begin');
    await holder.query('select pg_advisory_xact_lock(hashtext($1))', ['writeback:onec.statement']);
    const holderPid = ((await holder.query('select pg_backend_pid() as pid')).rows[0] as { pid: number }).pid;

    const child = startCli(['worker'], { env: env.env, cwd: env.workDir });
    const redis = redisConnection(env.config, 'producer');
    const queues = new QueueSet(env.config, redis);
    try {
      await eventually(async () => child.output().includes('"event":"worker.started"'), { timeoutMs: 30_000, what: 'the worker to start' });
      await queues.add(writeBackJob, { at: 1 });
      // The write-back is running and waits for the lock, in a transaction on a connection of the
      // worker's pool (seen from a session of its own: within a transaction the view does not change).
      await eventually(
        async () => {
          const observer = new Client({ connectionString: env.env.CONNECTOR_DATABASE_URL });
          await observer.connect();
          try {
            const { rows } = await observer.query(`select 1 from pg_stat_activity where datname = current_database() and pid <> $1 and state = 'idle in transaction' and query like '%pg_try_advisory_xact_lock%'`, [holderPid]);
            return rows.length > 0;
          } finally {
            await observer.end();
          }
        },
        { timeoutMs: 30_000, what: 'the write-back to wait for the lock' },
      );

      await expectBoundedExit(child, 'worker');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await queues.close();
      redis.disconnect();
      await holder.query('rollback').catch(() => undefined);
    }
  }, 90_000);

  it('connector api with a request still being received exits 1 within the bound, saying why', async () => {
    const port = await freePort();
    const child = startCli(['api'], { env: { ...env.env, CONNECTOR_API_PORT: String(port) }, cwd: env.workDir });
    const socket = new Socket();
    try {
      await eventually(async () => child.output().includes('"event":"api.listening"'), { timeoutMs: 30_000, what: 'the API to start' });
      // An ERP on a slow line: its request has begun and is not whole yet (the API waits up to 60 s for headers, 5 min for a body).
      await new Promise<void>((resolve, reject) => socket.once('error', reject).connect(port, '127.0.0.1', resolve));
      socket.write(`POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n`);
      await new Promise((resolve) => setTimeout(resolve, 500));

      await expectBoundedExit(child, 'api');
    } finally {
      socket.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});

/**
 * A second SIGINT or SIGTERM during the graceful shutdown forces exit 1 (lifecycle.ts). Handled with
 * `once`, a second signal of the same kind found no handler: Node killed the process by that signal.
 */
describe('a second signal during the shutdown (real child process)', () => {
  it.each([
    ['SIGINT', 'SIGINT'],
    ['SIGTERM', 'SIGTERM'],
    ['SIGINT', 'SIGTERM'],
  ] as const)('%s then %s: exit 1 at once', async (first, second) => {
    const lifecycle = join(__dirname, '..', '..', 'dist', 'connector', 'cli', 'lifecycle.js');
    const logger = join(__dirname, '..', '..', 'dist', 'connector', 'logging', 'logger.js');
    const script = `
      const { untilSignal } = require(${JSON.stringify(lifecycle)});
      const { createLogger } = require(${JSON.stringify(logger)});
      setInterval(() => undefined, 1000); // the process serves until it is told to stop
      untilSignal(createLogger({ name: 't' }), 't', () => new Promise(() => console.error('CLOSING')))
        .then((code) => { process.exitCode = code; });
      console.error('READY');
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    try {
      await eventually(async () => output.includes('READY'), { what: 'the script to start' });
      child.kill(first);
      await eventually(async () => output.includes('CLOSING'), { what: 'the close to start' });
      child.kill(second);
      const code = await waitForExit(child, 10_000);
      expect({ code, signal: child.signalCode }).toEqual({ code: 1, signal: null });
      expect(output).toContain('"event":"t.shutdown.forced"');
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
