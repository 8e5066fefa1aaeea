import type { Command } from 'commander';
import { loadConfig } from '../../../config/load-config';
import type { ConnectorConfig } from '../../../config/config.schema';
import { createAppContext, type AppContext } from '../../app/app-context';
import { assertScopeUser, LockdownNotRecordedError, parseScope, type UnrecordedLockdown } from '../../lockdown/lockdown.service';
import { BANK_PHONES, formatBankChecklist } from '../../lockdown/bank-checklist';
import { lockdownStatusOf, lockdownWithoutDatabase, resolveLockdownIn, triggerLockdown } from '../../../queue/lockdown.trigger';
import { describeServiceError } from '../service-error.mapper';
import { requireRedis } from '../require-redis';
import { ConnectorError, UsageError } from '../../shared/errors';
import { createLogger } from '../../logging/logger';
import { runAction } from '../run-action';
import { printJson, say } from '../output';
import { cliActor } from './foundation.commands';

/**
 * `connector lockdown on|status|resolve` (INTERFACES.md, issue 16). The CLI acts with the local
 * operator's authority, recorded as `cli:<os user>`.
 */
async function context(config = loadConfig()) {
  // Quiet logger: the command's own output is the checklist and the warnings.
  return createAppContext({ config, logger: quietLogger(), name: 'connector-lockdown', role: 'producer' });
}

function quietLogger() {
  return createLogger({ level: 'silent', name: 'connector-lockdown' });
}

/**
 * PostgreSQL did not record the lockdown: exit 1 (no incident, so no id on stdout, and `lockdown on`
 * has to run again), saying what holds, what does not and what to do now. INTERFACES.md's exit 0
 * means a lockdown that holds AND is recorded: a script reading 0 takes stdout for the incident id.
 */
function reportUnrecorded(unrecorded: UnrecordedLockdown, config: ConnectorConfig): number {
  const cause = describeServiceError(unrecorded.cause, config)?.message ?? (unrecorded.cause instanceof Error ? unrecorded.cause.message : String(unrecorded.cause));
  say(
    unrecorded.holdsForSubmission
      ? `LOCKDOWN_NOT_RECORDED: the lockdown holds for submission (Redis flag set) but PostgreSQL did not record it: ${cause}`
      : `LOCKDOWN_NOT_RECORDED: the lockdown does NOT hold and PostgreSQL did not record it: ${cause}`,
  );
  for (const line of unrecorded.held) say(`  held: ${line}`);
  for (const line of unrecorded.notDone) say(`  not done (needs PostgreSQL): ${line}`);
  for (const warning of unrecorded.warnings) say(`warning: ${warning}`);
  say(`Run connector lockdown on again (same --reason and --scope ${unrecorded.scope}) as soon as PostgreSQL answers (connector doctor): it records the lockdown, prints the incident id and does the rest.`);
  say(`BANK NOTIFICATION (R-29): call the bank now: ${BANK_PHONES.join(', ')}; deadline ${unrecorded.bankDeadline}`);
  return 1;
}

export function registerLockdownCommands(program: Command): void {
  const lockdown = program.command('lockdown').description('compromise lockdown: stop everything at once, tell the bank, resolve (R-29..R-31)');

  lockdown
    .command('on')
    .description('lock the connector down now: queues paused, keys wiped, sessions ended, orders held; prints the incident id (PostgreSQL down: the Redis flag, queues and keys only, exit 1 LOCKDOWN_NOT_RECORDED; run it again once PostgreSQL answers)')
    .requiredOption('--reason <text>', 'what happened (recorded in the incident and the bank checklist)')
    .option('--scope <scope>', 'all | user:LOGIN | credentials | users', 'all')
    .action(
      runAction(async (opts: { reason: string; scope: string }) => {
        if (!opts.reason.trim()) throw new UsageError('--reason must say what happened');
        const scope = parseScope(opts.scope);
        const config = loadConfig();
        const input = { trigger: 'manual' as const, reason: opts.reason.trim(), scope, actor: cliActor() };
        let ctx: AppContext;
        try {
          ctx = await context(config);
        } catch (err) {
          // PostgreSQL cannot be opened: what needs only Redis and the signer agent is done all the same.
          return reportUnrecorded(await lockdownWithoutDatabase({ config, logger: quietLogger() }, input, err), config);
        }
        try {
          await assertScopeUser(ctx.orm.em.fork(), scope);
          const result = await triggerLockdown(ctx, input).catch((err: unknown) => {
            if (err instanceof LockdownNotRecordedError) return err.lockdown;
            throw err;
          });
          if (!('incidentId' in result)) return reportUnrecorded(result, config);
          process.stdout.write(`${result.incidentId}\n`);
          // The headline an admin reads first in an emergency: keys not wiped are said here, not only in a warning below.
          const keys = result.keysWiped ? 'and keys wiped' : '(keys NOT wiped: see the warning)';
          const held = result.redisHeld ? `queues paused ${keys} in ${Math.round(result.pausedAndWipedMs)} ms` : 'recorded in PostgreSQL, which every stage checks before a side effect';
          say(`lockdown ${result.alreadyLocked ? 'already in force (this report was added to it)' : 'in force'} since ${result.since}, scope ${result.scope}: ${held}; ${result.heldOrders} orders held`);
          for (const warning of result.warnings) say(`warning: ${warning}`);
          if (result.checklist) say(formatBankChecklist(result.checklist));
          if (!result.redisHeld) {
            // INTERFACES.md: exit 0 once the lock holds, flag set and queues paused. The record holds,
            // and the maintenance sweep sets the flag and pauses the queues once Redis answers.
            throw new ConnectorError(
              'LOCKDOWN_INCOMPLETE',
              'Redis did not take the lockdown flag or did not pause the queues (see the warnings): the lockdown is recorded and every stage refuses its side effects on it; run connector lockdown on again once Redis answers (connector doctor), or let the worker do it',
            );
          }
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
              status.state === 'locked' && status.incidentId
                ? `LOCKED since ${status.since} (scope ${status.scope}): ${status.reason}\nincident: ${status.incidentId}\nheld orders: ${status.heldOrders}\n`
                : status.state === 'locked'
                  ? `LOCKED by the Redis flag only (not recorded in PostgreSQL, no incident)\nheld orders: ${status.heldOrders}\n`
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
    .option('--bank-notified-at <iso>', 'when the bank was told, e.g. 2026-11-26T10:30:00+05:00 (without an offset, Kazakhstan time)')
    .option('--bank-reference <text>', "the bank's reference for the notice")
    .option('--notified-by <text>', 'who told the bank (default: you)')
    .option('--note <text>', 'what was done about it (on the incident timeline and in the audit log)')
    .action(
      runAction(async (opts: { incident?: string; bankNotifiedAt?: string; bankReference?: string; notifiedBy?: string; note?: string }) => {
        if (!opts.incident) throw new UsageError('--incident ID is required (connector lockdown status shows it)');
        const ctx = await context();
        try {
          // Lifting the lockdown resumes the queues: with Redis out of reach it stays, unchanged.
          await requireRedis(ctx);
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
