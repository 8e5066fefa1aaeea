import type { Command } from 'commander';
import { mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig, redactedUrl } from '../../../config/load-config';
import { migrate } from '../../persistence/database';
import { startWorkers } from '../../../queue/worker.runner';
import { scanOnecOutbox } from '../../../queue/jobs/scan-onec-outbox.job';
import { ONEC_SOURCE } from '../../../adapters/erp/onec-exchange/onec-exchange.types';
import { demoDocuments, demoOnecExport } from '../../demo/demo-orders';
import { refuseInstallationDatabase, startDemoWorld, type DemoWorld } from '../../demo/demo-world';
import { PaymentOrder } from '../../persistence/entities';
import { formatAmount } from '../../shared/money';
import { DEMO } from '../../../adapters/bank/sandbox/sandbox.config';
import { fetchAndReconcile } from '../../../queue/jobs/fetch-statement.job';
import { writeStatementFile } from '../../../queue/jobs/write-back.job';
import { createLogger } from '../../logging/logger';
import { runAction } from '../run-action';
import { say, table } from '../output';

/** Where an order of the demo stops: its final states, plus `failed` (visible, retryable). */
const SETTLED = new Set<string>(['executed', 'rejected', 'invalid', 'deemed_executed', 'failed']);
const STAGES = ['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const;

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
        await refuseInstallationDatabase(base);
        await migrate(base);
        say('demo: generating the test PKI (NCA-like CA, RSA and GOST 2015 keys of the demo company)');
        const logger = createLogger({ level: process.env.CONNECTOR_LOG_LEVEL ?? 'warn', name: 'connector-demo' });
        const world: DemoWorld = await startDemoWorld(base, dir, logger);
        const { config, context } = world;
        say(`demo: bank sandbox on ${redactedUrl(config.bank.url)}, signer agent on ${redactedUrl(world.agent.url)}`);
        let workers: ReturnType<typeof startWorkers> | undefined;
        try {
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

          // Statements: fetched, checked (opening + lines = closing), stored once per bank line,
          // reconciled with the orders (fees expected), and written for 1C as kl_to_1c.txt.
          const accounts = [DEMO.payerIban, DEMO.poorIban];
          let matched = 0;
          const incidents: string[] = [];
          let statementLines = 0;
          for (const account of accounts) {
            const fetched = await fetchAndReconcile(context, account, today, today);
            matched += fetched.matched;
            statementLines += fetched.stored + fetched.duplicates;
            incidents.push(...fetched.incidents);
          }
          const statementPath = await writeStatementFile(context, accounts, today, today);
          const ledger = (await (await fetch(`${config.bank.url.replace(/\/$/, '')}/_sandbox/submissions`)).json()) as { total: number; duplicates: number };
          const reason = (r: PaymentOrder) => (r.state === 'invalid' ? (r.errors ?? []).map((e) => `${e.field}: ${e.message}`).join('; ') : r.state === 'rejected' ? `${r.bankReasonCode}: ${r.bankReasonText ?? ''}` : '');
          process.stdout.write(
            `${table(
              rows.map((r) => [r.number, formatAmount(r.amountTiyn), r.payerIban, r.state, reason(r)]),
              ['NUMBER', 'AMOUNT', 'PAYER ACCOUNT', 'STATE', 'REASON'],
            )}\n`,
          );
          const count = (state: string) => rows.filter((r) => r.state === state).length;
          say(`demo: statements: ${statementLines} lines (fees included), ${matched} matched to orders, ${incidents.length} incident(s); ${ledger.total} documents in the bank's ledger; ${((Date.now() - started) / 1000).toFixed(1)} s`);
          process.stdout.write(`executed: ${count('executed')}\nrejected: ${count('rejected')}\ninvalid: ${count('invalid')}\nduplicates: ${ledger.duplicates}\nstatement: ${statementPath}\n`);
          return 0;
        } finally {
          await workers?.close(5_000);
          await world.close();
        }
      }),
    );
}


