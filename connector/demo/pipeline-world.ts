import { randomBytes } from 'node:crypto';
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import type { AppContext } from '../app/app-context';
import type { NormalisedOrder } from '../orders/payment-order';
import { DEMO_PAYER } from './demo-orders';
import { defaultTestUsers, makeTestPki, type TestPkiResult } from '../../scripts/make-test-pki';
import { startSandbox, type Sandbox } from '../../adapters/bank/sandbox/sandbox.server';
import { DEMO, loadSandboxConfig, type SandboxConfigInput } from '../../adapters/bank/sandbox/sandbox.config';
import { startSignerAgent, type RunningSignerAgent } from '../../signer-agent/agent/signer-agent.process';
import { createUser, enrollKey, findUser, grantRight } from '../users/user.service';
import { userDeps } from '../app/user-context';
import { credentialStatus, setCredentials } from '../vault/credential.vault';
import { SecretBox } from '../vault/secret-box';

/**
 * The world the pipeline runs in, outside the connector itself: the test PKI of the demo company,
 * the bank sandbox and the signer agent in this process, the signers (users with rights, keys
 * enrolled and unlocked in the agent) and the bank credentials in the vault. One place for the
 * demo, the end-to-end proofs and the benchmark, so they all exercise the same wiring.
 * Test material only: the CAs of the test PKI are trusted here and nowhere else.
 */
export interface WorldSigner {
  login: string;
  /** Keystore name in the test PKI (`defaultTestUsers()`). */
  keystore: string;
  level: 'first' | 'second';
}

/** The demo company's signers: the CEO (RSA key) signs first, the accountant (GOST 2015 key) second. */
export const DEMO_SIGNERS: WorldSigner[] = [
  { login: 'demo.ceo', keystore: 'rsa-ceo', level: 'first' },
  { login: 'demo.accountant', keystore: 'gost-accountant', level: 'second' },
];

/** The accounts of the demo company at the sandbox bank the signers get rights on. */
export const DEMO_SIGNER_ACCOUNTS = [DEMO.payerIban, DEMO.poorIban];

/**
 * The test PKI for `signers` only (generating the others costs time, GOST keys most): just the
 * CAs of the algorithms those keystores use.
 */
export function makeWorldPki(dir: string, signers: WorldSigner[] = DEMO_SIGNERS): TestPkiResult {
  const wanted = new Set(signers.map((s) => s.keystore));
  const users = defaultTestUsers().filter((u) => wanted.has(u.name));
  const algorithms = [...new Set(users.map((u) => u.algorithm ?? 'RSA'))];
  return makeTestPki(dir, { users, algorithms });
}

/**
 * The connector's config for this world: the test CAs and CRLs trusted by the signer agent, its
 * files under `dir`, and standing mandates for the signers (explicit configuration, audited on
 * every use) so ERP orders are signed without a person at the keyboard.
 */
export function worldConfig(base: ConnectorConfig, dir: string, pki: TestPkiResult, signers: WorldSigner[] = DEMO_SIGNERS): ConnectorConfig {
  return {
    ...base,
    signer: {
      ...base.signer,
      trust: [...base.signer.trust, ...Object.values(pki.caCertificates)],
      crl: [...base.signer.crl, ...Object.values(pki.crls)],
      keysFile: join(dir, 'signer-keys.json'),
      journalFile: join(dir, 'signer-journal.jsonl'),
      tokenFile: isAbsolute(base.signer.tokenFile) ? base.signer.tokenFile : join(dir, 'signer.token'),
    },
    signing: {
      ...base.signing,
      mandates: signers.map((s) => ({ login: s.login, account: '*', upTo: '100000000' })),
    },
  };
}

/** The signers: personal accounts with rights on the accounts and a signature level, keys enrolled and unlocked. */
export async function ensureSigners(context: AppContext, pki: TestPkiResult, signers: WorldSigner[] = DEMO_SIGNERS, accounts: string[] = DEMO_SIGNER_ACCOUNTS): Promise<void> {
  const deps = userDeps(context);
  for (const signer of signers) {
    const keystore = pki.keystores.find((k) => k.name === signer.keystore);
    if (!keystore) throw new Error(`test PKI has no keystore ${signer.keystore}`);
    let user = await findUser(deps.em, signer.login);
    if (!user) {
      user = await createUser(deps, { login: signer.login, role: 'signer', iin: keystore.iin, password: `Demo-${randomBytes(9).toString('base64url')}1a`, actor: 'demo' });
    }
    for (const account of accounts) {
      await grantRight(userDeps(context), { login: signer.login, account, rights: 'manage', level: signer.level, limitTiyn: null, actor: 'demo' });
    }
    // The owner enrolls the key and unlocks it for a bounded session: keys stay in the agent's memory.
    // Through the same port and HTTP calls as `connector users enroll-key` and `POST /api/v1/me/key/unlock`.
    await enrollKey(deps, { login: signer.login, keystorePath: keystore.path, actor: 'demo' });
    const unlocked = await deps.signerAgent!.unlockKey(user.id, keystore.password);
    if (!unlocked.ok) throw new Error(`demo: the signer agent did not unlock ${signer.login}'s key (${unlocked.code}: ${unlocked.message})`);
  }
}

