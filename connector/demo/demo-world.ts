import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { createAppContext, type AppContext } from '../app/app-context';
import { formatAmount, parseAmount } from '../shared/money';
import type { TestPkiResult } from '../../scripts/make-test-pki';
import type { Sandbox } from '../../adapters/bank/sandbox/sandbox.server';
import { DEMO, type SandboxConfigInput } from '../../adapters/bank/sandbox/sandbox.config';
import type { RunningSignerAgent } from '../../signer-agent/agent/signer-agent.process';
import { DEMO_SIGNERS, ensureBankCredentials, ensureSigners, makeWorldPki, startWorld, worldConfig } from './pipeline-world';
import { Client } from 'pg';
import { ConnectorError } from '../shared/errors';
import { redactedUrl } from '../../config/load-config';

/**
 * The demo's world on top of the pipeline world (pipeline-world.ts): the demo's pipeline
 * settings (a second signature above 1,000,000 KZT, quick polls), an app context, a funded
 * account, the signers enrolled and unlocked, the bank credentials in the vault.
 */
export function demoConfig(base: ConnectorConfig, dir: string, pki: TestPkiResult): ConnectorConfig {
  const config = worldConfig(base, dir, pki);
  return {
    ...config,
    onec: { ...config.onec, outboxDir: join(dir, 'exchange', 'outbox'), inboxDir: join(dir, 'exchange', 'inbox'), stableMs: 300 },
    signing: {
      ...config.signing,
      // Above 1,000,000 KZT an order needs a second signature (DESIGN.md step 3).
      rules: [
        { account: '*', fromAmount: '0', signatures: 1 },
        { account: '*', fromAmount: '1000000', signatures: 2 },
      ],
      pollEveryMs: 500,
    },
    tracking: { pollEveryMs: 300, maxPollEveryMs: 2_000 },
    queue: { ...config.queue, backoffMs: 300 },
  };
}

/**
 * Every run spends about 3 million KZT of the demo account: a customer's incoming payment tops it
 * up first (a real credit line in the statement, so opening + lines = closing still holds).
 */
export async function fundDemoAccount(admin: string): Promise<void> {
  const { accounts } = (await (await fetch(`${admin}/accounts`)).json()) as { accounts: Array<{ iban: string; balance: string }> };
  const balance = parseAmount(accounts.find((a) => a.iban === DEMO.payerIban)?.balance ?? '0');
  const wanted = parseAmount('10000000.00');
  if (balance >= wanted) return;
  const res = await fetch(`${admin}/accounts/${DEMO.payerIban}/incoming`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ amount: formatAmount(wanted - balance), purpose: 'Оплата от покупателя по договору №1' }),
  });
  if (!res.ok) throw new Error(`the sandbox refused to fund the demo account: HTTP ${res.status}`);
}

export interface DemoWorld {
  config: ConnectorConfig;
  context: AppContext;
  pki: TestPkiResult;
  sandbox: Sandbox;
  agent: RunningSignerAgent;
  close(): Promise<void>;
}

/** Starts the demo's world in `dir` on the configured bank and signer URLs. The caller starts workers. */
export async function startDemoWorld(
  base: ConnectorConfig,
  dir: string,
  logger: Logger,
  options: {
    sandbox?: Partial<SandboxConfigInput>;
    config?: (c: ConnectorConfig) => ConnectorConfig;
    signerWorkerScript?: string;
  } = {},
): Promise<DemoWorld> {
  const pki = makeWorldPki(join(dir, 'pki'));
  const config = (options.config ?? ((c) => c))(demoConfig(base, dir, pki));
  const context = await createAppContext({ config, logger, name: 'connector-demo', role: 'worker' });
  let world: Awaited<ReturnType<typeof startWorld>> | undefined;
  const close = async () => {
    await world?.close();
    await context.close();
  };
  try {
    world = await startWorld({ config, pki, logger, dir, sandbox: options.sandbox, signerWorkerScript: options.signerWorkerScript });
    await fundDemoAccount(world.admin);
    await ensureBankCredentials(context);
    await ensureSigners(context, pki);
    return { config, context, pki, sandbox: world.sandbox, agent: world.agent, close };
  } catch (err) {
    await close();
    throw portTaken(err, config) ?? err;
  }
}

