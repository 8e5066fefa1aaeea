import type { Command } from 'commander';
import { loadConfig } from '../../../config/load-config';
import { createAppContext } from '../../app/app-context';
import { parseScope } from '../../lockdown/lockdown.service';
import { formatBankChecklist } from '../../lockdown/bank-checklist';
import { lockdownStatusOf, resolveLockdownIn, triggerLockdown } from '../../../queue/lockdown.trigger';
import { UsageError } from '../../shared/errors';
import { createLogger } from '../../logging/logger';
import { runAction } from '../run-action';
import { printJson, say } from '../output';
import { cliActor } from './foundation.commands';

/**
 * `connector lockdown on|status|resolve` (INTERFACES.md, issue 16). The CLI acts with the local
 * operator's authority, recorded as `cli:<os user>`.
 */
async function context() {
  const config = loadConfig();
  // Quiet logger: the command's own output is the checklist and the warnings.
  return createAppContext({ config, logger: createLogger({ level: 'silent', name: 'connector-lockdown' }), name: 'connector-lockdown', role: 'producer' });
}

export function registerLockdownCommands(program: Command): void {
  const lockdown = program.command('lockdown').description('compromise lockdown: stop everything at once, tell the bank, resolve (R-29..R-31)');

  lockdown
    .command('on')
    .description('lock the connector down now: queues paused, keys wiped, sessions ended, orders held; prints the incident id')
    .requiredOption('--reason <text>', 'what happened (recorded in the incident and the bank checklist)')
    .option('--scope <scope>', 'all | user:LOGIN | credentials', 'all')
    .action(
      runAction(async (opts: { reason: string; scope: string }) => {
        if (!opts.reason.trim()) throw new UsageError('--reason must say what happened');
        const scope = parseScope(opts.scope);
        const ctx = await context();
        try {
          const result = await triggerLockdown(ctx, { trigger: 'manual', reason: opts.reason.trim(), scope, actor: cliActor() });
          process.stdout.write(`${result.incidentId}\n`);
          say(`lockdown ${result.alreadyLocked ? 'already in force (this report was added to it)' : 'in force'} since ${result.since}, scope ${result.scope}: queues paused and keys wiped in ${Math.round(result.pausedAndWipedMs)} ms; ${result.heldOrders} orders held`);
          for (const warning of result.warnings) say(`warning: ${warning}`);
          if (result.checklist) say(formatBankChecklist(result.checklist));
          return 0;
        } finally {
          await ctx.close();
        }
      }),
    );

  lockdown
    .command('status')
    .description('whether the connector is locked down, since when, why, and how many orders are held')
    .option('--json', 'one JSON document')
    .action(
      runAction(async (opts: { json?: boolean }) => {
        const ctx = await context();
        try {
          const status = await lockdownStatusOf(ctx);
          if (opts.json) printJson(status);
          else {
            process.stdout.write(
              status.state === 'locked'
                ? `LOCKED since ${status.since} (scope ${status.scope}): ${status.reason}\nincident: ${status.incidentId}\nheld orders: ${status.heldOrders}\n`
                : `normal\nheld orders: ${status.heldOrders}\n`,
            );
            for (const warning of status.warnings) say(`warning: ${warning}`);
          }
          return 0;
        } finally {
          await ctx.close();
        }
      }),
    );

  lockdown
    .command('resolve')
    .description('lift the lockdown once the bank was told (R-29) and the compromised credentials replaced; names every missing step')
    .option('--incident <id>', 'the lockdown incident (connector lockdown status)')
    .option('--bank-notified-at <iso>', 'when the bank was told')
    .option('--bank-reference <text>', "the bank's reference for the notice")
    .option('--notified-by <text>', 'who told the bank (default: you)')
    .option('--note <text>', 'what was done about it (on the incident timeline and in the audit log)')
    .action(
      runAction(async (opts: { incident?: string; bankNotifiedAt?: string; bankReference?: string; notifiedBy?: string; note?: string }) => {
        if (!opts.incident) throw new UsageError('--incident ID is required (connector lockdown status shows it)');
        const ctx = await context();
        try {
          const result = await resolveLockdownIn(ctx, {
            incidentId: opts.incident,
            bankNotifiedAt: opts.bankNotifiedAt,
            bankReference: opts.bankReference,
            notifiedBy: opts.notifiedBy,
            note: opts.note,
            actor: cliActor(),
            isAdmin: true,
          });
          say(`lockdown resolved (incident ${result.incidentId}): ${result.released} held orders back to validation, ${result.signaturesInvalidated} signatures to be given again, ${result.requeuedSubmissions} claimed submissions re-queued; queues resumed`);
          for (const warning of result.warnings) say(`warning: ${warning}`);
          return 0;
        } finally {
          await ctx.close();
        }
      }),
    );
}
