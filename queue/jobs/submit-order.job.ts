import { randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { z } from 'zod';
import type { EntityManager } from '@mikro-orm/postgresql';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { PaymentOrder } from '../../connector/persistence/entities';
import { IllegalTransitionError, transitionOrder, transitionOrders } from '../../connector/orders/order-state.machine';
import { toNormalisedOrder } from '../../connector/orders/order.mapper';
import { loadDocuments, validSignaturesOf, type FrozenDocument, type StoredSignature } from '../../connector/signing/order-signatures';
import { policyAmountTiyn, requiredLevels } from '../../connector/signing/signing-policy';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { requisitesFromOrder } from '../../adapters/bank/business-api/payment-order.document';
import type { BankPaymentDocument } from '../../adapters/bank/business-api/business-api.schemas';
import { testPausePoint } from '../test-hooks';
import { trackOrderJob } from './track-order.job';
import { signOrderJob } from './sign-order.job';
import { BANK_WAIT_MAX_MS, backoffAfter, CREDENTIALS_WAIT_MS, credentialsRefused, credentialsUnavailableIncident, dropSignaturesThatNoLongerCount, lockdownOnCompromiseCode, lockdownOnRefusalCode, retryAfterWait, SignerDirectory, waitAndRetry } from './pipeline.helpers';
import { isLockedDown, isLockedDownInRedis } from '../lockdown.trigger';
import { LOCKDOWN_RECORDED_SQL } from '../../connector/lockdown/lockdown.flag';
import { holdPendingOrders } from '../../connector/lockdown/lockdown.service';
import { perContext, pipelineStageBatcher, Slots, StageBatcher, stageBatcher } from '../stage-batcher';
import type { CredentialsProblem } from '../pipeline-services';
import { enqueueWriteBack } from './write-back.job';
import { openIncident } from '../../connector/incidents/incident.service';
import { reconcileAccount } from '../../connector/statements/reconciliation';
import { kzToday } from '../../connector/statements/statement.schedule';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';

export const submitOrderJob = defineJob({
  name: 'order.submit',
  queue: 'submit',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `submit-${p.orderId}`,
});

/**
 * The stored credentials cannot be used: revoked (the bank's answer or a lockdown), or a vault the
 * master key in use cannot open (MASTER_KEY_MISSING, MASTER_KEY_MISMATCH: run from another
 * directory, a key file not restored, ...). Nothing is sent and no attempt is spent: like
 * CREDENTIALS_REVOKED, the orders wait (CREDENTIALS_WAIT_MS at a time) until an operator fixes it,
 * with the reason as each order's last error. A vault that cannot be opened is a configuration
 * error of this installation, not a bank outage: logged as such and told to the admins by an
 * incident, never retried into `failed` as TRANSIENT.
 */
async function waitForCredentials(context: JobContext, orderIds: string[], problem: CredentialsProblem): Promise<void> {
  if (orderIds.length === 0) return;
  const em = context.orm.em.fork();
  const lastError = `${problem.code}: ${problem.message}`.slice(0, 2000);
  await em.execute(
    `update payment_order set last_error = ? where id in (${orderIds.map(() => '?').join(', ')}) and state in ('signed', 'submitting') and last_error is distinct from ?`,
    [lastError, ...orderIds, lastError],
  );
  if (problem.code === 'CREDENTIALS_REVOKED') {
    context.logger.warn({ event: 'order.submit.credentials_revoked', orders: orderIds.length, err: problem.message });
    return;
  }
  context.logger.error({ event: 'order.submit.credentials_unavailable', code: problem.code, orders: orderIds.length, waitMs: CREDENTIALS_WAIT_MS, err: problem.message });
  await credentialsUnavailableIncident(context, problem);
}

/** A claimed order found under lockdown waits in the (paused) queue; it runs again after resolution. */
const LOCKDOWN_WAIT_MS = 1_000;

/**
 * Issue 16: a worker that already holds a job when the lock lands must not submit it. Before the
 * claim the order goes to `held`; once claimed (`submitting`, never held: it may be at the bank) it
 * stays claimed with its attempt uncounted and the job waits; nothing is sent.
 */
async function stopIfLockedDown(context: JobContext, job: Parameters<typeof handleSubmitOrder>[2], orderId: string, where: string): Promise<void> {
  if (!(await isLockedDown(context))) return;
  await stopForLockdown(context, job, orderId, where);
}

/** The lock holds and the order is claimed (never held: it may be at the bank): its job waits. Never returns. */
async function stopForLockdown(context: JobContext, job: Parameters<typeof handleSubmitOrder>[2], orderId: string, where: string): Promise<never> {
  context.logger.warn({ event: 'order.submit.lockdown', orderId, where });
  return waitAndRetry(job, LOCKDOWN_WAIT_MS, 'lockdown');
}

type GateOutcome = 'go' | 'locked' | 'moved-on';

/** A send lease as its taker holds it: the order and the token written with the lease. */
interface SendLease {
  orderId: string;
  owner: string;
}

/**
 * The last step before the bank call, for every order about to be sent in this process at that
 * moment: one look at the lockdown flag, then one UPDATE counting the attempt of each order still
 * `submitting` and still under the caller's own send lease (counted before the send: a crash
 * between sending and recording is always followed by a lookup), and renewing that lease for the
 * send (SEND_LEASE_MARGIN_MS). An order whose lease lapsed while
 * it waited for a send slot is `moved-on`: it is not sent, whether the lease is free (the sweeper
 * queues the order again) or another sender took it (that sender sends). Orders sent together
 * share both round trips; each still passes on its own.
 */
function sendGate(context: JobContext): StageBatcher<SendLease, GateOutcome> {
  return stageBatcher(context, 'submit.gate', () =>
    new StageBatcher<SendLease, GateOutcome>(
      async (leases) => {
        if (await isLockedDownInRedis(context)) return leases.map(() => 'locked' as const);
        const ids = [...new Set(leases.map((l) => l.orderId))];
        // The recorded flag and the count in one statement: nothing is counted under a lock.
        const [gate] = await context.orm.em.fork().execute<Array<{ locked: boolean; leases: string[] | null }>>(
          `with flag as (select ${LOCKDOWN_RECORDED_SQL} as locked),
           counted as (
             update payment_order set submit_attempts = submit_attempts + 1, updated_at = ?,
               send_lease_until = now() + make_interval(secs => ?)
             where id in (${ids.map(() => '?').join(', ')}) and (id, send_lease_owner) in (${leases.map(() => '(?::uuid, ?::uuid)').join(', ')})
               and state = 'submitting' and send_lease_until > now() and not (select locked from flag) returning id, send_lease_owner)
           select (select locked from flag) as locked, (select array_agg(id || '/' || send_lease_owner) from counted) as leases`,
          [context.clock.now(), leaseSecondsOf(context), ...ids, ...leases.flatMap((l) => [l.orderId, l.owner])],
        );
        if (gate.locked) return leases.map(() => 'locked' as const);
        // One counted attempt, one send, by the holder of the current lease: a stale holder of the
        // same order in this batch is moved on; should the same lease come twice, only the first goes.
        const go = new Set(gate.leases ?? []);
        return leases.map((l) => (go.delete(`${l.orderId}/${l.owner}`) ? 'go' : 'moved-on'));
      },
      { maxBatch: context.config.worker.batchSize, maxWaitMs: 0 },
    ),
  );
}

/** Seconds a sender holds an order: the bank's timeout and a margin. */
function leaseSecondsOf(context: JobContext): number {
  return Math.ceil((context.config.bank.timeoutMs + 5_000) / 1000);
}

/**
 * How long before its lease ends a send must be over. The last look renews the lease, and the
 * bank call gets an AbortSignal that fires this much before the renewed lease can end (counted
 * from before the look, so never later than PostgreSQL's end of the lease): a call held up past it
 * (a token fetched slowly, a 401's new token, Retry-After waits inside the client) sends nothing,
 * and one still in flight is cut off as an unknown outcome. Without it a sender could be past its
 * look while its lease lapsed, and the next holder would look the order up, not find it yet, and
 * send it a second time.
 */
const SEND_LEASE_MARGIN_MS = 2_000;

/**
 * Takes the send lease of every order given that has none (or an expired one), in one UPDATE, under
 * one new owner token; the attempts already counted for each leased order. One sender at a time
 * (see the migrations of send_lease_until and send_lease_owner), on PostgreSQL's clock, not ours.
 */
async function takeSendLeases(context: JobContext, orderIds: readonly string[]): Promise<{ owner: string; attempts: Map<string, number> }> {
  const owner = randomUUID();
  if (orderIds.length === 0) return { owner, attempts: new Map() };
  const rows = await context.orm.em.fork().execute<Array<{ id: string; submit_attempts: number }>>(
    `update payment_order set send_lease_until = now() + make_interval(secs => ?), send_lease_owner = ?
     where id in (${orderIds.map(() => '?').join(', ')}) and state = 'submitting' and (send_lease_until is null or send_lease_until < now())
     returning id, submit_attempts`,
    [leaseSecondsOf(context), owner, ...orderIds],
  );
  return { owner, attempts: new Map(rows.map((r) => [r.id, Number(r.submit_attempts)])) };
}

/** Records the bank's acceptance of a claimed order (through the recorder below). */
async function markSubmitted(context: JobContext, orderId: string, doc: BankPaymentDocument, how: string): Promise<void> {
  await submittedRecorder(context).run({ orderId, doc, how });
}

interface Accepted {
  orderId: string;
  doc: BankPaymentDocument;
  how: string;
}

/**
 * The acceptances of the orders whose bank calls end together in this process, recorded at once:
 * one `submitting -> submitted` per wording of how (each order with its own bank reference and
 * status; the send lease cleared and the audit records appended by the same statement: nothing is
 * sent for a submitted order), one addBulk of the first status polls. Each order's outcome is its own.
 */
function submittedRecorder(context: JobContext): StageBatcher<Accepted, true> {
  return stageBatcher(context, 'submit.record', () => new StageBatcher<Accepted, true>((items) => recordSubmitted(context, items), { maxBatch: 256, maxWaitMs: 2 }));
}

async function recordSubmitted(context: JobContext, items: Accepted[]): Promise<Array<true | Error>> {
  const now = context.clock.now();
  const outcomes = new Map<Accepted, true | Error>();
  // Each transition and its audit records are one statement (they commit together): should it
  // fail, its orders stay `submitting`, their jobs retry, look the documents up at the bank and
  // record them then. One statement per wording of how (nearly always one).
  const recorded: Accepted[] = [];
  for (const how of new Set(items.map((i) => i.how))) {
    const group = items.filter((i) => i.how === how);
    const documentOf = new Map(group.map((i) => [i.orderId, i.doc.documentId]));
    const receivedOf = new Map(group.map((i) => [i.orderId, i.doc.receivedAt]));
    const moved = await transitionOrders(context.orm.em.fork(), group.map((i) => i.orderId), 'submitted', {
      actor: 'worker',
      from: 'submitting',
      reason: how,
      // A wait for credentials (waitForCredentials) is over once the bank took the order.
      patch: { sendLeaseUntil: null, lastError: null },
      perOrder: new Map(group.map((i) => [i.orderId, { bankReference: i.doc.documentId, bankStatus: i.doc.status }])),
      // When the bank says it received the document (R-28: the day a penalty counts from; after an
      // unknown outcome the lookup records it later, past the cut-off maybe, than the bank got it).
      audit: { action: 'order.submitted', details: (orderId) => ({ documentId: documentOf.get(orderId), how, receivedAt: receivedOf.get(orderId) ?? null }) },
      now,
    }).catch((err: Error) => group.map((i) => ({ orderId: i.orderId, error: err })));
    group.forEach((item, k) => {
      const outcome = moved[k];
      outcomes.set(item, 'error' in outcome ? outcome.error : true);
      if (!('error' in outcome)) recorded.push(item);
    });
  }
  // After the commit; a lost add is rebuilt by the sweeper from the `submitted` state, so it fails
  // no job (each order is recorded; a retry would only look it up again).
  await context.queues.addBulk(trackOrderJob, recorded.map((i) => ({ orderId: i.orderId })), { delay: context.config.tracking.pollEveryMs }).catch((err: Error) => {
    context.logger.warn({ event: 'order.track.enqueue_failed', orders: recorded.length, err: err.message });
  });
  return items.map((i) => outcomes.get(i) as true | Error);
}

async function markRejected(context: JobContext, orderId: string, err: BankError): Promise<void> {
  await transitionOrder(context.orm.em.fork(), orderId, 'rejected', {
    actor: 'bank',
    from: 'submitting',
    reason: `${err.reasonCode ?? err.details.bankCode ?? 'REJECTED'}: ${err.details.reasonText ?? err.message}`,
    // Only the bank's own words are its reason (R-23, shown to the ERP's users); our message stays in the event.
    patch: { bankStatus: 'rejected', bankReasonCode: err.reasonCode ?? err.details.bankCode ?? 'REJECTED', bankReasonText: err.details.reasonText ?? null },
    now: context.clock.now(),
  });
}

/**
 * Stage 4 (DESIGN.md), exactly once:
 * 1. claim `signed -> submitting` with a conditional update (the guard: only one worker wins);
 * 2. an order already in `submitting` may have reached the bank (a crash or timeout after the
 *    send): look it up by its external id before anything is sent again (LESSONS.md 1);
 * 3. send the frozen bytes and signatures under the stable external id, counting the attempt in
 *    PostgreSQL first, so a crash between sending and recording is always followed by a lookup.
 * RATE_LIMITED / MAINTENANCE / TRANSIENT / OUTCOME_UNKNOWN are retried with backoff (each retry
 * starts with the lookup); a 400 to the first send (our request broke the contract) fails the
 * order at once; REJECTED ends the order with the bank's reason (R-23);
 * CREDENTIALS_REVOKED stops submission and opens an incident (R-2, R-31); so does a vault the
 * master key cannot open (CREDENTIALS_UNAVAILABLE, waitForCredentials).
 */
type SubmitJob = Parameters<typeof handleSubmitOrder>[2];
type SubmitResult = Record<string, unknown> & { state: string };

export const handleSubmitOrder: JobHandler<typeof submitOrderJob.payload> = async (payload, context, job) => {
  const batcher = pipelineStageBatcher<{ orderId: string; job: SubmitJob }, SubmitResult>(context, 'submit', (items) => submitBatch(context, items));
  return batcher.run({ orderId: payload.orderId, job });
};

/**
 * R-17 before a send, or a broken chain (no valid signature, a CMS that does not name exactly the
 * valid signers): the round is invalidated and the order goes back to `awaiting_signatures`, its
 * sign job queued. So does an order missing a level the signing rules ask now (R-16: rules made
 * stricter while it waited signed), its signatures kept. null when its signers still count and
 * every level is given. From `submitting` only for an order never sent.
 */
async function backToSigningIfSignersLost(
  context: JobContext,
  em: EntityManager,
  order: PaymentOrder,
  from: 'signed' | 'submitting',
  signatures: StoredSignature[],
  directory: SignerDirectory,
): Promise<SubmitResult | null> {
  let why = signatures.length === 0 ? 'no valid signature' : await dropSignaturesThatNoLongerCount(context, order, { signatures, directory });
  if (why === null) {
    const missing = requiredLevels(context.config.signing.rules, order.payerIban, policyAmountTiyn(order)).filter((level) => !signatures.some((s) => s.level === level));
    if (missing.length === 0) return null;
    why = `the signing rules ask a ${missing.join(' and a ')} signature too`;
  }
  try {
    await transitionOrder(em, order.id, 'awaiting_signatures', { actor: 'worker', from, reason: from === 'submitting' ? `not sent: ${why}` : why });
  } catch (err) {
    // Moved meanwhile: a signer's block or lost right sent it back to be signed itself (and queued
    // its sign stage), or another run got there first. Not this job's failure.
    if (err instanceof IllegalTransitionError) return { state: 'moved-on' };
    throw err;
  }
  await context.queues.add(signOrderJob, { orderId: order.id });
  return { state: 'awaiting_signatures' };
}

/** Runs one order's step, turning anything it throws into that order's error. */
async function settle(step: () => Promise<SubmitResult>): Promise<SubmitResult | Error> {
  try {
    return await step();
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err));
  }
}