/** A port of the demo's sandbox or signer agent already taken (a PM2 stack, a sandbox left running), told as what to do. */
function portTaken(err: unknown, config: ConnectorConfig): ConnectorError | null {
  const e = err as { code?: unknown; port?: unknown };
  if (e?.code !== 'EADDRINUSE') return null;
  const port = Number(e.port);
  const owner = [
    { url: config.bank.url, what: 'the bank sandbox', variable: 'CONNECTOR_BANK_URL' },
    { url: config.signer.url, what: 'the signer agent', variable: 'CONNECTOR_SIGNER_URL' },
  ].find((c) => Number(new URL(c.url).port) === port);
  const what = owner ? `${owner.what}'s address ${redactedUrl(owner.url)} (${owner.variable})` : `port ${port}`;
  return new ConnectorError(
    'DEMO_PORT_IN_USE',
    `${what} is taken by another process (a connector started by PM2, or a sandbox left running): stop it (npx pm2 stop ecosystem.config.js), or run the demo on other ports, e.g. CONNECTOR_BANK_URL=http://127.0.0.1:18900 CONNECTOR_SIGNER_URL=http://127.0.0.1:18901 npm run demo`,
  );
}

/**
 * The demo stores the sandbox's Client ID / Secret and adds its signers. Pointed at the database of
 * a real installation (the default URL is the installation's), it replaced the real pair, so the
 * worker then sent nothing the bank would take, and its orders joined 1C's status report. Before
 * it touches anything (before its migrations too) it refuses a database that holds another pair
 * or users of its own, and a configuration that names another Client ID. A database that does not
 * exist yet, or has no tables, is the demo's to make.
 */
export async function refuseInstallationDatabase(config: ConnectorConfig): Promise<void> {
  const found: string[] = [];
  if (config.bank.clientId && config.bank.clientId !== DEMO.clientId) found.push('another Client ID in its configuration (bank.clientId)');
  const client = new Client({ connectionString: config.database.url, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    // No such database yet: the demo's migrate creates it. Anything else is told as any command tells it.
    await client.end().catch(() => undefined);
    if ((err as { code?: string }).code !== '3D000') throw err;
    return refuse(config, found);
  }
  try {
    const [tables] = (await client.query<{ vault: string | null; users: string | null }>("select to_regclass('credential_vault')::text as vault, to_regclass('app_user')::text as users")).rows;
    if (tables.vault) {
      const pair = (await client.query<{ client_id: string }>('select client_id from credential_vault where id = 1')).rows[0];
      if (pair && pair.client_id !== DEMO.clientId) found.push('the bank credentials of another Client ID');
    }
    if (tables.users) {
      const logins = DEMO_SIGNERS.map((s) => s.login);
      const users = (await client.query<{ login: string }>('select login from app_user where not (login = any($1::text[])) order by login limit 3', [logins])).rows;
      if (users.length) found.push(`users of its own (${users.map((u) => u.login).join(', ')}${users.length === 3 ? ', ...' : ''})`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
  return refuse(config, found);
}

function refuse(config: ConnectorConfig, found: readonly string[]): void {
  if (found.length === 0) return;
  throw new ConnectorError(
    'DEMO_INSTALLATION_DATABASE',
    `the database ${redactedUrl(config.database.url)} belongs to an installation: it holds ${found.join(' and ')}. The demo would replace its Client ID / Secret and add demo signers; nothing was changed. Run the demo on a database of its own: CONNECTOR_DATABASE_URL=postgresql://.../connector_demo CONNECTOR_REDIS_PREFIX=connector-demo npm run demo`,
  );
}
