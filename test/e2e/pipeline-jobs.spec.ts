import { join } from 'node:path';
import { QueueEvents } from 'bullmq';
import { createTestEnv, eventually, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { demoDocuments, demoOrder } from '../../connector/demo/demo-orders';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { signOrderJob } from '../../queue/jobs/sign-order.job';
import { submitOrderJob } from '../../queue/jobs/submit-order.job';
import { trackBatch, trackOrderJob } from '../../queue/jobs/track-order.job';
import { validateOrderJob } from '../../queue/jobs/validate-order.job';
import { createLogger } from '../../connector/logging/logger';
import { retryFailedOrder } from '../../queue/order-retry';
import type { AnyJobDefinition } from '../../queue/job-definition';
import { completeSigning, prepareSigning, signAs, signWithMandates } from '../../queue/order-signing';
import { SignerDirectory } from '../../queue/jobs/pipeline.helpers';
import { blockUser, unblockUser } from '../../connector/users/user.service';
import { userDeps } from '../../connector/app/user-context';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { loadDocuments, validSignatures } from '../../connector/signing/order-signatures';
import { parseCms } from '../../signer-agent/cms/cms.parser';
import type { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import type { AppContext } from '../../connector/app/app-context';
import { PaymentOrder } from '../../connector/persistence/entities';
import { orderView } from '../../connector/orders/order.mapper';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { markCredentialsRevoked, setCredentials } from '../../connector/vault/credential.vault';
import { SecretBox } from '../../connector/vault/secret-box';

/** Every pipeline job delivered again after it finished (same job id) has no second effect. */
describe('pipeline jobs: runs twice, one effect (real sandbox, signer agent, Redis, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;
  let workers: RunningWorkers;
  let events: Map<string, QueueEvents>;
  const connections: Array<{ disconnect(): void }> = [];

  beforeAll(async () => {
    env = await createTestEnv('jobstwice', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    // Few, quick retries so a stage that keeps failing reaches `failed` within the test.
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }), { config: (c) => ({ ...c, queue: { ...c.queue, attempts: 2, backoffMs: 100 } }) });
    workers = startWorkers(world.context, world.context.redis);
    events = new Map();
    for (const q of ['validate', 'sign', 'submit', 'track']) {
      const connection = world.context.redis.duplicate();
      connections.push(connection);
      const e = new QueueEvents(q, { connection, prefix: env.config.redis.prefix });
      await e.waitUntilReady();
      events.set(q, e);
    }
  });
  afterAll(async () => {
    await workers?.close(5_000);
    for (const e of events?.values() ?? []) await e.close();
    for (const c of connections) c.disconnect();
    await world?.close();
    await env?.cleanup();
  });

  const db = () => world.context.orm.em.fork();
  /** Demo documents (by index in demoDocuments: 2 is above the second-signature threshold) dated today, taken in under `source` with fresh numbers, handed to the queues. */
  const intakeDemo = (source: string, indexes: number[]) => {
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const docs = demoDocuments(String(Date.now()).slice(-7));
    return intakeOrders(db(), source, indexes.map((i) => ({ order: demoOrder(docs[i], today) })), bullmqIntakePort(world.context.queues), { actor: 'test' });
  };
  /** The sandbox's admin API (faults, clock, ledger) and a PUT to it. */
  const sandboxAdmin = () => `${world.config.bank.url}/_sandbox`;
  const put = (path: string, body: unknown) => fetch(`${sandboxAdmin()}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const count = async (sql: string, params: unknown[]) => Number((await db().execute<Array<{ n: string }>>(sql, params))[0].n);
  const ledger = async () => (await (await fetch(`${world.config.bank.url}/_sandbox/submissions`)).json()) as { total: number; duplicates: number; submissions: Array<{ externalId: string; requests: number; accepted: boolean; afterAccepted: number }> };

  async function runAgain(definition: AnyJobDefinition, orderId: string): Promise<unknown> {
    const job = await world.context.queues.get(definition.queue).add(definition.name, { orderId }, { jobId: definition.jobId({ orderId }) });
    return job.waitUntilFinished(events.get(definition.queue) as QueueEvents, 20_000);
  }

  /**
   * A 2,500,000 KZT order (first + second signature) signed by the standing mandates while
   * submission is paused; `then` runs with it (and may resume submission itself), and submission
 * resumes afterwards whatever happens.
   */
  async function withSignedLargeOrder(
    source: string,
    then: (order: { result: { orderId: string; externalId: string }; stateOf: () => Promise<string>; payerBin: string; resume: () => Promise<void> }) => Promise<void>,
  ): Promise<void> {
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
      const order = demoOrder(demoDocuments(String(Date.now()).slice(-7))[2], today);
      const [result] = await intakeOrders(db(), source, [{ order }], bullmqIntakePort(world.context.queues), { actor: 'test' });
      const stateOf = async () => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state;
      await eventually(async () => (await stateOf()) === 'signed', { what: 'signed', timeoutMs: 45_000 });
      await then({ result, stateOf, payerBin: order.payer.iinBin, resume: () => submitQueue.resume() });
    } finally {
      await submitQueue.resume();
    }
  }

  it('validate, sign (two signatures), submit and track again change nothing once the order is executed', async () => {
    const [result] = await intakeDemo('erp-twice', [2]); // 2,500,000 KZT: first + second signature
    const id = result.orderId;
    const stateOf = async () => (await db().execute<Array<{ state: string; external_id: string }>>('select state, external_id from payment_order where id = ?', [id]))[0];
    await eventually(async () => (await stateOf()).state === 'executed', { what: 'executed', timeoutMs: 45_000 });

    const before = {
      events: await count('select count(*) as n from order_event where order_id = ?', [id]),
      signatures: await count('select count(*) as n from order_signature where order_id = ?', [id]),
      attempts: await count('select submit_attempts as n from payment_order where id = ?', [id]),
      ledger: (await ledger()).submissions.find((s) => s.externalId === result.externalId),
    };
    expect(before.signatures).toBe(2);
    expect(before.attempts).toBe(1);
    expect(before.ledger?.requests).toBe(1);

    for (const definition of [validateOrderJob, signOrderJob, submitOrderJob, trackOrderJob]) await runAgain(definition, id);

    expect((await stateOf()).state).toBe('executed');
    expect(await count('select count(*) as n from order_event where order_id = ?', [id])).toBe(before.events);
    expect(await count('select count(*) as n from order_signature where order_id = ?', [id])).toBe(2);
    expect(await count('select submit_attempts as n from payment_order where id = ?', [id])).toBe(1);
    const after = await ledger();
    expect(after.submissions.find((s) => s.externalId === result.externalId)?.requests).toBe(1);
    expect(after.duplicates).toBe(0);
  });

  it('a person signing while a standing mandate signs the other level: the last CMS, the one the bank gets, holds both signers', async () => {
    const context = world.context;
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    const doc = demoDocuments(String(Date.now()).slice(-7))[2]; // 2,500,000 KZT: first + second signature
    // Taken in without a job (the workers' mandates would sign it first); validated by hand.
    const [result] = await intakeOrders(db(), 'erp-sign-race', [{ order: demoOrder(doc, today) }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await transitionOrder(db(), result.orderId, 'validated', { actor: 'test', from: 'received' });
    const accountant = (await new SignerDirectory(db()).signerByLogin('demo.accountant'))?.user;
    if (!accountant) throw new Error('the demo world has no accountant');

    // While the agent makes the accountant's signature (over no earlier CMS: none is recorded yet),
    // the CEO's standing mandate signs the first level and records it.
    const ceoMandateOnly = { ...context, config: { ...context.config, signing: { ...context.config.signing, mandates: context.config.signing.mandates.filter((m) => m.login === 'demo.ceo') } } };
    const agent = context.services.signer();
    let mandate: Awaited<ReturnType<typeof signWithMandates>> | undefined;
    const racingAgent: SignerAgentClient = Object.assign(Object.create(agent) as SignerAgentClient, {
      signMany: async (userId: string, inputs: Parameters<SignerAgentClient['signMany']>[1]) => {
        const made = await agent.signMany(userId, inputs);
        if (userId === accountant.id && !mandate) mandate = await signWithMandates(ceoMandateOnly, [result.orderId], () => undefined);
        return made;
      },
    });
    const racing: AppContext = { ...context, services: Object.assign(Object.create(context.services) as AppContext['services'], { signer: () => racingAgent }) };

    const state = await prepareSigning(racing, result.orderId);
    if (!state) throw new Error('the order is not waiting for signatures');
    await expect(signAs(racing, state, accountant, { mandate: false })).resolves.toEqual({ signed: 'second' });
    expect(mandate?.get(result.orderId)).toMatchObject({ state: 'awaiting_signatures', missing: ['second'] });

    // The accountant's first signature came too late and was made again over the CEO's CMS.
    const signatures = await validSignatures(db(), result.orderId);
    expect(signatures.map((s) => [s.login, s.level])).toEqual([['demo.ceo', 'first'], ['demo.accountant', 'second']]);
    expect(parseCms(signatures[0].cms).signerInfos).toHaveLength(1);
    expect(parseCms(signatures[1].cms).signerInfos).toHaveLength(2);
    expect(await count('select count(*) as n from order_signature where order_id = ? and cosigned_id = ?', [result.orderId, signatures[0].id])).toBe(1);

    // The order goes on to the bank with that CMS.
    await expect(completeSigning(racing, state)).resolves.toBe(true);
    await eventually(async () => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state === 'executed', { what: 'executed', timeoutMs: 45_000 });
  });

  it('R-17: a signature by a user disabled before submission stops counting; the order waits for signatures again and goes on once a valid signer signs', async () => {
    await withSignedLargeOrder('erp-r17', async ({ result, stateOf, resume }) => {
      const before = await validSignatures(db(), result.orderId);
      const accountant = (await new SignerDirectory(db()).signerByLogin('demo.accountant'))!.user;
      expect(world.agent.service.status(accountant.id).unlocked).toBe(true);
      await blockUser(userDeps(world.context), { login: 'demo.accountant', actor: 'admin:test' });
      // blocking wiped the key the pipeline signs with (the agent knows it by the user id).
      expect(world.agent.service.status(accountant.id).unlocked).toBe(false);
      try {
        await resume();
        await eventually(async () => (await stateOf()) === 'awaiting_signatures', { what: 'back to awaiting signatures', timeoutMs: 45_000 });
        const rows = await db().execute<Array<{ id: string; valid: boolean; invalidated_reason: string | null }>>('select id, valid, invalidated_reason from order_signature where order_id = ? order by id', [result.orderId]);
        // The whole round: the CEO's CMS is inside the accountant's, so both are signed afresh.
        expect(rows.slice(0, 2).map((r) => [Number(r.id), r.valid])).toEqual(before.map((x) => [x.id, false]));
        expect(rows[0].invalidated_reason).toMatch(/^signer lost authority \(demo\.accountant: /);
        // Nothing reached the bank; the CEO's mandate signs again, the disabled accountant's signs nothing.
        await new Promise((r) => setTimeout(r, 1_500));
        expect(await stateOf()).toBe('awaiting_signatures');
        expect((await validSignatures(db(), result.orderId)).map((x) => x.login)).toEqual(['demo.ceo']);
        expect((await ledger()).submissions.find((x) => x.externalId === result.externalId)).toBeUndefined();
      } finally {
        await unblockUser(userDeps(world.context), { login: 'demo.accountant', actor: 'admin:test' });
        // Unblocked, the accountant unlocks the key again, as a person does after logging in.
        const keystore = world.pki.keystores.find((k) => k.name === 'gost-accountant')!;
        expect(await userDeps(world.context).signerAgent!.unlockKey(accountant.id, keystore.password)).toMatchObject({ ok: true });
      }
      // Final at the bank (the demo payer's funds run out over this file's large orders: executed or refused for funds).
      await eventually(async () => ['executed', 'rejected'].includes(await stateOf()), { what: 'final at the bank after signing afresh', timeoutMs: 45_000 });
      expect((await validSignatures(db(), result.orderId)).map((x) => x.login)).toEqual(['demo.ceo', 'demo.accountant']);
      expect((await ledger()).submissions.find((x) => x.externalId === result.externalId)?.requests).toBe(1);
    });
  });

  it('an order whose last CMS lacks a valid signer (a chain broken before the fix) is not sent: its round is signed afresh', async () => {
    await withSignedLargeOrder('erp-broken-chain', async ({ result, stateOf, payerBin, resume }) => {
      // What the race used to leave: the accountant's signature made over no CMS, so the last CMS lacks the CEO.
      const [first, second] = await validSignatures(db(), result.orderId);
      const frozen = (await loadDocuments(db(), [result.orderId])).get(result.orderId);
      const [alone] = await world.context.services.signer().signMany(second.userId, [{ orderId: result.orderId, document: frozen!.bytes, expectedBin: payerBin }]);
      if (!('cmsDer' in alone)) throw alone;
      await db().execute('update order_signature set cms = ? where id = ?', [alone.cmsDer, second.id]);

      await resume();
      // Final at the bank (the demo payer's funds run out over this file's large orders: executed or refused for funds).
      await eventually(async () => ['executed', 'rejected'].includes(await stateOf()), { what: 'final at the bank after signing afresh', timeoutMs: 45_000 });
      const rows = await db().execute<Array<{ id: string; valid: boolean; invalidated_reason: string | null }>>('select id, valid, invalidated_reason from order_signature where order_id = ? order by id', [result.orderId]);
      expect(rows.slice(0, 2).map((r) => [Number(r.id), r.valid, r.invalidated_reason])).toEqual([
        [first.id, false, 'the CMS of the newest signature does not name exactly the valid signers'],
        [second.id, false, 'the CMS of the newest signature does not name exactly the valid signers'],
      ]);
      const fresh = await validSignatures(db(), result.orderId);
      expect(fresh.map((x) => x.level)).toEqual(['first', 'second']);
      expect(parseCms(fresh[1].cms).signerInfos).toHaveLength(2);
      const entry = (await ledger()).submissions.find((x) => x.externalId === result.externalId);
      expect(entry?.requests).toBe(1);
    });
  });

  it('a poll records each order\'s own new status verbatim, an unknown one included, and moves no state until a final one or R-22', async () => {
    const trackQueue = world.context.queues.get('track');
    await trackQueue.pause();
    try {
      const taken = await intakeDemo('erp-statuses', [0, 1]);
      const ids = taken.map((t) => t.orderId);
      const rows = async () => db().execute<Array<{ id: string; state: string; bank_status: string; bank_reference: string }>>(`select id, state, bank_status, bank_reference from payment_order where id in (?, ?) order by number`, [...ids]);
      await eventually(async () => (await rows()).every((r) => r.state === 'submitted'), { what: 'both submitted', timeoutMs: 45_000 });
      // The bank reports statuses the contract does not know, one per document.
      const setStatus = async (documentId: string, status: string) =>
        expect((await fetch(`${world.config.bank.url}/_sandbox/documents/${documentId}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ status }) })).status).toBe(200);
      const [a, b] = await rows();
      await setStatus(a.bank_reference, 'currency_control');
      await setStatus(b.bank_reference, 'awaiting_funds');
      await expect(trackBatch(world.context, [a.id, b.id])).resolves.toEqual([{ poll: 'currency_control' }, { poll: 'awaiting_funds' }]);
      expect((await rows()).map((r) => [r.state, r.bank_status])).toEqual([['submitted', 'currency_control'], ['submitted', 'awaiting_funds']]);
      await setStatus(a.bank_reference, 'executed');
      await expect(trackBatch(world.context, [a.id, b.id])).resolves.toEqual([{ state: 'executed' }, { poll: 'awaiting_funds' }]);
      expect((await rows()).map((r) => [r.state, r.bank_status])).toEqual([['executed', 'executed'], ['submitted', 'awaiting_funds']]);

      // no notice of non-execution by the end of the operational day after the one the bank
      // received it: deemed executed, keeping the status the bank last reported.
      await setStatus(b.bank_reference, 'in_processing');
      const tenDaysOn = { ...world.context, clock: { now: () => new Date(Date.now() + 10 * 86_400_000) } };
      await expect(trackBatch(tenDaysOn, [b.id])).resolves.toEqual([{ state: 'deemed_executed' }]);
      expect((await rows()).map((r) => [r.state, r.bank_status])).toEqual([['executed', 'executed'], ['deemed_executed', 'in_processing']]);
      await setStatus(b.bank_reference, 'executed');
    } finally {
      await trackQueue.resume();
    }
  });

  it('R-21: one business day without a processing status (the bank says only "accepted", or does not answer) opens one incident per order; an order that had one opens none', async () => {
    const admin = sandboxAdmin();
    const trackQueue = world.context.queues.get('track');
    await trackQueue.pause();
    // The bank's own day stands still: the statuses are the ones this test sets.
    await put('/clock', { speed: 0 });
    try {
      const taken = await intakeDemo('erp-overdue', [0, 1, 2]);
      const ids = taken.map((t) => t.orderId);
      const rows = async () => db().execute<Array<{ id: string; state: string; bank_reference: string }>>(`select id, state, bank_reference from payment_order where id in (?, ?, ?) order by number`, [...ids]);
      await eventually(async () => (await rows()).every((r) => r.state === 'submitted'), { what: 'all submitted', timeoutMs: 45_000 });
      const setStatus = async (documentId: string, status: string) => expect((await put(`/documents/${documentId}`, { status })).status).toBe(200);
      const [silent, processing, unreachable] = await rows();
      await setStatus(processing.bank_reference, 'in_processing');
      const overdue = async () =>
        (await db().execute<Array<{ order_id: string; n: string; entries: number }>>(
          `select evidence->>'orderId' as order_id, count(*) as n, max(jsonb_array_length(timeline)) as entries from incident where kind = 'status_overdue' and evidence->>'orderId' in (?, ?, ?) group by 1`,
          [...ids],
        )).map((r) => [r.order_id, Number(r.n), Number(r.entries)]);
      // Within the business day: nothing yet (and the processing status is recorded).
      await expect(trackBatch(world.context, [silent.id, processing.id])).resolves.toEqual([{ poll: 'accepted' }, { poll: 'in_processing' }]);
      expect(await overdue()).toEqual([]);

      const tenDaysOn = { ...world.context, clock: { now: () => new Date(Date.now() + 10 * 86_400_000) } };
      // The bank does not answer: an incident for the order that never had a processing status, none for
      // the one that had; polled again, still one incident with one timeline entry.
      await put('/faults', { errorRate: 1 });
      for (let i = 0; i < 2; i++) {
        const outcomes = await trackBatch(tenDaysOn, [unreachable.id, processing.id]);
        for (const o of outcomes) expect(o).toBeInstanceOf(Error);
      }
      expect(await overdue()).toEqual([[unreachable.id, 1, 1]]);
      await fetch(`${admin}/faults/reset`, { method: 'POST' });

      // The bank never said more than "accepted": an incident, and the order is still deemed executed
      // . A stale "accepted" after "in_processing" (LESSONS.md 3) is not a missing status.
      await setStatus(processing.bank_reference, 'accepted');
      await expect(trackBatch(tenDaysOn, [silent.id, processing.id])).resolves.toEqual([{ state: 'deemed_executed' }, { state: 'deemed_executed' }]);
      expect((await overdue()).sort()).toEqual([[silent.id, 1, 1], [unreachable.id, 1, 1]].sort());
      const [incident] = await db().execute<Array<{ title: string; evidence: Record<string, unknown> }>>(`select title, evidence from incident where kind = 'status_overdue' and evidence->>'orderId' = ?`, [unreachable.id]);
      expect(incident.title).toMatch(/no processing status one business day after submission \(R-21\)/);
      expect(incident.evidence).toMatchObject({ orderId: unreachable.id, bankError: expect.any(String) });
    } finally {
      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await put('/clock', { speed: 1 });
      await trackQueue.resume();
    }
  });

  it('two deliveries of the submit job racing on one order send it once (claim + send lease)', async () => {
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const [result] = await intakeDemo('erp-race', [0]);
      const stateOf = async () => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [result.orderId]))[0].state;
      await eventually(async () => (await stateOf()) === 'signed', { what: 'signed', timeoutMs: 45_000 });
      // A lapsed lock hands the same work to a second worker: two jobs for one order, at once.
      await submitQueue.add(submitOrderJob.name, { orderId: result.orderId }, { jobId: `submit-${result.orderId}-second` });
      await submitQueue.resume();
      await eventually(async () => ['submitted', 'executed'].includes(await stateOf()), { what: 'submitted', timeoutMs: 45_000 });
      const entry = (await ledger()).submissions.find((s) => s.externalId === result.externalId);
      expect(entry?.requests).toBe(1);
      expect(await count('select submit_attempts as n from payment_order where id = ?', [result.orderId])).toBe(1);
      expect(await count("select count(*) as n from order_event where order_id = ? and to_state = 'submitting'", [result.orderId])).toBe(1);
      expect((await ledger()).duplicates).toBe(0);
    } finally {
      await submitQueue.resume();
    }
  });

  it('a first send the bank refuses as malformed (400) fails the order at once with the bank\'s reason, not after every retry', async () => {
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const [result] = await intakeDemo('erp-malformed', [0]);
      const row = async () =>
        (await db().execute<Array<{ state: string; last_error: string | null; failed_from: string | null; submit_attempts: number }>>('select state, last_error, failed_from, submit_attempts from payment_order where id = ?', [result.orderId]))[0];
      await eventually(async () => (await row()).state === 'signed', { what: 'signed', timeoutMs: 45_000 });
      // Stands for any request the bank finds malformed that validation let through: the requisites
      // sent with the frozen document now carry a number past the contract's 64 characters.
      await db().execute('update payment_order set number = ? where id = ?', ['9'.repeat(65), result.orderId]);
      await submitQueue.resume();
      await eventually(async () => (await row()).state === 'failed', { what: 'failed', timeoutMs: 45_000 });
      expect(await row()).toMatchObject({ failed_from: 'submitting', submit_attempts: 1, last_error: expect.stringMatching(/^CONTRACT_VIOLATION: .*INVALID_REQUEST.*requisites\.number/) });
      const [event] = await db().execute<Array<{ reason: string }>>("select reason from order_event where order_id = ? and to_state = 'failed'", [result.orderId]);
      expect(event.reason).toMatch(/refused the request as not following its contract \(HTTP 400 INVALID_REQUEST\)/);
    } finally {
      await submitQueue.resume();
    }
  });

  /**
   * A demo order signed while submission is paused; `prepare` runs on it, then its next submit is
   * refused with a code this release does not know, and submission resumes until the order is past
   * `submitting`. The faults are reset and submission resumed whatever happens.
   */
  async function refusedByUnknownCode(source: string, prepare: (orderId: string) => Promise<void> = async () => undefined) {
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const [result] = await intakeDemo(source, [0]);
      const row = async () =>
        (await db().execute<Array<{ state: string; bank_reason_code: string | null; bank_reason_text: string | null; submit_attempts: number }>>(
          'select state, bank_reason_code, bank_reason_text, submit_attempts from payment_order where id = ?',
          [result.orderId],
        ))[0];
      await eventually(async () => (await row()).state === 'signed', { what: 'signed', timeoutMs: 45_000 });
      await prepare(result.orderId);
      expect((await put('/faults', { refuse: { code: 'KBK_CLOSED_NEW', count: 1, at: 'submit' } })).ok).toBe(true);
      await submitQueue.resume();
      await eventually(async () => ['submitted', 'executed', 'rejected', 'failed'].includes((await row()).state), { what: 'past submitting', timeoutMs: 45_000 });
      const events = await db().execute<Array<{ to_state: string }>>('select to_state from order_event where order_id = ? order by id', [result.orderId]);
      const sent = (await ledger()).submissions.filter((sub) => sub.externalId === result.externalId);
      return { row: await row(), states: events.map((e) => e.to_state), sent };
    } finally {
      await fetch(`${sandboxAdmin()}/faults/reset`, { method: 'POST' });
      await submitQueue.resume();
    }
  }

  it('R-23: a submit the bank refuses with a code this release does not know ends rejected at once, in the bank\'s words, sent once', async () => {
    const { row, sent } = await refusedByUnknownCode('erp-new-refusal');
    // Before, it was sent again until its attempts ran out and ended `failed`, with 1C told the
    // payment might have been made: a payment nobody made, and nobody told to make it.
    expect(row).toMatchObject({ state: 'rejected', bank_reason_code: 'KBK_CLOSED_NEW', bank_reason_text: expect.stringContaining('KBK_CLOSED_NEW'), submit_attempts: 1 });
    expect(sent).toEqual([expect.objectContaining({ requests: 1, accepted: false })]);
  });

  it('a refusal by an unknown code after an earlier send whose outcome is unknown is not taken as final: the earlier one may be at the bank; retried with a lookup first', async () => {
    // As after a send that timed out with nothing found by the lookup: one attempt counted.
    const { row, states, sent } = await refusedByUnknownCode('erp-unknown-after-send', (id) => db().execute('update payment_order set submit_attempts = 1 where id = ?', [id]).then(() => undefined));
    expect(row.state).not.toBe('rejected');
    expect(states).not.toContain('rejected');
    expect(sent).toEqual([expect.objectContaining({ requests: 2, accepted: true })]);
  });

  it('R-24: an order at the bank is never given up while the bank fails its status calls; once it answers, the order goes on with nobody retrying it', async () => {
    const admin = sandboxAdmin();
    const incidents = async () => db().execute<Array<{ status: string; evidence: { code: string } }>>("select status, evidence from incident where kind = 'status_polls_failing'");
    await db().execute("delete from incident where kind = 'status_polls_failing'");
    await put('/clock', { speed: 0 }); // the bank keeps the document "accepted"
    try {
      const [result] = await intakeDemo('erp-outage', [1]);
      const row = async () => (await db().execute<Array<{ state: string; failed_from: string | null }>>('select state, failed_from from payment_order where id = ?', [result.orderId]))[0];
      await eventually(async () => (await row()).state === 'submitted', { what: 'submitted', timeoutMs: 45_000 });
      await put('/faults', { errorRate: 1 }); // every status call now fails
      // Far more failed polls than the job's 2 attempts: one incident says so, the order stays at the bank's.
      await eventually(async () => (await incidents()).length === 1, { what: 'the status_polls_failing incident', timeoutMs: 30_000 });
      expect(await incidents()).toMatchObject([{ status: 'open', evidence: { code: 'TRANSIENT' } }]);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(await row()).toEqual({ state: 'submitted', failed_from: null });

      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await put('/clock', { speed: 1 });
      await eventually(async () => (await row()).state === 'executed', { what: 'executed once the bank answers', timeoutMs: 45_000 });
      expect((await ledger()).submissions.find((s) => s.externalId === result.externalId)?.requests).toBe(1);
    } finally {
      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await put('/clock', { speed: 1 });
    }
  });

  it('an order whose stage exhausts its retries (the bank answering outside its contract) becomes failed with its last error; retry sends it on without a second submission', async () => {
    const admin = sandboxAdmin();
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const [result] = await intakeDemo('erp-dead', [1]);
      const row = async () => (await db().execute<Array<{ state: string; last_error: string | null; failed_from: string | null }>>('select state, last_error, failed_from from payment_order where id = ?', [result.orderId]))[0];
      await eventually(async () => (await row()).state === 'signed', { what: 'signed', timeoutMs: 45_000 });
      // Write-back jobs are removed once done: count them as they are added.
      const connection = world.context.redis.duplicate();
      connections.push(connection);
      const writebackEvents = new QueueEvents('writeback', { connection, prefix: env.config.redis.prefix });
      await writebackEvents.waitUntilReady();
      // When each write-back asked for runs: the end of its window, `at`, the last part of its id.
      // A request whose window's job exists already (asked for earlier by another change, say a
      // statement fetch, maybe before this listener) adds nothing: BullMQ says `duplicated`.
      const runsAt: number[] = [];
      const asked = ({ jobId }: { jobId: string }) => {
        if (jobId.startsWith('writeback-')) runsAt.push(Number(jobId.split('-').pop()));
      };
      writebackEvents.on('added', asked);
      writebackEvents.on('duplicated', asked);
      await put('/faults', { offContractNext: 1000 }); // every request now gets an answer outside the contract
      await submitQueue.resume();
      await eventually(async () => (await row()).state === 'failed', { what: 'failed', timeoutMs: 60_000 });
      expect(await row()).toMatchObject({ failed_from: 'submitting', last_error: expect.stringMatching(/^CONTRACT_VIOLATION: .*HTTP 409, OFF_CONTRACT/) });
      // The ERP hears of it now (a write-back that runs after the failure), not at the next statement
      // fetch: one asked for then, or one asked for a moment before that runs after it (changes
      // within 2 s share one write-back, run at the end of their window, `at`).
      const [{ at }] = await db().execute<Array<{ at: Date | string }>>("select at from order_event where order_id = ? and to_state = 'failed'", [result.orderId]);
      const failedAt = new Date(at).getTime();
      // Read from the added events, not from the queue: a write-back asked for just before the
      // failure, in the same window, may already have run (and been removed) by the time we look.
      const runsAfterFailure = async () => runsAt.some((at) => at >= failedAt);
      await eventually(runsAfterFailure, { what: 'a write-back that runs after the order failed' });
      await writebackEvents.close();
      // An order that failed while it was being sent may be at the bank: its view says where it failed.
      expect(orderView(await db().findOneOrFail(PaymentOrder, { id: result.orderId }))).toMatchObject({ state: 'failed', failedFrom: 'submitting' });

      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      expect(await retryFailedOrder(db(), world.context.queues, result.orderId, 'test')).toBe('submitting');
      await eventually(async () => (await row()).state === 'executed', { what: 'executed after retry', timeoutMs: 45_000 });
      // The bank refused the failed sends with its 409s; the retry's is the one it took, and nothing came after it.
      expect((await ledger()).submissions.find((s) => s.externalId === result.externalId)).toMatchObject({ accepted: true, afterAccepted: 0 });
    } finally {
      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await submitQueue.resume();
    }
  });

  it('a bank outage (every call 500) outlasting the attempts: the order waits in submitting, one incident says so, and once the bank answers it is sent once', async () => {
    const admin = sandboxAdmin();
    const submitQueue = world.context.queues.get('submit');
    await submitQueue.pause();
    try {
      const [result] = await intakeDemo('erp-outage', [1]);
      const row = async () => (await db().execute<Array<{ state: string; last_error: string | null }>>('select state, last_error from payment_order where id = ?', [result.orderId]))[0];
      await eventually(async () => (await row()).state === 'signed', { what: 'signed', timeoutMs: 45_000 });
      await put('/faults', { errorRate: 1 });
      await submitQueue.resume();
      const incident = async () => (await db().execute<Array<{ status: string; title: string }>>("select status, title from incident where dedupe_key = 'submits_failing'"))[0];
      // Well past queue.attempts (2) tries: before, the order ended `failed` here, to be retried by hand.
      await eventually(async () => (await incident())?.status === 'open', { what: 'the submits_failing incident', timeoutMs: 45_000 });
      expect((await incident()).title).toMatch(/^The bank does not take payment orders \((TRANSIENT|OUTCOME_UNKNOWN), HTTP 500, \d+ tries in a row for one order\): orders wait in submitting and are sent/);
      await new Promise((r) => setTimeout(r, 1_500));
      expect((await row()).state).toBe('submitting');
      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await eventually(async () => (await row()).state === 'executed', { what: 'executed once the bank answers', timeoutMs: 90_000 });
      const sent = (await ledger()).submissions.filter((s) => s.externalId === result.externalId);
      expect(sent.filter((s) => s.accepted)).toHaveLength(1);
      expect(sent.find((s) => s.accepted)).toMatchObject({ afterAccepted: 0 });
    } finally {
      await fetch(`${admin}/faults/reset`, { method: 'POST' });
      await submitQueue.resume();
    }
  });

  it('R-31: with the pair marked revoked a poll sends nothing to the bank (not even with its token got before) and waits, spending no attempt; set again, it goes on', async () => {
    const admin = sandboxAdmin();
    const stats = async () => (await (await fetch(`${admin}/stats`)).json()) as Record<string, number>;
    const trackQueue = world.context.queues.get('track');
    await trackQueue.pause();
    const vault = { em: db(), clock: world.context.clock, box: SecretBox.fromConfig(world.context.config) };
    try {
      const [taken] = await intakeDemo('erp-revoked', [0]);
      const state = async () => (await db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [taken.orderId]))[0].state;
      await eventually(async () => (await state()) === 'submitted', { what: 'submitted', timeoutMs: 45_000 });

      // As the pipeline does when the bank answers CREDENTIALS_REVOKED, or a lockdown of the credentials.
      await markCredentialsRevoked(vault, { reason: 'the bank answered CREDENTIALS_REVOKED', actor: 'test' });
      await new Promise((resolve) => setTimeout(resolve, 1_100)); // the vault's version is read at most once a second
      const before = await stats();
      await expect(trackBatch(world.context, [taken.orderId])).resolves.toEqual([{ waitMs: 60_000, why: 'CREDENTIALS_UNAVAILABLE (CREDENTIALS_REVOKED)' }]);
      expect(await stats()).toEqual(before);
      expect(await state()).toBe('submitted');

      // A pair the bank refuses (a mistyped secret stored): the order at the bank is not failed
      // through its poll's attempts (its ERP user might pay it again); an incident says why it waits.
      await setCredentials(vault, { clientId: DEMO.clientId, clientSecret: 'not-the-bank-secret', actor: 'test' });
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await expect(trackBatch(world.context, [taken.orderId])).resolves.toEqual([{ waitMs: 60_000, why: 'AUTH' }]);
      expect(await state()).toBe('submitted');
      expect(await count("select count(*) as n from incident where kind = 'credentials_revoked' and status = 'open' and title like '%(401)%'", [])).toBe(1);

      await setCredentials(vault, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'test' });
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const outcome = await trackBatch(world.context, [taken.orderId]);
      expect(outcome).not.toEqual([expect.objectContaining({ why: expect.anything() })]);
      expect((await stats()).statusRequests).toBeGreaterThan(before.statusRequests);
    } finally {
      await setCredentials(vault, { clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, actor: 'test' });
      await trackQueue.resume();
    }
  });
});
