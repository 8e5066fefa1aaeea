import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ConnectorConfig } from '../../config/config.schema';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { intakeOrders } from '../../connector/intake/order-intake';
import { createUser, grantRight } from '../../connector/users/user.service';
import { userDeps } from '../../connector/app/user-context';
import { setCredentials } from '../../connector/vault/credential.vault';
import { SecretBox } from '../../connector/vault/secret-box';
import { resetLockdown } from '../support/lockdown-reset';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { DEMO, loadSandboxConfig } from '../../adapters/bank/sandbox/sandbox.config';
import { startSandbox, type Sandbox } from '../../adapters/bank/sandbox/sandbox.server';
import { startAgent, type AgentProcess } from '../e2e/signer-agent.harness';
import { OID } from '../../signer-agent/asn1/oids';
import { makeTestPki, testBin, type TestPkiResult } from '../../scripts/make-test-pki';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { sampleOrder } from '../support/orders.fixture';

/**
 * A whole connector for the lockdown tests, in one process: its own database and Redis prefix, a
 * test PKI (RSA; a valid CEO key and one revoked in the CA's CRL), the bank sandbox on a random
 * loopback port (a second client pair stands for the Client Secret regenerated after a compromise),
 * the signer agent on a unix socket, the pipeline's workers.
 */
export const ROTATED = { clientId: 'rotated-client', clientSecret: 'rotated-secret-after-lockdown' };
const ORG = 'ТОО "ДЕМО КОМПАНИЯ"';

export interface LockdownWorld {
  env: TestEnv;
  config: ConnectorConfig;
  context: AppContext;
  sandbox: Sandbox;
  /** The real signer agent process (`connector signer-agent` from dist/). */
  agent: AgentProcess;
  unlocked(login: string): Promise<boolean>;
  pki: TestPkiResult;
  /** login -> user id */
  users: Record<string, string>;
  workers?: RunningWorkers;
  startWorkers(context?: AppContext): RunningWorkers;
  stopWorkers(): Promise<void>;
  unlock(login: string): Promise<void>;
  intake(numbers: string[]): Promise<string[]>;
  ledger(): Promise<{ total: number; duplicates: number; submissions: Array<{ externalId: string; requests: number; accepted: boolean; afterAccepted: number; firstAt: string }> }>;
  admin(method: string, path: string, body?: unknown): Promise<unknown>;
  states(ids: string[]): Promise<Record<string, string>>;
  /** Back to normal between tests without the resolution steps (test set-up only). */
  reset(): Promise<void>;
  close(): Promise<void>;
}

