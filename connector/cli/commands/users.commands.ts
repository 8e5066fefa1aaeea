import type { Command } from 'commander';
import { loadConfig } from '../../../config/load-config';
import { createCliContext, withOrm, type AppContext } from '../../app/app-context';
import { verifyAudit } from '../../audit/audit.log';
import { checkAuditAnchor, exportArchive } from '../../archive/archive.export';
import { parseAmount, formatAmount } from '../../shared/money';
import { systemClock, clockFromConfig } from '../../shared/clock';
import { ConnectorError, UsageError } from '../../shared/errors';
import { userDeps } from '../../app/user-context';
import { UserError } from '../../users/user.errors';
import { blockUser, createUser, disableTotp, enrollKey, enrollTotp, grantRight, listUsers, resetPassword, revokeRight, setUserIin, showUser, unblockUser } from '../../users/user.service';
import { credentialStatus, rotateSecret, SECRET_PURPOSE, setCredentials, type CredentialStatus } from '../../vault/credential.vault';
import { rotateMasterKey } from '../../vault/master-key.rotation';
import { resolveMasterKeyPath } from '../../vault/master-key.store';
import { sealingKeyFor } from '../../vault/sealing-key';
import { SecretBox } from '../../vault/secret-box';
import { printJson, say, table } from '../output';
import { readSecretFromStdin, runAction } from '../run-action';
import { readNewPassword } from '../secret.prompt';
import { parseKzInstant } from '../../calendar/kz-time';
import { cliActor } from './foundation.commands';

/**
 * `connector users ...`, `credentials ...`, `vault rotate-key`, `audit verify`, `archive export`
 * (INTERFACES.md CLI table). Secrets come from stdin only (R-4: never argv, never shell history).
 */

/** A policy refusal on the CLI: "CODE: <Russian message> (<English reason>)", exit 1. */
function cliError(err: unknown): unknown {
  if (err instanceof UserError) return new ConnectorError(err.code, `${err.message} (${err.logMessage})`);
  return err;
}

async function withContext<T>(fn: (context: AppContext) => Promise<T>): Promise<T> {
  const context = await createCliContext();
  try {
    return await fn(context);
  } catch (err) {
    throw cliError(err);
  } finally {
    await context.close();
  }
}

function statusLines(status: CredentialStatus): string {
  if (!status.configured) return 'no Client ID / Client Secret stored';
  const blocked = status.warnings.find((w) => w.level === 'blocked');
  const why =
    blocked?.code === 'CREDENTIALS_REVOKED'
      ? `revoked ${status.revokedAt} by ${status.revokedBy === 'lockdown' ? 'a lockdown, not the bank' : 'the bank'}: ${status.revokedReason ?? ''}`
      : `${blocked?.code}: see below`;
  return [
    `client id:      ${status.clientId}`,
    `generated:      ${status.generatedAt} (${status.ageDays} days ago)`,
    `last used:      ${status.lastUsedAt ?? 'never'} (idle ${status.idleDays} days)`,
    `master key:     ${status.masterKeyFile}`,
    `usable:         ${status.usable ? 'yes' : `NO (${why})`}`,
  ].join('\n');
}

const GENERATED_AT_HELP = "when the pair (the secret) was generated in Internet-banking: a date (YYYY-MM-DD, Kazakhstan time) or an ISO time; R-1's clocks count from it (default: now)";

/**
 * `--generated-at`: the day Internet-banking generated the pair, when it is stored later (R-1: the
 * 90 days count from the generation, not from the day an admin got round to storing it; counted
 * from the storing, the warnings of day 75 and 85 came late, and the bank could block the pair
 * before the connector said a word). Not in the future of the connector's clock.
 */
function generatedAtOf(text: string | undefined, now: Date): Date | undefined {
  if (text === undefined) return undefined;
  const at = parseKzInstant(text, { dateOnly: true });
  if (!at) throw new UsageError(`--generated-at ${text} is not a date: expected YYYY-MM-DD (Kazakhstan time) or an ISO time, e.g. 2026-11-20`);
  // Readable but impossible: refused (exit 1, INVALID_GENERATED_AT), not a usage error.
  if (at.getTime() > now.getTime()) throw new ConnectorError('INVALID_GENERATED_AT', `--generated-at ${text} is in the future (now ${now.toISOString()}): give the day Internet-banking generated the pair`, 1);
  return at;
}

