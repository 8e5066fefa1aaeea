import net from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { Client } from 'pg';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { ensureDatabase } from '../../connector/persistence/database';
import { MIGRATIONS } from '../../connector/persistence/migrations';

/**
 * A long-running command that cannot serve must end (exit 1) and say why: left running with its
 * PostgreSQL and Redis connections open, PM2 shows it `online` while nothing is served. The bound
 * below is generous (a loaded machine); a command that hangs is killed at it and fails the test.
 */
const BOUND_MS = 45_000;

describe('long-running commands on an address that is taken', () => {
  let env: TestEnv;
  let holder: net.Server;
  let port = 0;
  let socketDir: string;
  let socketHolder: net.Server;
  let socketPath: string;

  beforeAll(async () => {
    env = await createTestEnv('startup_failure');
    holder = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    port = (holder.address() as net.AddressInfo).port;
    // Another process already serving on the agent's Unix socket (e.g. the agent PM2 runs).
    socketDir = mkdtempSync(join(tmpdir(), 'startup-failure-'));
    socketPath = join(socketDir, 'agent.sock');
    socketHolder = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve) => socketHolder.listen(socketPath, resolve));
  }, 60_000);
  afterAll(async () => {
    await new Promise((resolve) => holder?.close(resolve));
    await new Promise((resolve) => socketHolder?.close(resolve));
    rmSync(socketDir, { recursive: true, force: true });
    await env?.cleanup();
  });

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...env.env, ...extra }, cwd: env.workDir, timeoutMs: BOUND_MS });

  it('connector api exits 1 naming the address and the variable that moves it', async () => {
    const run = await cli(['api'], { CONNECTOR_API_HOST: '127.0.0.1', CONNECTOR_API_PORT: String(port) });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`API_LISTEN_FAILED: the API cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(EADDRINUSE\\): another process holds it`));
    expect(run.stderr).toMatch(/CONNECTOR_API_PORT/);
  }, BOUND_MS + 10_000);

  it('connector sandbox exits 1 naming the address and its flags', async () => {
    const run = await cli(['sandbox', '--port', String(port)]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`SANDBOX_START_FAILED: the sandbox cannot listen on 127\\.0\\.0\\.1:${port}: the address is already in use \\(EADDRINUSE\\).*--port`));
  }, BOUND_MS + 10_000);

  it('connector signer-agent exits 1 on a taken port, naming the address and CONNECTOR_SIGNER_URL', async () => {
    const run = await cli(['signer-agent', '--workers', '1', '--url', `http://127.0.0.1:${port}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`SIGNER_LISTEN_FAILED: the signer agent cannot listen on http://127\\.0\\.0\\.1:${port}: the address is already in use \\(EADDRINUSE\\).*CONNECTOR_SIGNER_URL`));
  }, BOUND_MS + 10_000);

  it('connector signer-agent does not take over a Unix socket another process serves on', async () => {
    const run = await cli(['signer-agent', '--workers', '1', '--url', `unix:${socketPath}`]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/SIGNER_LISTEN_FAILED: .*another process \(a signer agent already running\?\) accepts connections on it/);
    // The running one is still reachable where its callers look for it.
    expect(existsSync(socketPath)).toBe(true);
    await new Promise<void>((resolve, reject) => {
      const probe = net.connect({ path: socketPath }, () => {
        probe.destroy();
        resolve();
      });
      probe.once('error', reject);
    });
  }, BOUND_MS + 10_000);
});

