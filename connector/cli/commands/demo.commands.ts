import type { Command } from 'commander';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../../../config/load-config';
import { migrate } from '../../persistence/database';
import { createAppContext } from '../../app/app-context';
import { startWorkers } from '../../../queue/worker.runner';
import { bullmqIntakePort } from '../../../queue/bullmq-intake.port';
import { intakeOrders } from '../../intake/order-intake';
import { demoOrders } from '../../demo/demo-orders';
import { FINAL_STATES } from '../../orders/order-state';
import { PaymentOrder } from '../../persistence/entities';
import { formatAmount } from '../../shared/money';
import { runAction } from '../run-action';
import { createLogger } from '../../logging/logger';
import { say, table } from '../output';

/** States that end this stage of the demo: validation is the last stage wired so far. */
const SETTLED = new Set<string>([...FINAL_STATES, 'validated', 'awaiting_signatures', 'failed']);

export function registerDemoCommands(program: Command): void {
  program
    .command('demo')
    .description('the main job end to end on this machine: orders from the ERP through the queue into the database (`npm run demo` builds and migrates first)')
    .option('--timeout <seconds>', 'give up after this long', '110')
    .action(
      runAction(async (opts: { timeout: string }) => {
        const config = loadConfig();
        await migrate(config);
        // The demo talks to a person: structured logs only for warnings unless asked for.
        const logger = createLogger({ level: process.env.CONNECTOR_LOG_LEVEL ?? 'warn', name: 'connector-demo' });
        const context = await createAppContext({ config, logger, name: 'connector-demo', role: 'worker' });
        const workers = startWorkers(context, context.redis);
        try {
          const runId = randomBytes(3).toString('hex').toUpperCase();
          const today = context.clock.now().toISOString().slice(0, 10);
          const orders = demoOrders(runId, today);
          say(`demo run ${runId}: ${orders.length} orders from the ERP`);
          const results = await intakeOrders(context.orm.em.fork(), `demo:${runId}`, orders.map((order) => ({ order, rawDocument: JSON.stringify(order) })), bullmqIntakePort(context.queues), { actor: 'demo' });
          const ids = results.map((r) => r.orderId);
          const deadline = Date.now() + Number(opts.timeout) * 1000;
          let rows: PaymentOrder[] = [];
          for (;;) {
            rows = await context.orm.em.fork().find(PaymentOrder, { id: { $in: ids } }, { orderBy: { number: 'asc' } });
            const settled = rows.filter((r) => SETTLED.has(r.state)).length;
            process.stderr.write(`\r  orders settled: ${settled}/${ids.length}`);
            if (settled === ids.length) break;
            if (Date.now() > deadline) {
              say('\ndemo: timed out waiting for the worker; see `connector orders list`');
              return 1;
            }
            await new Promise((r) => setTimeout(r, 200));
          }
          process.stderr.write('\n');
          process.stdout.write(
            `${table(
              rows.map((r) => [r.number, formatAmount(r.amountTiyn), r.payerIban, r.state, (r.errors ?? []).map((e) => `${e.field}: ${e.message}`).join('; ')]),
              ['NUMBER', 'AMOUNT', 'PAYER ACCOUNT', 'STATE', 'REASON'],
            )}\n`,
          );
          const count = (state: string) => rows.filter((r) => r.state === state).length;
          process.stdout.write(`executed: ${count('executed')}\nrejected: ${count('rejected')}\ninvalid: ${count('invalid')}\n`);
          return 0;
        } finally {
          await workers.close(5_000);
          await context.close();
        }
      }),
    );
}
