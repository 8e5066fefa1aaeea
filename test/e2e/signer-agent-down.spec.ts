import { createServer } from 'node:http';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { runCli, startCli, waitForExit } from '../support/cli';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { createLogger } from '../../connector/logging/logger';
import { findUser } from '../../connector/users/user.service';
import { ensureBankCredentials, ensureSigners, makeWorldPki, type World } from '../../connector/demo/pipeline-world';
import { startSignerAgent, type RunningSignerAgent } from '../../signer-agent/agent/signer-agent.process';
import type { TestPkiResult } from '../../scripts/make-test-pki';
import type { ConnectorConfig } from '../../config/config.schema';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { freePort, PROOF_SIGNERS, proofChildConfig, proofOrders, SIGNING_WORKER_SCRIPT, startFastWorld } from '../support/pipeline-world';

/**
 * The audit's finding: with the signer agent down, mandated orders sat in `awaiting_signatures`
 * with an empty LAST ERROR and no worker log line (only `connector doctor` warned). Now the
 * operator reads why in the order (where the agent is, what to do) and in one rate-limited
 * warning of the worker; once the agent answers and the key is unlocked the orders move on and
 * the reason goes away. The worker is a real `connector worker` child; the agent is the real one,
 * stopped (nothing listens on its port) and started again on the same port.
 */
const SOURCE = 'signer-down';
const ORDERS = 3;

