import type { Job } from 'bullmq';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { resolveIncident } from '../../connector/incidents/incident.service';
import { ACCOUNT_NOT_FOLLOWED, reportUnfollowedAccounts } from '../../connector/statements/unfollowed-accounts';
import { handleScheduleStatements, type StatementsContext } from '../../queue/jobs/fetch-statement.job';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { startHarness, type Harness } from '../../adapters/bank/test/sandbox.harness';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * a debit nobody ordered is seen only on accounts whose statements are fetched. The
 * scheduler compares, once a day, the accounts the bank lists for the Client ID (the real client
 * against the real sandbox, `GET /accounts`) with those it follows, and opens an incident for each
 * one it does not: on real PostgreSQL and Redis.
 */
describe('accounts the bank lists but the connector does not watch', () => {
  let env: TestEnv;
  let app: AppContext;
  let h: Harness;
  const job = { id: 'statements-schedule', attemptsMade: 0 } as unknown as Job;

  beforeAll(async () => {
    env = await createTestEnv('unfollowed', { CONNECTOR_FAKE_NOW: '2026-11-25T04:00:00Z' });
    // The admin watches the main account only.
    env.config.pipeline.accounts = [DEMO.payerIban];
    app = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    // The test client's pair belongs to the demo company: the bank lists its three accounts, not its other customers'.
    h = await startHarness({}, { clientIinBin: DEMO.payerBin });
  });
  afterAll(async () => {
    await app?.close();
    await h?.stop();
    await h?.drop();
    await env?.cleanup();
  });

  const db = () => app.orm.em.fork();
  const incidents = () =>
    db().execute<Array<{ id: string; status: string; severity: string; title: string; evidence: Record<string, unknown> }>>('select id, status, severity, title, evidence from incident where kind = ? order by title', [ACCOUNT_NOT_FOLLOWED]);
  const accountRequests = async () => (await h.admin<{ accountRequests: number }>('GET', '/stats')).accountRequests;
  /** A scheduler process of its own: its once-a-day look has not run yet. */
  const scheduler = (): StatementsContext => ({ ...app, statementSource: h.client() });
  const schedule = (context: StatementsContext) => handleScheduleStatements({}, context, job) as Promise<{ accounts: number; jobs: number }>;

  afterEach(async () => {
    await app.queues.get('statements').obliterate({ force: true });
    await app.queues.get('writeback').obliterate({ force: true });
  });

  it('opens one incident per listed account not followed, naming it and how to watch it; the followed one and another customer\'s get none', async () => {
    const listed = await h.client().listAccounts();
    expect(listed.map((a) => a.iban).sort()).toEqual([DEMO.payerIban, DEMO.arrestedIban, DEMO.poorIban].sort());

    const result = await schedule(scheduler());
    // The statements of the followed account are scheduled as before.
    expect(result.accounts).toBe(1);
    const open = await incidents();
    expect(open.map((i) => i.evidence.account).sort()).toEqual([DEMO.arrestedIban, DEMO.poorIban].sort());
    for (const incident of open) {
      expect(incident).toMatchObject({ status: 'open', severity: 'medium', evidence: { followed: [DEMO.payerIban], followedFrom: 'pipeline.accounts' } });
      expect(incident.title).toContain(String(incident.evidence.account));
      expect(incident.title).toContain('add it to pipeline.accounts');
    }
    expect(open.map((i) => i.evidence.account)).not.toContain(DEMO.internalBeneficiaryIban);
  });

  it('asks the bank once a day per process, and opens nothing twice; one a person resolved stays resolved', async () => {
    const context = scheduler();
    const before = await accountRequests();
    await schedule(context);
    await schedule(context);
    // The first look of this process asked once; the second, the same day, did not ask.
    expect((await accountRequests()) - before).toBe(1);
    const open = await incidents();
    expect(open).toHaveLength(2);

    const poor = open.find((i) => i.evidence.account === DEMO.poorIban)!;
    await resolveIncident(db(), { id: poor.id, actor: 'cli:admin', note: 'the reserve account is reconciled by the accountant by hand' });
    await schedule(scheduler());
    const after = await incidents();
    expect(after).toHaveLength(2);
    expect(after.find((i) => i.id === poor.id)?.status).toBe('resolved');
    expect(after.filter((i) => i.status === 'open').map((i) => i.evidence.account)).toEqual([DEMO.arrestedIban]);
  });

  it('a closed account cannot be debited: it opens nothing (a bank that spells the status its own way too)', async () => {
    const closed = 'KZ12998CTB0000000099';
    const bank = { listAccounts: async () => [{ iban: closed, currency: 'KZT', status: 'CLOSED' }, { iban: DEMO.payerIban, currency: 'KZT', status: 'active' }] };
    const result = await reportUnfollowedAccounts(db(), bank, [DEMO.payerIban], { configured: true, now: new Date() });
    expect(result).toEqual({ listed: 2, unfollowed: [], opened: [] });
    expect((await incidents()).map((i) => i.evidence.account)).not.toContain(closed);
  });

  it('a bank that does not answer the list holds up no statement and opens nothing; the next look asks again', async () => {
    await db().execute('delete from incident where kind = ?', [ACCOUNT_NOT_FOLLOWED]);
    await h.admin('PUT', '/faults', { fail5xxNext: 100 });
    const context: StatementsContext = { ...app, statementSource: h.client({ retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }) };
    const result = await schedule(context);
    expect(result).toMatchObject({ accounts: 1, jobs: 2 });
    expect(await incidents()).toHaveLength(0);

    await h.admin('POST', '/faults/reset');
    await schedule(context);
    expect((await incidents()).map((i) => i.evidence.account).sort()).toEqual([DEMO.arrestedIban, DEMO.poorIban].sort());
  });
});
