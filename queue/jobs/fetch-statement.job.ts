import { createHash } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { kzCalendarFromConfig, type KzBusinessCalendar } from '../../connector/calendar/kz-business-calendar';
import { kzToday, scheduledRanges, statementAccounts } from '../../connector/statements/statement.schedule';
import { reportUnfollowedAccounts } from '../../connector/statements/unfollowed-accounts';
import { fetchAndReconcileStatement, type FetchReconcileResult, type StatementSource } from '../../connector/statements/statement.service';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { testPausePoint } from '../test-hooks';
import { credentialsRefused, credentialsUnavailableIncident, lockdownOnRefusalCode, retryAfterWait, waitAndRetry } from './pipeline.helpers';
import { openIncident, resolveIncidentsByKey } from '../../connector/incidents/incident.service';
import { enqueueWriteBack } from './write-back.job';

/**
 * Stage 5 (issue 15): statements by date range per account (LESSONS.md 8), stored, checked,
 * reconciled (connector/statements). The scheduler enqueues one `statements.fetch` per account
 * for today (intraday) and for the closed previous business day(s).
 */
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected YYYY-MM-DD');

/**
 * An account as a job names it: no account number in Redis (STYLE.md 4), a digest of it that the
 * handler resolves against the accounts it follows (`statementAccounts`).
 */
export function accountRefOf(iban: string): string {
  return createHash('sha256').update(`statement-account:${iban}`).digest('hex').slice(0, 24);
}

export const fetchStatementJob = defineJob({
  name: 'statements.fetch',
  queue: 'statements',
  payload: z
    .object({ accountRef: z.string().regex(/^[0-9a-f]{24}$/, 'expected an account reference (accountRefOf)'), from: isoDate, to: isoDate, kind: z.enum(['intraday', 'closed']) })
    .strict()
    .refine((p) => p.from <= p.to, 'from must not be after to'),
  // No ":" in BullMQ ids (LESSONS.md 11); the id only saves a redundant fetch of the same range.
  jobId: (p) => `statement-${p.accountRef}-${p.from}-${p.to}-${p.kind}`,
});

export const scheduleStatementsJob = defineJob({
  name: 'statements.schedule',
  queue: 'statements',
  payload: z.object({}).passthrough(),
  jobId: () => 'statements-schedule',
});

/** What the statements stage needs beyond a JobContext: a bank to ask (tests and the demo may give one). */
export type StatementsContext = JobContext & { statementSource?: StatementSource };

const calendars = new WeakMap<object, KzBusinessCalendar>();

/** The bank: the process's one Business API client (context.services, R-3), unless a test or the demo gives another. */
export function statementSourceOf(context: StatementsContext): StatementSource {
  return context.statementSource ?? context.services.bank();
}

export function calendarOf(context: Pick<JobContext, 'config'>): KzBusinessCalendar {
  let calendar = calendars.get(context.config);
  if (!calendar) {
    calendar = kzCalendarFromConfig(context.config);
    calendars.set(context.config, calendar);
  }
  return calendar;
}

export interface FetchSummary {
  stored: number;
  duplicates: number;
  matched: number;
  executed: number;
  incidents: string[];
}

/**
 * Fetches, stores, checks and reconciles one account's statement for [from, to] (the demo calls
 * it directly). Safe to repeat: a second run stores nothing and changes nothing.
 */
export async function fetchAndReconcile(
  context: StatementsContext,
  account: string,
  from: string,
  to: string,
  options: { logger?: JobContext['logger'] } = {},
): Promise<FetchSummary & { result: FetchReconcileResult }> {
  const result = await fetchAndReconcileStatement(
    { em: context.orm.em.fork(), source: statementSourceOf(context), calendar: calendarOf(context), now: context.clock.now(), logger: options.logger ?? context.logger },
    account,
    from,
    to,
  );
  return { stored: result.stored, duplicates: result.duplicates, matched: result.matched, executed: result.executed, incidents: result.incidents, result };
}

