import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { runCli, startCli, waitForExit, type CliResult } from '../support/cli';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { createLogger } from '../../connector/logging/logger';
import { ensureSigners, makeWorldPki, type World } from '../../connector/demo/pipeline-world';
import { setCredentials } from '../../connector/vault/credential.vault';
import { loadOrCreateMasterKey } from '../../connector/vault/master-key.store';
import { SecretBox } from '../../connector/vault/secret-box';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { freePort, PROOF_SIGNERS, proofChildConfig, proofOrders, sandboxAdmin, startFastWorld, type Ledger } from '../support/pipeline-world';

/**
 * The bank credentials vault as the worker (a real `connector worker` child process) meets it,
 * against the real sandbox: a Client Secret its master key cannot open is a configuration error
 * the orders wait out (never TRANSIENT retried into `failed`); a rotated Client Secret is used at
 * the worker's next bank call, its token from the old secret dropped.
 */
const SOURCE = 'vault-e2e';
const SECRET_A = `Canary-Worker-Secret-A-${randomBytes(4).toString('hex')}`;
/** The pair the bank issues at the rotation (a second client of the sandbox). */
const SECRET_B = `Canary-Worker-Secret-B-${randomBytes(4).toString('hex')}`;
const MISTYPED = `Canary-Worker-Mistyped-${randomBytes(4).toString('hex')}`;

type Child = ReturnType<typeof startCli>;

