import { trackBatch } from '../../queue/jobs/track-order.job';
import type { JobContext } from '../../queue/job-context';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from '../lockdown/lockdown.harness';

/**
 * Stage 5 (LESSONS.md 3, R-21): a status answer that carries our document id under another
 * external id, or our external id under another document id, is about some other document (a
 * bank mixing its answers up): it must not move our order, whatever it says. Real pipeline (the
 * workers, the signer agent, PostgreSQL, Redis) against the bank sandbox, whose `mixStatus`
 * switch makes it answer status requests with those ids while it executes our document.
 */
describe('a status answer about another document moves nothing (real sandbox)', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('track_foreign_status');
  }, 120_000);
  afterAll(async () => {
    await world?.admin('POST', '/faults/reset').catch(() => undefined);
    await world?.close();
  });

  const orderRow = async (id: string) =>
    (await world.context.orm.em.fork().execute<Array<{ state: string; bank_status: string | null; bank_reference: string | null; external_id: string }>>('select state, bank_status, bank_reference, external_id from payment_order where id = ?', [id]))[0];
  const incidentsOf = (id: string) =>
    world.context.orm.em.fork().execute<Array<{ kind: string; evidence: Record<string, unknown> }>>("select kind, evidence from incident where evidence->>'orderId' = ? order by opened_at", [id]);
  /** Waits until the workers asked the bank for statuses `n` more times. */
  const morePolls = async (n: number) => {
    const from = world.sandbox.stats.statusRequests;
    await eventually(async () => (world.sandbox.stats.statusRequests >= from + n ? true : null), { timeoutMs: 20_000, what: `${n} more status polls` });
  };

  it('our document id under another external id, then our external id under another document id: the order stays submitted while the bank executed it; one incident; no status counts (R-21); the true answer settles it', async () => {
    // Our document id, someone else's external id.
    await world.admin('PUT', '/faults', { mixStatus: { count: 10_000, externalId: 'someone-elses-order' } });
    await world.unlock('ceo');
    world.startWorkers();
    const [id] = await world.intake(['TS-MIX']);
    const raised = await eventually(async () => (await incidentsOf(id)).find((i) => i.kind === 'bank_status_mismatch') ?? null, { timeoutMs: 30_000, what: 'the mismatch incident' });
    const { external_id: externalId, bank_reference: documentId } = await orderRow(id);
    expect(raised.evidence).toMatchObject({ orderId: id, bankReference: documentId, answered: { documentId, externalId: 'someone-elses-order' } });

    // The bank executes our document meanwhile (its lookup by external id is not mixed up)...
    const bank = world.context.services.bank();
    await eventually(async () => ((await bank.lookup(externalId)).status === 'executed' ? true : null), { timeoutMs: 20_000, what: 'executed at the bank' });
    // ...and every further answer says "executed" about a document that is not ours by its external id.
    await morePolls(2);
    expect(await orderRow(id)).toMatchObject({ state: 'submitted', bank_status: 'accepted' });

    // The other way round: our external id, another document id.
    await world.admin('PUT', '/faults', { mixStatus: { count: 10_000, documentId: 'DOC-NOT-OURS' } });
    await morePolls(2);
    expect(await orderRow(id)).toMatchObject({ state: 'submitted', bank_status: 'accepted' });
    // One incident for the order, not one per poll.
    expect((await incidentsOf(id)).map((i) => i.kind)).toEqual(['bank_status_mismatch']);

    // A foreign answer is no status: a business day on, the order is overdue as if the bank had not answered.
    const later: JobContext = { ...world.context, clock: { now: () => new Date(Date.now() + 5 * 86_400_000) } };
    const [outcome] = await trackBatch(later, [id]);
    expect(outcome).toMatchObject({ why: expect.stringMatching(/^CONTRACT_VIOLATION/) });
    expect(await orderRow(id)).toMatchObject({ state: 'submitted', bank_status: 'accepted' });
    expect((await incidentsOf(id)).map((i) => [i.kind, i.evidence.bankError])).toEqual([
      ['bank_status_mismatch', undefined],
      ['status_overdue', 'CONTRACT_VIOLATION'],
    ]);

    // The bank answers about our document again: the poll that never gave up settles it.
    await world.admin('POST', '/faults/reset');
    await eventually(async () => ((await orderRow(id)).state === 'executed' ? true : null), { timeoutMs: 30_000, what: 'executed once the answers are ours' });
    const ledger = await world.ledger();
    expect(ledger.submissions.filter((s) => s.externalId === externalId)).toMatchObject([{ requests: 1, accepted: true }]);
  }, 90_000);
});
