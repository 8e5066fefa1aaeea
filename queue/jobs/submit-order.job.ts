import { UnrecoverableError } from 'bullmq';
import { Pool } from 'pg';
import { z } from 'zod';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { PaymentOrder } from '../../connector/persistence/entities';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { toNormalisedOrder } from '../../connector/orders/order.mapper';
import { loadDocument, validSignatures } from '../../connector/signing/order-signatures';
import { openIncident } from '../../connector/incidents/incident.service';
import { appendAudit } from '../../connector/audit/audit.log';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { requisitesFromOrder } from '../../adapters/bank/business-api/payment-order.document';
import type { BankPaymentDocument } from '../../adapters/bank/business-api/business-api.schemas';
import { testPausePoint } from '../test-hooks';
import { trackOrderJob } from './track-order.job';
import { signOrderJob } from './sign-order.job';
import { dropSignaturesOfRevokedSigners, waitAndRetry } from './pipeline.helpers';

export const submitOrderJob = defineJob({
  name: 'order.submit',
  queue: 'submit',
  payload: z.object({ orderId: z.string().uuid() }),
  jobId: (p) => `submit-${p.orderId}`,
});

/** While the bank refuses our credentials we do not keep hammering it. */
const CREDENTIALS_WAIT_MS = 60_000;

/** Advisory-lock class of the send lease (the sandbox, sharing a database in tests, uses 1 and 2). */
const SEND_LEASE_CLASS = 15001;
const leasePools = new Map<string, Pool>();

/**
 * The send lease: BullMQ is at-least-once (LESSONS.md 10), so two runs of one order's submit job
 * can overlap (a lock that lapsed on a live worker, a sweeper re-queue after Redis lost its data,
 * an operator retry). Both would find the order `submitting`, both look it up while neither send
 * has reached the bank, and both send. A PostgreSQL session advisory lock per order, held from the
 * lookup to the recorded answer, lets one run talk to the bank at a time; it dies with the
 * holder's connection, so a killed worker never leaves it behind. Its own small pool: a held lease
 * must never wait for a connection the job itself needs (no pool deadlock).
 */
async function withSendLease<T>(context: JobContext, orderId: string, fn: () => Promise<T>): Promise<T | undefined> {
  const url = context.config.database.url;
  let pool = leasePools.get(url);
  if (!pool) {
    pool = new Pool({ connectionString: url, max: Math.max(2, context.config.worker.concurrency), idleTimeoutMillis: 10_000, allowExitOnIdle: true });
    pool.on('error', (err) => context.logger.warn({ event: 'order.submit.lease.pool_error', err: err.message }));
    leasePools.set(url, pool);
  }
  const client = await pool.connect();
  let broken = false;
  try {
    const got = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as locked', [SEND_LEASE_CLASS, orderId]);
    if (!got.rows[0]?.locked) return undefined;
    try {
      return await fn();
    } finally {
      await client.query('select pg_advisory_unlock($1, hashtext($2))', [SEND_LEASE_CLASS, orderId]).catch(() => {
        // A connection that cannot unlock is dropped: closing it releases the lock.
        broken = true;
      });
    }
  } finally {
    client.release(broken);
  }
}

async function markSubmitted(context: JobContext, orderId: string, doc: BankPaymentDocument, how: string): Promise<void> {
  const em = context.orm.em.fork();
  await transitionOrder(em, orderId, 'submitted', {
    actor: 'worker',
    from: 'submitting',
    reason: how,
    patch: { bankReference: doc.documentId, bankStatus: doc.status },
    now: context.clock.now(),
  });
  await appendAudit(em, { actor: 'worker', action: 'order.submitted', subject: orderId, details: { documentId: doc.documentId, how } });
  await context.queues.add(trackOrderJob, { orderId }, { delay: context.config.tracking.pollEveryMs });
}

