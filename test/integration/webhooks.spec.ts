import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from 'pg';
import { verifyWebhook } from '../../adapters/erp/http/webhook.signature';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { validateStoredOrder } from '../../connector/orders/order-validation';
import { ManualClock } from '../../connector/shared/clock';
import { UNDELIVERED_AFTER_ATTEMPTS, dispatchWebhooks } from '../../queue/jobs/dispatch-webhooks.job';
import { trackBatch } from '../../queue/jobs/track-order.job';
import type { JobContext } from '../../queue/job-context';
import { REASON_TEXT_RU } from '../../adapters/bank/business-api/business-api.errors';
import type { BankPaymentStatus } from '../../adapters/bank/business-api/business-api.schemas';
import { sampleOrder } from '../support/orders.fixture';
import { createTestEnv, type TestEnv } from '../support/test-env';

/** Status webhooks to a real local HTTP endpoint, from real PostgreSQL rows. */
describe('status webhooks', () => {
  let env: TestEnv;
  let context: AppContext;
  let server: Server;
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  let failNext = 0;
  let answerAfterMs = 0;
  const SECRET = 'test-webhook-secret';
  const clock = new ManualClock(new Date('2026-11-25T06:00:00Z'));
  const noQueue = { enqueueValidate: async () => undefined };

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (failNext > 0) {
          failNext -= 1;
          res.writeHead(503).end();
          return;
        }
        received.push({ headers: req.headers, body });
        setTimeout(() => res.writeHead(204).end(), answerAfterMs);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    env = await createTestEnv('webhooks');
    const secretFile = join(env.workDir, 'webhook.secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    context = await createAppContext({ config: { ...env.config, webhooks: { ...env.config.webhooks, url: `http://127.0.0.1:${port}/hooks`, secretFile } }, role: 'worker' });
    context.clock = clock;
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
    await new Promise((r) => server.close(r));
  });

  it('starts after the events that already exist: enabling webhooks replays no history', async () => {
    await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'OLD-1', erpDocumentId: 'old-1' }) }], noQueue, { actor: 't' });
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 0 });
    expect(received).toHaveLength(0);
  });

  it('posts each status change in order, signed over "<timestamp>.<body>"', async () => {
    const [order] = await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-1', erpDocumentId: 'erp-wh-1' }) }], noQueue, { actor: 't' });
    await transitionOrder(context.orm.em.fork(), order.orderId, 'invalid', { actor: 't', reason: 'amount: amount must be positive', patch: { errors: [{ field: 'amount', code: 'AMOUNT_NOT_POSITIVE', message: 'Сумма должна быть больше нуля' }] } });
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 2 });
    expect(received).toHaveLength(2);
    const bodies = received.map((r) => JSON.parse(r.body));
    expect(bodies.map((b) => [b.erpDocumentId, b.previousState, b.state])).toEqual([
      ['erp-wh-1', null, 'received'],
      ['erp-wh-1', 'received', 'invalid'],
    ]);
    expect(bodies[1]).toMatchObject({ event: 'order.status', orderId: order.orderId, number: 'WH-1', date: sampleOrder().date, amount: '150000.00', errors: [expect.objectContaining({ code: 'AMOUNT_NOT_POSITIVE' })] });
    for (const r of received) {
      const ts = r.headers['x-connector-timestamp'] as string;
      expect(ts).toBe(String(Math.floor(clock.now().getTime() / 1000)));
      expect(r.headers['x-connector-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
      // INTERFACES.md's format, computed here as an ERP would, not with our own signer: HMAC-SHA256 of "<timestamp>.<body>".
      expect(r.headers['x-connector-signature']).toBe(`sha256=${createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')}`);
      expect(r.headers['x-connector-signature']).not.toBe(`sha256=${createHmac('sha256', SECRET).update(`${Number(ts) + 1}.${r.body}`).digest('hex')}`);
      expect(verifyWebhook(SECRET, ts, r.body, r.headers['x-connector-signature'] as string, clock.now())).toBe(true);
      expect(verifyWebhook('another-secret', ts, r.body, r.headers['x-connector-signature'] as string, clock.now())).toBe(false);
    }
    // Nothing new: nothing sent twice.
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 0 });
    expect(received).toHaveLength(2);
  });

  it('retries an unacknowledged event with backoff until the ERP answers 2xx; later events wait', async () => {
    received.length = 0;
    const [a] = await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-2', erpDocumentId: 'erp-wh-2' }) }], noQueue, { actor: 't' });
    await transitionOrder(context.orm.em.fork(), a.orderId, 'validated', { actor: 't' });
    failNext = 2;
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 0, failed: { error: 'HTTP 503', attempts: 1 } });
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'backoff' });
    clock.advance(1_000);
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 0, failed: { attempts: 2 } });
    clock.advance(1_000);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'backoff' });
    clock.advance(1_000);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 2 });
    expect(received.map((r) => JSON.parse(r.body).state)).toEqual(['received', 'validated']);
  });

  it('an event the endpoint keeps refusing opens one incident after a few attempts (later events wait behind it)', async () => {
    received.length = 0;
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done' });
    const [a] = await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-GONE', erpDocumentId: 'erp-wh-gone' }) }], noQueue, { actor: 't' });
    const incidents = async () => context.orm.em.fork().execute<Array<{ evidence: { orderId: string; attempts: number; error: string } }>>("select evidence from incident where kind = 'webhook_undelivered' and evidence->>'orderId' = ?", [a.orderId]);
    failNext = UNDELIVERED_AFTER_ATTEMPTS + 1;
    for (let attempt = 1; attempt <= UNDELIVERED_AFTER_ATTEMPTS + 1; attempt += 1) {
      expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ failed: { attempts: attempt } });
      expect(await incidents()).toHaveLength(attempt >= UNDELIVERED_AFTER_ATTEMPTS ? 1 : 0);
      clock.advance(10 * 60_000);
    }
    expect((await incidents())[0].evidence).toMatchObject({ attempts: UNDELIVERED_AFTER_ATTEMPTS, error: 'HTTP 503' });
    expect(JSON.stringify(await incidents())).not.toContain('127.0.0.1');
    // Delivered at last: it goes, in order.
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 1 });
    // And its incident closes by itself, saying why (nothing is left for a person to do).
    const [closed] = await context.orm.em.fork().execute<Array<{ id: string; status: string; resolved_by: string; resolved_at: string; timeline: Array<{ actor: string; text: string }> }>>(
      "select id, status, resolved_by, resolved_at, timeline from incident where kind = 'webhook_undelivered' and evidence->>'orderId' = ?",
      [a.orderId],
    );
    expect(closed).toMatchObject({ status: 'resolved', resolved_by: 'worker' });
    expect(new Date(closed.resolved_at)).toEqual(clock.now());
    expect(closed.timeline.at(-1)).toEqual({ at: clock.now().toISOString(), actor: 'worker', text: expect.stringMatching(/^resolved: the ERP acknowledged status event \d+ .* after 6 failed attempt\(s\)/) });
    const audit = await context.orm.em.fork().execute("select 1 from audit_event where action = 'incident.resolved' and subject = ?", [closed.id]);
    expect(audit).toHaveLength(1);
  });

  it('never skips an event whose transaction commits after a later event was delivered', async () => {
    received.length = 0;
    const [a, b] = await intakeOrders(
      context.orm.em.fork(),
      'erp',
      [{ order: sampleOrder({ number: 'WH-3', erpDocumentId: 'erp-wh-3' }) }, { order: sampleOrder({ number: 'WH-4', erpDocumentId: 'erp-wh-4' }) }],
      noQueue,
      { actor: 't' },
    );
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 2 });
    received.length = 0;
    // A's transition takes the lower event id but commits last: B's event is visible first.
    let moved!: () => void;
    let commit!: () => void;
    const aMoved = new Promise<void>((r) => (moved = r));
    const aCommits = new Promise<void>((r) => (commit = r));
    const slow = context.orm.em.fork().transactional(async (tx) => {
      await transitionOrder(tx, a.orderId, 'validated', { actor: 't' });
      moved();
      await aCommits;
    });
    await aMoved;
    await transitionOrder(context.orm.em.fork(), b.orderId, 'validated', { actor: 't' });
    const during = await dispatchWebhooks(context, context.redis, { settleMs: 200 });
    commit();
    await slow;
    const after = await dispatchWebhooks(context, context.redis);
    // While A is being written, the run says whose transaction it waits for (an operator's clue when one is stuck).
    expect(during).toEqual({ status: 'unsettled', waitingFor: [{ pid: expect.any(Number), openSeconds: expect.any(Number), application: expect.any(String) }] });
    expect(after).toEqual({ status: 'done', delivered: 2 });
    const bodies = received.map((r) => JSON.parse(r.body));
    expect(bodies.map((x) => [x.erpDocumentId, x.state])).toEqual([
      ['erp-wh-3', 'validated'],
      ['erp-wh-4', 'validated'],
    ]);
  });

  it('a long transaction that writes no status change (in another database, or reading the events here) does not hold deliveries back', async () => {
    received.length = 0;
    /** While another session holds a transaction open (its statements run first), one order is taken in and delivered. */
    const deliveredWhileOpen = async (url: string, statements: string[], number: string) => {
      const other = new Client({ connectionString: url });
      await other.connect();
      try {
        await other.query('begin');
        for (const sql of statements) await other.query(sql);
        await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number, erpDocumentId: `erp-${number.toLowerCase()}` }) }], noQueue, { actor: 't' });
        expect(await dispatchWebhooks(context, context.redis, { settleMs: 200 })).toEqual({ status: 'done', delivered: 1 });
        await other.query('rollback');
      } finally {
        await other.end();
      }
    };
    await deliveredWhileOpen(`${process.env.CONNECTOR_TEST_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432'}/postgres`, ['select pg_current_xact_id()'], 'WH-LONG-1');
    // Nor one in this database that writes elsewhere and only reads the events.
    await deliveredWhileOpen(env.env.CONNECTOR_DATABASE_URL as string, ['create temp table scratch (n int)', 'select count(*) from order_event'], 'WH-LONG-2');
  });

  it('a dispatcher whose ERP acknowledges slowly keeps its lock: no second dispatcher sends the same events meanwhile', async () => {
    received.length = 0;
    const orders = await intakeOrders(
      context.orm.em.fork(),
      'erp',
      [1, 2, 3].map((n) => ({ order: sampleOrder({ number: `WH-SLOW-${n}`, erpDocumentId: `erp-wh-slow-${n}` }) })),
      noQueue,
      { actor: 't' },
    );
    answerAfterMs = 300;
    try {
      // The lock is taken for 200 ms; each delivery takes 300 ms.
      const first = dispatchWebhooks(context, context.redis, { lockMs: 200 });
      await new Promise((r) => setTimeout(r, 450));
      const second = await dispatchWebhooks(context, context.redis, { lockMs: 200 });
      expect(await first).toEqual({ status: 'done', delivered: orders.length });
      expect(second).toEqual({ status: 'locked' });
    } finally {
      answerAfterMs = 0;
    }
    const ids = received.map((r) => JSON.parse(r.body).eventId);
    expect(ids).toHaveLength(orders.length);
    expect(new Set(ids).size).toBe(orders.length);
  });

  it('one run delivers everything pending, a batch at a time: delivery keeps up with more events than one batch per run', async () => {
    received.length = 0;
    const orders = await intakeOrders(
      context.orm.em.fork(),
      'erp',
      [1, 2, 3, 4, 5].map((n) => ({ order: sampleOrder({ number: `WH-MANY-${n}`, erpDocumentId: `erp-wh-many-${n}` }) })),
      noQueue,
      { actor: 't' },
    );
    const batchSize = context.config.webhooks.batchSize;
    context.config.webhooks.batchSize = 2;
    try {
      expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: orders.length });
    } finally {
      context.config.webhooks.batchSize = batchSize;
    }
    expect(received.map((r) => JSON.parse(r.body).number)).toEqual(orders.map((_, i) => `WH-MANY-${i + 1}`));
  });

  it('tells each event with the order as it was then: an invalid event delivered after the correction keeps its amount and errors', async () => {
    received.length = 0;
    const em = () => context.orm.em.fork();
    const post = (amount: string) => intakeOrders(em(), 'api:erp', [{ order: sampleOrder({ number: 'W-1', erpDocumentId: 'erp-w-1', amount }) }], noQueue, { actor: 't' });
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done' });
    // The ERP's endpoint is down while the order is found invalid, corrected and validated again.
    failNext = 1_000;
    try {
      const [first] = await post('0.00');
      expect(await validateStoredOrder(em(), first.orderId, context.validator, { actor: 't' })).toEqual({ state: 'invalid', changed: true });
      expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ failed: { attempts: 1 } });
      const [corrected] = await post('250.00');
      expect(corrected).toMatchObject({ orderId: first.orderId, corrected: true });
      expect(await validateStoredOrder(em(), first.orderId, context.validator, { actor: 't' })).toEqual({ state: 'validated', changed: true });
    } finally {
      failNext = 0;
    }
    clock.advance(10 * 60_000);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 4 });
    const bodies = received.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(bodies.map((b) => [b.previousState, b.state, b.amount, b.erpDocumentId, b.number])).toEqual([
      [null, 'received', '0.00', 'erp-w-1', 'W-1'],
      ['received', 'invalid', '0.00', 'erp-w-1', 'W-1'],
      ['invalid', 'received', '250.00', 'erp-w-1', 'W-1'],
      ['received', 'validated', '250.00', 'erp-w-1', 'W-1'],
    ]);
    // The invalid event: the errors that made it invalid, beside the reason naming them.
    expect(bodies[1]).toMatchObject({ reason: expect.stringContaining('amount'), errors: [expect.objectContaining({ field: 'amount' })] });
    expect(bodies[0]).not.toHaveProperty('errors');
    expect(bodies[2]).not.toHaveProperty('errors');
    // Each writer kept it: intake, the validation's bulk transition, the correction.
    const kept = await em().execute<Array<{ to_state: string; amount: string | null }>>("select to_state, order_snapshot->>'amountTiyn' as amount from order_event where order_id = ? order by id", [bodies[0].orderId]);
    expect(kept).toEqual([
      { to_state: 'received', amount: '0' },
      { to_state: 'invalid', amount: '0' },
      { to_state: 'received', amount: '25000' },
      { to_state: 'validated', amount: '25000' },
    ]);
  });

  it('an event written before the order was kept with it (before the upgrade) tells the order as it is now', async () => {
    received.length = 0;
    const [order] = await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-OLD-EVENT', erpDocumentId: 'erp-wh-old-event', amount: '12.34' }) }], noQueue, { actor: 't' });
    await context.orm.em.fork().execute('update order_event set order_snapshot = null where order_id = ?', [order.orderId]);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 1 });
    expect(JSON.parse(received[0].body)).toMatchObject({ state: 'received', number: 'WH-OLD-EVENT', erpDocumentId: 'erp-wh-old-event', amount: '12.34', source: 'erp', date: sampleOrder().date });
  });

  it('a refusal at execution tells the ERP why in words, as a refusal at submission does, even when the bank gives only its code (R-23)', async () => {
    received.length = 0;
    const em = () => context.orm.em.fork();
    const [order] = await intakeOrders(em(), 'api:erp', [{ order: sampleOrder({ number: 'WH-REJ', erpDocumentId: 'erp-wh-rej' }) }], noQueue, { actor: 't' });
    // At the bank: submitted and polled. The bank's status answer (the bank boundary) refuses it
    // at execution with its code alone, as its contract allows (reasonText is optional).
    await em().execute(`update payment_order set state = 'submitted', bank_reference = 'DOC-WH-REJ', bank_status = 'accepted', state_changed_at = ? where id = ?`, [clock.now(), order.orderId]);
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done' });
    received.length = 0;
    const bank = {
      getStatus: async (documentId: string): Promise<BankPaymentStatus> => ({ documentId, externalId: order.externalId, status: 'rejected', reasonCode: 'ACCOUNT_ARRESTED', updatedAt: clock.now().toISOString() }),
    };
    const polled: JobContext = { ...context, services: { ...context.services, bank: () => bank as unknown as ReturnType<JobContext['services']['bank']> } };
    expect(await trackBatch(polled, [order.orderId])).toEqual([{ state: 'rejected' }]);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'done', delivered: 1 });
    const body = JSON.parse(received[0].body) as Record<string, unknown>;
    expect(body).toMatchObject({ erpDocumentId: 'erp-wh-rej', previousState: 'submitted', state: 'rejected' });
    // What 1C's status report says of it (the same words), not the bare code twice ("ACCOUNT_ARRESTED: ACCOUNT_ARRESTED").
    expect(body.reason).toBe(`ACCOUNT_ARRESTED: ${REASON_TEXT_RU.ACCOUNT_ARRESTED}`);
  });

  it('an empty secret file sends nothing (an HMAC with an empty key is no signature): the run fails naming the file', async () => {
    received.length = 0;
    await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-NOKEY', erpDocumentId: 'erp-wh-nokey' }) }], noQueue, { actor: 't' });
    const emptyFile = join(env.workDir, 'empty.secret');
    writeFileSync(emptyFile, '\n', { mode: 0o600 });
    const secretFile = context.config.webhooks.secretFile;
    context.config.webhooks.secretFile = emptyFile;
    try {
      await expect(dispatchWebhooks(context, context.redis)).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining(`${emptyFile} is empty`) });
      expect(received).toHaveLength(0);
    } finally {
      context.config.webhooks.secretFile = secretFile;
    }
    // With the secret back, the event waited and goes.
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 1 });
    expect(JSON.parse(received[0].body)).toMatchObject({ number: 'WH-NOKEY' });
  });

  it('a secret file group or others may read sends nothing either (anyone on the machine could sign): the run fails naming the file and its mode', async () => {
    received.length = 0;
    await intakeOrders(context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'WH-LOOSE', erpDocumentId: 'erp-wh-loose' }) }], noQueue, { actor: 't' });
    const looseFile = join(env.workDir, 'loose.secret');
    writeFileSync(looseFile, 'Loose-Canary-Secret\n');
    chmodSync(looseFile, 0o644);
    const secretFile = context.config.webhooks.secretFile;
    context.config.webhooks.secretFile = looseFile;
    try {
      const refused = dispatchWebhooks(context, context.redis);
      await expect(refused).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining(`webhooks.secretFile ${looseFile} may be read by group or others (mode 0644)`) });
      await expect(refused).rejects.toMatchObject({ message: expect.not.stringContaining('Loose-Canary-Secret') });
      expect(received).toHaveLength(0);
      // Not a log line only: the ERP hears nothing until a person acts, and an open incident says so.
      await expect(dispatchWebhooks(context, context.redis)).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      const open = await context.orm.em.fork().execute<Array<{ title: string }>>("select title from incident where kind = 'webhook_undelivered' and status = 'open' and dedupe_key = 'webhook_undelivered:secret-file'");
      expect(open.map((i) => i.title)).toEqual([expect.stringContaining(`No status event is sent to the ERP (webhooks.url): webhooks.secretFile ${looseFile} may be read by group or others (mode 0644)`)]);
    } finally {
      context.config.webhooks.secretFile = secretFile;
    }
    expect(await dispatchWebhooks(context, context.redis)).toMatchObject({ status: 'done', delivered: 1 });
    expect(JSON.parse(received[0].body)).toMatchObject({ number: 'WH-LOOSE' });
    // Fixed: the incident closes by itself.
    expect(await context.orm.em.fork().execute("select id from incident where dedupe_key = 'webhook_undelivered:secret-file' and status = 'open'")).toEqual([]);
  });

  it('one dispatcher at a time', async () => {
    await context.redis.set(`${env.config.redis.prefix}:webhooks:lock`, 'other', 'PX', 5_000);
    expect(await dispatchWebhooks(context, context.redis)).toEqual({ status: 'locked' });
    await context.redis.del(`${env.config.redis.prefix}:webhooks:lock`);
  });
});