/**
 * The submit stage for a batch of jobs (queue/stage-batcher.ts): the checks and the claim for all
 * of them at once (one load, one lockdown and credentials check, one read of the signatures, one
 * conditional UPDATE `signed -> submitting`), then each claimed order is sent on its own, in
 * parallel (`sendOrder`). Every order's outcome is its own job's.
 */
export async function submitBatch(context: JobContext, items: Array<{ orderId: string; job: SubmitJob }>): Promise<Array<SubmitResult | Error>> {
  const em = context.orm.em.fork();
  // One job per order id (BullMQ job ids are per order); should the same id come twice (a stalled
  // job delivered again while its first run is still here), the first run handles the order.
  const firstOf = new Map<string, SubmitJob>();
  for (const item of items) if (!firstOf.has(item.orderId)) firstOf.set(item.orderId, item.job);
  const ids = [...firstOf.keys()];
  const orders = new Map((await em.find(PaymentOrder, { id: { $in: ids } }, { disableIdentityMap: true })).map((o) => [o.id, o]));
  const results = new Map<string, SubmitResult | Error>();
  const jobOf = firstOf;
  const open: PaymentOrder[] = [];
  for (const id of ids) {
    const order = orders.get(id);
    if (!order || (order.state !== 'signed' && order.state !== 'submitting')) results.set(id, { state: order?.state ?? 'missing' });
    else if (!open.includes(order)) open.push(order);
  }
  const waitAll = async (list: PaymentOrder[], ms: number, why: string) => {
    for (const order of list) results.set(order.id, await settle(() => waitAndRetry(jobOf.get(order.id) as SubmitJob, ms, why)));
  };
  // The lockdown flag and the credentials are read at once (each decides alone, lockdown first).
  const [lockedDown, credentialsProblem] = open.length > 0 ? await Promise.all([isLockedDown(context), context.services.credentialsProblem()]) : [false, null];
  // null: resolved while this waited for the resolve; they go on now.
  const held = lockedDown ? await holdPendingOrders(em, 'worker', 'lockdown in force', context.clock.now(), open.map((o) => o.id), { lockedInRedis: () => isLockedDownInRedis(context) }) : null;
  if (held) {
    context.logger.warn({ event: 'order.submit.lockdown', orders: open.map((o) => o.id), where: 'before the claim' });
    for (const order of open) if (held.includes(order.id)) results.set(order.id, { state: 'held', lockdown: true });
    await waitAll(open.filter((o) => !held.includes(o.id)), LOCKDOWN_WAIT_MS, 'lockdown');
    return answer(items, firstOf, results);
  }
  if (credentialsProblem) {
    await waitForCredentials(context, open.map((o) => o.id), credentialsProblem);
    await waitAll(open, CREDENTIALS_WAIT_MS, credentialsProblem.code);
    return answer(items, firstOf, results);
  }

  const signed = open.filter((o) => o.state === 'signed');
  const signatures = await validSignaturesOf(em, signed.map((o) => o.id));
  const directory = new SignerDirectory(em);
  const toClaim: PaymentOrder[] = [];
  for (const order of signed) {
    // R-17, a broken chain (or no signature at all): back to awaiting signatures.
    const outcome = await settle(async () => (await backToSigningIfSignersLost(context, em, order, 'signed', signatures.get(order.id) ?? [], directory)) ?? { state: 'signed' });
    if (!(outcome instanceof Error) && outcome.state === 'signed') toClaim.push(order);
    else results.set(order.id, outcome);
  }
  // Claimed before this batch (an unknown outcome, a wait for the bank or for credentials, a
  // resolve's requeue): their signers were judged then. Each is judged again before it is sent.
  const ready = open.filter((o) => o.state === 'submitting');
  const claimedEarlier = new Set(ready.map((o) => o.id));
  for (const claim of await transitionOrders(em, toClaim.map((o) => o.id), 'submitting', { actor: 'worker', from: 'signed', reason: 'claimed for submission' })) {
    // IllegalTransition: the order moved on meanwhile (a lockdown held it): nothing to claim.
    if ('error' in claim) results.set(claim.orderId, claim.error instanceof IllegalTransitionError ? { state: 'moved-on', claimed: false } : claim.error);
    else if (!claim.changed) results.set(claim.orderId, { state: 'submitting', claimed: false });
    else {
      const order = orders.get(claim.orderId) as PaymentOrder;
      order.state = 'submitting';
      ready.push(order);
    }
  }
  // Read again after the claim: from here on the order's signatures no longer change.
  const [claimed, documents] = await Promise.all([validSignaturesOf(em, ready.map((o) => o.id)), loadDocuments(em, ready.map((o) => o.id))]);
  // The last step before the sends: from here on each order's own code releases its lease.
  const leases = await takeSendLeases(context, ready.map((o) => o.id));
  await Promise.all(
    ready.map(async (order) => {
      const attempts = leases.attempts.get(order.id);
      const prepared = {
        lease: attempts === undefined ? undefined : { owner: leases.owner, attempts },
        document: documents.get(order.id),
        signatures: claimed.get(order.id) ?? [],
        judgeSigners: claimedEarlier.has(order.id) ? directory : undefined,
      };
      results.set(order.id, await settle(() => sendOrder(context, jobOf.get(order.id) as SubmitJob, order, prepared)));
    }),
  );
  return answer(items, firstOf, results);
}