export const handleFetchStatement: JobHandler<typeof fetchStatementJob.payload> = async (payload, context, job) => {
  const followed = await statementAccounts(context.orm.em.fork(), context.config.pipeline.accounts, context.clock.now());
  const account = followed.find((iban) => accountRefOf(iban) === payload.accountRef);
  if (!account) {
    // No longer followed since it was scheduled (taken out of pipeline.accounts, or its orders aged out): nothing to fetch.
    context.logger.warn({ event: 'statements.fetch.account_gone', accountRef: payload.accountRef, jobId: job.id });
    return { skipped: 'account no longer followed' };
  }
  const log = context.logger.child({ account, jobId: job.id, attempt: job.attemptsMade + 1 });
  await testPausePoint(context, 'statements.fetch');
  let summary: FetchSummary;
  try {
    summary = await fetchAndReconcile(context, account, payload.from, payload.to, { logger: log });
  } catch (err) {
    // R-24: maintenance or "slow down": come back when the bank says, without spending an attempt. A
    // maintenance longer than the backoffs would fail the job, and a failed job keeps its id for days,
    // so the schedule's next add of the same range would be ignored (today's statement not fetched again).
    if (err instanceof BankError && (err.code === 'MAINTENANCE' || err.code === 'RATE_LIMITED')) {
      return waitAndRetry(job, retryAfterWait(context, err.retryAfterMs) ?? context.config.pipeline.statementsEveryMs, err.code);
    }
    // Transient bank trouble: BullMQ backs off and retries (R-24). Anything else will not get better
    // by repeating, and is said: the bank refusing our access (an incident, the lockdown for a
    // compromise code, R-31), or an answer we cannot take (statement_unavailable: those days are
    // neither stored nor reconciled until a person looks).
    if (err instanceof BankError && !err.retryable) {
      await statementRefused(context, err, { account, from: payload.from, to: payload.to });
      throw new UnrecoverableError(`${err.code}: ${err.message}`);
    }
    // The job's last attempt failed too: the next tick asks again (R-24), but until a fetch succeeds
    // nothing of these days is stored, reconciled or passed to 1C, and that is said (statementsFailing).
    if (job.attemptsMade + 1 >= (job.opts?.attempts ?? 1)) {
      await statementsFailing(context, err, { account, from: payload.from, to: payload.to, kind: payload.kind }).catch((e: Error) =>
        log.warn({ event: 'statements.failing.incident_error', err: e.message }),
      );
    }
    throw err;
  }
  // Fetched: the incident of this account's failing fetches of this kind (if any) closes. Best
  // effort: the statement is stored either way.
  await resolveIncidentsByKey(context.orm.em.fork(), statementsFailingKey(account, payload.kind), {
    actor: 'statements',
    note: `the ${payload.kind} statement of ${account} for ${payload.from}..${payload.to} was fetched again`,
    now: context.clock.now(),
  }).catch((e: Error) => log.warn({ event: 'statements.failing.resolve_error', err: e.message }));
  // Stage 7: the statement (and any status it changed) goes back to the ERP; the hash guard makes this free when nothing changed.
  await enqueueWriteBack(context.queues, { from: payload.from, to: payload.to });
  return { stored: summary.stored, duplicates: summary.duplicates, matched: summary.matched, executed: summary.executed, incidents: summary.incidents.length };
};

/** A statement fetch the bank refused for good (see handleFetchStatement): one incident per account and period, an alert, the lockdown for a compromise code. */
async function statementRefused(context: JobContext, err: BankError, evidence: { account: string; from: string; to: string }): Promise<void> {
  if (err.code === 'AUTH' || err.code === 'CREDENTIALS_REVOKED') return credentialsRefused(context, err, { ...evidence, stage: 'statements' });
  if (err.code === 'CREDENTIALS_UNAVAILABLE') return credentialsUnavailableIncident(context, { code: err.details.providerCode ?? err.code, message: err.message });
  await lockdownOnRefusalCode(context, err, { ...evidence, stage: 'statements' });
  const incident = await openIncident(context.orm.em.fork(), {
    kind: 'statement_unavailable',
    severity: 'high',
    title: `The bank's statement of ${evidence.account} for ${evidence.from}..${evidence.to} could not be taken (${err.code}): ${err.message.slice(0, 300)}; those days are not stored nor reconciled until it can be`,
    evidence: { ...evidence, code: err.code, bankCode: err.details.bankCode, httpStatus: err.details.httpStatus },
    dedupeKey: `statement_unavailable:${evidence.account}:${evidence.from}:${evidence.to}`,
    actor: 'statements',
    onRepeat: 'ignore',
  });
  context.logger.error({ event: 'statement.unavailable', alert: true, ...evidence, code: err.code, incidentId: incident.incident.id }, 'statement.unavailable');
}

const statementsFailingKey = (account: string, kind: 'intraday' | 'closed') => `statements_failing:${account}:${kind}`;

/**
 * Every attempt of a statement fetch failed for a reason that may pass (the bank's 5xx, a timeout,
 * no connection, our own database): the schedule asks again at its next tick, and a bank that stays
 * so, or a closed day too large to arrive within `bank.statementTimeoutMs` (LESSONS.md 9), kept the
 * account's statements away for good with nothing but a warning in the worker's log. Those days are
 * not stored, reconciled nor written back: an executed order stays unconfirmed, a debit nobody
 * ordered unseen (R-27, R-29), and 1C gets no statement. One incident per account and kind (closed
 * days, today's), closed by the connector once a fetch of that kind succeeds (a later closed range
 * fetches the days missed before it: statement.service.ts, ensureContinuity).
 */
