import net from 'node:net';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startMailServer } from '../support/mail-server';
import { Client } from 'pg';
import IORedis from 'ioredis';
import { Worker } from 'bullmq';
import { schedulerLeaderKey } from '../../queue/scheduler.runner';
import { createServer } from 'node:http';
import { createAppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { dispatchWebhooks } from '../../queue/jobs/dispatch-webhooks.job';
import { sampleOrder } from '../support/orders.fixture';

describe('connector doctor', () => {
  let env: TestEnv;
  const hanging: net.Socket[] = [];
  let silentServer: net.Server;
  let silentPort = 0;

  beforeAll(async () => {
    env = await createTestEnv('doctor');
    // A server that accepts connections and never answers: a hung Redis or PostgreSQL.
    silentServer = net.createServer((socket) => void hanging.push(socket));
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    silentPort = (silentServer.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of hanging) s.destroy();
    await new Promise((resolve) => silentServer.close(resolve));
    await env.cleanup();
  });

  it('is green with the services up (bank and signer agent only WARN when absent)', async () => {
    const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
    const report = JSON.parse(res.stdout);
    expect(res.code).toBe(0);
    expect(report.ok).toBe(true);
    const byName = Object.fromEntries(report.checks.map((c: { name: string; verdict: string }) => [c.name, c.verdict]));
    expect(byName).toMatchObject({ config: 'OK', redis: 'OK', postgresql: 'OK', migrations: 'OK', disk: expect.stringMatching(/OK|WARN/), bank: 'WARN', 'signer-agent': 'WARN' });
    expect(byName['clock-skew-redis']).toBe('OK');
    // no Client ID / Secret stored yet is a warning with the command to run, not a failure.
    expect(byName['bank-credentials']).toBe('WARN');
    expect(byName['clock-skew-postgresql']).toBe('OK');
  });

  it('names an open incident past its deadline to tell the bank (R-17, R-27, R-29): a warning, not a fault of the installation', async () => {
    const db = new Client({ connectionString: env.config.database.url });
    await db.connect();
    try {
      const { rows } = await db.query<{ id: string }>(
        `insert into incident (id, kind, severity, status, title, evidence, timeline, deadline_at, opened_at)
         values (gen_random_uuid(), 'authority_revoked', 'high', 'open', 'Tell the bank that d.overdue lost authority', '{}', '[]', now() - interval '2 hours', now() - interval '30 hours') returning id`,
      );
      const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      const report = JSON.parse(res.stdout) as { ok: boolean; checks: Array<{ name: string; verdict: string; detail: string; hint: string }> };
      expect(report.checks.find((c) => c.name === 'incidents')).toMatchObject({
        verdict: 'WARN',
        detail: expect.stringMatching(/^1 open incident\(s\) past their deadline; the first, due .*: Tell the bank that d\.overdue lost authority$/),
        hint: expect.stringContaining(`connector incidents resolve ${rows[0].id}`),
      });
      expect([res.code, report.ok]).toEqual([0, true]);
      await db.query("update incident set status = 'resolved' where id = $1", [rows[0].id]);
      const after = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      expect((JSON.parse(after.stdout) as { checks: Array<{ name: string; verdict: string }> }).checks.find((c) => c.name === 'incidents')).toMatchObject({ verdict: 'OK' });
    } finally {
      await db.end();
    }
  });

  it('R-26: warns until an archive export is recorded, and is OK after one (FAIL with --strict)', async () => {
    const run = async (strict = false) => {
      const res = await runCli(['doctor', '--json', ...(strict ? ['--strict'] : [])], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      return (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string }> }).checks.find((c) => c.name === 'archive');
    };
    expect(await run()).toMatchObject({ verdict: 'WARN', detail: 'no archive export recorded: the archive of documents and statements is not backed up (R-26)', hint: expect.stringContaining('connector archive export') });
    expect(await run(true)).toMatchObject({ verdict: 'FAIL' });
    const out = join(env.workDir, 'archive-doctor');
    const exported = await runCli(['archive', 'export', '--out', out], { env: env.env, cwd: env.workDir });
    expect(exported.code).toBe(0);
    expect(await run()).toMatchObject({ verdict: 'OK', detail: expect.stringMatching(/^last archive export \d{4}-/) });
  });

  it('says whether a worker serves the queues and a scheduler holds its lease (PM2 stopped, or not back after a reboot)', async () => {
    const run = async () => {
      const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      const checks = (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks;
      return Object.fromEntries(checks.filter((c) => c.name === 'workers' || c.name === 'scheduler').map((c) => [c.name, c.verdict]));
    };
    expect(await run()).toEqual({ workers: 'WARN', scheduler: 'WARN' });
    // A worker of the submit queue (as `connector worker` runs one) and the scheduler's lease.
    const connection = new IORedis(env.config.redis.url, { maxRetriesPerRequest: null });
    const worker = new Worker('submit', async () => undefined, { connection, prefix: env.config.redis.prefix, autorun: true });
    try {
      await worker.waitUntilReady();
      await connection.set(schedulerLeaderKey(env.config.redis.prefix), 'test-leader', 'PX', 30_000);
      expect(await run()).toEqual({ workers: 'OK', scheduler: 'OK' });
    } finally {
      await worker.close();
      await connection.del(schedulerLeaderKey(env.config.redis.prefix));
      connection.disconnect();
    }
  });

  it('says when status webhooks lag: the event, the error, the attempts and the events behind it (only when webhooks are configured)', async () => {
    let refuse = true;
    const erp = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(refuse ? 503 : 204).end());
    });
    await new Promise<void>((resolve) => erp.listen(0, '127.0.0.1', resolve));
    const secretFile = join(env.workDir, 'doctor-webhook.secret');
    writeFileSync(secretFile, 'doctor-hook-secret\n', { mode: 0o600 });
    // A token in the URL, as some ERPs take it: never printed.
    const url = `http://127.0.0.1:${(erp.address() as net.AddressInfo).port}/hooks?token=doctor-url-token`;
    const configFile = join(env.workDir, 'doctor-webhooks.json');
    writeFileSync(configFile, JSON.stringify({ webhooks: { url, secretFile } }));
    const context = await createAppContext({ config: { ...env.config, webhooks: { ...env.config.webhooks, url, secretFile } }, role: 'worker' });
    const run = async (configured = true) => {
      const res = await runCli(['doctor', '--json'], { env: { ...env.env, ...(configured ? { CONNECTOR_CONFIG: configFile } : {}), CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      expect(res.code).toBe(0);
      expect(res.stdout + res.stderr).not.toContain('doctor-url-token');
      return (JSON.parse(res.stdout) as { checks: Array<{ name: string; core: boolean; verdict: string; detail: string; hint?: string }> }).checks.find((c) => c.name === 'webhooks');
    };
    const em = () => context.orm.em.fork();
    const intake = (numbers: string[]) => intakeOrders(em(), 'api:erp', numbers.map((number) => ({ order: sampleOrder({ number }) })), { enqueueValidate: async () => undefined }, { actor: 't' });
    try {
      await dispatchWebhooks(context, context.redis);
      const orders = await intake(['DR-WH-1', 'DR-WH-2', 'DR-WH-3']);
      expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ failed: { error: 'HTTP 503', attempts: 1 } });
      expect(await run()).toMatchObject({
        core: false,
        verdict: 'WARN',
        detail: expect.stringMatching(new RegExp(`^status event \\d+ \\(order ${orders[0].orderId}, new -> received, .+\\) undelivered for 0 min: the last attempt failed \\(HTTP 503, .+\\), 1 attempt\\(s\\) so far, next attempt .+; 2 more event\\(s\\) wait behind it$`)),
        hint: expect.stringContaining('webhooks.url'),
      });
      // Without webhooks.url, no such line.
      expect(await run(false)).toBeUndefined();
      // The ERP answers again: every event delivered.
      refuse = false;
      await em().execute('update webhook_cursor set next_attempt_at = null');
      expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 3 });
      expect(await run()).toMatchObject({ verdict: 'OK', detail: expect.stringMatching(/^every status event delivered/) });
      // An event nothing has sent for 10 minutes (no scheduler ran it): a warning though no attempt failed.
      const [late] = await intake(['DR-WH-4']);
      await em().execute("update order_event set at = at - interval '10 minutes' where order_id = ?", [late.orderId]);
      expect(await run()).toMatchObject({
        verdict: 'WARN',
        detail: expect.stringMatching(/ undelivered for 10 min: no attempt failed, it was not sent; 0 more event\(s\) wait behind it$/),
        hint: expect.stringContaining('pm2 status'),
      });
    } finally {
      await context.close();
      await new Promise((resolve) => erp.close(resolve));
    }
  }, 60_000);

  it('checks the admins\' mail server when e-mails are configured: logs in over TLS, sends nothing, never prints the password', async () => {
    const login = { user: 'connector@example.kz', password: 'Doctor-Smtp-Secret' };
    const mail = await startMailServer(login);
    try {
      const passwordFile = join(env.workDir, 'smtp.password');
      const wrongFile = join(env.workDir, 'smtp.wrong');
      const caFile = join(env.workDir, 'smtp-ca.pem');
      writeFileSync(passwordFile, login.password);
      writeFileSync(wrongFile, 'Doctor-Wrong-Secret');
      writeFileSync(caFile, mail.caPem);
      const run = async (file: string, strict: boolean) => {
        const config = join(env.workDir, `doctor-smtp-${strict}.json`);
        const smtp = { host: '127.0.0.1', port: mail.port, from: 'connector@example.kz', user: login.user, passwordFile: file, caFile };
        writeFileSync(config, JSON.stringify({ lockdown: { notify: { emails: ['ops@example.kz'], smtp } } }));
        const res = await runCli(['doctor', '--json', ...(strict ? ['--strict'] : [])], { env: { ...env.env, CONNECTOR_CONFIG: config }, cwd: env.workDir });
        const check = (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks.find((c) => c.name === 'smtp');
        return { res, check };
      };
      const good = await run(passwordFile, true);
      expect(good.check).toMatchObject({ verdict: 'OK', detail: `127.0.0.1:${mail.port} (starttls, login connector@example.kz) accepts us; 1 admin(s)` });
      expect(mail.logins).toEqual([{ ...login, secure: true }]);
      const wrong = await run(wrongFile, false);
      expect(wrong.res.code).toBe(0);
      expect(wrong.check?.verdict).toBe('WARN');
      expect(wrong.check?.detail).toContain('EAUTH');
      const strict = await run(wrongFile, true);
      expect(strict.res.code).toBe(1);
      expect(strict.check?.verdict).toBe('FAIL');
      for (const r of [good.res, wrong.res, strict.res]) expect(r.stdout + r.stderr).not.toMatch(/Doctor-(Smtp|Wrong)-Secret/);
      expect(mail.received).toEqual([]);
    } finally {
      await mail.close();
    }
  });

  it('warns of a Client Secret in the environment without showing it, and names the way to the vault', async () => {
    const secret = 'Canary-Env-Client-Secret-7f3a';
    // A PM2 home of its own: the machine's ~/.pm2 is not this test's.
    const pm2Home = join(env.workDir, 'pm2-empty');
    mkdirSync(pm2Home, { recursive: true });
    const res = await runCli(['doctor', '--json'], { env: { ...env.env, PM2_HOME: pm2Home, CONNECTOR_BANK_CLIENT_SECRET: secret, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
    expect(res.code).toBe(0);
    const check = (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string; core: boolean }> }).checks.find((c) => c.name === 'bank-secret-env');
    expect(check).toMatchObject({ verdict: 'WARN', core: false });
    expect(check?.detail).toContain('this shell');
    expect(check?.hint).toContain('connector credentials set');
    expect(check?.hint).toContain('dump.pm2.bak');
    expect(res.stdout + res.stderr).not.toContain(secret);
    // --strict: a failure, like the other warnings.
    const strict = await runCli(['doctor', '--json', '--strict'], { env: { ...env.env, PM2_HOME: pm2Home, CONNECTOR_BANK_CLIENT_SECRET: secret }, cwd: env.workDir });
    expect((JSON.parse(strict.stdout) as { checks: Array<{ name: string; verdict: string }> }).checks.find((c) => c.name === 'bank-secret-env')?.verdict).toBe('FAIL');
    expect(strict.code).toBe(1);
    expect(strict.stdout + strict.stderr).not.toContain(secret);
    // Without it anywhere, no such line.
    const clean = await runCli(['doctor', '--json'], { env: { ...env.env, PM2_HOME: pm2Home, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
    expect((JSON.parse(clean.stdout) as { checks: Array<{ name: string }> }).checks.map((c) => c.name)).not.toContain('bank-secret-env');
  });

  it('finds the Client Secret where PM2 keeps it: its saved process lists and a running connector process, by name only', async () => {
    const secret = 'Canary-Pm2-Client-Secret-91c2';
    const pm2Home = join(env.workDir, 'pm2-saved');
    mkdirSync(pm2Home, { recursive: true });
    const saved = JSON.stringify([{ name: 'connector-worker', env: { NODE_ENV: 'production', CONNECTOR_BANK_CLIENT_SECRET: secret } }]);
    writeFileSync(join(pm2Home, 'dump.pm2'), saved);
    writeFileSync(join(pm2Home, 'dump.pm2.bak'), saved);
    // A process whose command line is a connector worker's, started with the secret in its environment.
    const worker = spawn(process.execPath, ['-e', 'setInterval(() => undefined, 1000)', '/opt/connector/dist/connector/cli/main.js', 'worker'], { env: { ...process.env, CONNECTOR_BANK_CLIENT_SECRET: secret }, stdio: 'ignore' });
    try {
      const res = await runCli(['doctor', '--json'], { env: { ...env.env, PM2_HOME: pm2Home, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
      const check = (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks.find((c) => c.name === 'bank-secret-env');
      expect(check?.verdict).toBe('WARN');
      expect(check?.detail).toContain(join(pm2Home, 'dump.pm2'));
      expect(check?.detail).toContain(join(pm2Home, 'dump.pm2.bak'));
      expect(check?.detail).toContain(`process ${worker.pid} (connector worker)`);
      expect(check?.detail).not.toContain('this shell');
      expect(res.stdout + res.stderr).not.toContain(secret);
    } finally {
      worker.kill('SIGKILL');
    }
  });

  it('fails an unreachable bank under --strict', async () => {
    const res = await runCli(['doctor', '--json', '--strict'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1' }, cwd: env.workDir });
    expect(res.code).toBe(1);
  });

  it("catches this host's clock off against the bank's, which PostgreSQL and Redis on the same host cannot show", async () => {
    // A bank whose clock says 10 minutes earlier than ours: this host runs 10 minutes ahead.
    let offsetMs = -600_000;
    const bank = createServer((_req, res) => {
      res.setHeader('Date', new Date(Date.now() + offsetMs).toUTCString());
      res.statusCode = 404;
      res.end();
    });
    await new Promise<void>((resolve) => bank.listen(0, '127.0.0.1', resolve));
    const run = async (strict = false) => {
      const res = await runCli(['doctor', '--json', ...(strict ? ['--strict'] : [])], {
        env: { ...env.env, CONNECTOR_BANK_URL: `http://127.0.0.1:${(bank.address() as net.AddressInfo).port}`, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' },
        cwd: env.workDir,
      });
      const checks = JSON.parse(res.stdout).checks as Array<{ name: string; verdict: string; detail: string; hint?: string }>;
      return { code: res.code, byName: Object.fromEntries(checks.map((c) => [c.name, c])) };
    };
    try {
      const skewed = await run();
      expect(skewed.byName['clock-skew-postgresql'].verdict).toBe('OK');
      expect(skewed.byName['clock-skew-redis'].verdict).toBe('OK');
      expect(skewed.byName['clock-skew-bank']).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/^this host's clock is (599|600) s ahead of the bank's \(its Date header: /), hint: expect.stringMatching(/synchronise this host's clock/) });
      expect(skewed.code).toBe(0);
      expect((await run(true)).byName['clock-skew-bank']).toMatchObject({ verdict: 'FAIL', core: true });
      offsetMs = 0;
      expect((await run()).byName['clock-skew-bank']).toMatchObject({ verdict: 'OK' });
    } finally {
      await new Promise((resolve) => bank.close(resolve));
    }
  });

  it.each([
    ['Redis refusing connections', { CONNECTOR_REDIS_URL: 'redis://127.0.0.1:1' }, 'redis'],
    ['PostgreSQL refusing connections', { CONNECTOR_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/x' }, 'postgresql'],
  ])('is red with a hint when %s', async (_label, extra, check) => {
    const res = await runCli(['doctor'], { env: { ...env.env, ...extra }, cwd: env.workDir });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(new RegExp(`FAIL\\s+${check}`));
    expect(res.stdout).toMatch(/start (Redis|PostgreSQL)/);
  });

  it('answers within 15 s, red, when Redis and PostgreSQL hang', async () => {
    const res = await runCli(['doctor', '--json'], {
      env: { ...env.env, CONNECTOR_REDIS_URL: `redis://127.0.0.1:${silentPort}`, CONNECTOR_DATABASE_URL: `postgresql://postgres@127.0.0.1:${silentPort}/x` },
      cwd: env.workDir,
      timeoutMs: 30_000,
    });
    expect(res.code).toBe(1);
    expect(res.ms).toBeLessThan(15_000);
    const report = JSON.parse(res.stdout);
    const failed = report.checks.filter((c: { verdict: string }) => c.verdict === 'FAIL').map((c: { name: string; hint: string }) => [c.name, Boolean(c.hint)]);
    expect(failed).toEqual(expect.arrayContaining([['redis', true], ['postgresql', true]]));
    // Every core check of INTERFACES.md is listed, those the services' silence kept from running included.
    expect(failed).toEqual(expect.arrayContaining([['migrations', true], ['clock-skew-postgresql', true], ['clock-skew-redis', true]]));
    expect(report.checks.find((c: { name: string }) => c.name === 'migrations').detail).toBe('not checked: PostgreSQL could not be used');
  });

  it.each([['orders', 'list'], ['worker']])('`%s` against a PostgreSQL that takes the connection and never answers ends, exit 1, naming it', async (...args) => {
    const res = await runCli(args, { env: { ...env.env, CONNECTOR_DATABASE_URL: `postgresql://postgres@127.0.0.1:${silentPort}/x` }, cwd: env.workDir, timeoutMs: 60_000 });
    // (It used to hang for good: a worker under PM2 showed online and did nothing.)
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^POSTGRESQL_UNREACHABLE: PostgreSQL at 127\\.0\\.0\\.1:${silentPort} `, 'm'));
  }, 90_000);

  it('a login PostgreSQL refuses is told apart from a server that is down; the failing address is named without its password', async () => {
    // The test's own PostgreSQL server, a user it does not know.
    const server = new URL(env.config.database.url);
    server.username = 'nosuchuser';
    server.password = 'pw-4471';
    const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_DATABASE_URL: server.toString(), CONNECTOR_REDIS_URL: `redis://:rpw-9913@127.0.0.1:1` }, cwd: env.workDir, timeoutMs: 30_000 });
    const checks = JSON.parse(res.stdout).checks as Array<{ name: string; detail: string; hint: string }>;
    const pg = checks.find((c) => c.name === 'postgresql')!;
    expect(pg.detail.startsWith(`postgresql://nosuchuser:***@${server.host}${server.pathname}: `)).toBe(true);
    expect(pg.hint).toMatch(/refused the login: check the user and password/);
    expect(checks.find((c) => c.name === 'redis')!.detail).toMatch(/^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+: /);
    expect(res.stdout).not.toMatch(/pw-4471|rpw-9913/);
  });

  it('a config file that cannot be read is exit 2 (input that cannot be read), a bad value in it exit 1 naming the key', async () => {
    const missing = await runCli(['orders', 'list'], { env: { ...env.env, CONNECTOR_CONFIG: 'nowhere.json' }, cwd: env.workDir });
    expect([missing.code, missing.stderr]).toEqual([2, expect.stringMatching(/^CONFIG_INVALID: config file .*nowhere\.json not found/m)]);
    writeFileSync(join(env.workDir, 'bad-value.json'), JSON.stringify({ worker: { concurrency: 'eight' } }));
    const bad = await runCli(['orders', 'list'], { env: { ...env.env, CONNECTOR_CONFIG: 'bad-value.json' }, cwd: env.workDir });
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/^CONFIG_INVALID: config .*bad-value\.json: worker\.concurrency: /m)]);
  });

  it('fails on a bad config value and names the key', async () => {
    const res = await runCli(['doctor'], { env: { ...env.env, CONNECTOR_API_PORT: 'x' }, cwd: env.workDir });
    expect(res.code).toBe(1);
    expect(res.stdout).toMatch(/FAIL\s+config\s+CONNECTOR_API_PORT/);
  });
});
