import type { Command } from 'commander';
import { buildApiWithExtensions } from '../../api/api.extensions';
import { loadConfig } from '../../../config/load-config';
import { migrate, pendingMigrations } from '../../persistence/database';
import { createAppContext, createCliContext, withOrm, type AppContext } from '../../app/app-context';

import { startWorkers } from '../../../queue/worker.runner';
import { startScheduler } from '../../../queue/scheduler.runner';
import { retryFailedOrder, settleOrder, SETTLE_TARGETS, withdrawOrder, type SettleTarget } from '../../../queue/order-retry';
import { PaymentOrder } from '../../persistence/entities';
import { isOrderState, ORDER_STATES, type OrderState } from '../../orders/order-state';
import { orderView } from '../../orders/order.mapper';
import { getIncident, incidentView, listIncidents, resolveIncident } from '../../incidents/incident.service';
import { penaltyClaim } from '../../claims/penalty.claim';
import { kzCalendarFromConfig } from '../../calendar/kz-business-calendar';
import { parseKzInstant } from '../../calendar/kz-time';
import { clockFromConfig } from '../../shared/clock';
import { changeApiKeyAccounts, createApiKey, listApiKeys, revokeApiKey } from '../../api-keys/api-key.service';
import { formatAmount } from '../../shared/money';
import { ConnectorError, UsageError } from '../../shared/errors';
import { listenFailure } from '../../shared/listen-error';

import { runAction } from '../run-action';
import { migrationsPendingError } from '../service-error.mapper';
import { requireRedis } from '../require-redis';
import { untilSignal } from '../lifecycle';
import { printJson, say, table } from '../output';
import { isUuid } from '../../shared/uuid';
import { osUserName } from '../os-user';

/** The local operator acting through the CLI (INTERFACES.md: recorded as cli:<os user>). */
export function cliActor(): string {
  return `cli:${osUserName() ?? 'unknown'}`;
}

/**
 * Starts what a long-running command serves, on a migrated database only; should that fail (the
 * schema behind this release, the port taken, a job without a handler), the connections opened for it (PostgreSQL, Redis, queues) are closed before the error
 * goes on: left open they keep the process alive, and PM2 shows `online` what serves nothing.
 */
async function startedOrClosed<T>(context: AppContext, start: () => Promise<T>): Promise<T> {
  try {
    await requireMigrated(context);
    return await start();
  } catch (err) {
    await context.close();
    throw err;
  }
}

/**
 * A long-running command on a database without this release's schema (never migrated, or an
 * upgrade that skipped `connector migrate`) would fail every job and request it takes: an order's
 * retries spent on "relation does not exist" end it `failed`. It refuses to start instead
 * (MIGRATIONS_PENDING, exit 1), naming the migrations and the command.
 */
async function requireMigrated(context: AppContext): Promise<void> {
  const pending = await pendingMigrations(context.orm);
  if (pending.length > 0) throw migrationsPendingError(context.config.database.url, pending);
}