async function markRejected(context: JobContext, orderId: string, err: BankError): Promise<void> {
  await transitionOrder(context.orm.em.fork(), orderId, 'rejected', {
    actor: 'bank',
    from: 'submitting',
    reason: `${err.reasonCode ?? err.details.bankCode ?? 'REJECTED'}: ${err.details.reasonText ?? err.message}`,
    patch: { bankStatus: 'rejected', bankReasonCode: err.reasonCode ?? err.details.bankCode ?? 'REJECTED', bankReasonText: err.details.reasonText ?? err.message },
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
 * starts with the lookup); REJECTED ends the order with the bank's reason;
 * CREDENTIALS_REVOKED stops submission and opens an incident.
 */
export const handleSubmitOrder: JobHandler<typeof submitOrderJob.payload> = async (payload, context, job) => {
  const log = context.logger.child({ orderId: payload.orderId, jobId: job.id, attempt: job.attemptsMade + 1 });
  const em = context.orm.em.fork();
  let order = await em.findOne(PaymentOrder, { id: payload.orderId });
  if (!order || (order.state !== 'signed' && order.state !== 'submitting')) return { state: order?.state ?? 'missing' };

  if (!(await context.services.credentialsUsable())) {
    return waitAndRetry(job, CREDENTIALS_WAIT_MS, 'credentials revoked');
  }

  if (order.state === 'signed') {
    // a signer who lost authority since signing: back to awaiting signatures.
    if ((await dropSignaturesOfRevokedSigners(context, order)) > 0) {
      await transitionOrder(em, order.id, 'awaiting_signatures', { actor: 'worker', from: 'signed', reason: 'a signer lost authority before submission (R-17)' });
      await context.queues.add(signOrderJob, { orderId: order.id });
      return { state: 'awaiting_signatures' };
    }
    const claim = await transitionOrder(em, order.id, 'submitting', { actor: 'worker', from: 'signed', reason: 'claimed for submission' });
    if (!claim.changed) return { state: 'submitting', claimed: false };
    order = (await context.orm.em.fork().findOne(PaymentOrder, { id: order.id })) as PaymentOrder;
  }

  const claimed = order;
  const bank = context.services.bank();
  const leased = await withSendLease(context, claimed.id, async () => {
    // Read again under the lease: another run may have finished meanwhile.
    const order = await context.orm.em.fork().findOne(PaymentOrder, { id: claimed.id }, { disableIdentityMap: true });
    if (!order || order.state !== 'submitting') return { state: order?.state ?? 'missing' };
    try {
      if (order.submitAttempts > 0) {
        // The outcome of an earlier send is unknown: ask the bank first.
        try {
          const found = await bank.lookup(order.externalId);
          await markSubmitted(context, order.id, found, 'found by external id after an earlier attempt');
          return { state: 'submitted', via: 'lookup' };
        } catch (err) {
          if (!(err instanceof BankError) || err.code !== 'NOT_FOUND') throw err;
        }
      }
      const document = await loadDocument(em, order.id);
      const signatures = await validSignatures(em, order.id);
      if (!document || signatures.length === 0) throw new UnrecoverableError(`order ${order.id} has no frozen document or signature`);
      const cms = signatures[signatures.length - 1].cms; // holds every signer
      const counted = await em.execute<Array<{ submit_attempts: number }>>(
        "update payment_order set submit_attempts = submit_attempts + 1, updated_at = ? where id = ? and state = 'submitting' returning submit_attempts",
        [context.clock.now(), order.id],
      );
      if (counted.length === 0) return { state: 'moved-on' };
      await testPausePoint(context, 'order.submit.before-send');
      const accepted = await bank.submit({ externalId: order.externalId, document: document.bytes, signatures: [cms], requisites: requisitesFromOrder(toNormalisedOrder(order)) });
      await testPausePoint(context, 'order.submit.after-send');
      await markSubmitted(context, order.id, accepted, accepted.created ? 'accepted by the bank' : 'the bank already had it under this external id');
      log.info({ event: 'order.submit.accepted', documentId: accepted.documentId });
      return { state: 'submitted' };
    } catch (err) {
      if (!(err instanceof BankError)) throw err;
      log.warn({ event: 'order.submit.error', code: err.code, bankCode: err.details.bankCode, err: err.message });
      switch (err.code) {
        case 'REJECTED':
          await markRejected(context, order.id, err);
          return { state: 'rejected', reason: err.reasonCode };
        case 'CREDENTIALS_REVOKED':
        case 'AUTH':
          if (err.code === 'CREDENTIALS_REVOKED') await context.services.markCredentialsRevoked(err.message);
          await openIncident(context.orm.em.fork(), {
            kind: 'credentials_revoked',
            severity: 'critical',
            title: err.code === 'CREDENTIALS_REVOKED' ? 'The bank answered that the Client ID / Secret is blocked or revoked (R-2)' : 'The bank refused our Client ID / Secret (401)',
            evidence: { code: err.code, httpStatus: err.details.httpStatus },
            dedupeKey: 'credentials_revoked',
            actor: 'worker',
          });
          return waitAndRetry(job, CREDENTIALS_WAIT_MS, err.code);
        case 'RATE_LIMITED':
        case 'MAINTENANCE':
          // Honour Retry-After without spending an attempt.
          return waitAndRetry(job, err.retryAfterMs ?? context.config.queue.backoffMs, err.code);
        default: {
          // TRANSIENT, OUTCOME_UNKNOWN, CONTRACT_VIOLATION: BullMQ backs off; the next run looks up first.
          const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
          if (last) {
            await transitionOrder(context.orm.em.fork(), order.id, 'failed', {
              actor: 'worker',
              from: 'submitting',
              reason: `submission gave up after ${job.attemptsMade + 1} attempts`,
              patch: { failedFrom: 'submitting', lastError: `${err.code}: ${err.message}` },
            });
            return { state: 'failed' };
          }
          throw err;
        }
      }
    }
  });
  // Another run holds the lease and is talking to the bank about this order right now.
  return leased ?? waitAndRetry(job, context.config.queue.backoffMs, 'another run holds the send lease');
};
