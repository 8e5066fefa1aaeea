import { networkInterfaces } from 'node:os';
import { Client } from 'pg';
import { buildProgram } from '../../../connector/cli/main';
import { DEMO, loadSandboxConfig } from './sandbox.config';
import { isLoopbackHost, Sandbox, startSandbox } from './sandbox.server';
import { sampleOrder } from '../test/fixtures';
import { startHarness, TEST_DATABASE_URL, type Harness } from '../test/sandbox.harness';
import { checkStatementBalance } from '../../../connector/statements/statement.model';

/** The sandbox on its own: bad input, the admin API's loopback rule, the day clock, its schema. */
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ clock: { speed: 0, startAt: '2026-11-25T04:00:00Z', acceptedToProcessingMs: 60_000, processingToFinalMs: 60_000, tickMs: 50 } });
});
afterAll(async () => {
  await h.stop();
  await h.drop();
});

async function call(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const headers: Record<string, string> = { ...(init.headers as Record<string, string>) };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  const res = await fetch(`${h.url}${path}`, { ...init, headers });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function token(): Promise<string> {
  const r = await call('/api/v1/oauth/token', {
    method: 'POST',
    headers: { authorization: `Basic ${Buffer.from(`test-client:${h.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return r.body.access_token as string;
}

describe('bad input gets contract errors, never a crash', () => {
  it('answers {code,message} for broken JSON, missing fields, bad base64, an unknown version or path', async () => {
    const t = await token();
    const json = { 'content-type': 'application/json' };
    const cases: Array<[string, RequestInit & { token?: string }, number, string]> = [
      ['/api/v1/payments', { method: 'POST', headers: json, body: '{"externalId":', token: t }, 400, 'INVALID_REQUEST'],
      ['/api/v1/payments', { method: 'POST', headers: json, body: '{"externalId":"x"}', token: t }, 400, 'INVALID_REQUEST'],
      ['/api/v1/payments', { method: 'POST', headers: json, body: JSON.stringify({ externalId: 'e', document: { format: 'kz-payment-order-xml/1', content: '%%%' }, signatures: [], requisites: { ...sampleOrder() } }), token: t }, 400, 'INVALID_REQUEST'],
      ['/api/v1/payments', { method: 'POST', headers: { 'content-type': 'application/xml' }, body: '<x/>', token: t }, 415, 'INVALID_REQUEST'],
      ['/api/v2/accounts', { token: t }, 404, 'NOT_FOUND'],
      ['/api/v1/nothing', { token: t }, 404, 'NOT_FOUND'],
      ['/api/v1/oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' }, 400, 'INVALID_REQUEST'],
      ['/api/v1/oauth/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: 'Basic !!!' }, body: 'grant_type=client_credentials' }, 401, 'INVALID_CLIENT'],
      ['/api/v1/accounts', {}, 401, 'UNAUTHORIZED'],
      [`/api/v1/accounts/${DEMO.payerIban}/statement?from=yesterday&to=2026-11-25`, { token: t }, 400, 'INVALID_REQUEST'],
    ];
    for (const [path, init, status, code] of cases) {
      const r = await call(path, init);
      expect({ path, status: r.status, code: r.body.code }).toEqual({ path, status, code });
      expect(typeof r.body.message).toBe('string');
    }
    expect((await call('/api/v1/accounts', { token: t })).status).toBe(200);
  });

  it('an unsigned document is refused (SIGNATURE_INVALID), and is counted in the ledger', async () => {
    const t = await token();
    const input = h.signed(sampleOrder({ number: '7001' }), 'unsigned-7001');
    const r = await call('/api/v1/payments', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      token: t,
      body: JSON.stringify({ externalId: input.externalId, document: { format: 'kz-payment-order-xml/1', content: input.document.toString('base64') }, signatures: [], requisites: input.requisites }),
    });
    expect(r).toMatchObject({ status: 422, body: { code: 'SIGNATURE_INVALID' } });
    const ledger = await h.admin<{ submissions: Array<{ externalId: string; requests: number; accepted: boolean }> }>('GET', '/submissions');
    expect(ledger.submissions.find((s) => s.externalId === 'unsigned-7001')).toMatchObject({ requests: 1, accepted: false });

    // The same document signed is accepted on the same ledger row; a resend after that is a duplicate.
    const client = h.client();
    await client.submit(input);
    await client.submit(input);
    const after = await h.admin<{ submissions: Array<{ externalId: string; requests: number; accepted: boolean; afterAccepted: number }> }>('GET', '/submissions');
    expect(after.submissions.filter((s) => s.externalId === 'unsigned-7001')).toEqual([expect.objectContaining({ requests: 3, accepted: true, afterAccepted: 1 })]);
  });
});

describe('submits that race', () => {
  it('registers a document once when many requests for it arrive at once; each is answered from that one and counted', async () => {
    const t = await token();
    const post = (input: ReturnType<Harness['signed']>) =>
      call('/api/v1/payments', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        token: t,
        body: JSON.stringify({ externalId: input.externalId, document: { format: 'kz-payment-order-xml/1', content: input.document.toString('base64') }, signatures: input.signatures.map((x) => x.toString('base64')), requisites: input.requisites }),
      });
    const order = sampleOrder({ number: '7301' });
    const same = h.signed(order, 'race-7301');
    // Eight resends under one external id and four of the same document under other external ids, all at once.
    const answers = await Promise.all([...Array.from({ length: 8 }, () => post(same)), ...[1, 2, 3, 4].map((i) => post(h.signed(order, `race-7301-${i}`)))]);
    const accepted = answers.filter((a) => a.status === 201);
    expect(accepted).toHaveLength(1);
    const reference = accepted[0].body.bankReference;
    for (const a of answers.filter((x) => x.status !== 201)) {
      // The other requests under the same external id see the registered document; the rest are refused as duplicates of it.
      if (a.status === 200) expect(a.body.bankReference).toBe(reference);
      else expect(a).toMatchObject({ status: 409, body: { code: 'DUPLICATE_DOCUMENT', message: expect.stringContaining(String(reference)) } });
    }
    const winner = accepted[0].body.externalId;
    expect(answers.filter((a) => a.status === 200)).toHaveLength(winner === 'race-7301' ? 7 : 0);
    const ledger = await h.admin<{ submissions: Array<{ externalId: string; document: string; requests: number; accepted: boolean; afterAccepted: number }> }>('GET', '/submissions');
    const row = ledger.submissions.filter((x) => x.externalId.startsWith('race-7301'));
    // Every other request was answered after the acceptance (a registration that lost waits for the winner's commit).
    expect(row).toEqual([expect.objectContaining({ requests: 12, accepted: true, externalId: winner, afterAccepted: 11 })]);
  });

  it('answers a request whose registration lost a race from what the winner registered, counting it once', async () => {
    const t = await token();
    const first = h.signed(sampleOrder({ number: '7302' }), 'race-7302');
    expect((await h.client().submit(first)).status).toBe('accepted');
    const contender = h.signed(sampleOrder({ number: '7303' }), 'race-7303-b');
    const docKey = `${contender.requisites.payer.iban}/7303/${contender.requisites.date}`;
    // Another request registers the same document and has not committed yet when this one reads what the bank holds.
    const other = new Client({ connectionString: TEST_DATABASE_URL });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(
        `INSERT INTO "${h.schema}".documents (document_id, external_id, doc_key, payer_iban, number, doc_date, amount, currency, status, received_at, updated_at, operational_day,
           bank_reference, requisites, content, content_hash, signatures, signers)
         SELECT 'DRACE7303', 'race-7303-a', $1, payer_iban, '7303', doc_date, amount, currency, 'executed', received_at, updated_at, operational_day,
           'ACBRACE7303', requisites, content, content_hash, signatures, signers FROM "${h.schema}".documents WHERE external_id = 'race-7302'`,
        [docKey],
      );
      const answer = call('/api/v1/payments', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        token: t,
        body: JSON.stringify({ externalId: contender.externalId, document: { format: 'kz-payment-order-xml/1', content: contender.document.toString('base64') }, signatures: contender.signatures.map((x) => x.toString('base64')), requisites: contender.requisites }),
      });
      // Commit only once the request's insert waits on the document key (a lock wait in the sandbox's database).
      const waiting = async () =>
        Number((await other.query(
          `SELECT count(*) AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'transactionid' AND NOT l.granted AND l.transactionid::text = txid_current()::text AND a.query ILIKE '%INSERT INTO%documents%'`,
        )).rows[0].n);
      const deadline = Date.now() + 10_000;
      while ((await waiting()) === 0) {
        if (Date.now() > deadline) throw new Error(`the request never waited on the uncommitted registration: ${JSON.stringify(await Promise.race([answer, 'no answer yet']))} ${JSON.stringify((await other.query("SELECT wait_event_type, wait_event, state, left(query, 80) AS q FROM pg_stat_activity WHERE datname = current_database()")).rows)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      await other.query('COMMIT');
      expect(await answer).toMatchObject({ status: 409, body: { code: 'DUPLICATE_DOCUMENT', message: expect.stringContaining('ACBRACE7303') } });
    } finally {
      await other.end();
    }
    const ledger = await h.admin<{ submissions: Array<{ document: string; requests: number; accepted: boolean }> }>('GET', '/submissions');
    expect(ledger.submissions.filter((x) => x.document === docKey)).toEqual([expect.objectContaining({ requests: 1, accepted: false })]);
  });
});

describe('the ledger counts malformed submit requests', () => {
  type Ledger = { submissions: Array<{ externalId: string; document: string; requests: number; accepted: boolean; afterAccepted: number }> };
  const post = async (t: string, body: unknown) =>
    call('/api/v1/payments', { method: 'POST', headers: { 'content-type': 'application/json' }, token: t, body: JSON.stringify(body) });

  it('a malformed resend of a known external id is counted on its document (INTERFACES.md: whatever it answered)', async () => {
    const t = await token();
    const input = h.signed(sampleOrder({ number: '7501' }), 'malformed-7501');
    expect((await h.client().submit(input)).status).toBe('accepted');
    const wire = { externalId: input.externalId, document: { format: 'kz-payment-order-xml/1', content: input.document.toString('base64') }, signatures: input.signatures.map((x) => x.toString('base64')), requisites: input.requisites };
    // Requisites missing; then a document that is not base64: both 400 INVALID_REQUEST.
    expect(await post(t, { externalId: input.externalId, document: wire.document, signatures: wire.signatures })).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect(await post(t, { ...wire, document: { ...wire.document, content: '%%%' } })).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    const ledger = await h.admin<Ledger>('GET', '/submissions');
    expect(ledger.submissions.filter((x) => x.externalId === input.externalId)).toEqual([
      expect.objectContaining({ document: `${input.requisites.payer.iban}/7501/${input.requisites.date}`, requests: 3, accepted: true, afterAccepted: 2 }),
    ]);
  });

  it('a malformed request under an external id the sandbox never saw, and one without a readable id, add no row', async () => {
    const t = await token();
    const before = await h.admin<Ledger>('GET', '/submissions');
    expect(await post(t, { externalId: 'never-seen-7502' })).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect(await post(t, { externalId: 'not an id!', requisites: 'x' })).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect(await post(t, [])).toMatchObject({ status: 400, body: { code: 'INVALID_REQUEST' } });
    expect((await h.admin<Ledger>('GET', '/submissions')).submissions).toEqual(before.submissions);
  });
});

describe('status polls that arrive together', () => {
  it('answer each with its own document (a repeated id and an unknown one included); reads asked for together are one query', async () => {
    const t = await token();
    const refs: string[] = [];
    for (const n of ['7401', '7402', '7403']) {
      const input = h.signed(sampleOrder({ number: n }), `poll-${n}`);
      const r = await call('/api/v1/payments', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        token: t,
        body: JSON.stringify({ externalId: input.externalId, document: { format: 'kz-payment-order-xml/1', content: input.document.toString('base64') }, signatures: input.signatures.map((x) => x.toString('base64')), requisites: input.requisites }),
      });
      expect(r.status).toBe(201);
      refs.push(r.body.documentId as string);
    }
    const asked = [refs[2], 'no-such-document', refs[0], refs[1], refs[0]];
    const answers = await Promise.all(asked.map((id) => call(`/api/v1/payments/${id}/status`, { token: t })));
    expect(answers.map((a) => [a.status, a.body.documentId ?? a.body.code])).toEqual([[200, refs[2]], [404, 'NOT_FOUND'], [200, refs[0]], [200, refs[1]], [200, refs[0]]]);
    expect(answers.filter((a) => a.status === 200).every((a) => a.body.status === 'accepted')).toBe(true);

    // Reads asked for in the same moment are one query.
    const { store } = h.sandbox;
    const query = store.pool.query.bind(store.pool);
    const reads: string[] = [];
    const spy = jest.spyOn(store.pool, 'query').mockImplementation(((text: string, values?: unknown[]) => {
      // Only document reads by id (the sandbox's clock ticks on the same pool meanwhile).
      if (/WHERE document_id = /.test(text)) reads.push(text);
      return query(text, values);
    }) as typeof store.pool.query);
    try {
      const rows = await Promise.all(asked.map((id) => store.documentById(id)));
      expect(rows.map((r) => r?.document_id)).toEqual([refs[2], undefined, refs[0], refs[1], refs[0]]);
    } finally {
      spy.mockRestore();
    }
    expect(reads).toHaveLength(1);
  });
});

describe('fault switches', () => {
  afterEach(() => h.admin('POST', '/faults/reset'));

  it('errorRate 1 fails every contract call with 500; slowMs delays answers past a client timeout', async () => {
    const t = await token();
    await h.admin('PUT', '/faults', { errorRate: 1 });
    expect(await call('/api/v1/accounts', { token: t })).toMatchObject({ status: 500, body: { code: 'INTERNAL_ERROR' } });
    await h.admin('PUT', '/faults', { errorRate: 0, slowMs: 400 });
    const hasty = h.client({ timeoutMs: 100, retry: { maxAttempts: 1 } });
    await expect(hasty.listAccounts()).rejects.toMatchObject({ code: 'TRANSIENT' });
    const patient = h.client({ timeoutMs: 2_000 });
    const started = Date.now();
    await patient.listAccounts();
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
  });

  it('refuses a bad switch with a contract error', async () => {
    await expect(h.admin('PUT', '/faults', { errorRate: 2 })).rejects.toThrow(/400/);
    await expect(h.admin('PUT', '/faults', { nonsense: true })).rejects.toThrow(/400/);
  });
});

describe('the operational-day clock', () => {
  it('moves documents by simulated time: accepted -> in_processing -> executed', async () => {
    const client = h.client();
    const doc = await client.submit(h.signed(sampleOrder({ number: '7002' }), 'clock-7002'));
    await h.admin('POST', '/clock/advance', { ms: 59_000 });
    expect((await client.getStatus(doc.documentId)).status).toBe('accepted');
    await h.admin('POST', '/clock/advance', { ms: 2_000 });
    expect((await client.getStatus(doc.documentId)).status).toBe('in_processing');
    await h.admin('POST', '/clock/advance', { ms: 61_000 });
    expect((await client.getStatus(doc.documentId)).status).toBe('executed');
    const clock = await h.admin<{ now: string; operationalDay: string; speed: number }>('GET', '/clock');
    expect(clock).toEqual({ now: '2026-11-25T04:02:02.000Z', operationalDay: '2026-11-25', speed: 0 });
  });

  it('runs by itself at the configured speed', async () => {
    const client = h.client();
    await h.admin('PUT', '/clock', { speed: 1000 });
    try {
      const doc = await client.submit(h.signed(sampleOrder({ number: '7003' }), 'clock-7003'));
      let status = '';
      for (let i = 0; i < 100 && status !== 'executed'; i += 1) {
        await new Promise((r) => setTimeout(r, 50));
        status = (await client.getStatus(doc.documentId)).status;
      }
      expect(status).toBe('executed');
    } finally {
      await h.admin('PUT', '/clock', { speed: 0, now: '2026-11-25T05:00:00Z' });
    }
  });
});

describe('the operational day with a cut-off', () => {
  it('holds a document received after the cut-off until its operational day', async () => {
    const late = await startHarness({ clock: { speed: 0, startAt: '2026-11-25T13:00:00Z', cutoff: '17:00', acceptedToProcessingMs: 1_000, processingToFinalMs: 1_000 } });
    try {
      const client = late.client();
      const doc = await client.submit(late.signed(sampleOrder({ number: '7100' }), 'late-7100'));
      expect(doc.operationalDay).toBe('2026-11-26');
      await late.admin('POST', '/clock/advance', { ms: 3_600_000 });
      expect((await client.getStatus(doc.documentId)).status).toBe('accepted');
      await late.admin('PUT', '/clock', { now: '2026-11-26T04:00:00Z' });
      await late.admin('POST', '/clock/advance', { ms: 1_000 });
      expect((await client.getStatus(doc.documentId)).status).toBe('in_processing');
    } finally {
      await late.stop();
      await late.drop();
    }
  });
});

describe('the admin API stays on loopback', () => {
  it('knows loopback hosts', () => {
    expect(['127.0.0.1', '127.1.2.3', '::1', 'localhost'].every(isLoopbackHost)).toBe(true);
    expect(['0.0.0.0', '192.0.2.2', '::', 'example.com'].some(isLoopbackHost)).toBe(false);
  });

  const external = Object.values(networkInterfaces()).flat().find((i) => i && i.family === 'IPv4' && !i.internal)?.address;
  (external ? it : it.skip)('refuses a caller that is not on loopback even when listening on all interfaces', async () => {
    const config = loadSandboxConfig({}, { databaseUrl: TEST_DATABASE_URL, schema: h.schema, port: 0, clock: { speed: 0 } });
    const wide: Sandbox = await startSandbox({ config, host: '0.0.0.0', port: 0 });
    try {
      const port = new URL(wide.url).port;
      const remote = await fetch(`http://${external}:${port}/_sandbox/submissions`);
      expect(remote.status).toBe(403);
      expect(((await remote.json()) as { code: string }).code).toBe('FORBIDDEN');
      expect((await fetch(`http://127.0.0.1:${port}/_sandbox/submissions`)).status).toBe(200);
    } finally {
      await wide.close();
    }
  });

  it('without admin, /_sandbox/ does not exist', async () => {
    const config = loadSandboxConfig({}, { databaseUrl: TEST_DATABASE_URL, schema: h.schema, port: 0, clock: { speed: 0 } });
    const closed = await startSandbox({ config, admin: false, port: 0 });
    try {
      expect((await fetch(`${closed.url}/_sandbox/submissions`)).status).toBe(404);
    } finally {
      await closed.close();
    }
  });

  it('`connector sandbox --host 0.0.0.0` exits 1 with a clear error unless --no-admin', async () => {
    const writes: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk));
      return true;
    });
    const before = process.exitCode;
    try {
      await buildProgram().parseAsync(['node', 'connector', 'sandbox', '--host', '0.0.0.0', '--port', '0']);
      expect(process.exitCode).toBe(1);
      expect(writes.join('')).toMatch(/^ADMIN_NOT_LOOPBACK: .*--no-admin/);
    } finally {
      spy.mockRestore();
      process.exitCode = before;
    }
  });
});