/** The sandbox's public demo pair in the vault; a real installation runs `connector credentials set --secret-stdin`. */
export async function ensureBankCredentials(context: AppContext): Promise<void> {
  const deps = { em: context.orm.em.fork(), clock: context.clock, box: SecretBox.fromConfig(context.config) };
  const status = await credentialStatus(deps);
  if (status.configured && status.usable && status.clientId === DEMO.clientId) return;
  await setCredentials(deps, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'demo', reuseRevoked: true });
}

export interface World {
  sandbox: Sandbox;
  agent: RunningSignerAgent;
  /** The sandbox's admin API base (`<bank url>/_sandbox`). */
  admin: string;
  close(): Promise<void>;
}

/**
 * Starts the bank sandbox on `config.bank.url` (trusting the test PKI's CAs, state in the
 * config's database) and the signer agent on `config.signer.url`, both in this process.
 */
export async function startWorld(options: {
  config: ConnectorConfig;
  pki: TestPkiResult;
  logger: Logger;
  dir: string;
  /** Sandbox settings beyond the defaults (accounts, clock timings, hangMs...). */
  sandbox?: Partial<SandboxConfigInput>;
  env?: NodeJS.ProcessEnv;
  /** The signer agent's compiled signing worker, when this module runs from sources (jest). */
  signerWorkerScript?: string;
  /** Signing worker threads (default: config / one per core). */
  signerWorkers?: number;
}): Promise<World> {
  const { config, pki } = options;
  const bankUrl = new URL(config.bank.url);
  const sandbox = await startSandbox({
    config: loadSandboxConfig(options.env ?? process.env, {
      databaseUrl: config.database.url,
      testMode: true,
      trust: Object.values(pki.caCertificates),
      crl: Object.values(pki.crls),
      ...options.sandbox,
    }),
    host: bankUrl.hostname,
    port: Number(bankUrl.port || 80),
  });
  let agent: RunningSignerAgent;
  try {
    agent = await startSignerAgent({ config, logger: options.logger, cwd: options.dir, workerScript: options.signerWorkerScript, workers: options.signerWorkers });
  } catch (err) {
    await sandbox.close().catch(() => undefined);
    throw err;
  }
  return {
    sandbox,
    agent,
    admin: `${config.bank.url.replace(/\/$/, '')}/_sandbox`,
    async close() {
      await agent.stop().catch(() => undefined);
      await sandbox.close().catch(() => undefined);
    },
  };
}

/**
 * `count` valid orders of the demo company's funded account to the intrabank beneficiary (no fee),
 * numbered `<run>-<i>`: distinct natural keys, so each is one order and one bank document.
 */
export function bulkOrders(run: string, count: number): NormalisedOrder[] {
  const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
  return Array.from({ length: count }, (_, i) => ({
    number: `${run}-${i + 1}`,
    date: today,
    valueDate: today,
    amount: `${100 + (i % 900)}.${String(i % 100).padStart(2, '0')}`,
    currency: 'KZT',
    payer: { name: DEMO_PAYER.name, iinBin: DEMO.payerBin, iban: DEMO.payerIban, bic: DEMO_PAYER.bic, kod: DEMO_PAYER.kod },
    beneficiary: { name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, iban: DEMO.internalBeneficiaryIban, bic: 'TSESKZKA', kbe: '17' },
    knp: '859',
    purpose: `Оплата по счету №${i + 1} за услуги`,
  }));
}

/** The sandbox's accounts for bulk runs: the demo payer with enough money for many thousand orders, and the beneficiary. */
export const FUNDED_ACCOUNTS = [
  { iban: DEMO.payerIban, name: 'ТОО "Ромашка"', iinBin: DEMO.payerBin, balance: '9000000000.00', status: 'active' as const },
  { iban: DEMO.internalBeneficiaryIban, name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, balance: '0.00', status: 'active' as const },
];