export function registerUsersCommands(program: Command): void {
  const users = program.command('users').description('people who use the connector: logins, roles, rights (R-5..R-17)');

  users
    .command('add <login>')
    .description('create a user; the initial password (stdin) must be changed at first login')
    .requiredOption('--role <role>', 'admin, signer, operator or viewer')
    .option('--iin <iin>', "the person's IIN (12 digits; matched against their EDS certificate)")
    .option('--password-stdin', 'read the initial password from standard input (otherwise a hidden prompt; never argv)')
    .action(
      runAction(async (login: string, opts: { role: string; iin?: string; passwordStdin?: boolean }) => {
        const password = await readNewPassword(opts.passwordStdin, () => readSecretFromStdin('password'));
        return withContext(async (context) => {
          const user = await createUser(userDeps(context), { login, role: opts.role, iin: opts.iin ?? null, password, actor: cliActor() });
          say(`user ${user.login} (${user.role}) created; the password must be changed at first login`);
          return 0;
        });
      }),
    );

  users
    .command('reset-password <login>')
    .description('set a new password (stdin); the user must change it at next login; their sessions end and their key is locked in the signer agent')
    .option('--password-stdin', 'read the new password from standard input (otherwise a hidden prompt)')
    .action(
      runAction(async (login: string, opts: { passwordStdin?: boolean }) => {
        const password = await readNewPassword(opts.passwordStdin, () => readSecretFromStdin('password'));
        return withContext(async (context) => {
          const result = await resetPassword(userDeps(context), { login, password, actor: cliActor() });
          say(`password of ${login} reset; it must be changed at next login; ${result.sessionsEnded} session(s) ended`);
          if (!result.warnings.some((w) => w.startsWith('signer agent'))) say(`the key of ${login} is locked in the signer agent; they unlock it again after their own login`);
          for (const warning of result.warnings) say(`WARNING: ${warning}`);
          return 0;
        });
      }),
    );

  users
    .command('list')
    .option('--json', 'one JSON document: {"users":[...]}')
    .action(
      runAction(async (opts: { json?: boolean }) =>
        withContext(async (context) => {
          const rows = await listUsers(userDeps(context));
          if (opts.json) printJson({ users: rows });
          else
            process.stdout.write(
              `${table(
                rows.map((u) => [u.login, u.role, u.status, u.iin ?? '-', String(u.passwordExpiresInDays), u.rights.map((r) => `${r.account}:${r.rights}`).join(',') || '-']),
                ['LOGIN', 'ROLE', 'STATUS', 'IIN', 'PW DAYS LEFT', 'RIGHTS'],
              )}\n`,
            );
          return 0;
        }),
      ),
    );

  users
    .command('show <login>')
    .option('--json', 'one JSON document')
    .action(
      runAction(async (login: string, opts: { json?: boolean }) =>
        withContext(async (context) => {
          const view = await showUser(userDeps(context), login);
          if (opts.json) printJson(view);
          else process.stdout.write(`${JSON.stringify(view, null, 2)}\n`);
          return 0;
        }),
      ),
    );

  users
    .command('block <login>')
    .description('disable a user at once (R-17): sessions end, key locked in the signer agent, bank reminder recorded')
    .option('--reason <text>', 'why (recorded in the audit log)')
    .action(
      runAction(async (login: string, opts: { reason?: string }) =>
        withContext(async (context) => {
          const result = await blockUser(userDeps(context), { login, reason: opts.reason, actor: cliActor() });
          say(`user ${login} blocked; ${result.sessionsEnded} session(s) ended`);
          if (result.incidentId) say(`R-17: tell the bank by ${result.bankDeadline} (incident ${result.incidentId}); phones +7 7172 770 622, +7 800 080 0711, 7711`);
          for (const warning of result.warnings) say(`WARNING: ${warning}`);
          return 0;
        }),
      ),
    );

  users
    .command('unblock <login>')
    .description('lift an admin block, an inactivity block or a temporary lock-out')
    .action(
      runAction(async (login: string) =>
        withContext(async (context) => {
          await unblockUser(userDeps(context), { login, actor: cliActor() });
          say(`user ${login} unblocked`);
          return 0;
        }),
      ),
    );

  users
    .command('grant <login>')
    .description('give rights on an account (R-16): information only, or manage with a signing limit and level')
    .requiredOption('--account <iban>', 'an IBAN, or "all" for every account')
    .requiredOption('--rights <rights>', 'info or manage')
    .option('--limit <amount>', 'signing limit in tenge, e.g. 1000000.00 (none: no limit)')
    .option('--level <level>', 'signature level: first or second')
    .action(
      runAction(async (login: string, opts: { account: string; rights: string; limit?: string; level?: string }) => {
        if (opts.rights !== 'info' && opts.rights !== 'manage') throw new UsageError('--rights is info or manage');
        if (opts.level !== undefined && opts.level !== 'first' && opts.level !== 'second') throw new UsageError('--level is first or second');
        let limitTiyn: number | null = null;
        if (opts.limit !== undefined) {
          try {
            limitTiyn = parseAmount(opts.limit);
          } catch (err) {
            throw new UsageError(`--limit: ${(err as Error).message}`);
          }
        }
        return withContext(async (context) => {
          const right = await grantRight(userDeps(context), { login, account: opts.account, rights: opts.rights as 'info' | 'manage', limitTiyn, level: (opts.level as 'first' | 'second' | undefined) ?? null, actor: cliActor() });
          say(`${login}: ${right.rights} on ${right.account === '*' ? 'all accounts' : right.account}${right.signLevel ? `, ${right.signLevel} signature` : ''}${right.signLimitTiyn != null ? `, limit ${formatAmount(right.signLimitTiyn)}` : ''}`);
          return 0;
        });
      }),
    );

  users
    .command('revoke <login>')
    .description('take away the rights on one account ("all" for the all-accounts right)')
    .requiredOption('--account <iban>', 'an IBAN, or "all"')
    .action(
      runAction(async (login: string, opts: { account: string }) =>
        withContext(async (context) => {
          const removed = await revokeRight(userDeps(context), { login, account: opts.account, actor: cliActor() });
          if (!removed) throw new ConnectorError('NO_SUCH_RIGHT', `${login} has no right on ${opts.account}`);
          say(`${login}: rights on ${opts.account} revoked`);
          return 0;
        }),
      ),
    );

  users
    .command('totp-enroll <login>')
    .description('R-14: give the user a TOTP second factor; prints the otpauth:// URI once, alone on stdout')
    .action(
      runAction(async (login: string) =>
        withContext(async (context) => {
          const { uri } = await enrollTotp(userDeps(context), { login, actor: cliActor() });
          process.stdout.write(`${uri}\n`);
          say(`TOTP enrolled for ${login}: add the URI to an authenticator app now; it is not shown again`);
          return 0;
        }),
      ),
    );

  users
    .command('set-iin <login> <iin>')
    .description("the IIN the user's EDS certificate must carry (a user added without --iin cannot enroll a key); not once the user has signatures that count")
    .action(
      runAction(async (login: string, iin: string) =>
        withContext(async (context) => {
          const { changed, warnings } = await setUserIin(userDeps(context), { login, iin, actor: cliActor() });
          say(changed ? `IIN of ${login} set to ${iin}; enroll the user's key (connector users enroll-key ${login} --keystore PATH)` : `IIN of ${login} is ${iin} already`);
          for (const w of warnings) say(`warning: ${w}`);
          return 0;
        }),
      ),
    );

  users
    .command('enroll-key <login>')
    .description("enroll the user's EDS keystore in the signer agent; its certificate must carry the user's IIN (checked at the first unlock: the keystore is encrypted until then, so enrolling another person's keystore succeeds and its unlock fails with IDENTITY_MISMATCH)")
    .requiredOption('--keystore <path>', 'the PKCS#12 keystore (path as the signer agent sees it)')
    .action(
      runAction(async (login: string, opts: { keystore: string }) =>
        withContext(async (context) => {
          await enrollKey(userDeps(context), { login, keystorePath: opts.keystore, actor: cliActor() });
          say(`keystore enrolled for ${login}; the user unlocks it with POST /api/v1/me/key/unlock`);
          return 0;
        }),
      ),
    );

  users
    .command('totp-disable <login>')
    .action(
      runAction(async (login: string) =>
        withContext(async (context) => {
          await disableTotp(userDeps(context), { login, actor: cliActor() });
          say(`TOTP removed for ${login}`);
          return 0;
        }),
      ),
    );

  const credentials = program.command('credentials').description("the bank's Client ID / Client Secret vault (R-1, R-2, R-4)");
  credentials
    .command('set')
    .description('store the Client ID and Client Secret (stdin); replaces any earlier pair (one pair per installation)')
    .requiredOption('--client-id <id>', 'the Client ID from Internet-banking')
    .option('--secret-stdin', 'read the Client Secret from standard input (required)')
    .option('--master-key-lost', 'the master key that sealed the stored secrets is lost for good: seal with the key file in use (created if missing); what the lost key sealed stays unreadable')
    .option('--generated-at <date>', GENERATED_AT_HELP)
    .action(
      runAction(async (opts: { clientId: string; secretStdin?: boolean; masterKeyLost?: boolean; generatedAt?: string }) => {
        if (!opts.secretStdin) throw new UsageError('give the Client Secret on standard input with --secret-stdin (never on the command line)');
        const config = loadConfig();
        const clock = clockFromConfig(config);
        const generatedAt = generatedAtOf(opts.generatedAt, clock.now());
        const secret = await readSecretFromStdin('Client Secret');
        // Relative to the working directory by default: always said, as an absolute path.
        const keyFile = resolveMasterKeyPath(config.masterKeyFile);
        return withOrm(config, async (orm) => {
          const sealing = await sealingKeyFor(orm.em.fork(), keyFile, { masterKeyLost: opts.masterKeyLost, actor: cliActor(), now: clock.now() });
          const status = await setCredentials({ em: orm.em.fork(), box: sealing.box, clock }, { clientId: opts.clientId, clientSecret: secret, actor: cliActor(), generatedAt });
          say(`Client ID ${status.clientId} and its secret stored, sealed with master key ${sealing.box.currentKeyId} of ${keyFile}${sealing.created ? ' (a new key file, created now: back it up with the database)' : ''}`);
          for (const s of sealing.unreadable) {
            if (s.purpose === SECRET_PURPOSE) say(`note: the Client Secret stored before was sealed under master key ${SecretBox.keyIdOf(s.sealed) ?? '?'}, which ${keyFile} does not hold (${s.code}); it is replaced`);
            else say(`warning: ${s.what} cannot be opened with this key (${s.code}): connector users totp-disable LOGIN, then users totp-enroll LOGIN`);
          }
          return 0;
        });
      }),
    );
  credentials
    .command('rotate')
    .description('store a regenerated Client Secret (Internet-banking 2.1.1-2.1.2); both clocks restart')
    .option('--secret-stdin', 'read the new Client Secret from standard input (required)')
    .option('--client-id <id>', 'the new Client ID, when the bank issued one with the new secret')
    .option('--generated-at <date>', GENERATED_AT_HELP)
    .action(
      runAction(async (opts: { secretStdin?: boolean; clientId?: string; generatedAt?: string }) => {
        if (!opts.secretStdin) throw new UsageError('give the new Client Secret on standard input with --secret-stdin (never on the command line)');
        const config = loadConfig();
        const generatedAt = generatedAtOf(opts.generatedAt, clockFromConfig(config).now());
        const secret = await readSecretFromStdin('Client Secret');
        return withOrm(config, async (orm) => {
          // Nothing stored: say so first (`set` stores a first pair), not that a key file is missing.
          if (!(await credentialStatus({ em: orm.em, clock: clockFromConfig(config) })).configured) throw new ConnectorError('CREDENTIALS_MISSING', 'no Client ID / Client Secret stored yet: store the pair with connector credentials set --client-id ID --secret-stdin');
          // The key that opens the stored secret, never a new one (MASTER_KEY_MISSING names the file).
          const box = SecretBox.open(config);
          const status = await rotateSecret({ em: orm.em.fork(), box, clock: clockFromConfig(config) }, { clientSecret: secret, clientId: opts.clientId, actor: cliActor(), generatedAt });
          say(`Client Secret of ${status.clientId} rotated, sealed with master key ${box.currentKeyId} of ${box.keyFile}; both clocks restart ${generatedAt ? `from ${status.generatedAt}` : 'today'}`);
          return 0;
        });
      }),
    );
  credentials
    .command('status')
    .description('generation date, last successful use, warnings from day 75 and at day 85; exit 1 when unusable')
    .option('--json', 'one JSON document')
    .action(
      runAction(async (opts: { json?: boolean }) => {
        const config = loadConfig();
        return withOrm(config, async (orm) => {
          const status = await credentialStatus({ em: orm.em.fork(), clock: clockFromConfig(config), masterKeyFile: resolveMasterKeyPath(config.masterKeyFile) });
          if (opts.json) printJson(status);
          else process.stdout.write(`${statusLines(status)}\n`);
          for (const w of status.warnings) say(`${w.level.toUpperCase()} ${w.code}: ${w.message}`);
          return status.usable ? 0 : 1;
        });
      }),
    );

  program
    .command('vault')
    .description('the master key that encrypts the vault')
    .command('rotate-key')
    .description('new master key; re-encrypts the Client Secret and TOTP seeds, then drops the old key')
    .action(
      runAction(async () => {
        const config = loadConfig();
        return withOrm(config, async (orm) => {
          const result = await rotateMasterKey({ em: orm.em.fork(), clock: clockFromConfig(config), config }, cliActor());
          say(`master key rotated to ${result.keyId}; ${result.resealed} secret(s) re-encrypted`);
          return 0;
        });
      }),
    );

  program
    .command('audit')
    .description('the tamper-evident audit log')
    .command('verify')
    .description('exit 0 when the hash chain is intact; 1 naming the first modified, missing or reordered record')
    .option('--json', 'one JSON document')
    .option('--anchor <archive-dir>', 'also check that the last audit record of an exported archive is still there, unchanged (detects a cut-off tail)')
    .action(
      runAction(async (opts: { json?: boolean; anchor?: string }) =>
        withOrm(loadConfig(), async (orm) => {
          const result = await verifyAudit(orm.em.fork());
          const anchor = opts.anchor ? await checkAuditAnchor(orm.em.fork(), opts.anchor) : undefined;
          if (opts.json) printJson({ ...result, ...(anchor ? { anchor } : {}) });
          const restore = 'the audit log was altered: treat it as an incident (connector lockdown) and restore from backup';
          if (!result.ok) throw new ConnectorError(`AUDIT_${result.problem!.kind.toUpperCase()}`, `${result.problem!.message}; ${restore}`);
          if (anchor && !anchor.ok) throw new ConnectorError('AUDIT_ANCHOR_MISMATCH', `${anchor.message}; ${restore}`);
          say(`audit log intact: ${result.records} record(s)${anchor ? `; ${anchor.message}` : ''}`);
          return 0;
        }),
      ),
    );

  program
    .command('archive')
    .description('the archive of payment documents and statements (R-26)')
    .command('export')
    .description('write orders, signatures, statements and the audit log as JSON lines with a SHA-256 manifest, all from one snapshot of the database, in constant memory')
    .requiredOption('--out <dir>', 'a new or empty directory')
    .action(
      runAction(async (opts: { out: string }) =>
        withOrm(loadConfig(), async (orm) => {
          const manifest = await exportArchive(orm.em.fork(), opts.out, systemClock.now(), {
            actor: cliActor(),
            onProgress: (p) => {
              if (!p.done) say(`${p.table}: ${p.rows} row(s) so far...`);
            },
          });
          for (const f of manifest.files) say(`${f.file}: ${f.rows} row(s), sha256 ${f.sha256}`);
          say(`archive written to ${opts.out} (manifest.json)`);
          return 0;
        }),
      ),
    );
}