describe('its PostgreSQL schema', () => {
  it('is created on start idempotently, also by two sandboxes starting at once', async () => {
    const schema = `sandbox_test_twice_${Date.now().toString(36)}`;
    const config = loadSandboxConfig({}, { databaseUrl: TEST_DATABASE_URL, schema, port: 0, clock: { speed: 0 } });
    const [a, b] = await Promise.all([startSandbox({ config, port: 0 }), startSandbox({ config, port: 0 })]);
    await Promise.all([a.close(), b.close()]);
    const pg = new Client({ connectionString: TEST_DATABASE_URL });
    await pg.connect();
    try {
      const r = await pg.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1`, [schema]);
      expect(r.rows[0].n).toBe(6);
      const acc = await pg.query(`SELECT count(*)::int AS n FROM "${schema}".accounts`);
      expect(acc.rows[0].n).toBe(config.accounts.length);
    } finally {
      await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pg.end();
    }
  });
});

describe('a statement read while money moves', () => {
  it('is one snapshot: a payment booked while it is read moves neither its opening nor its closing', async () => {
    const client = h.client();
    const day = '2026-11-25';
    const before = await client.getStatement(DEMO.poorIban, day, day);
    const store = h.sandbox.store;
    const read = store.account.bind(store);
    let raced = false;
    // An incoming payment is booked right after the statement has read the account's balance, before it reads the lines.
    const spy = jest.spyOn(store, 'account').mockImplementation(async (db, iban, forUpdate) => {
      const row = await read(db, iban, forUpdate);
      if (!raced && !forUpdate && iban === DEMO.poorIban) {
        raced = true;
        await h.admin('POST', `/accounts/${DEMO.poorIban}/incoming`, { amount: '50.00' });
      }
      return row;
    });
    let during;
    try {
      during = await client.getStatement(DEMO.poorIban, day, day);
    } finally {
      spy.mockRestore();
    }
    expect(raced).toBe(true);
    // The day opened where it opened, whatever was booked during it (else the connector sees a gap with the day before).
    expect(during.openingBalance).toBe(before.openingBalance);
    expect(checkStatementBalance(during).ok).toBe(true);
    const after = await client.getStatement(DEMO.poorIban, day, day);
    expect(after.openingBalance).toBe(before.openingBalance);
    expect(after.closingBalance).toBe(before.closingBalance + 50_00);
  });
});
