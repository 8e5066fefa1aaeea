import { readSigningSecret } from '../connector/shared/secret-file';
import type { Queue } from 'bullmq';
import type { Logger } from 'pino';
import type { ConnectorConfig } from '../config/config.schema';
import { clockFromConfig, type Clock } from '../connector/shared/clock';
import type { JobContext } from './job-context';
import { QueueSet, redisConnection } from './queue.factory';
import { validateOrderJob } from './jobs/validate-order.job';
import { submitOrderJob } from './jobs/submit-order.job';
import { SignerAgentClient } from '../signer-agent/agent/signer-agent.client';
import { WebhookClient } from '../adapters/erp/http/webhook.client';
import { SmtpMailer } from '../adapters/mail/smtp.mailer';
import { lockdownNoticeText } from '../connector/lockdown/lockdown.notice';
import { markIncidentsAlerted } from '../connector/incidents/incident.alerts';
import {
  engageLockdown,
  engageLockdownWithoutRecord,
  resolveLockdown,
  lockdownStatus,
  escalateReconciliationFindings,
  retryKeyWipe,
  type EngageResult,
  type LockdownDeps,
  type LockdownTrigger,
  type ResolveInput,
  type ResolveResult,
  type LockdownStatusView,
  type UnrecordedLockdown,
} from '../connector/lockdown/lockdown.service';
import { isLockedDown as flagCheck, isLockdownMirrored } from '../connector/lockdown/lockdown.flag';
import type { LockdownAgentPort, LockdownNotice, LockdownPorts, LockdownQueuePort } from '../connector/lockdown/lockdown.ports';
import { recordSecurityEvent, type SecurityEvent } from '../connector/lockdown/brute-force.detector';
import { sessionStoreFor } from '../connector/users/session.store';
import { signerAgentPortFromConfig } from '../connector/users/signer-agent.port';
import { blockUser } from '../connector/users/user.service';

/**
 * The lockdown's ports on BullMQ, the signer agent, Redis sessions and the admins' webhook, built
 * from any JobContext (a job, the API, the CLI, a test). Other code calls `triggerLockdown` and
 * `isLockedDown` from here (e.g. reconciliation on an unexplained debit).
 */
const portsCache = new WeakMap<object, LockdownPorts>();

/** Removes a finished job with the id a re-queue needs (a failed one is kept 7 days and would swallow the add, LESSONS.md 11). */
async function clearFinished(queue: Queue, jobId: string): Promise<void> {
  const job = await queue.getJob(jobId);
  if (!job) return;
  const state = await job.getState();
  if (state === 'failed' || state === 'completed') await job.remove().catch(() => undefined);
}

/** The queues' part of the lockdown: BullMQ's own pause and resume of every queue, and the re-queues after resolution. */
function queuePortFor(queues: QueueSet): LockdownQueuePort {
  return {
    async pauseAll() {
      const all = queues.all();
      await Promise.all(all.map((q) => q.pause()));
      return all.map((q) => q.name);
    },
    async resumeAll() {
      const all = queues.all();
      await Promise.all(all.map((q) => q.resume()));
      return all.map((q) => q.name);
    },
    async requeueValidate(orderIds) {
      const queue = queues.get(validateOrderJob.queue);
      for (const orderId of orderIds) await clearFinished(queue, validateOrderJob.jobId({ orderId }));
      for (let i = 0; i < orderIds.length; i += 500) await queues.addBulk(validateOrderJob, orderIds.slice(i, i + 500).map((orderId) => ({ orderId })));
    },
    async requeueSubmit(orderIds) {
      const queue = queues.get(submitOrderJob.queue);
      for (const orderId of orderIds) await clearFinished(queue, submitOrderJob.jobId({ orderId }));
      await queues.addBulk(submitOrderJob, orderIds.map((orderId) => ({ orderId })));
    },
  };
}

/** The signer agent's part: wipe every unlocked key. */
function agentPortFor(config: ConnectorConfig): LockdownAgentPort {
  let agent: SignerAgentClient | undefined;
  // Its own client with a short timeout: the lock never waits 30 s for a hung agent.
  const agentClient = () => (agent ??= new SignerAgentClient({ url: config.signer.url, tokenFile: config.signer.tokenFile, timeoutMs: config.lockdown.agentTimeoutMs }));
  return {
    async wipeAll(reason) {
      const answer = await agentClient().lockdown(reason.slice(0, 200));
      return { wipedUsers: answer.wipedUsers };
    },
  };
}