describe('the worker and the credentials vault (real worker process, real sandbox)', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let childEnv: NodeJS.ProcessEnv;
  let worker: Child | undefined;
  const cliOutputs: string[] = [];

  const cli = async (args: string[], input?: string): Promise<CliResult> => {
    const res = await runCli(args, { env: childEnv, cwd: env.workDir, input });
    cliOutputs.push(res.stdout, res.stderr);
    return res;
  };
  const order = async (id: string) =>
    (await context.orm.em.fork().execute<Array<{ state: string; last_error: string | null; submit_attempts: number }>>('select state, last_error, submit_attempts from payment_order where id = ?', [id]))[0];
  const intake = async (label: string): Promise<string> => {
    const [result] = await intakeOrders(context.orm.em.fork(), SOURCE, proofOrders(`${label}${Date.now().toString(36)}`, 1).map((o) => ({ order: o })), bullmqIntakePort(context.queues), { actor: 'test' });
    return result.orderId as string;
  };
  /** A job deferred by a wait runs now instead of in 60 s (what the wait's end does). */
  const promoteSubmits = () => context.queues.get('submit').promoteJobs();

  beforeAll(async () => {
    env = await createTestEnv('credworker', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    const pki = makeWorldPki(join(env.workDir, 'pki'), PROOF_SIGNERS);
    // Few, fast attempts: an error retried as TRANSIENT would turn the order `failed` within seconds.
    const proof = proofChildConfig(env, pki, { queue: { attempts: 3, backoffMs: 200 }, bank: { timeoutMs: 5_000 }, log: { level: 'info' } }, { CONNECTOR_LOG_LEVEL: 'info' });
    childEnv = proof.childEnv;
    const config = proof.config;
    const logger = createLogger({ level: 'silent', name: 'credentials-e2e' });
    context = await createAppContext({ config, logger, role: 'producer' });
    world = await startFastWorld(env, pki, config, logger, {
      clients: [
        { clientId: 'vault-client', clientSecret: SECRET_A },
        { clientId: 'vault-client-2', clientSecret: SECRET_B },
      ],
    });
    await ensureSigners(context, pki, PROOF_SIGNERS, [DEMO.payerIban]);
    // The installation's key file exists (CONNECTOR_MASTER_KEY_FILE of every process here).
    loadOrCreateMasterKey(config.masterKeyFile);
    worker = startCli(['worker'], { env: childEnv, cwd: env.workDir });
  }, 120_000);

  afterAll(async () => {
    if (worker) {
      worker.kill('SIGTERM');
      await waitForExit(worker, 30_000).catch(() => worker?.kill('SIGKILL'));
    }
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  it('a Client Secret the master key in use cannot open: orders wait with MASTER_KEY_MISSING as their last error, an error log line and an incident; never TRANSIENT, never failed; fixed, they go', async () => {
    // What `credentials set` run from another directory did: a second key, the secret sealed under it.
    const elsewhere = join(env.workDir, 'elsewhere', '.connector');
    mkdirSync(elsewhere, { recursive: true });
    const stray = new SecretBox(loadOrCreateMasterKey(join(elsewhere, 'master.key')));
    await setCredentials({ em: context.orm.em.fork(), box: stray, clock: context.clock }, { clientId: 'vault-client', clientSecret: SECRET_A, actor: 'test' });

    const id = await intake('K');
    const waiting = await eventually(async () => {
      const row = await order(id);
      return row?.last_error ? row : undefined;
    }, { timeoutMs: 60_000, what: 'the order to say why it waits' });
    expect(waiting.last_error).toMatch(/^MASTER_KEY_MISSING: the stored Client Secret cannot be opened, so no order can be sent to the bank: a secret \(bank.clientSecret\) is sealed under master key k[0-9a-f]+, which the master key file in use, \S+, does not hold: .*CONNECTOR_MASTER_KEY_FILE/);
    expect(waiting.last_error).toContain(context.config.masterKeyFile);
    // Longer than three attempts at 200 ms backoff: still waiting, not claimed, nothing sent.
    await new Promise((r) => setTimeout(r, 4_000));
    expect(await order(id)).toMatchObject({ state: 'signed', submit_attempts: 0 });
    expect((await sandboxAdmin<Ledger>(world.admin, '/submissions')).total).toBe(0);
    const log = worker!.output();
    expect(log).toMatch(/"level":50[^\n]*"event":"order.submit.credentials_unavailable"[^\n]*"code":"MASTER_KEY_MISSING"/);
    expect(log).not.toMatch(/TRANSIENT/);
    const incidents = await context.orm.em.fork().execute<Array<{ title: string }>>("select title from incident where kind = 'credentials_unavailable' and status = 'open'");
    expect(incidents).toHaveLength(1);
    expect(incidents[0].title).toMatch(/^The connector cannot open its bank Client Secret \(MASTER_KEY_MISSING\); orders wait and none is sent/);

    // The operator stores the pair again from the installation: the order goes, its wait forgotten.
    const fixed = await cli(['credentials', 'set', '--client-id', 'vault-client', '--secret-stdin'], `${SECRET_A}\n`);
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toMatch(/it is replaced/);
    await promoteSubmits();
    const done = await eventually(async () => {
      const row = await order(id);
      return row && ['submitted', 'executed'].includes(row.state) ? row : undefined;
    }, { timeoutMs: 60_000, what: 'the order to reach the bank' });
    expect(done.last_error).toBeNull();
    expect((await sandboxAdmin<Ledger>(world.admin, '/submissions')).total).toBe(1);
    for (const text of [worker!.output(), ...cliOutputs]) expect(text).not.toContain(SECRET_A);
  }, 120_000);

  it('credentials rotate reaches the running worker within a second: a mistyped secret stops the next order at once (not at token expiry); the new pair is used with a new token', async () => {
    const tokensOf = async (clientId: string) =>
      Number((await context.orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from "sandbox".tokens where client_id = ?', [clientId]))[0].n);
    // The worker holds a token got with SECRET_A (the test above); the sandbox's last 600 s.
    expect(await tokensOf('vault-client')).toBeGreaterThan(0);
    const submitted = (await sandboxAdmin<Ledger>(world.admin, '/submissions')).total;

    // The audit's case: rotated to a mistyped secret; the order used to be executed with the old token.
    expect((await cli(['credentials', 'rotate', '--secret-stdin'], `${MISTYPED}\n`)).code).toBe(0);
    // The worker reads the vault's version at most once a second (VERSION_READ_MS).
    await new Promise((r) => setTimeout(r, 1_100));
    const id = await intake('R');
    await eventually(async () => /"event":"order.submit.error"[^\n]*"code":"AUTH"/.test(worker!.output()), { timeoutMs: 60_000, what: 'the bank to refuse the mistyped secret' });
    expect(worker!.output()).toMatch(/"event":"bank.token.dropped"/);
    expect((await order(id)).state).toBe('submitting');
    expect((await sandboxAdmin<Ledger>(world.admin, '/submissions')).total).toBe(submitted);

    // The pair the bank issued: the order goes, under a token of the new Client ID.
    const rotated = await cli(['credentials', 'rotate', '--client-id', 'vault-client-2', '--secret-stdin'], `${SECRET_B}\n`);
    expect(rotated.code).toBe(0);
    await promoteSubmits();
    await eventually(async () => {
      const row = await order(id);
      return row && ['submitted', 'executed'].includes(row.state);
    }, { timeoutMs: 60_000, what: 'the order to reach the bank with the new pair' });
    expect(await tokensOf('vault-client-2')).toBeGreaterThan(0);
    expect((await sandboxAdmin<Ledger>(world.admin, '/submissions')).total).toBe(submitted + 1);
    for (const text of [worker!.output(), ...cliOutputs]) for (const secret of [SECRET_A, SECRET_B, MISTYPED]) expect(text).not.toContain(secret);
  }, 120_000);
});