describe('commands on a database this release has not migrated', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv('unmigrated', {}, { migrate: false });
  }, 60_000);
  afterAll(async () => {
    await env?.cleanup();
  });

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => runCli(args, { env: { ...env.env, ...extra }, cwd: env.workDir, timeoutMs: BOUND_MS });
  const exists = async () => {
    const admin = new Client({ connectionString: 'postgresql://postgres@127.0.0.1:5432/postgres' });
    await admin.connect();
    try {
      return (await admin.query('select 1 from pg_database where datname = $1', [env.name])).rowCount === 1;
    } finally {
      await admin.end();
    }
  };

  it('a missing database is named with what to run, and only `connector migrate` creates it', async () => {
    const run = await cli(['orders', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(new RegExp(`POSTGRESQL_UNREACHABLE: PostgreSQL at .* has no such database .*${env.name}.*connector migrate`));
    expect(await exists()).toBe(false);
  }, BOUND_MS + 10_000);

  it('the worker, the scheduler and the API on a missing database say so as every other command does, and leave it missing', async () => {
    // MikroORM's pending-migrations check used to create the database, then the command refused with MIGRATIONS_PENDING.
    for (const command of [['worker'], ['scheduler'], ['api']]) {
      const run = await cli(command, { CONNECTOR_API_PORT: String(await freePort()) });
      expect({ command, code: run.code }).toEqual({ command, code: 1 });
      expect(run.stderr).toMatch(new RegExp(`^POSTGRESQL_UNREACHABLE: PostgreSQL at .* has no such database .*${env.name}.*connector migrate`));
      expect(run.stderr).not.toMatch(/MIGRATIONS_PENDING/);
      expect({ command, exists: await exists() }).toEqual({ command, exists: false });
    }
  }, 4 * BOUND_MS);

  it('the worker, the scheduler and the API refuse to start on a wrong file in calendar.dataDir, naming it and the rule, and doctor fails its calendar check with the same words', async () => {
    const dataDir = join(env.workDir, 'calendar');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'kz-2028.json'), JSON.stringify({ year: 2027, confirmed: true, sources: [{ title: 'test' }], holidays: [{ date: '2027-01-01', name: 'Новый год', nameEn: 'New Year', kind: 'state', confirmed: true }], carryOvers: [], transfers: [], notes: [] }));
    const configFile = join(env.workDir, 'calendar.config.json');
    writeFileSync(configFile, JSON.stringify({ calendar: { dataDir } }));
    for (const command of [['worker'], ['scheduler'], ['api']]) {
      const run = await cli(command, { CONNECTOR_CONFIG: configFile, CONNECTOR_API_PORT: String(await freePort()) });
      expect({ command, code: run.code }).toEqual({ command, code: 1 });
      expect(run.stderr).toMatch(new RegExp(`^CALENDAR_DATA_INVALID: ${dataDir}/kz-2028\\.json: year: holds 2027, but the file is named for 2028`));
    }
    const doctor = await cli(['doctor', '--json'], { CONNECTOR_CONFIG: configFile });
    const calendar = (JSON.parse(doctor.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks.find((c) => c.name === 'calendar');
    expect(calendar).toMatchObject({ verdict: 'FAIL', detail: expect.stringContaining('kz-2028.json: year: holds 2027') });
  }, 4 * BOUND_MS);

  it('on an empty database the worker, the scheduler and the API refuse to start (MIGRATIONS_PENDING, exit 1), and a command names the missing table; migrated, they run', async () => {
    await ensureDatabase(env.config.database.url);
    for (const command of [['worker'], ['scheduler'], ['api']]) {
      const run = await cli(command, { CONNECTOR_API_PORT: String(await freePort()) });
      expect({ command, code: run.code }).toEqual({ command, code: 1 });
      expect(run.stderr).toMatch(new RegExp(`MIGRATIONS_PENDING: the database postgresql://postgres@127\\.0\\.0\\.1:5432/${env.name} lacks ${MIGRATIONS.length} migration\\(s\\) of this release \\(Migration.*\\(${MIGRATIONS.length} in all\\)\\): run \`connector migrate\``));
    }
    const listed = await cli(['orders', 'list']);
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(/^MIGRATIONS_PENDING: the database postgresql:\/\/.* has no table "payment_order" that this release needs: .*run `connector migrate`\n$/);
    expect(listed.stderr).not.toMatch(/select/i);

    expect((await cli(['migrate'])).code).toBe(0);
    const after = await cli(['orders', 'list', '--json']);
    expect(after.code).toBe(0);
    expect(JSON.parse(after.stdout)).toEqual({ orders: [] });
  }, 4 * BOUND_MS);
});
