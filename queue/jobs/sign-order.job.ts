import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { openIncident } from '../../connector/incidents/incident.service';
import { ConnectorError } from '../../connector/shared/errors';
import { waitAndRetry } from './pipeline.helpers';
import { recordAwaitingReasons, signWithMandates, type MandateOutcome } from '../order-signing';
import { isLockedDown, isLockedDownInRedis } from '../lockdown.trigger';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';
import { perContext, pipelineStageBatcher } from '../stage-batcher';

export const signOrderJob = defineJob({
  name: 'order.sign',
  queue: 'sign',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `sign-${p.orderId}`,
});

/** The signer agent itself cannot sign now (not running, not answering, stopping, no signing worker, no token to reach it with). */
const AGENT_NOT_READY = new Set(['SIGNER_UNAVAILABLE', 'SIGNER_UNREACHABLE', 'SIGNER_TIMEOUT', 'SHUTTING_DOWN', 'SIGNER_TOKEN_MISSING', 'SIGNER_TOKEN_UNREADABLE', 'SIGNER_NOT_AUTHENTIC']);
/** This signer's key cannot sign now. */
const KEY_NOT_READY = new Set(['KEY_LOCKED', 'NOT_ENROLLED', 'UNLOCK_IN_PROGRESS']);

/** Answers (or failures to reach the agent) that mean "this signer cannot sign right now": wait, do not fail the order. */
function notReadyCode(err: Error): string | undefined {
  const code = err instanceof ConnectorError ? err.code : undefined;
  return code && (AGENT_NOT_READY.has(code) || KEY_NOT_READY.has(code)) ? code : undefined;
}

/**
 * Why a mandated order waits, in its `last error` (`connector orders list/show`, the API's
 * `lastError`): what failed, where, and what the operator does about it. Cleared when the order
 * is signed, or when it waits for nothing the agent could do.
 */
export function agentWaitReason(context: Pick<JobContext, 'config'>, code: string, login: string, err: Error): string {
  const url = context.config.signer.url;
  const waits = 'the order waits in awaiting_signatures and is signed as soon as the agent can sign';
  if (KEY_NOT_READY.has(code)) {
    const todo = code === 'NOT_ENROLLED' ? `enroll it (connector users enroll-key ${login} --keystore PATH), then have ${login} unlock it` : `${login} unlocks it (POST /api/v1/me/key/unlock)`;
    return `${code}: the signer agent at ${url} cannot sign with the key of ${login} (${err.message}); ${todo}; ${waits}`;
  }
  const what = code === 'SIGNER_UNREACHABLE' || code === 'SIGNER_TIMEOUT' ? 'could not be reached' : 'cannot sign';
  return `${code}: the signer agent at ${url} ${what} (${err.message}); start it (connector signer-agent; under PM2 connector-signer-agent) and have the signers unlock their keys (POST /api/v1/me/key/unlock); ${waits}`;
}

/** How often a worker process repeats its warning that the agent cannot sign (the orders' last error says it all along). */
export const AGENT_WARN_EVERY_MS = 60_000;

/** The id of the job that looks again now and then at an order waiting for people (see handleSignOrder). */
export function idleLookJobId(orderId: string): string {
  return `sign-${orderId}-idle`;
}

/** How often an order that waits for people (no mandate covers it) is looked at again: 5 sweeper bounds, 10 min by default. */
export function unattendedLookMs(context: Pick<JobContext, 'config'>): number {
  return Math.max(context.config.signing.pollEveryMs, 5 * context.config.sweeper.staleAfterMs);
}

/** Stage 3 for a batch of orders (queue/stage-batcher.ts); see `signWithMandates`. */
export async function signBatch(context: JobContext, orderIds: string[]): Promise<Array<MandateOutcome | Error>> {
  // Issue 16: no signature is applied under lockdown; the orders wait as `held`.
  if (await isLockedDown(context)) {
    const held = await holdPendingOrders(context.orm.em.fork(), 'worker', 'lockdown in force', context.clock.now(), orderIds, { lockedInRedis: () => isLockedDownInRedis(context) });
    // null: resolved while this waited for the resolve; they go on now.
    if (held) return orderIds.map((id) => ({ state: held.includes(id) ? 'held' : 'past-signing', lockdown: true }));
  }
  const notReady = new Map<string, { code: string; login: string; err: Error }>();
  const outcomes = await signWithMandates(context, orderIds, (orderId, login, err) => {
    const code = notReadyCode(err);
    if (code) {
      notReady.set(orderId, { code, login, err });
      return;
    }
    // A certificate that is expired, revoked or not the payer's: another candidate may still sign.
    // Not the login (R-4): the audit log and the order's signatures say who. Nor a person's IIN (the
    // agent's IDENTITY_MISMATCH names the certificate's and the expected one): its last 4 digits.
    context.logger.warn({ event: 'order.sign.refused', orderId, code: (err as { code?: string }).code, err: maskIins(err.message) });
  });
  // Every order of the batch still waiting gets the agent's reason, or none when it waits for
  // people only (or a mandate signed meanwhile): the last error says why it waits now.
  const reasons = new Map<string, string | null>();
  for (const id of orderIds) {
    if ((outcomes.get(id) as { state?: string } | undefined)?.state !== 'awaiting_signatures') continue;
    const why = notReady.get(id);
    reasons.set(id, why ? agentWaitReason(context, why.code, why.login, why.err) : null);
  }
  await recordAwaitingReasons(context, reasons);
  const impostor = [...notReady.values()].find((wait) => wait.code === 'SIGNER_NOT_AUTHENTIC');
  // Best effort: the orders' reasons are recorded; a failure here is told, not the batch's.
  if (impostor) await signerNotAuthentic(context, impostor.err).catch((e: Error) => context.logger.error({ event: 'order.sign.agent_not_authentic_incident_error', err: e.message }));
  warnAgentNotReady(context, [...notReady.entries()].filter(([id]) => reasons.has(id)).map(([orderId, why]) => ({ orderId, ...why })));
  return orderIds.map((id) => outcomes.get(id) as MandateOutcome | Error);
}