function answer(items: Array<{ orderId: string; job: SubmitJob }>, firstOf: Map<string, SubmitJob>, results: Map<string, SubmitResult | Error>): Array<SubmitResult | Error> {
  return items.map((item) => (firstOf.get(item.orderId) === item.job ? (results.get(item.orderId) as SubmitResult | Error) : { state: 'skipped', why: 'the same order is already being submitted in this batch' }));
}

/**
 * One claimed order (`submitting`), exactly once: a send lease (taken for the batch, `attempts`
 * undefined when another sender holds it), a lookup by external id when an earlier attempt may
 * have reached the bank, the attempt counted before the send, the answer recorded (see the comment
 * of the stage above).
 */
async function sendOrder(
  context: JobContext,
  job: SubmitJob,
  order: PaymentOrder,
  prepared: {
    lease: { owner: string; attempts: number } | undefined;
    document: FrozenDocument | undefined;
    signatures: StoredSignature[];
    /** Set for an order claimed before this batch: its signers are judged again before the send. */
    judgeSigners?: SignerDirectory;
  },
): Promise<SubmitResult> {
  const log = context.logger.child({ orderId: order.id, jobId: job.id, attempt: job.attemptsMade + 1 });
  const em = context.orm.em.fork();
  const { lease } = prepared;
  if (lease === undefined) {
    const [row] = await em.execute<Array<{ state: string }>>('select state from payment_order where id = ?', [order.id]);
    if (row?.state !== 'submitting') return { state: row?.state ?? 'missing' };
    return waitAndRetry(job, leaseSecondsOf(context) * 1000, 'another worker holds the send lease');
  }
  let leaseReleased = false; // markSubmitted clears it with the transition
  // Only its own lease: one that lapsed and was taken by another sender is that sender's.
  const releaseLease = () =>
    em.execute('update payment_order set send_lease_until = null, send_lease_owner = null where id = ? and send_lease_owner = ?', [order.id, lease.owner]).catch(() => undefined);
  // A deferral (Retry-After, revoked credentials) is applied after the lease is released.
  let defer: { ms: number; why: string } | undefined;
  // Set once this run counted an attempt for its send (the last look): what fails after it is the send's.
  let counted = false;

  const bank = context.services.bank();
  try {
    if (lease.attempts > 0) {
      // Under lockdown not even a lookup goes out (the credentials may be compromised).
      await stopIfLockedDown(context, job, order.id, 'before the lookup');
      // The outcome of an earlier send is unknown: ask the bank first.
      try {
        // Checked against what we send: a document the bank holds under our id on other requisites is not ours.
        const found = await bank.lookup(order.externalId, { expected: requisitesFromOrder(toNormalisedOrder(order)) });
        await markSubmitted(context, order.id, found, 'found by external id after an earlier attempt');
        leaseReleased = true;
        return { state: 'submitted', via: 'lookup' };
      } catch (err) {
        if (!(err instanceof BankError) || err.code !== 'NOT_FOUND') throw err;
      }
    }
    // Never sent (no attempt counted: attempts are counted before each send): R-17 holds until the
    // send. A signer blocked or stripped of authority while the order waited in `submitting` (the
    // bank down, a lockdown that named them, whose resolve invalidated their signatures) no longer
    // signs it. After an attempt the document may be at the bank however the lookup answered (a
    // timed-out send still on its way): it is never unsent, only sent again under its external id.
    if (prepared.judgeSigners && lease.attempts === 0) {
      const back = await backToSigningIfSignersLost(context, em, order, 'submitting', prepared.signatures, prepared.judgeSigners);
      if (back) {
        log.warn({ event: 'order.submit.signers_judged_again' });
        return back;
      }
    }
    // Both read for the batch after the claim (a missing document stays missing on a re-read).
    const { document, signatures } = prepared;
    if (!document || signatures.length === 0) {
      // Sent back to be signed between the claim and this read (a signer blocked: R-17): not an error.
      const [row] = await em.execute<Array<{ state: string }>>('select state from payment_order where id = ?', [order.id]);
      if (row?.state !== 'submitting') return { state: 'moved-on' };
      throw new UnrecoverableError(`order ${order.id} has no frozen document or signature`);
    }
    const cms = signatures[signatures.length - 1].cms; // holds every signer
    // Held from the last look to the bank's answer: at most `worker.concurrency` requests per
    // process are on their way when a lockdown lands, however many jobs the stage takes at once.
    const sent = await perContext(context, 'submit.slots', () => new Slots(context.config.worker.concurrency)).hold(async () => {
      // The last look before the bank call (a lock that landed while this job held the order stops
      // it here), the attempt counted before the send and the lease renewed; the send ends before it.
      const signal = AbortSignal.timeout(leaseSecondsOf(context) * 1000 - SEND_LEASE_MARGIN_MS);
      const gate = await sendGate(context).run({ orderId: order.id, owner: lease.owner });
      if (gate !== 'go') return gate;
      counted = true;
      await testPausePoint(context, 'order.submit.before-send');
      // A 401 makes the client send again with a new token, after this look: a lockdown that landed
      // meanwhile stops that second request (TRANSIENT below, the count given back: nothing was taken).
      const mayRepeat = async () => !(await isLockedDown(context));
      return bank.submit({ externalId: order.externalId, document: document.bytes, signatures: [cms], requisites: requisitesFromOrder(toNormalisedOrder(order)) }, { signal, mayRepeat });
    });
    if (sent === 'locked') return await stopForLockdown(context, job, order.id, 'before the bank call');
    if (sent === 'moved-on') return { state: 'moved-on' };
    const accepted = sent;
    await testPausePoint(context, 'order.submit.after-send');
    await markSubmitted(context, order.id, accepted, accepted.created ? 'accepted by the bank' : 'the bank already had it under this external id');
    leaseReleased = true;
    log.info({ event: 'order.submit.accepted', documentId: accepted.documentId });
    return { state: 'submitted' };
  } catch (caught) {
    if (!(caught instanceof BankError)) throw caught;
    // A refusal by a code this release does not know is final at the order's first send only. After
    // an earlier send (its outcome unknown, a lookup that found nothing), a bank answering outside its
    // contract may still hold that document: ended `rejected`, 1C would have it paid again. It goes
    // the way of a broken contract (retried, each time with a lookup first; `failed` at the end).
    // So does EXTERNAL_ID_CONFLICT after an earlier send: the bank holds a document under our external
    // id, and after a send of ours that is most likely ours (a bank whose lookup lags, or that answers
    // a repeat 409 rather than 200): ended `rejected`, 1C would have it paid a second time.
    const heldUnderOurId = caught.code === 'REJECTED' && (caught.details.unknownCode || caught.reasonCode === 'EXTERNAL_ID_CONFLICT') && lease.attempts > 0;
    const err = heldUnderOurId
      ? new BankError('CONTRACT_VIOLATION', `${caught.message}; not taken as a refusal after an earlier send whose outcome is unknown`, { ...caught.details, unknownCode: undefined })
      : caught;
    log.warn({ event: 'order.submit.error', code: err.code, bankCode: err.details.bankCode, err: err.message });
    switch (err.code) {
      case 'REJECTED':
        if (err.reasonCode === 'DUPLICATE_DOCUMENT') {
          await duplicateDocument(context, order, err);
          return { state: 'failed', reason: err.reasonCode };
        }
        await markRejected(context, order.id, err);
        // R-31: a refusal for identification / authentication / compromise reasons stops everything.
        await lockdownOnCompromiseCode(context, err.reasonCode, `the bank refused order ${order.number} with ${err.reasonCode} (identification / authentication / compromise)`, {
          orderId: order.id,
          reasonCode: err.reasonCode,
          httpStatus: err.details.httpStatus,
        });
        return { state: 'rejected', reason: err.reasonCode };
      case 'CREDENTIALS_REVOKED':
      case 'AUTH':
        await credentialsRefused(context, err, { orderId: order.id });
        defer = { ms: CREDENTIALS_WAIT_MS, why: err.code };
        return { state: 'submitting', deferred: err.code };
      case 'CREDENTIALS_UNAVAILABLE':
        // Ours, not the bank's, and nothing was sent: the order waits like the batch check above.
        await waitForCredentials(context, [order.id], { code: err.details.providerCode ?? err.code, message: err.message });
        defer = { ms: CREDENTIALS_WAIT_MS, why: err.code };
        return { state: 'submitting', deferred: err.code };
      case 'TRANSIENT':
      case 'OUTCOME_UNKNOWN': {
        // The bank out of reach: no connection, a timeout, a gateway's 5xx, its token endpoint down.
        // Every order meets it, and it ends: the order waits as for maintenance, without spending
        // an attempt (R-24: when the service resumes, so does the work). Given up after
        // `queue.attempts` tries, a whole outage's orders ended `failed`, each to be retried by hand,
        // and 1C was told they might have been paid. Each retry starts with a lookup (the attempt
        // stays counted when something may have left). From `queue.attempts` tries in a row one
        // incident says the bank does not take orders.
        await lockdownOnRefusalCode(context, err, { orderId: order.id });
        // TRANSIENT after this run's count is the token's or a submit that never left (connection
        // refused, no such host, a TLS handshake refused: parseBankError): nothing reached the bank,
        // so the count is given back and the order stays one never sent (withdrawable, signers
        // judged again, 1C not told it may have been paid).
        if (counted && err.code === 'TRANSIENT') {
          await em.execute('update payment_order set submit_attempts = submit_attempts - 1 where id = ? and send_lease_owner = ? and submit_attempts > 0', [order.id, lease.owner]);
        }
        const data = job.data as { waits?: number; outageTries?: number; outageSince?: number };
        const now = context.clock.now().getTime();
        const outageSince = data.outageSince ?? now;
        // Bounded all the same: a document the bank fails alone (its 500 to this one, every time)
        // would otherwise wait in `submitting` for ever, where no operator command reaches it. Past
        // OUTAGE_GIVE_UP_MS it ends `failed` as before, with the reason, for `orders retry` (which
        // looks it up first) or `settle`.
        if (now - outageSince >= OUTAGE_GIVE_UP_MS) {
          return await giveUp(context, order.id, lease.owner, `the bank did not take it for ${Math.round((now - outageSince) / 3_600_000)} hours`, `${err.code}: ${err.message}`);
        }
        const waits = Number(data.waits ?? 0) + 1;
        const outageTries = Number(data.outageTries ?? 0) + 1;
        await job.updateData({ ...job.data, waits, outageTries, outageSince });
        if (outageTries >= (job.opts.attempts ?? 1)) await submitsFailing(context, err, outageTries);
        defer = { ms: backoffAfter(context, waits, BANK_WAIT_MAX_MS), why: err.code };
        return { state: 'submitting', deferred: err.code };
      }
      case 'RATE_LIMITED':
      case 'MAINTENANCE': {
        // Honour Retry-After (R-24) without spending an attempt. Without one, wait longer each time
        // (doubling from queue.backoffMs up to a minute) rather than ask a bank that is down every 2 s.
        const waits = Number((job.data as { waits?: number }).waits ?? 0) + 1;
        await job.updateData({ ...job.data, waits });
        defer = { ms: retryAfterWait(context, err.retryAfterMs) ?? backoffAfter(context, waits, BANK_WAIT_MAX_MS), why: err.code };
        return { state: 'submitting', deferred: err.code };
      }
      default: {
        // A lookup's or token's answer with a configured compromise code the parser could not place (R-31).
        await lockdownOnRefusalCode(context, err, { orderId: order.id });
        // CONTRACT_VIOLATION (the bank answering outside its contract): BullMQ backs off; the next run looks up first.
        // Except a 400 the submit itself got (not the token's) at the order's first send: the contract's BadRequest (INVALID_REQUEST, "the
        // request does not follow this contract") was not processed, so nothing was registered, and
        // no earlier request of this document can be at the bank (attempts are counted before each
        // send, and this order had none). Its frozen bytes and requisites would be refused the same
        // way on every retry: the order fails now, with the bank's words, for an operator to see.
        // After an earlier send (whose outcome a lookup just could not find) the retries stand.
        const malformed = err.code === 'CONTRACT_VIOLATION' && err.details.operation === 'submit' && err.details.httpStatus === 400 && lease.attempts === 0;
        const last = malformed || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (last) {
          const reason = malformed
            ? `the bank refused the request as not following its contract (HTTP 400 ${err.details.bankCode ?? 'without a code'}); resending the same document cannot succeed`
            : `submission gave up after ${job.attemptsMade + 1} attempts`;
          return await giveUp(context, order.id, lease.owner, reason, `${err.code}: ${err.message}`);
        }
        throw err;
      }
    }
  } finally {
    if (!leaseReleased) await releaseLease();
    if (defer) await waitAndRetry(job, defer.ms, defer.why);
  }
}

