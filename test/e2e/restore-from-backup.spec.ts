import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { eventually, type TestEnv } from '../support/test-env';
import type { AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { REGISTERED_JOBS } from '../../queue/jobs';
import { handleSubmitOrder } from '../../queue/jobs/submit-order.job';
import { fetchAndReconcile } from '../../queue/jobs/fetch-statement.job';
import type { World } from '../../connector/demo/pipeline-world';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { fakeSubmitJob, proofOrders, sandboxAdmin, startProofWorld, type Ledger } from '../support/pipeline-world';

/**
 * Disaster recovery (README "Restoring from a backup"): the machine dies, last night's pg_dump is
 * restored, the connector starts again. The bank (the sandbox, in its own schema, which the
 * restore does not touch) still holds everything sent since the dump. The connector's database is
 * dumped and restored with pg_dump / pg_restore, as the admin does.
 */
const SOURCE = 'onec';

describe('a restore from last night\'s dump', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let workers: RunningWorkers | undefined;

  beforeAll(async () => {
    ({ env, context, world } = await startProofWorld('restore'));
  }, 120_000);

  afterAll(async () => {
    await workers?.close(5_000);
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  const db = () => context.orm.em.fork();
  const dumpFile = () => join(env.workDir, 'connector.dump');
  // The connector's tables only: the bank's schema is the bank's, it survives the machine.
  const dump = () => execFileSync('pg_dump', ['--format=custom', '--schema=public', `--file=${dumpFile()}`, env.config.database.url]);
  const restore = () => execFileSync('pg_restore', ['--clean', '--if-exists', '--schema=public', `--dbname=${env.config.database.url}`, dumpFile()]);

  const startStages = () => {
    workers ??= startWorkers(context, context.redis, REGISTERED_JOBS.filter((j) => j.definition.queue !== 'submit'));
  };
  const stopStages = async () => {
    await workers?.close(5_000);
    workers = undefined;
  };

  const orderRow = async (orderId: string) =>
    (await db().execute<Array<{ state: string; external_id: string; bank_reference: string | null; last_error: string | null }>>(
      'select state, external_id, bank_reference, last_error from payment_order where id = ?',
      [orderId],
    ))[0];

  async function signed(order: ReturnType<typeof proofOrders>[number]): Promise<string> {
    startStages();
    const [result] = await intakeOrders(db(), SOURCE, [{ order }], bullmqIntakePort(context.queues), { actor: 'proof' });
    await eventually(async () => (await orderRow(result.orderId))?.state === 'signed', { timeoutMs: 30_000, what: 'the order to be signed' });
    return result.orderId;
  }

  /** A dump is taken; then an order is taken in, sent and executed by the bank (its statement has the debit). */
  async function paidAfterTheDump(prefix: string) {
    dump();
    const [order] = proofOrders(`${prefix}${Date.now().toString(36)}`, 1);
    const lost = await signed(order);
    await expect(handleSubmitOrder({ orderId: lost }, context, fakeSubmitJob(lost))).resolves.toMatchObject({ state: 'submitted' });
    const lostRow = await orderRow(lost);
    const statusAtBank = async () =>
      (await sandboxAdmin<{ documents: Array<{ externalId: string; status: string }> }>(world.admin, '/documents')).documents.find((d) => d.externalId === lostRow.external_id)?.status;
    for (let i = 0; i < 5 && (await statusAtBank()) !== 'executed'; i++) await sandboxAdmin(world.admin, '/clock/step', { method: 'POST' });
    expect(await statusAtBank()).toBe('executed');
    return { order, lost, lostRow };
  }

  it('(a) an order signed in the dump, accepted by the bank after it: sent again under its external id and recognised: one document at the bank, its reference kept', async () => {
    const [order] = proofOrders(`A${Date.now().toString(36)}`, 1);
    const early = await signed(order);
    await stopStages();
    dump();
    await expect(handleSubmitOrder({ orderId: early }, context, fakeSubmitJob(early))).resolves.toMatchObject({ state: 'submitted' });
    const before = await orderRow(early);

    restore();
    expect((await orderRow(early)).state).toBe('signed');
    await expect(handleSubmitOrder({ orderId: early }, context, fakeSubmitJob(early))).resolves.toMatchObject({ state: 'submitted' });
    const after = await orderRow(early);
    expect(after.bank_reference).toBe(before.bank_reference);
    const documents = (await sandboxAdmin<{ documents: Array<{ externalId: string }> }>(world.admin, '/documents')).documents;
    expect(documents.filter((d) => d.externalId === before.external_id)).toHaveLength(1);
    const ledger = await sandboxAdmin<Ledger>(world.admin, '/submissions');
    // One document, accepted once; the resend after the restore is answered from it (the ledger
    // counts it as a request after acceptance: the restored order had no attempt to look up after).
    expect(ledger.submissions.filter((s) => s.externalId === before.external_id).map((s) => [s.accepted, s.requests])).toEqual([[true, 2]]);
  }, 180_000);

  it('(b) an order made and paid after the dump, sent again by 1C under a new external id: not paid twice, not called refused, and its debit confirms it', async () => {
    const { order, lost, lostRow } = await paidAfterTheDump('R');

    // The machine dies; the dump is restored; 1C's export (kept in archive/, dropped in again) or
    // the ERP's retried POST brings the same document back: a new order, a new external id.
    await stopStages();
    restore();
    expect(await orderRow(lost)).toBeUndefined();
    const again = await signed(order);
    const againRow = await orderRow(again);
    expect(againRow.external_id).not.toBe(lostRow.external_id);

    const outcome = await handleSubmitOrder({ orderId: again }, context, fakeSubmitJob(again));
    // The bank has that document (payer, number, date) already: nothing is paid twice...
    const ledger = await sandboxAdmin<Ledger>(world.admin, '/submissions');
    const documents = (await sandboxAdmin<{ documents: Array<{ externalId: string }> }>(world.admin, '/documents')).documents;
    expect(documents.filter((d) => [lostRow.external_id, againRow.external_id].includes(d.externalId)).map((d) => d.externalId)).toEqual([lostRow.external_id]);
    expect(ledger.submissions.filter((s) => s.document === `${DEMO.payerIban}/${order.number}/${order.date}`).map((s) => s.accepted)).toEqual([true]);
    // ...and the order is not told to 1C as refused by the bank (it was paid: 1C would pay it again):
    // it waits for a person, with an incident saying why.
    expect(outcome).toMatchObject({ state: 'failed' });
    const now = await orderRow(again);
    expect(now.state).toBe('failed');
    expect(now.last_error).toContain('DUPLICATE_DOCUMENT');
    const incidents = await db().execute<Array<{ kind: string; status: string; title: string }>>("select kind, status, title from incident where kind = 'duplicate_document'");
    expect(incidents).toEqual([expect.objectContaining({ status: 'open', title: expect.stringContaining(order.number) })]);

    // (c) The statement's debit of the document names the lost external id, but the document's
    // number, date, amount and beneficiary: it confirms the order, no erroneous execution, no lockdown.
    const day = order.date;
    await fetchAndReconcile(context, DEMO.payerIban, day, day);
    expect((await orderRow(again)).state).toBe('executed');
    const alarms = await db().execute<Array<{ kind: string }>>("select kind from incident where kind in ('execution_mismatch', 'unexplained_debit', 'lockdown')");
    expect(alarms).toEqual([]);
  }, 180_000);

  it('(b) the same, with the missed day fetched before 1C sends the document again (the worker fetches at start): the debit is unexplained until then, and the duplicate order is confirmed by it at once', async () => {
    const { order, lostRow } = await paidAfterTheDump('S');

    await stopStages();
    restore();
    // The restored connector fetches the day first: a debit no order explains (the README says so).
    await fetchAndReconcile(context, DEMO.payerIban, order.date, order.date);
    const debit = await db().execute<Array<{ match_kind: string }>>('select match_kind from statement_line where external_id = ?', [lostRow.external_id]);
    expect(debit).toEqual([{ match_kind: 'unexplained' }]);

    const again = await signed(order);
    await expect(handleSubmitOrder({ orderId: again }, context, fakeSubmitJob(again))).resolves.toMatchObject({ state: 'failed' });
    // No later fetch needed: the stored debit confirms the order it is.
    expect((await orderRow(again)).state).toBe('executed');
    const linked = await db().execute<Array<{ match_kind: string; order_id: string }>>('select match_kind, order_id from statement_line where external_id = ?', [lostRow.external_id]);
    expect(linked).toEqual([{ match_kind: 'order', order_id: again }]);
  }, 180_000);
});