/**
 * What answers at the agent's address did not prove that it holds the signer token (the client sent
 * it nothing): another process holds the address (a local account listening while the agent was
 * down, to collect the token and keystore passwords) or the agent runs with another token file. Not
 * a wait like any other: one open incident says so (a person looks; `connector doctor` tells the two
 * apart), however many orders and polls meet it.
 */
async function signerNotAuthentic(context: JobContext, err: Error): Promise<void> {
  const url = context.config.signer.url;
  const { incident, created } = await openIncident(context.orm.em.fork(), {
    kind: 'signer_not_authentic',
    severity: 'high',
    title:
      `What answers at the signer agent's address ${url} did not prove that it holds the signer token; nothing was sent to it and orders wait for signatures. ` +
      'Another process holds the address (a local account listening while the agent was down?), or the agent runs with another token file than the connector reads (connector doctor: signer-agent)',
    evidence: { signerUrl: url, code: 'SIGNER_NOT_AUTHENTIC', tokenFile: context.config.signer.tokenFile, error: err.message.slice(0, 300) },
    dedupeKey: `signer_not_authentic:${url}`,
    actor: 'worker',
    now: context.clock.now(),
    onRepeat: 'ignore',
  });
  if (created) context.logger.error({ event: 'order.sign.agent_not_authentic', alert: true, signerUrl: url, incidentId: incident.id }, 'order.sign.agent_not_authentic');
}

/**
 * One warning line per reason at most every AGENT_WARN_EVERY_MS per process, however many orders
 * and polls hit it (a poll every `signing.pollEveryMs` per order would flood the log); `orders`
 * counts the orders that waited for it since the last line.
 */
function warnAgentNotReady(context: JobContext, waits: Array<{ orderId: string; code: string; login: string; err: Error }>): void {
  if (waits.length === 0) return;
  const warned = perContext(context, 'sign.agentNotReady', () => new Map<string, { at: number; orders: Set<string> }>());
  const now = context.clock.now().getTime();
  // The agent's own trouble is one reason; a locked key is one reason per signer.
  const byReason = new Map<string, typeof waits>();
  for (const wait of waits) {
    const reason = KEY_NOT_READY.has(wait.code) ? `${wait.code}:${wait.login}` : wait.code;
    byReason.set(reason, [...(byReason.get(reason) ?? []), wait]);
  }
  for (const [reason, group] of byReason) {
    const seen = warned.get(reason) ?? { at: -Infinity, orders: new Set<string>() };
    for (const wait of group) seen.orders.add(wait.orderId);
    warned.set(reason, seen);
    if (now - seen.at < AGENT_WARN_EVERY_MS) continue;
    const [first] = group;
    context.logger.warn({
      event: 'order.sign.agent_not_ready',
      code: first.code,
      signerUrl: context.config.signer.url,
      orders: seen.orders.size,
      exampleOrderId: first.orderId,
      err: first.err.message,
      // Not the login (R-4: never logged): the order's last error, which `orders show` prints, names the signer.
      hint: `${agentWaitReason(context, first.code, 'its signer', first.err).replace(/^[A-Z_]+: /, '')}${KEY_NOT_READY.has(first.code) ? `; connector orders show ${first.orderId} names the signer` : ''}`,
    });
    warned.set(reason, { at: now, orders: new Set() });
  }
}

/**
 * Stage 3 (DESIGN.md). Users with a standing mandate (config `signing.mandates`, off by default)
 * sign with their key unlocked in the agent; everyone else signs through
 * `POST /api/v1/orders/:id/sign`. While a level is missing the order waits in
 * `awaiting_signatures` and this job looks again every `signing.pollEveryMs` (a key may have been
 * unlocked meanwhile).
 */
export const handleSignOrder: JobHandler<typeof signOrderJob.payload> = async (payload, context, job) => {
  const batcher = pipelineStageBatcher<string, MandateOutcome>(context, 'sign', (ids) => signBatch(context, ids));
  const outcome = await batcher.run(payload.orderId);
  if (outcome.state !== 'awaiting_signatures') return outcome;
  // No standing mandate covers it: the order waits for people (POST /api/v1/orders/:id/sign), whose
  // last signature moves it on. A job of its own looks again now and then (a mandate may be
  // configured meanwhile); the sweeper finds it delayed and leaves the order alone instead of
  // running the stage every sweep for as long as nobody signs. Its own id keeps the stage's
  // `sign-<id>` free: an order sent back to this stage (R-17, a lockdown resolved) is looked at at once.
  if (!outcome.mandated) {
    const idleId = idleLookJobId(payload.orderId);
    if (job.id === idleId) return waitAndRetry(job, unattendedLookMs(context), { missing: outcome.missing });
    await context.queues.addUnlessPending(signOrderJob, payload, { jobId: idleId, delay: unattendedLookMs(context) });
    return { state: 'awaiting_signatures', missing: outcome.missing };
  }
  return waitAndRetry(job, context.config.signing.pollEveryMs, { missing: outcome.missing });
};

/** A text with every IIN/BIN (12 digits) cut to its last 4: enough to tell two apart in a log, not to name a person. */
export function maskIins(text: string): string {
  return text.replace(/(?<!\d)\d{8}(\d{4})(?!\d)/g, '********$1');
}