/**
 * A run gives the order up (`failed`, for `orders retry` or `settle`), unless another sender holds
 * its send lease now: this run's lease lapsed while it waited for the bank (a lookup held up by
 * Retry-After waits, a process that stalled) and the job delivered again took the order and may be
 * sending it; that send's answer decides. Failed under it, the bank's acceptance would find the
 * order failed and its reference would be lost.
 */
async function giveUp(context: JobContext, orderId: string, owner: string, reason: string, lastError: string): Promise<SubmitResult> {
  try {
    await transitionOrder(context.orm.em.fork(), orderId, 'failed', { actor: 'worker', from: 'submitting', reason, patch: { failedFrom: 'submitting', lastError }, unlessSendLeased: owner });
  } catch (err) {
    if (err instanceof IllegalTransitionError) return { state: 'moved-on' };
    throw err;
  }
  await enqueueWriteBack(context.queues);
  return { state: 'failed' };
}

/**
 * The bank already holds a document of this payer account, number and date under another external
 * id (409 DUPLICATE_DOCUMENT). That is no refusal of the payment: the document may well be paid. It
 * happens when this order was sent before the connector's database was restored from a backup (the
 * restored database no longer has the order, and the ERP sent it again: a new order, a new external
 * id), or when the same document went to the bank by other means. Ended `rejected`, the ERP would
 * show a paid document as refused and invite paying it again, and its debit in the statement would
 * read as the bank executing what it refused (an erroneous execution). The connector cannot tell
 * which document the bank holds, so it does not guess: the order ends `failed` (after a send:
 * never sent again as something new; `orders retry` looks it up first and meets the same answer),
 * and an incident tells a person. A debit in a statement carrying this document's requisites then
 * confirms it `executed` (reconciliation); else a person asks the bank and settles it.
 */
