import type { Command } from 'commander';
import { runDoctor, type CheckResult, type ExtraCheck } from '../../doctor/doctor.checks';
import { SmtpMailer } from '../../../adapters/mail/smtp.mailer';
import { runAction } from '../run-action';
import { Queue } from 'bullmq';
import { probeRedis } from '../../shared/redis-probe';
import { withTimeout } from '../../shared/timeout';
import { schedulerLeaderKey } from '../../../queue/scheduler.runner';
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

/**
 * The processes PM2 runs, as Redis sees them: a worker serving the submit queue (BullMQ's named
 * connections) and a scheduler holding its leader lease. Stopped, or not started again after a
 * reboot, orders wait unsent and statements, sweeps and alerts stop while every service they need
 * is up. WARN (FAIL with --strict); nothing when Redis cannot be reached (its own check says so).
 */
export const checkProcesses: ExtraCheck = async (config, strict, timeoutMs) => {
  const down = (name: string, detail: string): CheckResult => ({
    name,
    core: strict,
    verdict: strict ? 'FAIL' : 'WARN',
    detail,
    hint: 'start them: pm2 start ecosystem.config.js, then pm2 save (and pm2 startup once, so they start at boot)',
  });
  const redis = probeRedis(config.redis.url, Math.min(3_000, timeoutMs));
  let queue: Queue | undefined;
  try {
    // A Redis that takes the connection and never answers: null, Redis's own check says what is wrong.
    await withTimeout(redis.connect(), Math.min(3_000, timeoutMs), 'Redis');
    queue = new Queue('submit', { connection: redis, prefix: config.redis.prefix });
    const [workers, lease] = await Promise.all([queue.getWorkersCount(), redis.pttl(schedulerLeaderKey(config.redis.prefix))]);
    return [
      workers > 0
        ? { name: 'workers', core: false, verdict: 'OK', detail: `${workers} worker connection(s) serve the submit queue` }
        : down('workers', 'no worker process serves the queues: orders are taken in but not validated, signed or sent'),
      lease > 0
        ? { name: 'scheduler', core: false, verdict: 'OK', detail: 'a scheduler holds the leader lease' }
        : down('scheduler', 'no scheduler holds the leader lease: no statements, sweeps, 1C outbox scans or incident e-mails'),
    ];
  } catch {
    return null;
  } finally {
    await queue?.close().catch(() => undefined);
    redis.disconnect();
  }
};

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check config, Redis, PostgreSQL, migrations, clock skew and disk (exit 1 if a core check fails); bank, signer agent and the mail server for admin alerts are WARN unless --strict')
    .option('--json', 'one JSON document')
    .option('--strict', 'an unreachable bank, signer agent or mail server fails too')
    .action(
      runAction(async (opts: { json?: boolean; strict?: boolean }) => {
        const report = await runDoctor({ strict: opts.strict, extra: [checkSmtp, checkProcesses] });
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
