import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Client } from 'pg';
import iconv from 'iconv-lite';
import type { FastifyInstance } from 'fastify';
import { stalledRequest } from '../support/stalled-request';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { buildApi } from '../../connector/api/api.server';
import { buildApiWithExtensions } from '../../connector/api/api.extensions';
import { createHash } from 'node:crypto';
import { canonicalJson } from '../../connector/audit/audit.log';
import { awaitIdempotent, IDEMPOTENCY_RESERVATION_MS, keepReservation } from '../../connector/api/order.routes';
import { createApiKey, revokeApiKey } from '../../connector/api-keys/api-key.service';
import { sampleOrder } from '../support/orders.fixture';
import { purgeIdempotencyRecords } from '../../connector/intake/idempotency.retention';
import { loadConfig } from '../../config/load-config';
import { createLogger } from '../../connector/logging/logger';

describe('HTTP API: orders with API keys on real PostgreSQL and Redis', () => {
  let env: TestEnv;
  let context: AppContext;
  let app: FastifyInstance;
  let key: string;
  const account = 'KZ69998CTA0000000101';

  beforeAll(async () => {
    env = await createTestEnv('apiorders');
    context = await createAppContext({ config: env.config, role: 'producer' });
    app = buildApi(context);
    await app.ready();
    key = (await createApiKey(context.orm.em.fork(), 'erp-main', [account], 'test')).key;
  });
  afterAll(async () => {
    await app.close();
    await context.close();
    await env.cleanup();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) });

  async function countOrders(number: string): Promise<number> {
    const [{ count }] = await context.orm.em.fork().execute<Array<{ count: string }>>('select count(*) from payment_order where number = ?', [number]);
    return Number(count);
  }

  it('answers /health and /ready with real dependencies', async () => {
    expect((await app.inject({ method: 'GET', url: '/health' })).statusCode).toBe(200);
    const ready = await app.inject({ method: 'GET', url: '/ready' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
  });

  it('closes (408) the connection of a client that never finishes sending its request, and serves others meanwhile', async () => {
    const bounded = buildApi(context, { requestTimeoutMs: 300 });
    await bounded.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = bounded.server.address() as AddressInfo;
      const { answer } = await stalledRequest(port, '/api/v1/orders', {
        headers: { authorization: `Bearer ${key}` },
        also: async () => expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200),
      });
      // Without a bound the connection stays open and the test runs into its own timeout.
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      // In the error shape of every other answer (INTERFACES.md), not Fastify's own.
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ code: 'REQUEST_TIMEOUT', message: expect.stringMatching(/not sent whole/), details: null });
    } finally {
      await bounded.close();
    }
  }, 20_000);

  it('refuses a call without a valid key with 401 UNAUTHENTICATED', async () => {
    const none = await app.inject({ method: 'GET', url: '/api/v1/orders' });
    expect(none.statusCode).toBe(401);
    // The error body of INTERFACES.md, `details` included when an error has none.
    expect(none.json()).toEqual({ code: 'UNAUTHENTICATED', message: expect.any(String), details: null });
    const wrong = await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: 'Bearer ck_nope' } });
    expect(wrong.statusCode).toBe(401);
  });

  it('takes the Bearer scheme in any case (RFC 7235: the scheme is case-insensitive), the key itself exactly', async () => {
    for (const scheme of ['bearer', 'BEARER', 'bEaReR']) {
      const res = await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `${scheme} ${key}` } });
      expect([scheme, res.statusCode]).toEqual([scheme, 200]);
    }
    const posted = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `bearer ${key}`, 'content-type': 'application/json' }, payload: JSON.stringify(sampleOrder({ number: 'BEARER-1' })) });
    expect(posted.statusCode).toBe(201);
    // The key is a secret compared exactly: only the scheme's case is free.
    const wrongCase = await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `Bearer ${key.toUpperCase()}` } });
    expect(wrongCase.statusCode).toBe(401);
  });

  it('one Idempotency-Key, two different bodies at the same moment: one is taken in, the other is 409 IDEMPOTENCY_CONFLICT', async () => {
    for (let round = 0; round < 5; round += 1) {
      const [a, b] = await Promise.all([
        post(sampleOrder({ number: `RACE-${round}-A` }), { 'idempotency-key': `race-${round}` }),
        post(sampleOrder({ number: `RACE-${round}-B` }), { 'idempotency-key': `race-${round}` }),
      ]);
      expect([a.statusCode, b.statusCode].sort()).toEqual([201, 409]);
      expect([a, b].find((r) => r.statusCode === 409)?.json().code).toBe('IDEMPOTENCY_CONFLICT');
      expect((await countOrders(`RACE-${round}-A`)) + (await countOrders(`RACE-${round}-B`))).toBe(1);
    }
    // A request refused as a whole leaves the key free: its corrected retry is taken in, and replayed after.
    const refused = await post({ ...sampleOrder({ number: 'RACE-FIX' }), amount: 12.5 }, { 'idempotency-key': 'race-fix' });
    expect(refused.statusCode).toBe(400);
    const fixed = await post(sampleOrder({ number: 'RACE-FIX' }), { 'idempotency-key': 'race-fix' });
    expect(fixed.statusCode).toBe(201);
    const again = await post(sampleOrder({ number: 'RACE-FIX' }), { 'idempotency-key': 'race-fix' });
    expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([201, 'true', fixed.json()]);
    // The key used, another body is 409 even when that body is not an order at all (INTERFACES.md).
    const otherBroken = await post({ ...sampleOrder({ number: 'RACE-FIX' }), amount: 12.5 }, { 'idempotency-key': 'race-fix' });
    expect([otherBroken.statusCode, otherBroken.json().code]).toEqual([409, 'IDEMPOTENCY_CONFLICT']);
  });

  it('makes one order from the same Idempotency-Key and body posted twice, and returns the first result', async () => {
    const body = sampleOrder({ number: 'IDEM-1', erpDocumentId: 'doc-1' });
    const first = await post(body, { 'idempotency-key': 'k-1' });
    expect(first.statusCode).toBe(201);
    const second = await post(body, { 'idempotency-key': 'k-1' });
    expect(second.statusCode).toBe(201);
    expect(second.json()).toEqual(first.json());
    expect(await countOrders('IDEM-1')).toBe(1);
    expect(first.json()).toMatchObject({ state: 'validated', errors: [] });
  });

  it('one Idempotency-Key and one body posted four times at once over HTTP: one request takes it in, the others wait and replay its answer', async () => {
    // Real connections: the API's own server (closed with the app in afterAll).
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    for (let round = 0; round < 3; round += 1) {
      // A batch, so that taking it in lasts long enough for the others to find it in flight.
      const body = JSON.stringify({ orders: Array.from({ length: 20 }, (_, i) => sampleOrder({ number: `PAR-${round}-${i}` })) });
      const answers = await Promise.all(
        Array.from({ length: 4 }, async () => {
          const res = await fetch(`${url}/api/v1/orders`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': `par-${round}` }, body });
          return { status: res.status, replayed: res.headers.get('idempotent-replayed'), body: (await res.json()) as { results: Array<{ created: boolean }> } };
        }),
      );
      // INTERFACES.md: the same key and body return the first result, also while it is being made.
      expect(answers.map((a) => [a.status, a.replayed]).sort()).toEqual([[201, null], [201, 'true'], [201, 'true'], [201, 'true']]);
      const first = answers.find((a) => a.replayed === null);
      expect(first?.body.results.map((r) => r.created)).toEqual(Array.from({ length: 20 }, () => true));
      for (const other of answers) expect(other.body).toEqual(first?.body);
      for (let i = 0; i < 20; i += 1) expect(await countOrders(`PAR-${round}-${i}`)).toBe(1);
    }
  });

  it('a request waiting on the first with its key is bounded: past the wait 409 with Retry-After; the first answer replayed; the key taken when the first gave it back', async () => {
    const em = () => context.orm.em.fork();
    const reserve = (key: string) =>
      em().execute("insert into idempotency_record (scope, idempotency_key, request_hash, response_status, response_body, created_at) values ('wait-scope', ?, 'h', 0, 'null'::jsonb, ?)", [key, context.clock.now()]);
    // The first request never answers within the wait (a slow database, a process that died).
    await reserve('wait-1');
    await expect(awaitIdempotent(context, 'wait-scope', 'wait-1', 'h', 200)).rejects.toMatchObject({ statusCode: 409, code: 'IDEMPOTENCY_CONFLICT', details: { inProgress: true }, headers: { 'retry-after': '5' } });
    // The first request stores its answer while this one waits: replayed.
    await reserve('wait-2');
    const replayed = awaitIdempotent(context, 'wait-scope', 'wait-2', 'h', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await em().execute(`update idempotency_record set response_status = 201, response_body = '{"id":"first"}'::jsonb where idempotency_key = 'wait-2'`);
    await expect(replayed).resolves.toEqual({ replay: { status: 201, body: { id: 'first' } } });
    // The first request failed and gave the key back: this one takes it and makes the answer itself.
    await reserve('wait-3');
    const taken = awaitIdempotent(context, 'wait-scope', 'wait-3', 'h', 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    await em().execute("delete from idempotency_record where idempotency_key = 'wait-3'");
    await expect(taken).resolves.toBe('reserved');
  });

  it('orders committed before the lockdown check fails (PostgreSQL times out on it) are answered as taken in, with a warning, and the failure is logged', async () => {
    // A connector whose statements give up on a lock after 300 ms, and whose log the test reads.
    const events: Array<Record<string, unknown>> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) events.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    const config = loadConfig({ env: env.env, cwd: env.workDir, overrides: { 'database.lockTimeoutMs': 300 } });
    const slow = await createAppContext({ config, role: 'producer', logger: createLogger({ level: 'warn' }, sink) });
    const slowApi = buildApi(slow);
    await slowApi.ready();
    const body = { orders: [sampleOrder({ number: 'LDU-1' }), sampleOrder({ number: 'LDU-2' })] };
    const send = (api: FastifyInstance) =>
      api.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'idempotency-key': 'ldu-1' }, payload: JSON.stringify(body) });
    // Another session holds the lockdown flag's table (a stuck session): the orders' own
    // transaction does not read it and commits; the look at the flag after the commit times out.
    const holder = new Client({ connectionString: env.config.database.url });
    await holder.connect();
    let first;
    try {
      await holder.query('begin');
      await holder.query('lock table lockdown_state in access exclusive mode');
      first = await send(slowApi);
    } finally {
      await holder.query('rollback').catch(() => undefined);
      await holder.end();
      await slowApi.close();
      await slow.close();
    }
    // It used to be a 500 for two orders that were stored: the ERP was told they were not taken in.
    expect(first.statusCode).toBe(201);
    const results = (first.json() as { results: Array<{ created: boolean; state: string; warnings: Array<{ code: string; message: string }> }> }).results;
    expect(results.map((r) => [r.created, r.state, r.warnings.map((w) => w.code)])).toEqual([
      [true, 'received', ['LOCKDOWN_UNCHECKED']],
      [true, 'received', ['LOCKDOWN_UNCHECKED']],
    ]);
    expect(results[0].warnings[0].message).toMatch(/do not send it again/);
    expect(events).toContainEqual(expect.objectContaining({ event: 'intake.lockdown_check_failed', orders: 2, error: expect.stringMatching(/lock timeout/) }));
    // The answer is the key's: the ERP's retry gets it again, and each document is one order.
    const again = await send(app);
    expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([201, 'true', first.json()]);
    expect([await countOrders('LDU-1'), await countOrders('LDU-2')]).toEqual([1, 1]);
  });

  it('orders taken in whose answer cannot be kept for the Idempotency-Key are still answered as taken in; the retry is told they are stored', async () => {
    // PostgreSQL refuses to store the answer (a real failure, injected as a trigger in this spec's schema).
    const em = () => context.orm.em.fork();
    await em().execute(`create function refuse_answer() returns trigger language plpgsql as $$ begin if new.response_status <> 0 then raise exception 'injected: answer not stored'; end if; return new; end $$`);
    await em().execute('create trigger refuse_answer before update on idempotency_record for each row execute function refuse_answer()');
    const body = sampleOrder({ number: 'NOSTORE-1' });
    let first;
    try {
      first = await post(body, { 'idempotency-key': 'nostore-1' });
    } finally {
      await em().execute('drop trigger refuse_answer on idempotency_record');
      await em().execute('drop function refuse_answer()');
    }
    // It used to be an error for an order that was stored.
    expect([first.statusCode, first.json().created, first.json().state]).toEqual([201, true, 'validated']);
    const again = await post(body, { 'idempotency-key': 'nostore-1' });
    expect([again.statusCode, again.json().id, again.json().created]).toEqual([200, first.json().id, false]);
    expect(await countOrders('NOSTORE-1')).toBe(1);
  });

  it('a key whose request died mid-way is free again a minute after its last sign of life, and the 409 meanwhile says when', async () => {
    const em = () => context.orm.em.fork();
    const reserve = (key: string, silentMs: number, scope = 'stuck-scope', hash = 'h') =>
      em().execute("insert into idempotency_record (scope, idempotency_key, request_hash, response_status, response_body, created_at) values (?, ?, ?, 0, 'null'::jsonb, ?)", [scope, key, hash, new Date(context.clock.now().getTime() - silentMs)]);
    // Silent for 50 s: most likely dead. The answer says when the key is free (in about 10 s), not
    // "retry in 5 s" for a quarter of an hour as it did.
    await reserve('stuck-1', 50_000);
    const refused = await awaitIdempotent(context, 'stuck-scope', 'stuck-1', 'h', 200).catch((err: unknown) => err as { statusCode: number; code: string; message: string; details: { freeAt: string }; headers: Record<string, string> });
    expect(refused).toMatchObject({ statusCode: 409, code: 'IDEMPOTENCY_CONFLICT', details: { inProgress: true, freeAt: expect.any(String) } });
    const retryAfter = Number((refused as { headers: Record<string, string> }).headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(8);
    expect(retryAfter).toBeLessThanOrEqual(11);
    expect((refused as { message: string }).message).toMatch(/no sign of life for 5\d s .* the key is free from \d{4}-\d\d-\d\dT.* retry in \d+ s/);
    // A minute without a sign of life: the next request with the key takes it at once.
    await reserve('stuck-2', IDEMPOTENCY_RESERVATION_MS + 1_000);
    await expect(awaitIdempotent(context, 'stuck-scope', 'stuck-2', 'h', 200)).resolves.toBe('reserved');
    // A live request, however slow, renews its reservation and keeps its key.
    await reserve('stuck-3', IDEMPOTENCY_RESERVATION_MS - 500);
    const alive = keepReservation(context, 'stuck-scope', 'stuck-3', 'h', 100);
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      await expect(awaitIdempotent(context, 'stuck-scope', 'stuck-3', 'h', 1_000)).rejects.toMatchObject({ statusCode: 409, headers: { 'retry-after': '5' }, message: expect.stringMatching(/still being taken in/) });
    } finally {
      alive.stop();
    }
    // Over HTTP: the ERP's retry of a request that crashed is taken in and answered 201, once.
    const body = sampleOrder({ number: 'STUCK-HTTP-1' });
    const [{ id }] = await em().execute<Array<{ id: string }>>("select id from api_key where name = 'erp-main'");
    await reserve('stuck-http', IDEMPOTENCY_RESERVATION_MS + 1_000, `key:${id}`, createHash('sha256').update(canonicalJson(body)).digest('hex'));
    const retried = await post(body, { 'idempotency-key': 'stuck-http' });
    expect([retried.statusCode, retried.json().created]).toEqual([201, true]);
    expect((await post(body, { 'idempotency-key': 'stuck-http' })).json()).toEqual(retried.json());
    expect(await countOrders('STUCK-HTTP-1')).toBe(1);
  }, 20_000);

  it('answers 409 IDEMPOTENCY_CONFLICT for the same key with another body, and stores nothing new', async () => {
    await post(sampleOrder({ number: 'IDEM-2' }), { 'idempotency-key': 'k-2' });
    const conflict = await post(sampleOrder({ number: 'IDEM-2', amount: '999.00' }), { 'idempotency-key': 'k-2' });
    expect(conflict.statusCode).toBe(409);
    expect(conflict.json()).toMatchObject({ code: 'IDEMPOTENCY_CONFLICT' });
    expect(await countOrders('IDEM-2')).toBe(1);
  });

  it('keeps Idempotency-Key records api.idempotencyKeepDays; the sweeper deletes older ones, in bounded batches, and the document stays one order', async () => {
    const em = () => context.orm.em.fork();
    for (const n of [1, 2, 3]) expect((await post(sampleOrder({ number: `KEEP-${n}` }), { 'idempotency-key': `keep-${n}` })).statusCode).toBe(201);
    const now = new Date();
    const ageOf = (key: string, days: number) => em().execute("update idempotency_record set created_at = ? where idempotency_key = ?", [new Date(now.getTime() - days * 86_400_000), key]);
    await ageOf('keep-1', 31);
    await ageOf('keep-2', 45);
    await ageOf('keep-3', 29);
    const keys = async () => (await em().execute<Array<{ idempotency_key: string }>>("select idempotency_key from idempotency_record where idempotency_key like 'keep-%' order by 1")).map((r) => r.idempotency_key);
    expect(await purgeIdempotencyRecords(em(), now, env.config.api.idempotencyKeepDays, 1)).toBe(1);
    expect(await purgeIdempotencyRecords(em(), now, env.config.api.idempotencyKeepDays, 1)).toBe(1);
    expect(await purgeIdempotencyRecords(em(), now, env.config.api.idempotencyKeepDays, 1)).toBe(0);
    expect(await keys()).toEqual(['keep-3']);
    // The key is forgotten, the document is not: posted again, it is still one order.
    const again = await post(sampleOrder({ number: 'KEEP-1' }), { 'idempotency-key': 'keep-1' });
    expect(again.statusCode).toBe(200);
    expect(await countOrders('KEEP-1')).toBe(1);
  });

  it('makes no second order for the same document without a key either (natural key)', async () => {
    await post(sampleOrder({ number: 'NAT-1' }));
    const again = await post(sampleOrder({ number: 'NAT-1' }));
    expect(again.statusCode).toBe(200);
    expect(again.json()).toMatchObject({ created: false });
    expect(await countOrders('NAT-1')).toBe(1);
  });

  it('an order with a character PostgreSQL cannot store (NUL, a lone surrogate) or a date in year 0 is stored invalid naming the field; the rest of its batch goes through', async () => {
    const res = await post({
      orders: [
        sampleOrder({ number: 'NUL-1', purpose: 'Оплата\u0000 по счету 5' }),
        sampleOrder({ number: 'NUL-2' }),
        { ...sampleOrder({ number: 'NUL-3' }), beneficiary: { ...sampleOrder().beneficiary, name: 'ТОО \ud800Пример' } },
        sampleOrder({ number: 'NUL-4', date: '0000-01-01', valueDate: undefined }),
      ],
    });
    expect(res.statusCode).toBe(201);
    const results = res.json().results as Array<{ state: string; errors: Array<{ field: string; code: string }> }>;
    expect(results.map((r) => [r.state, r.errors.map((e) => [e.field, e.code])])).toEqual([
      ['invalid', [['purpose', 'TEXT_CONTROL_CHAR']]],
      ['validated', []],
      ['invalid', [['beneficiary.name', 'TEXT_CONTROL_CHAR']]],
      ['invalid', [['date', 'DATE_INVALID']]],
    ]);
    const [stored] = await context.orm.em.fork().execute<Array<{ purpose: string }>>("select purpose from payment_order where number = 'NUL-1'");
    expect(stored.purpose).toBe('Оплата\uFFFD по счету 5');
  });

  it('records an order that breaks a rule as invalid (201 with state and errors)', async () => {
    const res = await post(sampleOrder({ number: 'INV-1', currency: 'USD' }));
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ state: 'invalid', errors: [expect.objectContaining({ field: 'currency', code: 'CURRENCY_NOT_ALLOWED', message: expect.stringContaining('KZT') })] });
  });

  it('an amount or a date that cannot be stored carries that one reason, not a second one about the placeholder stored in its place', async () => {
    const codes = (body: { errors: Array<{ field: string; code: string }> }) => body.errors.map((e) => [e.field, e.code]);
    const negative = await post(sampleOrder({ number: 'NEG-1', amount: '-5.00' }));
    expect([negative.statusCode, negative.json().state, codes(negative.json())]).toEqual([201, 'invalid', [['amount', 'AMOUNT_FORMAT']]]);
    expect(negative.json().errors[0].message).toContain('-5.00');
    expect(JSON.stringify(negative.json().errors)).not.toMatch(/0\.00|больше нуля/);
    // Stored as written (the reason, the state, the event), not only answered so.
    const [row] = await context.orm.em.fork().execute<Array<{ errors: Array<{ code: string }>; reason: string }>>(
      "select o.errors, e.reason from payment_order o join order_event e on e.order_id = o.id and e.to_state = 'invalid' where o.number = 'NEG-1'",
    );
    expect([row.errors.map((e) => e.code), row.reason]).toEqual([['AMOUNT_FORMAT'], expect.not.stringMatching(/positive/)]);
    // A date that does not exist: no "value date 01.01.1970 has passed" or stale-date finding on top.
    const noDay = await post(sampleOrder({ number: 'NODAY-1', date: '2026-02-30' }));
    expect([noDay.json().state, codes(noDay.json()), noDay.json().warnings]).toEqual(['invalid', [['date', 'DATE_INVALID']], []]);
    // ... also when no value date was sent, so it defaults to the (unreadable) document date.
    const noDayNoValue = await post(sampleOrder({ number: 'NODAY-2', date: '2026-02-30', valueDate: undefined }));
    expect([noDayNoValue.json().state, codes(noDayNoValue.json()), noDayNoValue.json().warnings]).toEqual(['invalid', [['date', 'DATE_INVALID']], []]);
    // A real amount of zero is still judged by the rule (nothing masked when the amount was read).
    const zero = await post(sampleOrder({ number: 'ZERO-1', amount: '0.00' }));
    expect(codes(zero.json())).toContainEqual(['amount', 'AMOUNT_NOT_POSITIVE']);
  });

  it('answers 400 INVALID_REQUEST for a body that is not an order and stores nothing', async () => {
    const res = await post({ hello: 'world' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'INVALID_REQUEST' });
    const notJson = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: '{oops' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ code: 'INVALID_REQUEST' });
  });

  type Detail = { path: string; message: string };
  const detailsOf = (res: { json(): { details?: Detail[] } }) => res.json().details ?? [];

  it('answers a numeric amount with 400 naming the field and the rule (money is a decimal string, never a float), and stores nothing', async () => {
    const res = await post({ ...sampleOrder({ number: 'NUM-1' }), amount: 12.5 });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('amount') });
    expect(detailsOf(res)).toEqual([{ path: 'amount', message: expect.stringContaining('expected a decimal string like "12.50", not a number') }]);
    expect(await countOrders('NUM-1')).toBe(0);
  });

  /** The answer of a batch's order refused alone: nothing stored, so no id and no state. */
  const refusedItem = (code: string, errors: Array<{ field: string; message: unknown }>, erpDocumentId: string | null = null) => ({
    id: null,
    externalId: null,
    state: null,
    created: false,
    erpDocumentId,
    errors: errors.map((e) => ({ ...e, code })),
    warnings: [],
    refused: { code, message: expect.stringContaining(errors[0].field) },
  });

  it('names the order by its index in a batch (orders.1.amount) and refuses that one alone: its siblings are taken in', async () => {
    const res = await post({ orders: [sampleOrder({ number: 'NUMB-1' }), { ...sampleOrder({ number: 'NUMB-2', erpDocumentId: 'doc-numb-2' }), amount: 7745.7 }, sampleOrder({ number: 'NUMB-3' })] });
    expect(res.statusCode).toBe(201);
    const [first, second, third] = res.json().results;
    expect([first.created, first.state, third.created, third.state]).toEqual([true, 'validated', true, 'validated']);
    expect(second).toEqual(refusedItem('INVALID_REQUEST', [{ field: 'orders.1.amount', message: expect.stringContaining('expected a decimal string like "12.50", not a number') }], 'doc-numb-2'));
    expect(second.refused.message).toMatch(/^orders\.1 is not a payment order: orders\.1\.amount: .*it was not stored/);
    expect([await countOrders('NUMB-1'), await countOrders('NUMB-2'), await countOrders('NUMB-3')]).toEqual([1, 0, 1]);
    // No order of the batch is one: refused as a whole (400, every problem named), and nothing stored.
    const { knp: _knp, ...withoutKnp } = sampleOrder({ number: 'NUMB-5' });
    const none = await post({ orders: [{ ...sampleOrder({ number: 'NUMB-4' }), amount: 100.5 }, withoutKnp] });
    expect([none.statusCode, none.json().code]).toEqual([400, 'INVALID_REQUEST']);
    expect(none.json().message).toMatch(/^no order of the batch can be taken in: orders\.0\.amount: .*nothing was stored$/);
    expect(detailsOf(none)).toEqual([
      { path: 'orders.0.amount', message: expect.stringContaining('not a number') },
      { path: 'orders.1.knp', message: 'Required' },
    ]);
    expect([await countOrders('NUMB-4'), await countOrders('NUMB-5')]).toEqual([0, 0]);
  });

  it('names a missing field (purpose, knp) or a wrong type, alone (400) or in a batch (that order refused, the others taken in)', async () => {
    const { purpose: _purpose, ...withoutPurpose } = sampleOrder({ number: 'NOPURP-1' });
    const single = await post(withoutPurpose);
    expect(single.statusCode).toBe(400);
    expect(detailsOf(single)).toEqual([{ path: 'purpose', message: 'Required' }]);
    const { knp: _knp, ...withoutKnp } = sampleOrder({ number: 'NOPURP-4' });
    const batch = await post({ orders: [sampleOrder({ number: 'NOPURP-2' }), sampleOrder({ number: 'NOPURP-3' }), withoutPurpose, withoutKnp, { ...sampleOrder({ number: 'NOPURP-5' }), payer: 'ТОО Пример' }] });
    expect(batch.statusCode).toBe(201);
    const results = batch.json().results;
    expect(results.map((r: { created: boolean }) => r.created)).toEqual([true, true, false, false, false]);
    expect(results.slice(2)).toEqual([
      refusedItem('INVALID_REQUEST', [{ field: 'orders.2.purpose', message: 'Required' }]),
      refusedItem('INVALID_REQUEST', [{ field: 'orders.3.knp', message: 'Required' }]),
      refusedItem('INVALID_REQUEST', [{ field: 'orders.4.payer', message: 'Expected object, received string' }]),
    ]);
    expect(await Promise.all(['NOPURP-1', 'NOPURP-2', 'NOPURP-3', 'NOPURP-4', 'NOPURP-5'].map(countOrders))).toEqual([0, 1, 1, 0, 0]);
  });

  it('an optional field given as null is a field not given (the API answers erpDocumentId: null); a required one as null is refused naming it', async () => {
    const withNulls = { ...sampleOrder({ number: 'NULLS-1' }), kbk: null, valueDate: null, erpDocumentId: null, direction: null, raw: null };
    const taken = await post(withNulls);
    expect(taken.statusCode).toBe(201);
    expect(taken.json()).toMatchObject({ created: true, erpDocumentId: null });
    const shown = await app.inject({ method: 'GET', url: `/api/v1/orders/${taken.json().id}`, headers: { authorization: `Bearer ${key}` } });
    expect(shown.json()).toMatchObject({ erpDocumentId: null });
    const refused = await post({ ...sampleOrder({ number: 'NULLS-2' }), purpose: null });
    expect(refused.statusCode).toBe(400);
    expect(detailsOf(refused)).toEqual([{ path: 'purpose', message: 'Expected string, received null' }]);
    expect(await Promise.all(['NULLS-1', 'NULLS-2'].map(countOrders))).toEqual([1, 0]);
  });

  it('refuses unknown fields naming each one (a misspelt valueDate is not replaced by its default): 400 for one order, that order alone in a batch', async () => {
    const today = sampleOrder().date;
    const { valueDate: _valueDate, ...order } = sampleOrder({ number: 'UNK-1' });
    const single = await post({ ...order, valuedate: today });
    expect(single.statusCode).toBe(400);
    expect(single.json()).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('valuedate') });
    expect(detailsOf(single)).toEqual([{ path: 'valuedate', message: 'unknown field; did you mean "valueDate"?' }]);
    const batch = await post({
      orders: [
        sampleOrder({ number: 'UNK-2' }),
        { ...sampleOrder({ number: 'UNK-3' }), erpDocumentID: 'doc-unk-3' },
        { ...sampleOrder({ number: 'UNK-4' }), payer: { ...sampleOrder().payer, account: 'KZ69998CTA0000000101' } },
      ],
    });
    expect(batch.statusCode).toBe(201);
    expect(batch.json().results.slice(1)).toEqual([
      refusedItem('INVALID_REQUEST', [{ field: 'orders.1.erpDocumentID', message: 'unknown field; did you mean "erpDocumentId"?' }]),
      refusedItem('INVALID_REQUEST', [{ field: 'orders.2.payer.account', message: 'unknown field; allowed here: name, iinBin, iban, bic, kod' }]),
    ]);
    expect(await countOrders('UNK-2')).toBe(1);
    // Beside "orders" the body itself is judged: refused as a whole.
    const wrapper = await post({ orders: [sampleOrder({ number: 'UNK-5' })], source: 'erp' });
    expect(wrapper.statusCode).toBe(400);
    expect(detailsOf(wrapper)).toEqual([{ path: 'source', message: 'unknown field; allowed here: orders' }]);
    for (const n of ['UNK-1', 'UNK-3', 'UNK-4', 'UNK-5']) expect(await countOrders(n)).toBe(0);
    // Every field INTERFACES.md lists is still taken, `raw` (what `onec parse --json` prints) included.
    const full = await post(sampleOrder({ number: 'UNK-6', kbk: '105102', erpDocumentId: 'doc-unk-6', raw: { Номер: 'UNK-6' } }));
    expect(full.statusCode).toBe(201);
  });

  it('takes raw (INTERFACES.md lists it) only within bounds: a 15 MB value, a long key or too many keys is 400 naming raw and the bound, and nothing is stored', async () => {
    const cases: Array<[string, Record<string, string>, Detail]> = [
      ['RAW-1', { x: 'x'.repeat(15 * 1000 * 1000) }, { path: 'raw.x', message: 'a value of raw has at most 2000 characters (as many as purpose)' }],
      ['RAW-2', { ['К'.repeat(129)]: '1' }, { path: `raw.${'К'.repeat(129)}`, message: 'a key of raw has at most 128 characters' }],
      ['RAW-3', Object.fromEntries(Array.from({ length: 201 }, (_, i) => [`Ключ${i}`, 'значение'])), { path: 'raw', message: 'raw has at most 200 keys' }],
    ];
    for (const [number, raw, detail] of cases) {
      const res = await post(sampleOrder({ number, raw }));
      expect([number, res.statusCode, res.json().code, detailsOf(res)]).toEqual([number, 400, 'INVALID_REQUEST', [detail]]);
      expect(await countOrders(number)).toBe(0);
    }
    // At the bounds it is taken, and kept with the raw document.
    const atBounds = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`${'К'.repeat(124)}${String(i).padStart(4, '0')}`, 'з'.repeat(2000)]));
    const ok = await post(sampleOrder({ number: 'RAW-4', raw: atBounds }));
    expect(ok.statusCode).toBe(201);
    const [{ raw_document: stored }] = await context.orm.em.fork().execute<Array<{ raw_document: string }>>("select raw_document from payment_order where number = 'RAW-4'");
    expect(JSON.parse(stored).raw).toEqual(atBounds);
  });

  it('refuses a bare array with 400 saying how a batch is sent', async () => {
    const res = await post([sampleOrder({ number: 'ARR-1' })]);
    expect(res.statusCode).toBe(400);
    expect(detailsOf(res)).toEqual([{ path: '', message: expect.stringContaining('{"orders":[...]}') }]);
    expect(await countOrders('ARR-1')).toBe(0);
  });

  it('answers a body over the limit with 413 BODY_TOO_LARGE in the error shape, and stores nothing', async () => {
    const huge = JSON.stringify(sampleOrder({ number: 'HUGE-1', purpose: 'x'.repeat(20 * 1024 * 1024) }));
    const res = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: huge });
    expect(res.statusCode).toBe(413);
    expect(res.json()).toEqual({ code: 'BODY_TOO_LARGE', message: expect.stringContaining('16 MiB'), details: { limitBytes: 16 * 1024 * 1024 } });
    expect(await countOrders('HUGE-1')).toBe(0);
  });

  it('a batch above the other routes\' 64 KiB is taken in by the orders intake, which keeps the large limit', async () => {
    const orders = Array.from({ length: 200 }, (_, i) => sampleOrder({ number: `BATCH64-${i}` }));
    const body = JSON.stringify({ orders });
    expect(Buffer.byteLength(body)).toBeGreaterThan(64 * 1024);
    const res = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, payload: body });
    expect(res.statusCode).toBe(201);
    expect(await countOrders('BATCH64-199')).toBe(1);
  });

  it('without a key, the orders intake does not read the body: 401, not its JSON fault', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { 'content-type': 'application/json' }, payload: `{"orders":[${'x'.repeat(1024 * 1024)}` });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('every other route takes at most 64 KiB: 413 BODY_TOO_LARGE names the limit that applied', async () => {
    const full = buildApiWithExtensions(context);
    try {
      const res = await full.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ login: 'nobody', password: 'x'.repeat(100 * 1024) }) });
      expect(res.statusCode).toBe(413);
      expect(res.json()).toEqual({ code: 'BODY_TOO_LARGE', message: expect.stringContaining('larger than 64 KiB, the limit of this route'), details: { limitBytes: 64 * 1024 } });
    } finally {
      await full.close();
    }
  });

  it.each([
    ['__proto__ spelt with a JSON escape', '{"\\u005f_proto__":{"role":"admin"},"login":"a","password":"b"}', 'a key named __proto__ or prototype is not accepted'],
    ['__proto__ deep in an array', '{"login":"a","password":"b","x":[1,{"y":{"__proto__":{"role":"admin"}}}]}', 'a key named __proto__ or prototype is not accepted'],
    ['prototype spelt with a JSON escape', '{"login":"a","password":"b","pro\\u0074otype":{}}', 'a key named __proto__ or prototype is not accepted'],
    ['constructor', '{"login":"a","password":"b","c\\u006fnstructor":{"x":1}}', 'a key named constructor is not accepted'],
  ])('a JSON body with %s is refused 400 before any route sees it', async (_what, payload, why) => {
    const full = buildApiWithExtensions(context);
    try {
      const res = await full.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toMatchObject({ code: 'INVALID_REQUEST', message: `the body is not valid JSON: ${why}` });
    } finally {
      await full.close();
    }
  });

  it('an order in windows-1251 is refused (415 with its charset named, 400 naming the byte without one), never taken in with its letters as U+FFFD; UTF-8 goes through', async () => {
    const full = buildApiWithExtensions(context);
    try {
      const send = (payload: Buffer, contentType: string) =>
        full.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}`, 'content-type': contentType }, payload });
      const cp1251 = iconv.encode(JSON.stringify(sampleOrder({ number: 'CP1251-1' })), 'win1251');
      const named = await send(cp1251, 'application/json; charset=windows-1251');
      expect(named.statusCode).toBe(415);
      expect(named.json()).toMatchObject({ code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.stringContaining('charset=windows-1251') });
      const unnamed = await send(cp1251, 'application/json');
      expect(unnamed.statusCode).toBe(400);
      const at = cp1251.findIndex((b) => b >= 0x80);
      expect(unnamed.json()).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining(`byte 0x${cp1251[at].toString(16)} at offset ${at} is not a UTF-8 character`), details: { offset: at } });
      expect(await countOrders('CP1251-1')).toBe(0);
      // The same order in UTF-8 (with a BOM, as some Windows ERPs write it, and a charset in any case) is taken in, its names as sent.
      const utf8 = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(sampleOrder({ number: 'CP1251-1' })))]);
      const ok = await send(utf8, 'application/json; charset=UTF-8');
      expect([ok.statusCode, ok.json().state]).toEqual([201, 'validated']);
      const [stored] = await context.orm.em.fork().execute<Array<{ beneficiary_name: string }>>('select beneficiary_name from payment_order where number = ?', ['CP1251-1']);
      expect(stored.beneficiary_name).toBe(sampleOrder().beneficiary.name);
    } finally {
      await full.close();
    }
  });

  it('refuses an order for an account outside the key with 403 ACCOUNT_NOT_ALLOWED', async () => {
    const res = await post(sampleOrder({ number: 'SCOPE-1', payer: { ...sampleOrder().payer, iban: 'KZ58998CTA0000000202' } }));
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ code: 'ACCOUNT_NOT_ALLOWED' });
    expect(await countOrders('SCOPE-1')).toBe(0);
  });

  it('a batch answered with an order refused alone is replayed for its Idempotency-Key; a batch refused as a whole leaves the key free', async () => {
    const body = { orders: [sampleOrder({ number: 'PIDEM-1' }), { ...sampleOrder({ number: 'PIDEM-2' }), amount: 10 }] };
    const first = await post(body, { 'idempotency-key': 'per-item-1' });
    expect(first.statusCode).toBe(201);
    const again = await post(body, { 'idempotency-key': 'per-item-1' });
    expect([again.statusCode, again.headers['idempotent-replayed'], again.json()]).toEqual([201, 'true', first.json()]);
    // The refused order corrected is another body: under a new key (the order taken in stays one).
    const corrected = { orders: [sampleOrder({ number: 'PIDEM-1' }), sampleOrder({ number: 'PIDEM-2' })] };
    expect((await post(corrected, { 'idempotency-key': 'per-item-1' })).statusCode).toBe(409);
    const fixed = await post(corrected, { 'idempotency-key': 'per-item-2' });
    expect([fixed.statusCode, fixed.json().results.map((r: { created: boolean }) => r.created)]).toEqual([201, [false, true]]);
    expect([await countOrders('PIDEM-1'), await countOrders('PIDEM-2')]).toEqual([1, 1]);
    const broken = { orders: [{ ...sampleOrder({ number: 'PIDEM-3' }), amount: 10 }] };
    expect((await post(broken, { 'idempotency-key': 'per-item-3' })).statusCode).toBe(400);
    expect((await post({ orders: [sampleOrder({ number: 'PIDEM-3' })] }, { 'idempotency-key': 'per-item-3' })).statusCode).toBe(201);
  });

  it('accepts a batch with per-order results; an invalid order does not stop its valid siblings', async () => {
    const res = await post({ orders: [sampleOrder({ number: 'B-1' }), sampleOrder({ number: 'B-2', amount: '0.00' }), sampleOrder({ number: 'B-3' })] });
    expect(res.statusCode).toBe(201);
    const results = res.json().results as Array<{ state: string }>;
    expect(results.map((r) => r.state)).toEqual(['validated', 'invalid', 'validated']);
  });

  it.each(['12345678901234567890', '9999999999999999.99'])('an amount of %s is recorded invalid for its size, with the largest amount, and for nothing else', async (amount) => {
    const res = await post(sampleOrder({ number: `BIG-${amount.length}`, amount }));
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ state: 'invalid' });
    expect(res.json().errors).toEqual([
      { field: 'amount', code: 'AMOUNT_FORMAT', message: `Сумма «${amount}» больше наибольшей допустимой (90071992547409.91)`, messageEn: `amount "${amount}" exceeds the largest amount 90071992547409.91` },
    ]);
  });

  it('lists with filters and a cursor, and shows one order; never another key\'s account', async () => {
    const other = (await createApiKey(context.orm.em.fork(), 'erp-other', ['KZ58998CTA0000000202'], 'test')).key;
    const list = await app.inject({ method: 'GET', url: '/api/v1/orders?limit=2', headers: { authorization: `Bearer ${key}` } });
    expect(list.statusCode).toBe(200);
    const page1 = list.json();
    expect(page1.orders).toHaveLength(2);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = (await app.inject({ method: 'GET', url: `/api/v1/orders?limit=2&cursor=${page1.nextCursor}`, headers: { authorization: `Bearer ${key}` } })).json();
    const ids1 = page1.orders.map((o: { id: string }) => o.id);
    for (const o of page2.orders) expect(ids1).not.toContain(o.id);
    // A cursor that is not one of ours is a 400 naming it, not a database error.
    const forged = Buffer.from(`${new Date().toISOString()}|1 or 1=1`).toString('base64url');
    const bad = await app.inject({ method: 'GET', url: `/api/v1/orders?cursor=${forged}`, headers: { authorization: `Bearer ${key}` } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'INVALID_REQUEST', message: 'bad cursor' });
    const byDoc = (await app.inject({ method: 'GET', url: '/api/v1/orders?erpDocumentId=doc-1', headers: { authorization: `Bearer ${key}` } })).json();
    expect(byDoc.orders).toHaveLength(1);
    const one = await app.inject({ method: 'GET', url: `/api/v1/orders/${byDoc.orders[0].id}`, headers: { authorization: `Bearer ${key}` } });
    expect(one.json()).toMatchObject({ erpDocumentId: 'doc-1', order: { amount: '150000.00' } });
    const hidden = await app.inject({ method: 'GET', url: `/api/v1/orders/${byDoc.orders[0].id}`, headers: { authorization: `Bearer ${other}` } });
    expect(hidden.statusCode).toBe(404);
    const otherList = (await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `Bearer ${other}` } })).json();
    expect(otherList.orders).toEqual([]);
  });

  it('pages a batch taken in in one transaction (every order the same created_at) whole: no order skipped or repeated across pages', async () => {
    const bulkAccount = 'KZ47998CTA0000000303';
    const bulk = (await createApiKey(context.orm.em.fork(), 'erp-bulk', [bulkAccount], 'test')).key;
    const orders = Array.from({ length: 7 }, (_, i) => sampleOrder({ number: `BULK-${i}`, payer: { ...sampleOrder().payer, iban: bulkAccount } }));
    const taken = await app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${bulk}`, 'content-type': 'application/json' }, payload: JSON.stringify({ orders }) });
    expect(taken.statusCode).toBe(201);
    const ids = (taken.json() as { results: Array<{ id: string }> }).results.map((r) => r.id);
    const [{ moments }] = await context.orm.em.fork().execute<Array<{ moments: string }>>('select count(distinct created_at) as moments from payment_order where payer_iban = ?', [bulkAccount]);
    expect(Number(moments)).toBe(1);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page += 1) {
      const res = await app.inject({ method: 'GET', url: `/api/v1/orders?limit=3${cursor ? `&cursor=${cursor}` : ''}`, headers: { authorization: `Bearer ${bulk}` } });
      const body = res.json() as { orders: Array<{ id: string }>; nextCursor: string | null };
      seen.push(...body.orders.map((o) => o.id));
      cursor = body.nextCursor;
      if (!cursor) break;
    }
    // Newest first, ties in id order (descending): each order exactly once.
    expect(seen).toEqual([...ids].sort().reverse());
  });

  it('takes the query of INTERFACES.md as written, its parameters empty: an empty one is one not given', async () => {
    // INTERFACES.md: `GET /api/v1/orders?state=&erpDocumentId=&limit=&cursor=`; an ERP that fills in only some of them sends the others empty.
    expect((await post(sampleOrder({ number: 'EMPTY-Q-1', currency: 'USD' }))).json().state).toBe('invalid');
    const all = (await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `Bearer ${key}` } })).json();
    expect(all.orders.length).toBeGreaterThan(0);
    const empty = await app.inject({ method: 'GET', url: '/api/v1/orders?state=&erpDocumentId=&limit=&cursor=', headers: { authorization: `Bearer ${key}` } });
    expect(empty.statusCode).toBe(200);
    expect(empty.json()).toEqual(all);
    const emptyLimit = await app.inject({ method: 'GET', url: '/api/v1/orders?state=invalid&limit=', headers: { authorization: `Bearer ${key}` } });
    expect(emptyLimit.statusCode).toBe(200);
    const states = emptyLimit.json().orders.map((o: { state: string }) => o.state);
    expect([states.length > 0, states.every((state: string) => state === 'invalid')]).toEqual([true, true]);
    // A limit that is given is still judged.
    expect((await app.inject({ method: 'GET', url: '/api/v1/orders?limit=0', headers: { authorization: `Bearer ${key}` } })).statusCode).toBe(400);
  });

  it('a bad query of the orders list names the parameter and the rule in its message, not only in details (an ERP\'s log keeps the message)', async () => {
    const get = async (query: string) => (await app.inject({ method: 'GET', url: `/api/v1/orders?${query}`, headers: { authorization: `Bearer ${key}` } })).json();
    expect(await get('limit=abc')).toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringMatching(/^bad query: limit: Expected number/), details: [{ path: 'limit' }] });
    expect(await get('limit=501')).toMatchObject({ message: expect.stringMatching(/^bad query: limit: Number must be less than or equal to 500/) });
    expect(await get('state=submited')).toMatchObject({ message: expect.stringMatching(/^unknown state "submited": one of received, validated, .*submitted/), details: [{ path: 'state' }] });
  });

  it.each([
    ['36 dashes', '-'.repeat(36)],
    ['hex and dashes of the right length in the wrong places', 'aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaa-'],
    ['a UUID without its dashes, padded', `${'a'.repeat(32)}----`],
  ])('an order id that is no UUID (%s) is 404 NOT_FOUND, not a database error', async (_what, id) => {
    const res = await app.inject({ method: 'GET', url: `/api/v1/orders/${id}`, headers: { authorization: `Bearer ${key}` } });
    expect([res.statusCode, res.json().code]).toEqual([404, 'NOT_FOUND']);
  });

  it('stops accepting a revoked key at once', async () => {
    const { key: temp } = await createApiKey(context.orm.em.fork(), 'erp-temp', [account], 'test');
    expect((await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `Bearer ${temp}` } })).statusCode).toBe(200);
    await revokeApiKey(context.orm.em.fork(), 'erp-temp', 'test');
    expect((await app.inject({ method: 'GET', url: '/api/v1/orders', headers: { authorization: `Bearer ${temp}` } })).statusCode).toBe(401);
  });

  it('a document sent again through a rotated key is the first order; a changed one under the same number is 409 DOCUMENT_CONFLICT', async () => {
    const order = sampleOrder({ number: 'ROT-1', amount: '10.00' });
    const first = await post(order, { 'idempotency-key': 'k-rot-1' });
    expect(first.statusCode).toBe(201);
    // The leaked key is revoked; a revoked name cannot be taken again, so the ERP gets a new one.
    await revokeApiKey(context.orm.em.fork(), 'erp-main', 'test');
    const { key: rotated } = await createApiKey(context.orm.em.fork(), 'erp-main-2026', [account], 'test');
    const viaRotated = (body: unknown, headers: Record<string, string> = {}) =>
      app.inject({ method: 'POST', url: '/api/v1/orders', headers: { authorization: `Bearer ${rotated}`, 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) });
    try {
      const again = await viaRotated(order, { 'idempotency-key': 'k-rot-1' });
      expect([again.statusCode, again.json().id, again.json().created]).toEqual([200, first.json().id, false]);
      expect(await countOrders('ROT-1')).toBe(1);

      const changed = await viaRotated({ ...order, amount: '20.00' });
      expect(changed.statusCode).toBe(409);
      expect(changed.json()).toMatchObject({
        code: 'DOCUMENT_CONFLICT',
        details: { id: first.json().id, differences: [{ field: 'amount', stored: '10.00', received: '20.00' }] },
      });
      // The first stands and would be paid: a corrected copy under a new number alone is a second
      // payment, so the ERP is told to have it withdrawn first, by its id.
      expect(changed.json().message).toMatch(new RegExp(`ROT-1 .*will be paid: .*connector orders withdraw ${first.json().id}`));
      expect(changed.json().message).not.toMatch(/under a new number/);
      // In a batch, the conflicting order is answered as such and the good one beside it is taken.
      const batch = await viaRotated({ orders: [{ ...order, amount: '20.00' }, sampleOrder({ number: 'ROT-2' })] });
      expect(batch.statusCode).toBe(201);
      expect(batch.json().results.map((r: { created: boolean; conflict?: { code: string } }) => [r.created, r.conflict?.code ?? null])).toEqual([
        [false, 'DOCUMENT_CONFLICT'],
        [true, null],
      ]);
      expect(await countOrders('ROT-1')).toBe(1);
    } finally {
      key = rotated; // the tests after this one use the key in force
    }
  });

  it('the same document under another erpDocumentId is 409 DOCUMENT_CONFLICT naming erpDocumentId; the first id still finds it', async () => {
    const first = await post(sampleOrder({ number: 'ERPID-1', erpDocumentId: 'DOC-1' }));
    expect(first.statusCode).toBe(201);
    const second = await post(sampleOrder({ number: 'ERPID-1', erpDocumentId: 'DOC-2' }));
    expect(second.statusCode).toBe(409);
    expect(second.json()).toMatchObject({ code: 'DOCUMENT_CONFLICT', details: { id: first.json().id, differences: [{ field: 'erpDocumentId', stored: 'DOC-1', received: 'DOC-2' }] } });
    const found = await app.inject({ method: 'GET', url: '/api/v1/orders?erpDocumentId=DOC-1', headers: { authorization: `Bearer ${key}` } });
    expect(JSON.stringify(found.json())).toContain(first.json().id);
  });

  it('one ERP document, one live order: renumbered or re-dated under its erpDocumentId it is 409 DOCUMENT_CONFLICT and nothing is stored', async () => {
    const ordersOf = async (erpDocumentId: string) =>
      (await context.orm.em.fork().execute<Array<{ id: string; number: string }>>('select id, number from payment_order where erp_document_id = ? order by created_at, number', [erpDocumentId])).map((r) => r.number);
    const order = sampleOrder({ number: 'IK-1', erpDocumentId: 'erp-ik1', amount: '1500.00' });
    const first = await post(order);
    expect(first.statusCode).toBe(201);
    const renumbered = await post({ ...order, number: 'IK-1b' });
    expect(renumbered.statusCode).toBe(409);
    expect(renumbered.json()).toMatchObject({ code: 'DOCUMENT_CONFLICT', details: { id: first.json().id, differences: [{ field: 'number', stored: 'IK-1', received: 'IK-1b' }] } });
    // It would be paid beside the first: the ERP is told to have the first withdrawn, by its id.
    expect(renumbered.json().message).toMatch(new RegExp(`^ERP document erp-ik1 of ${order.payer.iban} is already an order \\(\\w+\\) under other requisites .*IK-1.*IK-1b.*; this one was not stored: .*connector orders withdraw ${first.json().id}`));
    const redated = await post({ ...order, date: '2020-01-02' });
    expect(redated.json()).toMatchObject({ code: 'DOCUMENT_CONFLICT', details: { differences: [{ field: 'date', stored: order.date, received: '2020-01-02' }] } });
    expect(await ordersOf('erp-ik1')).toEqual(['IK-1']);
    // The same document again is still the first order (no conflict).
    expect([(await post(order)).statusCode, (await post(order)).json().id]).toEqual([200, first.json().id]);

    // In one batch: the first row takes the id, the second (renumbered) is answered with the first's order; a good one beside them goes in.
    const batch = await post({ orders: [sampleOrder({ number: 'IK-2', erpDocumentId: 'erp-ik2' }), sampleOrder({ number: 'IK-2b', erpDocumentId: 'erp-ik2' }), sampleOrder({ number: 'IK-3', erpDocumentId: 'erp-ik3' })] });
    expect(batch.statusCode).toBe(201);
    const results = batch.json().results as Array<{ id: string; created: boolean; conflict?: { code: string; differences: unknown[] } }>;
    expect(results.map((r) => [r.created, r.conflict?.code ?? null])).toEqual([[true, null], [false, 'DOCUMENT_CONFLICT'], [true, null]]);
    expect(results[1].id).toBe(results[0].id);
    expect(results[1].conflict?.differences).toEqual([{ field: 'number', stored: 'IK-2', received: 'IK-2b' }]);
    expect(await ordersOf('erp-ik2')).toEqual(['IK-2']);

    // Sent at once under four numbers: one order, three conflicts.
    const racing = await Promise.all(['R-1', 'R-2', 'R-3', 'R-4'].map((number) => post(sampleOrder({ number, erpDocumentId: 'erp-race' }))));
    expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409]);
    expect(await ordersOf('erp-race')).toHaveLength(1);
  });

  it('an ERP document whose order ended invalid may come again under a new number: that order is not its last word', async () => {
    const broken = sampleOrder({ number: 'IV-1', erpDocumentId: 'erp-iv1', beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ00722S000000067890' } });
    expect((await post(broken)).json().state).toBe('invalid');
    const renumbered = await post({ ...broken, number: 'IV-1a', beneficiary: sampleOrder().beneficiary });
    expect([renumbered.statusCode, renumbered.json().created]).toEqual([201, true]);
    // Now the new one is live: a third number conflicts with it.
    const third = await post({ ...broken, number: 'IV-1b', beneficiary: sampleOrder().beneficiary });
    expect([third.statusCode, third.json().details.id]).toEqual([409, renumbered.json().id]);
  });

  it('an order answered invalid, sent again corrected, is validated again under its id and answered with the new verdict', async () => {
    const broken = sampleOrder({ number: 'FIX-1', beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ00722S000000067890' } });
    const first = await post(broken);
    expect([first.statusCode, first.json().state]).toEqual([201, 'invalid']);
    const corrected = await post(sampleOrder({ number: 'FIX-1' }));
    expect([corrected.statusCode, corrected.json().id, corrected.json().state, corrected.json().errors]).toEqual([200, first.json().id, 'validated', []]);
    expect(await countOrders('FIX-1')).toBe(1);
  });

  it('stores only a hash of API keys', async () => {
    const rows = await context.orm.em.fork().execute<Array<Record<string, unknown>>>('select * from api_key');
    expect(JSON.stringify(rows)).not.toContain(key);
  });
});