async function duplicateDocument(context: JobContext, order: PaymentOrder, err: BankError): Promise<void> {
  const lastError = `DUPLICATE_DOCUMENT: ${err.message}`.slice(0, 2000);
  const now = context.clock.now();
  // The incident first: opened once (its dedupe key), it survives a failure of what follows, and a
  // retry of the job (the order still submitting) meets the same answer and gets here again.
  await openIncident(context.orm.em.fork(), {
    kind: 'duplicate_document',
    severity: 'high',
    title:
      `The bank already holds payment order ${order.number} of ${order.docDate} from ${order.payerIban} under another external id; order ${order.id} was not sent again and is failed. ` +
      'Most likely it was sent before the database was restored from a backup (or paid by other means): its debit in a stored statement marks it executed; ' +
      `if the bank says that document was not paid, connector orders settle ${order.id} --as rejected --reason TEXT`,
    evidence: { orderId: order.id, number: order.number, date: order.docDate, payerIban: order.payerIban, externalId: order.externalId, bankCode: err.reasonCode, error: err.message.slice(0, 300) },
    dedupeKey: `duplicate_document:${order.id}`,
    onRepeat: 'ignore',
    actor: 'worker',
    now,
  });
  await transitionOrder(context.orm.em.fork(), order.id, 'failed', {
    actor: 'worker',
    from: 'submitting',
    reason: 'the bank already holds a document with this number and date from this account, under another external id: not sent again; check with the bank whether it was paid',
    patch: { failedFrom: 'submitting', lastError },
    now,
  });
  // Its debit may be in a statement stored already (after a restore the missed days are fetched at
  // start, before the ERP sends the document again): judged again now, it confirms the order. A
  // payment is never booked before its document's date; later fetches judge their own days.
  const today = kzToday(now);
  if (order.docDate <= today) {
    await reconcileAccount(context.orm.em.fork(), order.payerIban, order.docDate, today, { calendar: kzCalendarFromConfig(context.config), now, actor: 'reconciliation' });
  }
  await enqueueWriteBack(context.queues);
}

