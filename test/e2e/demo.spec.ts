import { existsSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createTestEnv, dropDatabase, freePort, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';
import { openOrm } from '../../connector/persistence/database';

describe('connector demo (child process, real services, bank sandbox, signer agent)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv('demo', {}, { migrate: false });
    env.env.CONNECTOR_BANK_URL = `http://127.0.0.1:${await freePort()}`;
    env.env.CONNECTOR_SIGNER_URL = `http://127.0.0.1:${await freePort()}`;
  });
  afterAll(async () => env.cleanup());

  const summaryOf = (stdout: string) =>
    Object.fromEntries(
      stdout
        .split('\n')
        .filter((l) => /^(executed|rejected|invalid|duplicates|statement): /.test(l))
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)]),
    );

  it('runs the main job end to end, twice, with no duplicate at the bank', async () => {
    const dir = join(env.workDir, 'demo');
    const first = await runCli(['demo', '--dir', dir], { env: env.env, cwd: env.workDir, timeoutMs: 150_000 });
    expect(first.stderr).not.toMatch(/ERROR/);
    expect(first.code).toBe(0);
    const summary = summaryOf(first.stdout);
    expect(summary).toMatchObject({ executed: '4', rejected: '1', invalid: '1', duplicates: '0' });
    expect(summary.statement).toBe(join(dir, 'exchange', 'inbox', 'kl_to_1c.txt'));
    expect(existsSync(summary.statement)).toBe(true);

    // The statement is a 1C exchange file our reader accepts.
    const parsed = await runCli(['onec', 'parse', summary.statement, '--json'], { env: env.env, cwd: env.workDir });
    expect(parsed.code).toBe(0);
    const lines = parsed.stdout.trim().split('\n').map((l) => JSON.parse(l));
    const last = lines.pop();
    expect(last.summary.documents).toBeGreaterThanOrEqual(4);
    // Our payments carry the codes of the orders they executed: 1C books them without a hand fix.
    const payments = lines.filter((d) => d.kind === 'Платежное поручение' && d.order.direction === 'out');
    expect(payments.length).toBeGreaterThanOrEqual(4);
    for (const d of payments) expect(d.warnings.filter((w: { field: string; code: string }) => ['payer.kod', 'beneficiary.kbe', 'kbk', 'knp'].includes(w.field) && w.code !== 'KNP_UNKNOWN')).toEqual([]);
    expect(payments.filter((d) => d.order.knp === '911').map((d) => d.order.kbk)).toEqual(['101202']);

    const orm = await openOrm(env.config);
    try {
      const rows = await orm.em.fork().execute<Array<{ state: string; n: string }>>("select state, count(*) as n from payment_order where source = 'onec' group by state");
      const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
      expect(byState).toEqual({ executed: 4, rejected: 1, invalid: 1 });
      // Every executed order carries its signatures: one, or two above the threshold.
      const sigs = await orm.em.fork().execute<Array<{ n: string }>>("select count(*) as n from order_signature s join payment_order o on o.id = s.order_id where o.state = 'executed' and s.valid");
      expect(Number(sigs[0].n)).toBe(5);
    } finally {
      await orm.close(true);
    }

    // Operators see the same through the CLI, one JSON document.
    const listed = await runCli(['orders', 'list', '--state', 'executed', '--json'], { env: env.env, cwd: env.workDir });
    expect(listed.code).toBe(0);
    const executed = JSON.parse(listed.stdout).orders as Array<{ id: string; state: string; bank: { reference: string | null } }>;
    expect(executed).toHaveLength(4);
    expect(executed.every((o) => o.state === 'executed' && o.bank.reference)).toBe(true);
    const shown = await runCli(['orders', 'show', executed[0].id, '--json'], { env: env.env, cwd: env.workDir });
    expect(JSON.parse(shown.stdout).history.map((h: { to: string }) => h.to)).toEqual(['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted', 'executed']);
    expect((await runCli(['orders', 'retry', executed[0].id], { env: env.env, cwd: env.workDir })).stderr).toMatch(/NOT_FAILED/);

    const second = await runCli(['demo', '--dir', dir], { env: env.env, cwd: env.workDir, timeoutMs: 150_000 });
    expect(second.code).toBe(0);
    expect(summaryOf(second.stdout)).toMatchObject({ executed: '4', rejected: '1', invalid: '1', duplicates: '0' });
  });

  it('says which address is taken when the sandbox\'s port is in use, and what to do', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const res = await runCli(['demo', '--dir', join(env.workDir, 'demo-port')], { env: { ...env.env, CONNECTOR_BANK_URL: `http://127.0.0.1:${port}` }, cwd: env.workDir, timeoutMs: 150_000 });
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(new RegExp(`DEMO_PORT_IN_USE: the bank sandbox's address http://127\\.0\\.0\\.1:${port} \\(CONNECTOR_BANK_URL\\) is taken by another process.*npx pm2 stop ecosystem\\.config\\.js`));
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it("refuses the database of an installation (another Client ID, or users of its own) and changes nothing there", async () => {
    const prod = await createTestEnv('demo-prod');
    try {
      const set = await runCli(['credentials', 'set', '--client-id', 'REAL-CLIENT-77', '--secret-stdin'], { env: prod.env, cwd: prod.workDir, input: 'Real-Installation-Secret-1\n' });
      expect(set.code).toBe(0);
      const env2 = { ...prod.env, CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` };
      const refused = await runCli(['demo', '--dir', join(prod.workDir, 'demo')], { env: env2, cwd: prod.workDir, timeoutMs: 150_000 });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/DEMO_INSTALLATION_DATABASE: the database .* belongs to an installation: it holds the bank credentials of another Client ID\. .*nothing was changed\. Run the demo on a database of its own/);
      expect(refused.stdout + refused.stderr).not.toContain('Real-Installation-Secret-1');
      // An installation whose Client ID is in its configuration (the secret in a file or the environment), on a new database: refused too, and the database is not even created.
      const fresh = { ...env2, CONNECTOR_DATABASE_URL: `${prod.config.database.url}_fresh`, CONNECTOR_BANK_CLIENT_ID: 'REAL-CLIENT-78' };
      const byConfig = await runCli(['demo', '--dir', join(prod.workDir, 'demo2')], { env: fresh, cwd: prod.workDir, timeoutMs: 150_000 });
      expect([byConfig.code, byConfig.stderr]).toEqual([1, expect.stringMatching(/DEMO_INSTALLATION_DATABASE: .*another Client ID in its configuration \(bank\.clientId\)/)]);
      const orm0 = await openOrm(prod.config);
      try {
        expect(await orm0.em.fork().execute('select datname from pg_database where datname = ?', [`${prod.name}_fresh`])).toEqual([]);
      } finally {
        await orm0.close(true);
      }
      const status = await runCli(['credentials', 'status', '--json'], { env: prod.env, cwd: prod.workDir });
      expect(JSON.parse(status.stdout)).toMatchObject({ clientId: 'REAL-CLIENT-77' });
      const orm = await openOrm(prod.config);
      try {
        expect(await orm.em.fork().execute("select login from app_user where login like 'demo.%'")).toEqual([]);
      } finally {
        await orm.close(true);
      }
    } finally {
      await dropDatabase(`${prod.name}_fresh`).catch(() => undefined);
      await prod.cleanup();
    }
  });
});
