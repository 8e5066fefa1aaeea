import type { Command } from 'commander';
import { runDoctor, type CheckResult, type ExtraCheck } from '../../doctor/doctor.checks';
import { SmtpMailer } from '../../../adapters/mail/smtp.mailer';
import { runAction } from '../run-action';
import { printJson, table } from '../output';

/**
 * The admins' mail server (lockdown.notify.smtp), when e-mails are configured: connects, upgrades to
 * TLS and logs in as a lockdown's e-mail would, without sending anything. A component check.
 */
export const checkSmtp: ExtraCheck = async (config, strict, timeoutMs) => {
  const { emails, smtp } = config.lockdown.notify;
  if (emails.length === 0 && !smtp) return null;
  const failed = (detail: string, hint: string): CheckResult => ({ name: 'smtp', core: strict, verdict: strict ? 'FAIL' : 'WARN', detail, hint });
  if (!smtp) return failed(`${emails.length} admin e-mail(s) in lockdown.notify.emails, no lockdown.notify.smtp`, 'configure lockdown.notify.smtp, or admins get no e-mail when the connector locks down');
  if (emails.length === 0) return failed(`lockdown.notify.smtp ${smtp.host}:${smtp.port} is set, no lockdown.notify.emails`, 'list the admins in lockdown.notify.emails');
  const verified = await new SmtpMailer({ ...smtp, timeoutMs: Math.min(smtp.timeoutMs, timeoutMs) }, emails).verify();
  if (!verified.ok) return failed(verified.error, 'check lockdown.notify.smtp (host, port, security, user, passwordFile, caFile) and the network to the mail server');
  return { name: 'smtp', core: false, verdict: 'OK', detail: `${smtp.host}:${smtp.port} (${smtp.security}${smtp.user ? `, login ${smtp.user}` : ''}) accepts us; ${emails.length} admin(s)` };
};

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check config, Redis, PostgreSQL, migrations, clock skew and disk (exit 1 if a core check fails); bank, signer agent and the mail server for admin alerts are WARN unless --strict')
    .option('--json', 'one JSON document')
    .option('--strict', 'an unreachable bank, signer agent or mail server fails too')
    .action(
      runAction(async (opts: { json?: boolean; strict?: boolean }) => {
        const report = await runDoctor({ strict: opts.strict, extra: [checkSmtp] });
        if (opts.json) {
          printJson(report);
        } else {
          process.stdout.write(`${table(report.checks.map((c) => [c.verdict, c.name, c.detail, c.hint ?? '']), ['VERDICT', 'CHECK', 'DETAIL', 'HINT'])}\n`);
          process.stdout.write(report.ok ? 'doctor: all core checks passed\n' : 'doctor: a core check FAILED (see hints)\n');
        }
        return report.ok ? 0 : 1;
      }),
    );
}
