import { join } from 'node:path';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../../config/config.schema';
import { createAppContext, type AppContext } from '../app/app-context';
import { formatAmount, parseAmount } from '../shared/money';
import type { TestPkiResult } from '../../scripts/make-test-pki';
import type { Sandbox } from '../../adapters/bank/sandbox/sandbox.server';
import { DEMO, type SandboxConfigInput } from '../../adapters/bank/sandbox/sandbox.config';
import type { RunningSignerAgent } from '../../signer-agent/agent/signer-agent.process';
import { ensureBankCredentials, ensureSigners, makeWorldPki, startWorld, worldConfig } from './pipeline-world';

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
  options: { sandbox?: Partial<SandboxConfigInput>; config?: (c: ConnectorConfig) => ConnectorConfig; signerWorkerScript?: string } = {},
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
    throw err;
  }
}