async function statementsFailing(context: JobContext, err: unknown, evidence: { account: string; from: string; to: string; kind: 'intraday' | 'closed' }): Promise<void> {
  const code = err instanceof BankError ? err.code : 'ERROR';
  const message = (err instanceof Error ? err.message : String(err)).slice(0, 300);
  const httpStatus = err instanceof BankError ? err.details.httpStatus : undefined;
  const what = evidence.kind === 'closed' ? `closed statement for ${evidence.from}..${evidence.to}` : `statement of today (${evidence.from})`;
  const incident = await openIncident(context.orm.em.fork(), {
    kind: 'statements_failing',
    severity: 'high',
    title: `The ${what} of ${evidence.account} cannot be fetched (${code}${httpStatus ? `, HTTP ${httpStatus}` : ''}: ${message}); it is asked for again at every scheduled run, but until then those days are not stored, reconciled nor passed to 1C, so a debit nobody ordered would go unseen (R-29). A timeout on a large statement: raise bank.statementTimeoutMs. This closes by itself once a fetch succeeds`,
    evidence: { ...evidence, code, httpStatus, bankCode: err instanceof BankError ? err.details.bankCode : undefined },
    dedupeKey: statementsFailingKey(evidence.account, evidence.kind),
    actor: 'statements',
    now: context.clock.now(),
    // Every scheduled run meanwhile fails again: one incident, not one timeline entry per run.
    onRepeat: 'ignore',
  });
  if (incident.created) context.logger.error({ event: 'statements.failing', alert: true, ...evidence, code, incidentId: incident.incident.id }, 'statements.failing');
}

/** The Kazakhstan day each context last compared the bank's accounts with the followed ones. */
const accountsCheckedOn = new WeakMap<object, string>();

/** The most the look at the bank's accounts may take, retries included: the schedule's job waits for it. */
const ACCOUNTS_CHECK_MS = 10_000;

/**
 * Once a day per process, after the day's statements are queued: the accounts the bank lists that
 * no statement is fetched for (connector/statements/unfollowed-accounts.ts). A bank that does not
 * answer within ACCOUNTS_CHECK_MS costs only this look, and the next tick (15 minutes later by
 * default) asks again.
 */
async function checkUnfollowedAccounts(context: StatementsContext, followed: readonly string[], now: Date): Promise<void> {
  const today = kzToday(now);
  const source = statementSourceOf(context);
  const list = source.listAccounts?.bind(source);
  if (!list || accountsCheckedOn.get(context) === today) return;
  accountsCheckedOn.set(context, today);
  const listAccounts = () => list({ signal: AbortSignal.timeout(ACCOUNTS_CHECK_MS), timeoutMs: ACCOUNTS_CHECK_MS });
  try {
    const result = await reportUnfollowedAccounts(context.orm.em.fork(), { listAccounts }, followed, { configured: context.config.pipeline.accounts.length > 0, now });
    if (result.unfollowed.length || result.resolved.length) {
      context.logger.warn({ event: 'statements.accounts_not_followed', accounts: result.unfollowed, opened: result.opened, resolved: result.resolved });
    }
  } catch (err) {
    accountsCheckedOn.delete(context);
    context.logger.warn({ event: 'statements.accounts_check_failed', err: err instanceof BankError ? `${err.code}: ${err.message}` : (err as Error).message });
  }
}

export const handleScheduleStatements: JobHandler<typeof scheduleStatementsJob.payload> = async (_payload, context) => {
  const now = context.clock.now();
  const accounts = await statementAccounts(context.orm.em.fork(), context.config.pipeline.accounts, now);
  const ranges = scheduledRanges(calendarOf(context), now);
  const payloads = accounts.flatMap((account) => ranges.map((r) => ({ accountRef: accountRefOf(account), ...r })));
  // A fetch that failed for good leaves no job behind: a failed job keeps its id (queue.factory.ts,
  // 7 days) and BullMQ ignores an add of an id it has, so an outage longer than the attempts would
  // stop this range for good (today's statement, and a closed day never fetched as closed). The
  // failure is logged (job.failed); the next tick asks again.
  await context.queues.addBulk(fetchStatementJob, payloads, { removeOnFail: true });
  // Each fetch asks for a write-back; this one also carries status changes to the ERP when no account has statements yet.
  await enqueueWriteBack(context.queues);
  context.logger.info({ event: 'statements.scheduled', accounts: accounts.length, jobs: payloads.length });
  await checkUnfollowedAccounts(context, accounts, now);
  return { accounts: accounts.length, jobs: payloads.length };
};