export function registerFoundationCommands(program: Command): void {
  program
    .command('migrate')
    .description('create the database if missing and apply pending migrations (safe to repeat)')
    .action(
      runAction(async () => {
        const config = loadConfig();
        const result = await migrate(config);
        if (result.created) say(`created database ${new URL(config.database.url).pathname.slice(1)}`);
        say(result.applied.length ? `applied ${result.applied.length} migration(s): ${result.applied.join(', ')}` : 'schema is up to date');
        return 0;
      }),
    );

  program
    .command('api')
    .description('run the HTTP API (long-running; SIGINT/SIGTERM stop it gracefully)')
    .action(
      runAction(async () => {
        const context = await createAppContext({ name: 'connector-api', role: 'producer', service: true });
        const { host, port } = context.config.api;
        const app = await startedOrClosed(context, async () => {
          const built = buildApiWithExtensions(context);
          try {
            await built.listen({ host, port });
          } catch (err) {
            await built.close().catch(() => undefined);
            throw listenFailure('API_LISTEN_FAILED', 'the API', `${host}:${port}`, err, 'CONNECTOR_API_HOST / CONNECTOR_API_PORT (config api.host / api.port; README "Configuration")');
          }
          return built;
        });
        context.logger.info({ event: 'api.listening', host, port });
        return untilSignal(context.logger, 'api', async () => {
          await app.close();
          await context.close();
        });
      }),
    );

  program
    .command('worker')
    .description('run the queue workers (long-running; SIGINT/SIGTERM finish current jobs and stop)')
    .action(
      runAction(async () => {
        const context = await createAppContext({ name: 'connector-worker', role: 'worker', service: true });
        const running = await startedOrClosed(context, async () => startWorkers(context, context.redis));
        context.logger.info({ event: 'worker.started', queues: running.workers.map((w) => w.name), concurrency: context.config.worker.concurrency });
        return untilSignal(context.logger, 'worker', async () => {
          await running.close();
          await context.close();
        });
      }),
    );

  program
    .command('scheduler')
    .description('register repeatable jobs once (leader lease in Redis; standby otherwise) and keep the lease')
    .action(
      runAction(async () => {
        const context = await createAppContext({ name: 'connector-scheduler', role: 'worker', service: true });
        const scheduler = await startedOrClosed(context, () => startScheduler(context, context.redis));
        context.logger.info({ event: 'scheduler.started', leader: scheduler.isLeader() });
        return untilSignal(context.logger, 'scheduler', async () => {
          await scheduler.close();
          await context.close();
        });
      }),
    );

  const orders = program.command('orders').description("operators' view of payment orders");
  orders
    .command('list')
    .description('list orders, newest first')
    .option('--state <state>', `one of: ${ORDER_STATES.join(', ')}`)
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'one JSON document: {"orders":[...]}')
    .action(
      runAction(async (opts: { state?: string; limit: string; json?: boolean }) => {
        if (opts.state && !isOrderState(opts.state)) throw new UsageError(`unknown state "${opts.state}"; one of: ${ORDER_STATES.join(', ')}`);
        const limit = Number(opts.limit);
        if (!Number.isInteger(limit) || limit < 1) throw new UsageError('--limit must be a positive whole number');
        const config = loadConfig();
        return withOrm(config, async (orm) => {
          const found = await orm.em.fork().find(PaymentOrder, opts.state ? { state: opts.state as OrderState } : {}, { orderBy: { createdAt: 'desc', id: 'desc' }, limit: limit + 1 });
          const rows = found.slice(0, limit);
          // Never a silent cut: an operator looking for failed orders must know when there are more.
          if (found.length > limit) process.stderr.write(`note: more than ${limit} orders${opts.state ? ` in state ${opts.state}` : ''}; these are the newest ${limit}: raise --limit to see more\n`);
          if (opts.json) {
            printJson({ orders: rows.map(orderView) });
          } else {
            // Each amount in its own currency: a dollar order among tenge ones is not read as tenge.
            process.stdout.write(
              `${table(
                rows.map((o) => [o.id, o.state, o.number, o.docDate, `${formatAmount(o.amountTiyn)} ${o.currency}`, o.payerIban, o.lastError ?? (o.errors?.length ? o.errors.map((e) => e.code).join(',') : '')]),
                ['ID', 'STATE', 'NUMBER', 'DATE', 'AMOUNT', 'PAYER ACCOUNT', 'LAST ERROR'],
              )}\n`,
            );
          }
          return 0;
        });
      }),
    );
  orders
    .command('show <id>')
    .description('one order with its history')
    .option('--json', 'one JSON document')
    .action(
      runAction(async (id: string, opts: { json?: boolean }) => {
        const config = loadConfig();
        return withOrm(config, async (orm) => {
          const em = orm.em.fork();
          const order = isUuid(id) ? await em.findOne(PaymentOrder, { id }) : null;
          if (!order) throw new ConnectorError('NOT_FOUND', `no order ${id}`);
          const events = await em.execute<Array<{ from_state: string | null; to_state: string; actor: string; reason: string | null; at: Date }>>(
            'select from_state, to_state, actor, reason, at from order_event where order_id = ? order by id',
            [id],
          );
          const history = events.map((e) => ({ from: e.from_state, to: e.to_state, actor: e.actor, reason: e.reason, at: new Date(e.at).toISOString() }));
          if (opts.json) {
            printJson({ ...orderView(order), history });
          } else {
            const v = orderView(order);
            process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
            process.stdout.write(`${table(history.map((h) => [h.at, `${h.from ?? '-'} -> ${h.to}`, h.actor, h.reason ?? '']), ['AT', 'TRANSITION', 'ACTOR', 'REASON'])}\n`);
          }
          return 0;
        });
      }),
    );
  orders
    .command('claim <id>')
    .description("R-28: the penalty the bank owes for an order it did not execute in time (0.01 % a day), with a draft of the written claim; exit 1 when there is nothing to claim")
    .option('--json', 'one JSON document')
    .action(
      runAction(async (id: string, opts: { json?: boolean }) => {
        const config = loadConfig();
        return withOrm(config, async (orm) => {
          const claim = await penaltyClaim(orm.em.fork(), id, kzCalendarFromConfig(config), clockFromConfig(config).now());
          if (opts.json) printJson(claim);
          else {
            // Without a booked debit in a stored statement the day is unknown: an executed order is not "not executed".
            const execution = claim.executedDay
              ? `executed ${claim.executedDay}`
              : claim.state === 'submitted'
                ? 'not executed yet'
                : `${claim.state.replace('_', ' ')}, day unknown (no booked debit in the stored statements; delay counted to today)`;
            // An order dated ahead: the delay counts from its value date, and says so.
            const due = claim.dueDay !== claim.receivedDay ? ` (value date: due ${claim.dueDay})` : '';
            say(`order ${claim.number}: received ${claim.receivedDay}${due}, ${execution}; delay ${claim.delayDays} day(s); penalty ${claim.penalty} ${claim.currency}${claim.claimable ? '' : ' (not claimable)'}`);
            if (claim.claimable) for (const note of claim.notes) say(`note: ${note}`);
            if (claim.claimable) process.stdout.write(`\n${claim.draft}\n`);
          }
          if (claim.claimable) return 0;
          // A refusal names its code on stderr (INTERFACES.md, CLI conventions).
          say(`NOT_CLAIMABLE: ${claim.notes.join('; ')}`);
          return 1;
        });
      }),
    );
  orders
    .command('retry <id>')
    .description('send a failed order on from the stage it failed in (never a second submission: a submit resumes with a lookup)')
    .action(
      runAction(async (id: string) => {
        const context = await createCliContext();
        try {
          await requireRedis(context);
          const target = await retryFailedOrder(context.orm.em.fork(), context.queues, id, cliActor());
          say(`order ${id}: failed -> ${target}, queued`);
          return 0;
        } finally {
          await context.close();
        }
      }),
    );

  orders
    .command('settle <id>')
    .description('settle by hand an order whose final status the bank never gave in a form the connector knows (ask the bank first): submitted -> executed|rejected, deemed_executed -> rejected (a late refusal), failed -> executed, or failed after a send began -> rejected (the bank refused or never got it; not with its debit in a statement); audited, written back to the ERP')
    .requiredOption('--as <state>', `${SETTLE_TARGETS.join(' or ')}`)
    .requiredOption('--reason <text>', 'what the bank said and who confirmed it (a refusal: what the ERP user reads)')
    .action(
      runAction(async (id: string, opts: { as: string; reason: string }) => {
        if (!(SETTLE_TARGETS as readonly string[]).includes(opts.as)) throw new UsageError(`--as is ${SETTLE_TARGETS.join(' or ')}`);
        const context = await createCliContext();
        try {
          await requireRedis(context);
          const result = await settleOrder(context.orm.em.fork(), context.queues, id, opts.as as SettleTarget, opts.reason, cliActor());
          say(`order ${id}: ${result.from} -> ${result.to}, settled by hand; written back to the ERP`);
          return 0;
        } finally {
          await context.close();
        }
      }),
    );

  orders
    .command('withdraw <id>')
    .description('withdraw an order nothing of which reached the bank (received, validated, awaiting signatures, signed, held, or failed before any send): it ends invalid with the reason (WITHDRAWN), which the ERP reads; audited')
    .requiredOption('--reason <text>', 'why, and who asked (the ERP user reads it)')
    .action(
      runAction(async (id: string, opts: { reason: string }) => {
        const context = await createCliContext();
        try {
          await requireRedis(context);
          const result = await withdrawOrder(context.orm.em.fork(), context.queues, id, opts.reason, cliActor());
          say(`order ${id}: ${result.from} -> invalid, withdrawn; written back to the ERP`);
          return 0;
        } finally {
          await context.close();
        }
      }),
    );

  const incidents = program.command('incidents').description('incidents (possible compromise, unexplained debits, missing statuses)');
  incidents
    .command('list')
    .option('--json', 'one JSON document: {"incidents":[...],"more":bool}')
    .option('--status <status>', 'open or resolved')
    .option('--limit <n>', 'only the newest N (default: all); "more" says whether older ones were left out')
    .action(
      runAction(async (opts: { json?: boolean; status?: string; limit?: string }) => {
        if (opts.status && opts.status !== 'open' && opts.status !== 'resolved') throw new UsageError('--status is open or resolved');
        const limit = opts.limit === undefined ? undefined : Number(opts.limit);
        if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) throw new UsageError(`--limit ${opts.limit}: expected a whole number >= 1`);
        return withOrm(loadConfig(), async (orm) => {
          const found = await listIncidents(orm.em.fork(), { status: opts.status as 'open' | 'resolved' | undefined, ...(limit ? { limit: limit + 1 } : {}) });
          const rows = limit ? found.slice(0, limit) : found;
          const more = found.length > rows.length;
          if (opts.json) printJson({ incidents: rows.map(incidentView), more });
          else process.stdout.write(`${table(rows.map((i) => [i.id, i.status, i.severity, i.kind, i.openedAt.toISOString(), i.title]), ['ID', 'STATUS', 'SEVERITY', 'KIND', 'OPENED', 'TITLE'])}\n`);
          // The note goes to stderr with --json too (README: "more" and a note on stderr), as orders list's does.
          if (more) process.stderr.write(`the newest ${limit} shown; all of them without --limit\n`);
          return 0;
        });
      }),
    );
  incidents
    .command('show <id>')
    .option('--json', 'one JSON document')
    .action(
      runAction(async (id: string, opts: { json?: boolean }) =>
        withOrm(loadConfig(), async (orm) => {
          const incident = await getIncident(orm.em.fork(), id);
          if (!incident) throw new ConnectorError('NOT_FOUND', `no incident ${id}`);
          if (opts.json) printJson(incidentView(incident));
          else process.stdout.write(`${JSON.stringify(incidentView(incident), null, 2)}\n`);
          return 0;
        }),
      ),
    );
  incidents
    .command('resolve <id>')
    .description('close an incident a person has dealt with (a lockdown: connector lockdown resolve); those the bank must hear of (authority_revoked, unexplained_debit, execution_mismatch) need --bank-notified-at and --bank-reference')
    .requiredOption('--note <text>', 'what was done about it')
    .option('--bank-notified-at <iso>', 'when the bank was told, e.g. 2026-11-26T10:30:00+05:00 (without an offset, Kazakhstan time)')
    .option('--bank-reference <text>', "the bank's reference of that notice")
    .option('--json', 'one JSON document')
    .action(
      runAction(async (id: string, opts: { note: string; bankNotifiedAt?: string; bankReference?: string; json?: boolean }) => {
        // Without an offset, Kazakhstan time: never the zone of the machine the command runs on.
        const bankNotifiedAt = opts.bankNotifiedAt === undefined ? undefined : parseKzInstant(opts.bankNotifiedAt);
        if (bankNotifiedAt === null) throw new UsageError(`--bank-notified-at ${opts.bankNotifiedAt}: expected an ISO date and time (without an offset, Kazakhstan time), e.g. 2026-11-26T10:30:00+05:00`);
        return withOrm(loadConfig(), async (orm) => {
          const { incident, resolved } = await resolveIncident(orm.em.fork(), { id, actor: cliActor(), note: opts.note, bankNotifiedAt, bankNotifiedAtText: opts.bankNotifiedAt, bankReference: opts.bankReference });
          if (opts.json) printJson({ resolved, incident: incidentView(incident) });
          else say(resolved ? `incident ${incident.id} resolved` : `incident ${incident.id} was already resolved`);
          return 0;
        });
      }),
    );

  const keys = program.command('api-keys').description('API keys for ERPs (shown once; only a hash is stored)');
  keys
    .command('create <name>')
    .description('create a key; it is printed once, alone on stdout')
    .option('--accounts <ibans>', 'comma-separated payer accounts the key may submit for (none without it)')
    .action(
      runAction(async (name: string, opts: { accounts?: string }) => {
        const accounts = opts.accounts === undefined ? [] : opts.accounts.split(',').map((a) => a.trim()).filter(Boolean);
        // `--accounts ""` (an unset shell variable) or `--accounts ,` asked for accounts and named
        // none: it used to make a key for no account, as if the flag had been left out. Refused, so
        // the operator sees the mistake instead of an ERP's first order failing with 403.
        if (opts.accounts !== undefined && accounts.length === 0) {
          throw new UsageError(`--accounts "${opts.accounts}" names no account: give the payer IBANs separated by commas, or leave --accounts out for a key with no account yet (grant them later with api-keys grant)`);
        }
        return withOrm(loadConfig(), async (orm) => {
          const { key, record } = await createApiKey(orm.em.fork(), name, accounts, cliActor());
          process.stdout.write(`${key}\n`);
          say(`API key "${record.name}" created (${record.keyPrefix}...), accounts: ${record.accounts.length ? record.accounts.join(', ') : 'none yet'}; store it now, it is not shown again`);
          return 0;
        });
      }),
    );
  keys
    .command('list')
    .option('--json', 'one JSON document: {"apiKeys":[...]}')
    .action(
      runAction(async (opts: { json?: boolean }) =>
        withOrm(loadConfig(), async (orm) => {
          const rows = await listApiKeys(orm.em.fork());
          const views = rows.map((k) => ({ name: k.name, prefix: k.keyPrefix, accounts: k.accounts, createdAt: k.createdAt.toISOString(), revokedAt: k.revokedAt?.toISOString() ?? null, lastUsedAt: k.lastUsedAt?.toISOString() ?? null }));
          if (opts.json) printJson({ apiKeys: views });
          else process.stdout.write(`${table(views.map((v) => [v.name, v.prefix, v.accounts.join(',') || '-', v.revokedAt ? 'revoked' : 'active', v.lastUsedAt ?? 'never']), ['NAME', 'PREFIX', 'ACCOUNTS', 'STATE', 'LAST USED'])}\n`);
          return 0;
        }),
      ),
    );
  for (const [command, description, field] of [
    ['grant <name>', 'let a key submit for more payer accounts (a key created without --accounts may submit for none until then)', 'grant'],
    ['revoke-accounts <name>', 'take payer accounts from a key', 'revoke'],
  ] as const) {
    keys
      .command(command)
      .description(description)
      .requiredOption('--accounts <ibans>', 'comma-separated payer accounts')
      .action(
        runAction(async (name: string, opts: { accounts: string }) => {
          const accounts = opts.accounts.split(',').map((a) => a.trim()).filter(Boolean);
          if (!accounts.length) throw new UsageError('--accounts names no account');
          return withOrm(loadConfig(), async (orm) => {
            const now = await changeApiKeyAccounts(orm.em.fork(), name, { [field]: accounts }, cliActor());
            say(`API key "${name}" may now submit for: ${now.length ? now.join(', ') : 'no account'}`);
            return 0;
          });
        }),
      );
  }
  keys
    .command('revoke <name>')
    .action(
      runAction(async (name: string) =>
        withOrm(loadConfig(), async (orm) => {
          await revokeApiKey(orm.em.fork(), name, cliActor());
          say(`API key "${name}" revoked`);
          return 0;
        }),
      ),
    );
}


