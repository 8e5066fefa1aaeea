import type { Command } from 'commander';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../../config/load-config';
import type { ConnectorConfig } from '../../../config/config.schema';
import { migrate } from '../../persistence/database';
import { createAppContext } from '../../app/app-context';
import { startWorkers } from '../../../queue/worker.runner';
import { scanOnecOutbox, ONEC_SOURCE } from '../../../queue/jobs/scan-onec-outbox.job';
import { demoDocuments, demoOnecExport, DEMO_PAYER } from '../../demo/demo-orders';
import { PaymentOrder } from '../../persistence/entities';
import { formatAmount } from '../../shared/money';
import { makeTestPki, type TestPkiResult } from '../../../scripts/make-test-pki';
import { DEMO } from '../../../adapters/bank/sandbox/sandbox.config';
import { DEMO_SIGNER_ACCOUNTS, DEMO_SIGNERS, ensureBankCredentials, ensureSigners, startWorld, worldConfig, type World } from '../../demo/pipeline-world';
import { writeOnecStatement } from '../../../adapters/erp/onec-exchange/onec-statement.writer';
import { createLogger } from '../../logging/logger';
import { runAction } from '../run-action';
import { say, table } from '../output';

/** Where an order of the demo stops: its final states, plus `failed` (visible, retryable). */
const SETTLED = new Set<string>(['executed', 'rejected', 'invalid', 'deemed_executed', 'failed']);
const STAGES = ['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const;

function demoConfig(base: ConnectorConfig, dir: string, pki: TestPkiResult): ConnectorConfig {
  const world = worldConfig(base, dir, pki, DEMO_SIGNERS);
  return {
    ...world,
    onec: { ...base.onec, outboxDir: join(dir, 'exchange', 'outbox'), inboxDir: join(dir, 'exchange', 'inbox'), stableMs: 300 },
    signing: {
      ...world.signing,
      // Above 1,000,000 KZT an order needs a second signature (DESIGN.md step 3).
      rules: [
        { account: '*', fromAmount: '0', signatures: 1 },
        { account: '*', fromAmount: '1000000', signatures: 2 },
      ],
      pollEveryMs: 500,
    },
    tracking: { pollEveryMs: 300, maxPollEveryMs: 2_000 },
    queue: { ...base.queue, backoffMs: 300 },
  };
}

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('the main job end to end against the built-in bank sandbox: 1C export -> validation -> EDS signatures -> exactly-once submission -> statuses -> statement for 1C')
    .option('--dir <dir>', 'working folder of the demo (keys, exchange folders, statement)', '.demo')
    .option('--timeout <seconds>', 'give up after this long', '110')
    .action(
      runAction(async (opts: { dir: string; timeout: string }) => {
        const started = Date.now();
        const dir = resolve(opts.dir);
        mkdirSync(dir, { recursive: true });
        const base = loadConfig();
        await migrate(base);
        say('demo: generating the test PKI (NCA-like CA, RSA and GOST 2015 keys of the demo company)');
        const pki = makeTestPki(join(dir, 'pki'));
        const config = demoConfig(base, dir, pki);
        const logger = createLogger({ level: process.env.CONNECTOR_LOG_LEVEL ?? 'warn', name: 'connector-demo' });

        let world: World | undefined;
        const context = await createAppContext({ config, logger, name: 'connector-demo', role: 'worker' });
        let workers: ReturnType<typeof startWorkers> | undefined;
        try {
          world = await startWorld({ config, pki, logger, dir });
          say(`demo: bank sandbox on ${config.bank.url}`);
          say(`demo: signer agent on ${world.agent.url}`);
          await ensureBankCredentials(context);
          await ensureSigners(context, pki, world.agent, DEMO_SIGNERS, DEMO_SIGNER_ACCOUNTS);
          workers = startWorkers(context, context.redis);

          // 1C drops its export into the outbox; the outbox job takes it once its size is stable.
          const run = String(Date.now()).slice(-7);
          const docs = demoDocuments(run);
          const today = new Date(context.clock.now().getTime() + 5 * 3600_000).toISOString().slice(0, 10);
          mkdirSync(config.onec.outboxDir, { recursive: true });
          const tmp = join(config.onec.outboxDir, `.1c_to_kl.${run}.tmp`);
          writeFileSync(tmp, demoOnecExport(docs, today));
          renameSync(tmp, join(config.onec.outboxDir, `1c_to_kl_${run}.txt`));
          say(`demo: 1C exported ${docs.length} payment orders to ${config.onec.outboxDir}`);
          const deadline = started + Number(opts.timeout) * 1000;
          for (;;) {
            const results = await scanOnecOutbox(context, context.redis);
            if (results !== 'locked' && results.some((r) => r.outcome !== 'waiting')) break;
            if (Date.now() > deadline) throw new Error('the 1C file was not taken from the outbox in time');
            await new Promise((r) => setTimeout(r, 200));
          }

          const numbers = docs.map((d) => d.number);
          let rows: PaymentOrder[] = [];
          let lastLine = '';
          for (;;) {
            rows = await context.orm.em.fork().find(PaymentOrder, { source: ONEC_SOURCE, number: { $in: numbers }, docDate: today }, { orderBy: { number: 'asc' } });
            const settled = rows.filter((r) => SETTLED.has(r.state)).length;
            const progress = STAGES.map((s) => `${s} ${rows.filter((r) => r.state === s).length}`).join(' | ');
            const line = `  [${'#'.repeat(settled).padEnd(docs.length, '.')}] final ${settled}/${docs.length}  ${progress}`;
            if (line !== lastLine) process.stderr.write(process.stderr.isTTY ? `\r${line}   ` : `${line}\n`);
            lastLine = line;
            if (rows.length === docs.length && settled === docs.length) break;
            if (Date.now() > deadline) {
              say('\ndemo: timed out; see `connector orders list`');
              return 1;
            }
            await new Promise((r) => setTimeout(r, 250));
          }
          if (process.stderr.isTTY) process.stderr.write('\n');

          // The statement for 1C (kl_to_1c.txt), from what the bank executed today.
          const statement = await context.services.bank().getStatement(DEMO.payerIban, today, today);
          const written = writeOnecStatement(statement, {
            encoding: config.onec.encoding,
            owner: { name: DEMO_PAYER.name, iinBin: DEMO_PAYER.iinBin, bic: DEMO_PAYER.bic, code: DEMO_PAYER.kod },
            createdAt: context.clock.now(),
          });
          mkdirSync(config.onec.inboxDir, { recursive: true });
          const statementPath = resolve(config.onec.inboxDir, 'kl_to_1c.txt');
          writeFileSync(`${statementPath}.tmp`, written.bytes);
          renameSync(`${statementPath}.tmp`, statementPath);

          const ledger = (await (await fetch(`${config.bank.url.replace(/\/$/, '')}/_sandbox/submissions`)).json()) as { total: number; duplicates: number };
          const reason = (r: PaymentOrder) => (r.state === 'invalid' ? (r.errors ?? []).map((e) => `${e.field}: ${e.message}`).join('; ') : r.state === 'rejected' ? `${r.bankReasonCode}: ${r.bankReasonText ?? ''}` : '');
          process.stdout.write(
            `${table(
              rows.map((r) => [r.number, formatAmount(r.amountTiyn), r.payerIban, r.state, reason(r)]),
              ['NUMBER', 'AMOUNT', 'PAYER ACCOUNT', 'STATE', 'REASON'],
            )}\n`,
          );
          const count = (state: string) => rows.filter((r) => r.state === state).length;
          say(`demo: ${statement.lines.length} statement lines (fees included), ${ledger.total} documents in the bank's ledger, ${((Date.now() - started) / 1000).toFixed(1)} s`);
          process.stdout.write(`executed: ${count('executed')}\nrejected: ${count('rejected')}\ninvalid: ${count('invalid')}\nduplicates: ${ledger.duplicates}\nstatement: ${statementPath}\n`);
          return 0;
        } finally {
          await workers?.close(5_000);
          await world?.close();
          await context.close();
        }
      }),
    );
}


