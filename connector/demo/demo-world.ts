import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { createAppContext, type AppContext } from '../app/app-context';
import { formatAmount, parseAmount } from '../shared/money';
import { makeTestPki, type TestPkiResult } from '../../scripts/make-test-pki';
import { startSandbox, type Sandbox } from '../../adapters/bank/sandbox/sandbox.server';
import { DEMO, loadSandboxConfig, type SandboxConfigInput } from '../../adapters/bank/sandbox/sandbox.config';
import { startSignerAgent, type RunningSignerAgent } from '../../signer-agent/agent/signer-agent.process';
import { createUser, findUser, grantRight } from '../users/user.service';
import { userDeps } from '../users/user-context';
import { credentialStatus, setCredentials } from '../vault/credential.vault';
import { SecretBox } from '../vault/secret-box';

/**
 * The demo's world, used by `connector demo` and by the pipeline's tests: an NCA-like test PKI,
 * the bank sandbox and the signer agent in this process, the demo company's signers with rights,
 * enrolled and unlocked keys, and the bank credentials in the vault.
 */
export interface DemoSigner {
  login: string;
  keystore: string;
  level: 'first' | 'second';
}

/** The demo company's signers: the CEO (RSA key) signs first, the accountant (GOST 2015 key) second. */
export const SIGNERS: DemoSigner[] = [
  { login: 'demo.ceo', keystore: 'rsa-ceo', level: 'first' },
  { login: 'demo.accountant', keystore: 'gost-accountant', level: 'second' },
];

export function demoConfig(base: ConnectorConfig, dir: string, pki: TestPkiResult): ConnectorConfig {
  return {
    ...base,
    signer: {
      ...base.signer,
      trust: [...base.signer.trust, ...Object.values(pki.caCertificates)],
      crl: [...base.signer.crl, ...Object.values(pki.crls)],
      keysFile: join(dir, 'signer-keys.json'),
      journalFile: join(dir, 'signer-journal.jsonl'),
      tokenFile: join(dir, 'signer.token'),
    },
    onec: { ...base.onec, outboxDir: join(dir, 'exchange', 'outbox'), inboxDir: join(dir, 'exchange', 'inbox'), stableMs: 300 },
    signing: {
      ...base.signing,
      // Above 1,000,000 KZT an order needs a second signature (DESIGN.md step 3).
      rules: [
        { account: '*', fromAmount: '0', signatures: 1 },
        { account: '*', fromAmount: '1000000', signatures: 2 },
      ],
      // The demo signers have standing mandates (explicit configuration, audited on every use).
      mandates: SIGNERS.map((s) => ({ login: s.login, account: '*', upTo: '100000000' })),
      pollEveryMs: 500,
    },
    tracking: { pollEveryMs: 300, maxPollEveryMs: 2_000 },
    queue: { ...base.queue, backoffMs: 300 },
  };
}

/** The demo's users: personal accounts with rights on the demo accounts and a signature level. */
export async function ensureSigners(context: AppContext, pki: TestPkiResult, agent: RunningSignerAgent): Promise<void> {
  const deps = userDeps(context);
  for (const signer of SIGNERS) {
    const keystore = pki.keystores.find((k) => k.name === signer.keystore);
    if (!keystore) throw new Error(`test PKI has no keystore ${signer.keystore}`);
    let user = await findUser(deps.em, signer.login);
    if (!user) {
      user = await createUser(deps, { login: signer.login, role: 'signer', iin: keystore.iin, password: `Demo-${randomBytes(9).toString('base64url')}1a`, actor: 'demo' });
    }
    for (const account of [DEMO.payerIban, DEMO.poorIban]) {
      await grantRight(userDeps(context), { login: signer.login, account, rights: 'manage', level: signer.level, limitTiyn: null, actor: 'demo' });
    }
    // The owner enrolls the key and unlocks it for a bounded session: keys stay in the agent's memory.
    await agent.service.enroll(user.id, keystore.path, keystore.iin);
    await agent.service.unlock(user.id, keystore.password);
  }
}

export async function ensureBankCredentials(context: AppContext): Promise<void> {
  const deps = { em: context.orm.em.fork(), clock: context.clock, box: SecretBox.fromConfig(context.config) };
  const status = await credentialStatus(deps);
  if (status.configured && status.usable && status.clientId === DEMO.clientId) return;
  // The sandbox's public demo pair; a real installation runs `connector credentials set --secret-stdin`.
  await setCredentials(deps, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'demo' });
}

/**
 * Every run spends about 3 million KZT of the demo account: a customer's incoming payment tops it
 * up first (a real credit line in the statement, so opening + lines = closing still holds).
 */
export async function fundDemoAccount(bankUrl: string): Promise<void> {
  const admin = `${bankUrl.replace(/\/$/, '')}/_sandbox`;
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

/** Starts the world in `dir` on the configured bank and signer URLs. The caller starts workers. */
export async function startDemoWorld(base: ConnectorConfig, dir: string, logger: Logger, options: { sandbox?: Partial<SandboxConfigInput>; config?: (c: ConnectorConfig) => ConnectorConfig } = {}): Promise<DemoWorld> {
  const pki = makeTestPki(join(dir, 'pki'));
  const config = (options.config ?? ((c) => c))(demoConfig(base, dir, pki));
  const bankUrl = new URL(config.bank.url);
  const context = await createAppContext({ config, logger, name: 'connector-demo', role: 'worker' });
  let sandbox: Sandbox | undefined;
  let agent: RunningSignerAgent | undefined;
  const close = async () => {
    await agent?.stop().catch(() => undefined);
    await sandbox?.close().catch(() => undefined);
    await context.close();
  };
  try {
    sandbox = await startSandbox({
      config: loadSandboxConfig(process.env, { databaseUrl: config.database.url, testMode: true, trust: Object.values(pki.caCertificates), crl: Object.values(pki.crls), ...options.sandbox }),
      host: bankUrl.hostname,
      port: Number(bankUrl.port || 80),
    });
    await fundDemoAccount(config.bank.url);
    agent = await startSignerAgent({ config, logger, cwd: dir });
    await ensureBankCredentials(context);
    await ensureSigners(context, pki, agent);
    return { config, context, pki, sandbox, agent, close };
  } catch (err) {
    await close();
    throw err;
  }
}
