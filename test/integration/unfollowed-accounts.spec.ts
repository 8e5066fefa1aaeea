import type { Job } from 'bullmq';
import { resolveIncident } from '../../connector/incidents/incident.service';
import { ACCOUNT_NOT_FOLLOWED, reportUnfollowedAccounts } from '../../connector/statements/unfollowed-accounts';
import { handleScheduleStatements, type StatementsContext } from '../../queue/jobs/fetch-statement.job';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { startHarness, type Harness } from '../../adapters/bank/test/sandbox.harness';
import { appWorld } from '../support/app-world';

/**
 * a debit nobody ordered is seen only on accounts whose statements are fetched. The
 * scheduler compares, once a day, the accounts the bank lists for the Client ID (the real client
 * against the real sandbox, `GET /accounts`) with those it follows, and says which ones it does
 * not: on real PostgreSQL and Redis.
 */
describe('accounts the bank lists but the connector does not watch', () => {
  const world = appWorld('unfollowed', { CONNECTOR_FAKE_NOW: '2026-11-25T04:00:00Z' }, { quiet: true });
  let h: Harness;
  const job = { id: 'statements-schedule', attemptsMade: 0 } as unknown as Job;
  const DAY1 = new Date('2026-11-25T04:00:00Z');
  const DAY2 = new Date('2026-11-26T04:00:00Z');

  beforeAll(async () => {
    // The test client's pair belongs to the demo company: the bank lists its three accounts, not its other customers'.
    h = await startHarness({}, { clientIinBin: DEMO.payerBin });
  });
  beforeEach(async () => {
    // The admin watches the main account only.
    world.env.config.pipeline.accounts = [DEMO.payerIban];
    await world.context.orm.em.fork().execute('delete from incident where kind = ?', [ACCOUNT_NOT_FOLLOWED]);
    await h.admin('POST', '/faults/reset');
  });
  afterEach(async () => {
    await world.context.queues.get('statements').obliterate({ force: true });
    await world.context.queues.get('writeback').obliterate({ force: true });
  });
  afterAll(async () => {
    await h?.stop();
    await h?.drop();
  });

  const db = () => world.db();
  type Row = { id: string; status: string; severity: string; title: string; evidence: Record<string, unknown>; resolved_by: string | null; dedupe_key: string };
  const incidents = () => db().execute<Row[]>('select id, status, severity, title, evidence, resolved_by, dedupe_key from incident where kind = ? order by dedupe_key', [ACCOUNT_NOT_FOLLOWED]);
  const accountRequests = async () => (await h.admin<{ accountRequests: number }>('GET', '/stats')).accountRequests;
  /** A scheduler process of its own (its once-a-day look not yet taken), whose clock the test moves. */
  const scheduler = (at = DAY1) => {
    const clock = { at };
    const context: StatementsContext = { ...world.context, clock: { now: () => clock.at }, statementSource: h.client() };
    return { context, clock };
  };
  const schedule = (context: StatementsContext) => handleScheduleStatements({}, context, job) as Promise<{ accounts: number; jobs: number }>;

  it('opens one incident per listed account not on pipeline.accounts, naming it and how to watch it; the followed one and another customer\'s get none', async () => {
    const listed = await h.client().listAccounts();
    expect(listed.map((a) => a.iban).sort()).toEqual([DEMO.payerIban, DEMO.arrestedIban, DEMO.poorIban].sort());

    const result = await schedule(scheduler().context);
    // The statements of the followed account are scheduled as before.
    expect(result).toEqual({ accounts: 1, jobs: 2 });
    const open = await incidents();
    expect(open.map((i) => i.evidence.account).sort()).toEqual([DEMO.arrestedIban, DEMO.poorIban].sort());
    for (const incident of open) {
      expect(incident).toMatchObject({ status: 'open', severity: 'medium', evidence: { followed: [DEMO.payerIban], followedFrom: 'pipeline.accounts' } });
      expect(incident.title).toContain(String(incident.evidence.account));
      expect(incident.title).toContain('add it to pipeline.accounts');
    }
    expect(open.map((i) => i.evidence.account)).not.toContain(DEMO.internalBeneficiaryIban);
  });

  it('asks the bank once a day per process and opens nothing twice; one a person resolved stays resolved; the next day asks again', async () => {
    const { context, clock } = scheduler();
    const before = await accountRequests();
    await schedule(context);
    await schedule(context);
    // The first look of this process asked once; the second, the same day, did not ask.
    expect((await accountRequests()) - before).toBe(1);
    expect(await incidents()).toHaveLength(2);

    const poor = (await incidents()).find((i) => i.evidence.account === DEMO.poorIban)!;
    await resolveIncident(db(), { id: poor.id, actor: 'cli:admin', note: 'the reserve account is reconciled by the accountant by hand' });
    clock.at = DAY2;
    await schedule(context);
    expect((await accountRequests()) - before).toBe(2);
    const after = await incidents();
    expect(after).toHaveLength(2);
    expect(after.find((i) => i.id === poor.id)).toMatchObject({ status: 'resolved', resolved_by: 'cli:admin' });
    expect(after.filter((i) => i.status === 'open').map((i) => i.evidence.account)).toEqual([DEMO.arrestedIban]);
  });

  it('closes an account\'s incident itself once the admin puts the account on pipeline.accounts', async () => {
    await schedule(scheduler().context);
    expect((await incidents()).filter((i) => i.status === 'open')).toHaveLength(2);
    world.env.config.pipeline.accounts = [DEMO.payerIban, DEMO.arrestedIban];
    await schedule(scheduler().context);
    const after = await incidents();
    expect(after.find((i) => i.evidence.account === DEMO.arrestedIban)).toMatchObject({ status: 'resolved', resolved_by: 'worker' });
    expect(after.find((i) => i.evidence.account === DEMO.poorIban)?.status).toBe('open');
  });

  it('without pipeline.accounts: one incident says statements follow the orders and names the accounts not watched now; closed once the list is given', async () => {
    world.env.config.pipeline.accounts = [];
    // No order in this database: nothing is followed yet.
    const result = await schedule(scheduler().context);
    expect(result).toEqual({ accounts: 0, jobs: 0 });
    await schedule(scheduler().context);
    const [notice, ...others] = await incidents();
    expect(others).toEqual([]);
    expect(notice).toMatchObject({ status: 'open', severity: 'medium', evidence: { followed: [], followedFrom: 'accounts with recent orders' } });
    expect((notice.evidence.accounts as Array<{ account: string }>).map((a) => a.account).sort()).toEqual([DEMO.payerIban, DEMO.arrestedIban, DEMO.poorIban].sort());
    expect(notice.title).toContain('Name every account to watch in pipeline.accounts');

    world.env.config.pipeline.accounts = [DEMO.payerIban, DEMO.arrestedIban, DEMO.poorIban];
    await schedule(scheduler().context);
    expect(await incidents()).toEqual([expect.objectContaining({ id: notice.id, status: 'resolved', resolved_by: 'worker' })]);
  });

  it('a closed account cannot be debited: it opens nothing (a bank that spells the status or the IBAN its own way too)', async () => {
    const closed = 'KZ12998CTB0000000099';
    const bank = {
      listAccounts: async () => [
        { iban: closed, currency: 'KZT', status: 'CLOSED' },
        // The followed account, printed in groups and in lower case.
        { iban: DEMO.payerIban.toLowerCase().replace(/(.{4})/g, '$1 ').trim(), currency: 'KZT', status: 'active' },
      ],
    };
    const result = await reportUnfollowedAccounts(db(), bank, [DEMO.payerIban], { configured: true, now: DAY1 });
    expect(result).toEqual({ listed: 2, unfollowed: [], opened: [], resolved: [] });
    expect(await incidents()).toEqual([]);
  });

  it('an empty list from the bank tells nothing: no incident is closed on it', async () => {
    await schedule(scheduler().context);
    expect((await incidents()).filter((i) => i.status === 'open')).toHaveLength(2);
    const result = await reportUnfollowedAccounts(db(), { listAccounts: async () => [] }, [DEMO.payerIban], { configured: true, now: DAY1 });
    expect(result).toEqual({ listed: 0, unfollowed: [], opened: [], resolved: [] });
    expect((await incidents()).filter((i) => i.status === 'open')).toHaveLength(2);
  });

  it('a bank that does not answer the list holds up no statement and opens nothing; the next look asks again', async () => {
    await h.admin('PUT', '/faults', { fail5xxNext: 100 });
    const context: StatementsContext = { ...world.context, statementSource: h.client({ retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }) };
    const result = await schedule(context);
    expect(result).toEqual({ accounts: 1, jobs: 2 });
    expect(await world.context.queues.get('statements').getJobCounts('waiting')).toMatchObject({ waiting: 2 });
    expect(await incidents()).toHaveLength(0);

    await h.admin('POST', '/faults/reset');
    await schedule(context);
    expect((await incidents()).map((i) => i.evidence.account).sort()).toEqual([DEMO.arrestedIban, DEMO.poorIban].sort());
  });
});