/** How long an order waits in `submitting` for a bank out of reach before it ends `failed` (a working day). */
const OUTAGE_GIVE_UP_MS = 8 * 3_600_000;

/**
 * One incident while the bank does not take payment orders (TRANSIENT, OUTCOME_UNKNOWN: every
 * order meets it); the orders wait in `submitting`, none is given up (see the submit stage).
 */
async function submitsFailing(context: JobContext, err: BankError, tries: number): Promise<void> {
  const httpStatus = err.details.httpStatus;
  await openIncident(context.orm.em.fork(), {
    kind: 'submits_failing',
    severity: 'high',
    title: `The bank does not take payment orders (${err.code}${httpStatus ? `, HTTP ${httpStatus}` : ''}, ${tries} tries in a row for one order): orders wait in submitting and are sent, each after a lookup, once it answers (one still refused after 8 hours ends failed, for orders retry); if other orders go through, the bank fails these alone: see their last error; resolve this once the bank answers again`,
    evidence: { code: err.code, httpStatus, bankCode: err.details.bankCode, tries, error: err.message.slice(0, 300) },
    dedupeKey: 'submits_failing',
    // Every try meanwhile finds it again: one incident, not one timeline entry per try.
    onRepeat: 'ignore',
    actor: 'worker',
    now: context.clock.now(),
  });
}