describe('orders waiting for a signer agent that is down say why (real worker process, real agent)', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let pki: TestPkiResult;
  let config: ConnectorConfig;
  let agent: RunningSignerAgent | undefined;
  let worker: (ChildProcess & { output: () => string }) | undefined;
  const logger = createLogger({ level: 'silent', name: 'signer-down' });

  beforeAll(async () => {
    env = await createTestEnv('signerdown', {
      CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`,
      CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}`,
    });
    pki = makeWorldPki(join(env.workDir, 'pki'), PROOF_SIGNERS);
    const proof = proofChildConfig(env, pki);
    env.env.CONNECTOR_CONFIG = proof.childEnv.CONNECTOR_CONFIG;
    config = proof.config;
    context = await createAppContext({ config, logger, role: 'producer' });
    world = await startFastWorld(env, pki, config, logger);
    await ensureBankCredentials(context);
    // The signer is enrolled (and the token file made) while the agent runs; then it goes down.
    await ensureSigners(context, pki, PROOF_SIGNERS, [DEMO.payerIban]);
    await world.agent.stop();
  }, 120_000);

  afterAll(async () => {
    if (worker && worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      await waitForExit(worker, 60_000).catch(() => worker?.kill('SIGKILL'));
    }
    await agent?.stop();
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  const ordersOf = async () =>
    context.orm.em.fork().execute<Array<{ id: string; state: string; last_error: string | null }>>('select id, state, last_error from payment_order where source = ? order by number', [SOURCE]);
  const warnings = (code: string) =>
    (worker?.output() ?? '')
      .split('\n')
      .filter((line) => line.includes('"event":"order.sign.agent_not_ready"') && line.includes(`"code":"${code}"`))
      .map((line) => JSON.parse(line) as Record<string, unknown>);

  it('records the reason in the orders, warns once, and clears it when the orders are signed', async () => {
    worker = startCli(['worker'], { env: env.env, cwd: env.workDir });
    await intakeOrders(context.orm.em.fork(), SOURCE, proofOrders(`S${Date.now().toString(36)}`, ORDERS).map((order) => ({ order })), bullmqIntakePort(context.queues), { actor: 't' });

    // 1. The agent is down: every order says where it is and what to do.
    const unreachable = await eventually(
      async () => {
        const rows = await ordersOf();
        return rows.length === ORDERS && rows.every((r) => r.state === 'awaiting_signatures' && r.last_error?.startsWith('SIGNER_UNREACHABLE')) ? rows : undefined;
      },
      { timeoutMs: 60_000, what: 'the orders to wait for the unreachable agent' },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await ordersOf())}\n${worker?.output()}`);
    });
    for (const row of unreachable) {
      expect(row.last_error).toContain(`the signer agent at ${config.signer.url} could not be reached`);
      expect(row.last_error).toContain('start it (connector signer-agent');
      expect(row.last_error).toContain('unlock their keys');
    }
    // What the operator runs: `orders list` shows it in LAST ERROR, `orders show --json` in lastError.
    const list = await runCli(['orders', 'list'], { env: env.env, cwd: env.workDir });
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n').filter((line) => line.includes('SIGNER_UNREACHABLE: the signer agent at'))).toHaveLength(ORDERS);
    const show = await runCli(['orders', 'show', unreachable[0].id, '--json'], { env: env.env, cwd: env.workDir });
    expect(JSON.parse(show.stdout)).toMatchObject({ state: 'awaiting_signatures', lastError: unreachable[0].last_error });

    // The orders are looked at again every 300 ms; a few seconds of that make a single warning line.
    await new Promise((r) => setTimeout(r, 3_000));
    const down = warnings('SIGNER_UNREACHABLE');
    expect(down).toHaveLength(1);
    expect(down[0]).toMatchObject({ level: 40, signerUrl: config.signer.url, orders: expect.any(Number), hint: expect.stringContaining('connector signer-agent') });
    expect(worker.output()).not.toContain('order.sign.refused');

    // 1b. Another process takes the agent's address (a local account, while the agent is down) and
    // answers like it, without the proof: the orders say so, one incident is opened for a person,
    // and the process is sent nothing but challenges.
    const seen: string[] = [];
    const impostor = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? '-'}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    });
    const { port } = new URL(config.signer.url);
    await new Promise<void>((resolve, reject) => impostor.once('error', reject).listen(Number(port), '127.0.0.1', resolve));
    const incidents = () => context.orm.em.fork().execute<Array<{ status: string; severity: string; title: string }>>("select status, severity, title from incident where kind = 'signer_not_authentic'");
    try {
      await eventually(async () => (await ordersOf()).every((r) => r.last_error?.startsWith('SIGNER_NOT_AUTHENTIC')), { timeoutMs: 30_000, what: 'the orders to wait for an agent that proves itself' });
      await new Promise((r) => setTimeout(r, 1_500));
      expect(await incidents()).toEqual([{ status: 'open', severity: 'high', title: expect.stringContaining(`the signer agent's address ${config.signer.url} did not prove`) }]);
      expect(worker.output().split('\n').filter((line) => line.includes('"event":"order.sign.agent_not_authentic"'))).toHaveLength(1);
      expect(seen.length).toBeGreaterThan(0);
      for (const request of seen) expect(request).toMatch(/^GET \/health auth=-$/);
    } finally {
      await new Promise((r) => {
        impostor.close(r);
        impostor.closeAllConnections();
      });
    }

    // 2. The agent is back, its keys locked (they live in its memory only): the reason changes.
    agent = await startSignerAgent({ config, logger, cwd: env.workDir, workerScript: SIGNING_WORKER_SCRIPT });
    const [signer] = PROOF_SIGNERS;
    await eventually(async () => (await ordersOf()).every((r) => r.state === 'awaiting_signatures' && r.last_error?.startsWith(`KEY_LOCKED: the signer agent at ${config.signer.url} cannot sign with the key of ${signer.login}`)), {
      timeoutMs: 30_000,
      what: 'the orders to wait for the locked key',
    });
    expect((await ordersOf())[0].last_error).toContain(`${signer.login} unlocks it (POST /api/v1/me/key/unlock)`);
    await eventually(async () => warnings('KEY_LOCKED').length === 1, { timeoutMs: 10_000, what: 'one warning about the locked key' });
    // The log says what to do without the login; the order's last error, on `orders show`, names the signer.
    expect(warnings('KEY_LOCKED')[0]).toMatchObject({ signerUrl: config.signer.url, hint: expect.stringMatching(/its signer unlocks it .*connector orders show \S+ names the signer/) });
    expect(JSON.stringify(warnings('KEY_LOCKED')[0])).not.toContain(signer.login);

    // 3. The key is unlocked: the orders are signed, go through, and no longer carry the reason.
    const user = await findUser(context.orm.em.fork(), signer.login);
    const keystore = pki.keystores.find((k) => k.name === signer.keystore);
    await agent.service.unlock(user?.id as string, keystore?.password as string);
    const done = await eventually(
      async () => {
        const rows = await ordersOf();
        return rows.every((r) => r.state === 'executed') ? rows : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 300, what: 'the orders to be executed' },
    ).catch(async (err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify(await ordersOf())}\n${worker?.output()}`);
    });
    expect(done.map((r) => r.last_error)).toEqual(Array(ORDERS).fill(null));
    // Still the one warning per reason.
    expect(warnings('SIGNER_UNREACHABLE')).toHaveLength(1);
    expect(warnings('KEY_LOCKED')).toHaveLength(1);
  }, 240_000);
});