export function lockdownPortsFor(context: JobContext): LockdownPorts {
  const cached = portsCache.get(context);
  if (cached) return cached;
  const config = context.config;
  const redis = context.queues.connection;
  const sessions = sessionStoreFor({ redis, config });
  const ports: LockdownPorts = {
    queues: queuePortFor(context.queues),
    agent: agentPortFor(config),
    sessions: {
      endAll: () => sessions.destroyAll(),
      async blockUser(login, reason) {
        const result = await blockUser(
          { em: context.orm.em.fork(), clock: context.clock, config, logger: context.logger, sessions, signerAgent: signerAgentPortFromConfig(config) },
          { login, actor: 'system:lockdown', reason },
        );
        return { sessionsEnded: result.sessionsEnded, warnings: result.warnings };
      },
    },
    notifier: {
      // Every configured channel at once; each one not delivered is a warning of its own.
      async notify(notice: LockdownNotice) {
        const outcomes = await Promise.all([notifyByWebhook(context, notice), notifyByEmail(context, notice)]);
        return { delivered: outcomes.flatMap((o) => o.delivered), warnings: outcomes.flatMap((o) => o.warnings) };
      },
    },
  };
  portsCache.set(context, ports);
  return ports;
}

type NoticeOutcome = { delivered: string[]; warnings: string[] };

/** The admins' webhook (`lockdown.notify.webhookUrl`), signed like the ERP webhooks. */
async function notifyByWebhook(context: JobContext, notice: LockdownNotice): Promise<NoticeOutcome> {
  const { config } = context;
  const cfg = config.lockdown.notify;
  if (!cfg.webhookUrl) return { delivered: [], warnings: [] };
  const secretFile = cfg.webhookSecretFile ?? config.webhooks.secretFile;
  if (!secretFile) return { delivered: [], warnings: ['lockdown.notify.webhookUrl is set but no secret file (lockdown.notify.webhookSecretFile): admins were not alerted by webhook'] };
  // An empty secret (a `touch`ed file, the default webhooks.secretFile left empty) signed the notice
  // with a key anyone can compute, and a loose file lets anyone on the machine sign: either way a
  // forged "lockdown resolved" would look like ours. Not sent; the operator is told which key and file.
  const key = cfg.webhookSecretFile ? 'lockdown.notify.webhookSecretFile' : 'webhooks.secretFile (lockdown.notify.webhookSecretFile unset)';
  const read = readSigningSecret(secretFile, key);
  if ('problem' in read) return { delivered: [], warnings: [`admins were not alerted by webhook: ${read.problem}`] };
  const sent = await new WebhookClient(cfg.webhookUrl, read.secret, cfg.timeoutMs).post(JSON.stringify(notice), context.clock.now());
  return sent.ok ? { delivered: ['webhook'], warnings: [] } : { delivered: [], warnings: [`admins' webhook not delivered (${sent.error ?? 'error'})`] };
}

/** The admins' e-mail (`lockdown.notify.emails` through `lockdown.notify.smtp`). */
async function notifyByEmail(context: JobContext, notice: LockdownNotice): Promise<NoticeOutcome> {
  const { emails, smtp } = context.config.lockdown.notify;
  if (emails.length === 0) return { delivered: [], warnings: [] };
  if (!smtp) return { delivered: [], warnings: [`lockdown.notify.emails is set but lockdown.notify.smtp is not: no e-mail was sent to the ${emails.length} admin(s); call them`] };
  const sent = await new SmtpMailer(smtp, emails).send(lockdownNoticeText(notice));
  if (!sent.ok) {
    context.logger.error({ event: 'lockdown.email.failed', notice: notice.event, incidentId: notice.incidentId, err: sent.error });
    return { delivered: [], warnings: [`admins' e-mail not sent (${sent.error}); call them`] };
  }
  // Told: the incident digest (queue/incident-alerts.ts) does not mail it again; had this failed, it would.
  if (notice.event !== 'lockdown.resolved') {
    await markIncidentsAlerted(context.orm.em.fork(), [notice.incidentId], context.clock.now()).catch((err: Error) =>
      context.logger.warn({ event: 'lockdown.email.mark_failed', incidentId: notice.incidentId, err: err.message }),
    );
  }
  return {
    delivered: [`e-mail to ${sent.accepted.join(', ')}`],
    warnings: sent.rejected.length ? [`the mail server refused the admins' address(es) ${sent.rejected.join(', ')}`] : [],
  };
}

export function lockdownDepsFor(context: JobContext, ports: LockdownPorts = lockdownPortsFor(context)): LockdownDeps {
  return { em: context.orm.em.fork(), redis: context.queues.connection, config: context.config, clock: context.clock, logger: context.logger, ports };
}