export async function startLockdownWorld(label: string, patch: (c: ConnectorConfig) => ConnectorConfig = (c) => c): Promise<LockdownWorld> {
  const env = await createTestEnv(label);
  const pki = makeTestPki(join(env.workDir, 'pki'), {
    algorithms: ['RSA'],
    users: [
      { name: 'rsa-ceo', algorithm: 'RSA', surname: 'СЕРИКОВА', givenName: 'АЙГЕРИМ', bin: testBin('demo-company'), organization: ORG, roles: [OID.roleOrganization, OID.roleCeo] },
      { name: 'rsa-revoked', algorithm: 'RSA', surname: 'ЖУМАБАЕВ', givenName: 'ДАНИЯР', bin: testBin('demo-company'), organization: ORG, roles: [OID.roleOrganization, OID.roleFinancialSigning], revokedAt: new Date(Date.now() - 3_600_000) },
    ],
  });
  const sandbox = await startSandbox({
    config: loadSandboxConfig({}, {
      databaseUrl: env.config.database.url,
      testMode: true,
      trust: Object.values(pki.caCertificates),
      crl: Object.values(pki.crls),
      clients: [{ clientId: DEMO.clientId, clientSecret: DEMO.clientSecret }, ROTATED],
    }),
    host: '127.0.0.1',
    port: 0,
  });
  const agentDir = join(env.workDir, 'agent');
  mkdirSync(agentDir, { recursive: true });
  const agent = await startAgent({
    dir: agentDir,
    config: {
      testMode: true,
      signer: { trust: Object.values(pki.caCertificates), crl: Object.values(pki.crls), keysFile: join(agentDir, 'keys.json'), journalFile: join(agentDir, 'journal.jsonl') },
    },
    env: { CONNECTOR_TEST_MODE: '1', CONNECTOR_LOG_LEVEL: 'info' },
  });
  const config = patch({
    ...env.config,
    bank: { ...env.config.bank, url: sandbox.url, timeoutMs: 5_000 },
    signer: {
      ...env.config.signer,
      url: agent.url,
      tokenFile: join(agentDir, '.connector', 'signer.token'),
    },
    signing: {
      ...env.config.signing,
      rules: [{ account: '*', fromAmount: '0', signatures: 1 }],
      mandates: [{ login: 'ceo', account: '*', upTo: '100000000' }],
      pollEveryMs: 300,
    },
    tracking: { pollEveryMs: 300, maxPollEveryMs: 1_000 },
    queue: { ...env.config.queue, backoffMs: 200, lockDurationMs: 10_000 },
    users: { ...env.config.users, scryptLogN: 14 },
    onec: { ...env.config.onec, outboxDir: join(env.workDir, 'exchange', 'outbox'), inboxDir: join(env.workDir, 'exchange', 'inbox'), stableMs: 100, scanEveryMs: 200 },
  });
  const logger = createLogger({ level: 'silent', name: `test-${label}` });
  const context = await createAppContext({ config, logger, role: 'worker' });
  await setCredentials({ em: context.orm.em.fork(), clock: context.clock, box: SecretBox.fromConfig(config) }, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'test' });
  const users: Record<string, string> = {};
  for (const [login, keystore] of [['ceo', 'rsa-ceo'], ['revoked', 'rsa-revoked']] as const) {
    const ks = pki.keystores.find((k) => k.name === keystore)!;
    const user = await createUser(userDeps(context), { login, role: 'signer', iin: ks.iin ?? null, password: 'Correct-Horse-9', actor: 'test' });
    users[login] = user.id;
    await agent.client.enroll(user.id, { keystorePath: ks.path, expectedIin: ks.iin ?? null });
  }
  await grantRight(userDeps(context), { login: 'ceo', account: DEMO.payerIban, rights: 'manage', level: 'first', limitTiyn: null, actor: 'test' });

  const world: LockdownWorld = {
    env,
    config,
    context,
    sandbox,
    agent,
    pki,
    users,
    startWorkers(ctx = context) {
      world.workers = startWorkers(ctx, ctx.redis);
      return world.workers;
    },
    async stopWorkers() {
      await world.workers?.close(5_000);
      world.workers = undefined;
    },
    async unlocked(login) {
      return (await agent.client.keyStatus(users[login])).unlocked;
    },
    async unlock(login) {
      const ks = pki.keystores.find((k) => k.name === (login === 'ceo' ? 'rsa-ceo' : 'rsa-revoked'))!;
      await agent.client.unlock(users[login], ks.password);
    },
    async intake(numbers) {
      const payer = { name: ORG, iinBin: DEMO.payerBin, iban: DEMO.payerIban, bic: 'TSESKZKA', kod: '17' };
      const results = await intakeOrders(context.orm.em.fork(), 'test', numbers.map((number) => ({ order: sampleOrder({ number, payer, amount: '1000.00' }) })), bullmqIntakePort(context.queues), { actor: 'test' });
      return results.map((r) => r.orderId);
    },
    async ledger() {
      return (await (await fetch(`${sandbox.url}/_sandbox/submissions`)).json()) as Awaited<ReturnType<LockdownWorld['ledger']>>;
    },
    async admin(method, path, body) {
      const res = await fetch(`${sandbox.url}/_sandbox${path}`, { method, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
      return res.json();
    },
    async states(ids) {
      if (!ids.length) return {};
      const rows = await context.orm.em.fork().execute<Array<{ id: string; state: string }>>(`select id, state from payment_order where id in (${ids.map(() => '?').join(',')})`, ids);
      return Object.fromEntries(rows.map((r) => [r.id, r.state]));
    },
    async reset() {
      const em = context.orm.em.fork();
      await resetLockdown(context);
      await em.execute("update incident set status = 'resolved', resolved_at = now(), resolved_by = 'test' where status = 'open'");
      await em.execute('update credential_vault set revoked_at = null, revoked_reason = null, revoked_source = null');
      await em.execute("update app_user set blocked_reason = null, blocked_at = null, locked_until = null, failed_attempts = 0");
    },
    async close() {
      await world.stopWorkers();
      await agent.stop().catch(() => null);
      await sandbox.close().catch(() => undefined);
      await context.close();
      await env.cleanup();
    },
  };
  return world;
}