/**
 * Engages the lockdown (or raises an alert when the trigger is configured `alert`). The one entry
 * for every trigger: reports (API/CLI), the bank's answers, certificate checks, reconciliation
 * (`unexplained_debit`, `execution_mismatch`), brute force. Idempotent; never throws for a part
 * it cannot reach (those come back as warnings).
 */
export async function triggerLockdown(
  context: JobContext,
  input: { trigger: LockdownTrigger; reason: string; scope?: string; evidence?: Record<string, unknown>; actor?: string },
): Promise<EngageResult> {
  return engageLockdown(lockdownDepsFor(context), { ...input, actor: input.actor ?? `system:${input.trigger}` });
}

/**
 * `connector lockdown on` when PostgreSQL cannot be opened (`cause`): the flag, the queues paused and
 * the keys wiped (and every session ended, scopes all/credentials) on connections of its own, then
 * the account of what held and what `lockdown on` must still do once PostgreSQL answers.
 */
export async function lockdownWithoutDatabase(
  options: { config: ConnectorConfig; logger: Logger; clock?: Clock },
  input: { trigger: LockdownTrigger; reason: string; scope?: string; actor: string },
  cause: unknown,
): Promise<UnrecordedLockdown> {
  const { config, logger } = options;
  // A producer's connection: a command gives up after a few tries instead of waiting for Redis for good.
  const redis = redisConnection(config, 'producer');
  redis.on('error', (err) => logger.warn({ event: 'redis.error', err: err.message }));
  const queues = new QueueSet(config, redis, (queue, err) => logger.warn({ event: 'queue.error', queue, err: err.message }));
  const sessions = sessionStoreFor({ redis, config });
  try {
    return await engageLockdownWithoutRecord(
      { redis, config, clock: options.clock ?? clockFromConfig(config), logger, ports: { queues: queuePortFor(queues), agent: agentPortFor(config), sessions: { endAll: () => sessions.destroyAll() } } },
      input,
      cause,
    );
  } finally {
    await queues.close().catch(() => undefined);
    redis.disconnect();
  }
}

/** The check every worker makes before a side effect (Redis flag, then PostgreSQL). */
export function isLockedDown(context: JobContext): Promise<boolean> {
  return flagCheck({ em: context.orm.em.fork(), redis: context.queues.connection, prefix: context.config.redis.prefix });
}

/** The Redis mirror only, for a caller whose next statement reads the recorded flag itself (`LOCKDOWN_RECORDED_SQL`). */
export function isLockedDownInRedis(context: JobContext): Promise<boolean> {
  return isLockdownMirrored({ redis: context.queues.connection, prefix: context.config.redis.prefix });
}

export function lockdownStatusOf(context: JobContext): Promise<LockdownStatusView> {
  return lockdownStatus({ em: context.orm.em.fork(), redis: context.queues.connection, prefix: context.config.redis.prefix });
}

export function resolveLockdownIn(context: JobContext, input: ResolveInput): Promise<ResolveResult> {
  return resolveLockdown(lockdownDepsFor(context), input);
}

/**
 * Brute force (issue 16): called where the users code records a lock-out or a login attempt on a
 * disabled account. Never fails the login it observes.
 */
export async function reportSecurityEvent(context: JobContext, event: SecurityEvent): Promise<EngageResult | null> {
  try {
    const verdict = await recordSecurityEvent(context.queues.connection, context.config, event);
    if (!verdict.trip) return null;
    const what = event.kind === 'lockout' ? `${verdict.count} different logins locked out` : `${verdict.count} login attempts on disabled accounts`;
    return await triggerLockdown(context, {
      trigger: 'brute_force',
      reason: `brute force suspected: ${what} within ${verdict.windowMinutes} minutes`,
      // Every user's sessions and keys; not the Client Secret (lockdown.service.ts, LockdownScope).
      scope: 'users',
      evidence: { kind: event.kind, logins: verdict.logins, count: verdict.count, threshold: verdict.threshold, windowMinutes: verdict.windowMinutes, lastIp: event.ip ?? null },
      actor: 'system:auth',
    });
  } catch (err) {
    context.logger.error({ event: 'lockdown.brute_force.check_failed', err: (err as Error).message });
    return null;
  }
}

/** The maintenance sweep's escalation of reconciliation findings (escalateReconciliationFindings). */
export async function escalateReconciliationIncidents(context: JobContext): Promise<number> {
  return escalateReconciliationFindings(lockdownDepsFor(context));
}

/** The scheduler's retry of a lockdown's key wipe that did not reach the signer agent (retryKeyWipe). */
export function retryLockdownKeyWipe(context: JobContext): Promise<'none' | 'wiped' | 'failed'> {
  return retryKeyWipe(lockdownDepsFor(context));
}
