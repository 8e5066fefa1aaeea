import { Client } from 'pg';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { intakeOrders } from '../../connector/intake/order-intake';
import { markOrderFailed, transitionOrder, transitionOrders, IllegalTransitionError, OrderNotFoundError } from '../../connector/orders/order-state.machine';
import { createHash } from 'node:crypto';
import { appendAudit, appendAudits, canonicalJson, verifyAudit } from '../../connector/audit/audit.log';
import { sampleOrder } from '../support/orders.fixture';
import { freezeDocuments, loadDocuments, recordSignatures, validSignatures, type NewSignature } from '../../connector/signing/order-signatures';

describe('order transitions on PostgreSQL', () => {
  let env: TestEnv;
  let orm: Orm;
  const enqueued: string[] = [];
  const port = { enqueueValidate: async (ids: string[]) => void enqueued.push(...ids), enqueueValidated: async () => undefined };

  beforeAll(async () => {
    env = await createTestEnv('statemachine');
    orm = await openOrm(env.config);
  });
  afterAll(async () => {
    await orm.close(true);
    await env.cleanup();
  });

  async function newOrder(number: string): Promise<string> {
    const [result] = await intakeOrders(orm.em.fork(), 'test', [{ order: sampleOrder({ number }) }], port, { actor: 'test' });
    return result.orderId;
  }

  /** Whether each audit record of `action` on `subject` hashes as the chain defines it (an earlier test tampers with another record). */
  async function auditedAsChained(action: string, subject: string): Promise<Array<{ actor: string; details: { level?: string } }>> {
    const rows = await orm.em.fork().execute<Array<{ seq: string; at: Date; actor: string; action: string; subject: string | null; details: { level?: string }; prev_hash: string; hash: string }>>(
      'select * from audit_event where action = ? and subject = ? order by seq',
      [action, subject],
    );
    for (const row of rows) {
      const body = canonicalJson({ seq: Number(row.seq), at: new Date(row.at).toISOString(), actor: row.actor, action: row.action, subject: row.subject, details: row.details });
      expect(row.hash).toBe(createHash('sha256').update(`${row.prev_hash}\n${body}`).digest('hex'));
      const [previous] = await orm.em.fork().execute<Array<{ hash: string }>>('select hash from audit_event where seq = ?', [Number(row.seq) - 1]);
      expect(row.prev_hash).toBe(previous.hash);
    }
    return rows;
  }

  async function events(orderId: string) {
    return orm.em.fork().execute<Array<{ from_state: string | null; to_state: string; actor: string }>>('select from_state, to_state, actor from order_event where order_id = ? order by id', [orderId]);
  }

  it('applies an allowed transition once, records the event, bumps the version', async () => {
    const id = await newOrder('A1');
    const result = await transitionOrder(orm.em.fork(), id, 'validated', { actor: 'tester', reason: 'ok' });
    expect(result).toMatchObject({ changed: true, from: 'received', to: 'validated', version: 2 });
    expect(await events(id)).toEqual([
      { from_state: null, to_state: 'received', actor: 'test' },
      { from_state: 'received', to_state: 'validated', actor: 'tester' },
    ]);
  });

  it('treats a repeated transition as a no-op without a second event', async () => {
    const id = await newOrder('A2');
    await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't' });
    const again = await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't' });
    expect(again.changed).toBe(false);
    expect((await events(id)).length).toBe(2);
  });

  it('refuses an illegal transition with a coded error and changes nothing', async () => {
    const id = await newOrder('A3');
    await expect(transitionOrder(orm.em.fork(), id, 'executed', { actor: 't' })).rejects.toBeInstanceOf(IllegalTransitionError);
    await expect(transitionOrder(orm.em.fork(), id, 'submitting', { actor: 't' })).rejects.toThrow(/received -> submitting is not an allowed transition/);
    const [row] = await orm.em.fork().execute<Array<{ state: string; version: number }>>('select state, version from payment_order where id = ?', [id]);
    expect(row).toEqual({ state: 'received', version: 1 });
  });

  it('lets exactly one of many concurrent claims win (the submit guard)', async () => {
    const id = await newOrder('A4');
    for (const to of ['validated', 'awaiting_signatures', 'signed'] as const) await transitionOrder(orm.em.fork(), id, to, { actor: 't' });
    const claims = await Promise.all(Array.from({ length: 8 }, () => transitionOrder(orm.em.fork(), id, 'submitting', { actor: 'w', from: 'signed' })));
    expect(claims.filter((c) => c.changed)).toHaveLength(1);
    expect((await events(id)).filter((e) => e.to_state === 'submitting')).toHaveLength(1);
  });

  it('honours an expected version (optimistic lock)', async () => {
    const id = await newOrder('A5');
    await expect(transitionOrder(orm.em.fork(), id, 'validated', { actor: 't', expectVersion: 7 })).rejects.toBeInstanceOf(IllegalTransitionError);
    expect((await transitionOrder(orm.em.fork(), id, 'validated', { actor: 't', expectVersion: 1 })).changed).toBe(true);
  });

  it('moves a batch in one statement: each allowed order once, the others with their own error', async () => {
    const ready = [await newOrder('B1'), await newOrder('B2')];
    const already = await newOrder('B3');
    await transitionOrder(orm.em.fork(), already, 'validated', { actor: 't' });
    const stuck = await newOrder('B4');
    await transitionOrder(orm.em.fork(), stuck, 'invalid', { actor: 't' });
    const missing = '00000000-0000-4000-8000-000000000000';
    const outcomes = await transitionOrders(orm.em.fork(), [...ready, already, stuck, missing], 'validated', { actor: 'batch', from: 'received', reason: 'ok', patch: { warnings: [] } });
    expect(outcomes.slice(0, 3)).toEqual([
      { orderId: ready[0], changed: true, from: 'received', to: 'validated', version: 2 },
      { orderId: ready[1], changed: true, from: 'received', to: 'validated', version: 2 },
      { orderId: already, changed: false, from: 'validated', to: 'validated', version: 2 },
    ]);
    expect((outcomes[3] as { error: Error }).error).toBeInstanceOf(IllegalTransitionError);
    expect((outcomes[4] as { error: Error }).error).toBeInstanceOf(OrderNotFoundError);
    for (const id of ready) expect(await events(id)).toEqual([expect.objectContaining({ to_state: 'received' }), { from_state: 'received', to_state: 'validated', actor: 'batch' }]);
    // The same batch again: no second event anywhere.
    const again = await transitionOrders(orm.em.fork(), ready, 'validated', { actor: 'batch', from: 'received' });
    expect(again.map((o) => 'changed' in o && o.changed)).toEqual([false, false]);
    for (const id of ready) expect((await events(id)).length).toBe(2);
  });

  it('sets values that differ per order in the same statement (each order its own bank reference), typed per column', async () => {
    const ids = [await newOrder('P1'), await newOrder('P2')];
    const until = new Date('2026-11-25T10:00:00Z');
    const outcomes = await transitionOrders(orm.em.fork(), ids, 'validated', {
      actor: 'batch',
      from: 'received',
      patch: { bankStatus: 'accepted' },
      perOrder: new Map([
        [ids[0], { bankReference: 'REF-1', sendLeaseUntil: until.toISOString(), warnings: [{ field: 'knp' }] }],
        [ids[1], { bankReference: 'REF-2', sendLeaseUntil: null, warnings: null }],
      ]),
    });
    expect(outcomes.map((o) => 'changed' in o && o.changed)).toEqual([true, true]);
    const rows = await orm.em.fork().execute<Array<{ id: string; bank_reference: string; bank_status: string; send_lease_until: Date | null; warnings: unknown }>>(
      `select id, bank_reference, bank_status, send_lease_until, warnings from payment_order where id in (?, ?) order by number`,
      ids,
    );
    expect(rows.map((r) => [r.bank_reference, r.bank_status, r.send_lease_until && new Date(r.send_lease_until).toISOString(), r.warnings])).toEqual([
      ['REF-1', 'accepted', until.toISOString(), [{ field: 'knp' }]],
      ['REF-2', 'accepted', null, null],
    ]);
    // Never a silent NULL: every order needs its values, the same keys each, none also in patch.
    const more = [await newOrder('P3'), await newOrder('P4')];
    const opts = { actor: 'batch', from: 'received' as const };
    await expect(transitionOrders(orm.em.fork(), more, 'validated', { ...opts, perOrder: new Map([[more[0], { bankReference: 'R3' }]]) })).rejects.toThrow(/no per-order values for order/);
    await expect(transitionOrders(orm.em.fork(), more, 'validated', { ...opts, perOrder: new Map([[more[0], { bankReference: 'R3' }], [more[1], { bankStatus: 'x' }]]) })).rejects.toThrow(/other per-order keys/);
    await expect(transitionOrders(orm.em.fork(), more, 'validated', { ...opts, patch: { bankReference: 'R' }, perOrder: new Map(more.map((id) => [id, { bankReference: id }])) })).rejects.toThrow(/both in patch and per order/);
    expect((await transitionOrders(orm.em.fork(), more, 'validated', opts)).map((o) => 'changed' in o && o.changed)).toEqual([true, true]);
  });

  it('lets exactly one of two overlapping concurrent batches move each order', async () => {
    const ids = [];
    for (let i = 0; i < 20; i++) ids.push(await newOrder(`C${i}`));
    const batches = await Promise.all([transitionOrders(orm.em.fork(), ids, 'validated', { actor: 'a', from: 'received' }), transitionOrders(orm.em.fork(), [...ids].reverse(), 'validated', { actor: 'b', from: 'received' })]);
    const changed = batches.flat().filter((o) => 'changed' in o && o.changed).map((o) => o.orderId);
    expect(changed.sort()).toEqual([...ids].sort());
    for (const id of ids) expect((await events(id)).filter((e) => e.to_state === 'validated')).toHaveLength(1);
  });

  it('fails an order for a dead job only while the order is still in that job\'s stage', async () => {
    const id = await newOrder('D1');
    for (const to of ['validated', 'awaiting_signatures', 'signed'] as const) await transitionOrder(orm.em.fork(), id, to, { actor: 't' });
    // The sign job stalled out after it had signed: the order belongs to the submit stage now.
    expect(await markOrderFailed(orm.em.fork(), id, 'order.sign: job stalled more than allowable limit', 'worker', 'order.sign')).toBe(false);
    expect(await markOrderFailed(orm.em.fork(), id, 'order.submit: job stalled more than allowable limit', 'worker', 'order.submit')).toBe(true);
    const [row] = await orm.em.fork().execute<Array<{ state: string; failed_from: string; last_error: string }>>('select state, failed_from, last_error from payment_order where id = ?', [id]);
    expect(row).toEqual({ state: 'failed', failed_from: 'signed', last_error: 'order.submit: job stalled more than allowable limit' });
  });

  it('does not fail an order whose send is in flight (its send lease held) when the submit job gives up; after the lease lapses it does', async () => {
    const id = await newOrder('D2');
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting'] as const) await transitionOrder(orm.em.fork(), id, to, { actor: 't' });
    await orm.em.fork().execute("update payment_order set send_lease_until = now() + interval '20 seconds', send_lease_owner = gen_random_uuid() where id = ?", [id]);
    expect(await markOrderFailed(orm.em.fork(), id, 'order.submit: job stalled more than allowable limit', 'worker', 'order.submit')).toBe(false);
    expect((await orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0].state).toBe('submitting');
    await orm.em.fork().execute("update payment_order set send_lease_until = now() - interval '1 second' where id = ?", [id]);
    expect(await markOrderFailed(orm.em.fork(), id, 'order.submit: job stalled more than allowable limit', 'worker', 'order.submit')).toBe(true);
  });

  it('does not fail an order whose send lease a sender takes while the dead job is being recorded (the lease is judged on the row it moves)', async () => {
    const id = await newOrder('D3');
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting'] as const) await transitionOrder(orm.em.fork(), id, to, { actor: 't' });
    // A sender (the job delivered again, the sweeper's) takes the lease; its statement has not committed yet.
    const sender = new Client({ connectionString: env.config.database.url });
    await sender.connect();
    try {
      await sender.query('begin');
      await sender.query("update payment_order set send_lease_until = now() + interval '20 seconds', send_lease_owner = gen_random_uuid() where id = $1", [id]);
      // The dead job is recorded meanwhile: the lease is not visible yet, the row is locked.
      const failing = markOrderFailed(orm.em.fork(), id, 'order.submit: job stalled more than allowable limit', 'worker', 'order.submit');
      await eventually(
        async () =>
          Number((await sender.query("select count(*) as n from pg_stat_activity where wait_event_type = 'Lock' and query like '%payment_order%' and datname = current_database()")).rows[0].n) > 0,
        { timeoutMs: 10_000, intervalMs: 20, what: 'the failing transition to wait for the row' },
      );
      // The lease commits: the sender passes its last look and sends.
      await sender.query('commit');
      expect(await failing).toBe(false);
    } finally {
      await sender.end();
    }
    const [row] = await orm.em.fork().execute<Array<{ state: string; last_error: string | null }>>('select state, last_error from payment_order where id = ?', [id]);
    // Failed now, the bank's acceptance of that send would find it failed and its reference would be lost.
    expect(row.state).toBe('submitting');
  });

  it('appends the audit record of each order that moves in the transition\'s own statement, none for one that does not', async () => {
    const [a, b, c] = [await newOrder('AUD1'), await newOrder('AUD2'), await newOrder('AUD3')];
    await transitionOrder(orm.em.fork(), b, 'validated', { actor: 'tester' }); // b has moved on already
    const before = await orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from audit_event');
    const at = new Date('2026-11-26T06:00:00.123Z');
    const outcomes = await transitionOrders(orm.em.fork(), [c, b, a], 'validated', {
      actor: 'checker',
      from: 'received',
      audit: { action: 'order.checked', details: (id) => ({ which: id === a ? 'a' : 'c', note: 'Проверен' }) },
      now: at,
    });
    expect(outcomes.map((o) => ('error' in o ? 'error' : o.changed))).toEqual([true, false, true]);
    const added = await orm.em.fork().execute<Array<{ seq: string; subject: string; actor: string; action: string; details: unknown; at: Date }>>(
      'select seq, subject, actor, action, details, at from audit_event where seq > ? order by seq',
      [Number(before[0].n)],
    );
    // In the order given, only the two that moved, stamped with the transition's actor and time.
    expect(added.map((r) => [r.subject, r.actor, r.action, r.details, new Date(r.at).toISOString()])).toEqual([
      [c, 'checker', 'order.checked', { which: 'c', note: 'Проверен' }, at.toISOString()],
      [a, 'checker', 'order.checked', { which: 'a', note: 'Проверен' }, at.toISOString()],
    ]);
    expect(await verifyAudit(orm.em.fork())).toMatchObject({ ok: true });
    // An illegal transition appends nothing either.
    await expect(transitionOrders(orm.em.fork(), [a], 'executed', { actor: 'checker', audit: { action: 'order.bad', details: () => ({}) } })).resolves.toEqual([
      expect.objectContaining({ error: expect.any(IllegalTransitionError) }),
    ]);
    expect((await orm.em.fork().execute<Array<{ n: string }>>("select count(*) as n from audit_event where action = 'order.bad'"))[0].n).toBe('0');
  });

  it('appends a batch of audit records as the same chain as one at a time', async () => {
    await appendAudit(orm.em.fork(), { actor: 't', action: 'single', subject: 's0' });
    const batch = await appendAudits(orm.em.fork(), [1, 2, 3].map((i) => ({ actor: 't', action: 'batched', subject: `s${i}`, details: { i } })));
    expect(batch.map((b) => b.seq)).toEqual([batch[0].seq, batch[0].seq + 1, batch[0].seq + 2]);
    await appendAudit(orm.em.fork(), { actor: 't', action: 'single', subject: 's4' });
    expect(await verifyAudit(orm.em.fork())).toMatchObject({ ok: true });
    await orm.em.fork().execute("update audit_event set details = '{\"i\": 9}' where seq = ?", [batch[1].seq]);
    expect(await verifyAudit(orm.em.fork())).toMatchObject({ ok: false, problem: { seq: batch[1].seq, kind: 'modified' } });
  });

  it('chains appends made at once from many connections into one unbroken chain, each hash the canonical JSON of its record', async () => {
    const [head] = await orm.em.fork().execute<Array<{ seq: string; hash: string }>>('select seq, hash from audit_event order by seq desc limit 1');
    // Twelve connections append at the same moment: the lock in audit_append orders them.
    await Promise.all(Array.from({ length: 12 }, (_, i) =>
      appendAudits(orm.em.fork(), [{ actor: 'Қазақ ақын', action: 'concurrent', subject: `c${i}`, details: { i, note: 'төлем «№1»', nested: { b: 2, a: [1, 'x'] } } }, { actor: 't', action: 'concurrent', subject: null }])));
    const rows = await orm.em.fork().execute<Array<{ seq: string; at: Date; actor: string; action: string; subject: string | null; details: unknown; prev_hash: string; hash: string }>>(
      'select * from audit_event where seq > ? order by seq', [head.seq]);
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 24 }, (_, i) => Number(head.seq) + 1 + i));
    let prev = head.hash;
    for (const row of rows) {
      expect(row.prev_hash).toBe(prev);
      // sha256(prev + "\n" + canonical JSON of the record), as chains written before audit_append were.
      const body = canonicalJson({ seq: Number(row.seq), at: new Date(row.at).toISOString(), actor: row.actor, action: row.action, subject: row.subject, details: row.details });
      expect(row.hash).toBe(createHash('sha256').update(`${prev}\n${body}`).digest('hex'));
      prev = row.hash;
    }
    // Each call's two records stay together and in the order given.
    for (let i = 0; i < rows.length; i += 2) expect([rows[i].actor, rows[i + 1].subject]).toEqual(['Қазақ ақын', null]);
  });

  it('makes the same document delivered twice one order (natural key)', async () => {
    const first = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'N1' }) }], port, { actor: 't' });
    const second = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'N1' }) }], port, { actor: 't' });
    expect(second[0]).toMatchObject({ orderId: first[0].orderId, created: false, externalId: first[0].externalId });
    const [{ count }] = await orm.em.fork().execute<Array<{ count: string }>>("select count(*) from payment_order where number = 'N1'");
    expect(Number(count)).toBe(1);
    expect(enqueued.filter((id) => id === first[0].orderId)).toHaveLength(1);
  });

  it('takes a mixed delivery in one go: new, already known and repeated orders keep their order; the first of a repeat wins', async () => {
    const known = await intakeOrders(orm.em.fork(), 'erp2', [{ order: sampleOrder({ number: 'M1' }) }], port, { actor: 't' });
    const batch = await intakeOrders(
      orm.em.fork(),
      'erp2',
      [
        { order: sampleOrder({ number: 'M2', amount: '10.00' }) },
        { order: sampleOrder({ number: 'M1' }) },
        { order: sampleOrder({ number: 'M2', amount: '99.00' }) },
        { order: sampleOrder({ number: 'M3', date: '2026-02-30' }) },
      ],
      port,
      { actor: 't' },
    );
    expect(batch.map((r) => [r.created, r.state])).toEqual([[true, 'received'], [false, 'received'], [false, 'received'], [true, 'received']]);
    expect(batch[1].orderId).toBe(known[0].orderId);
    expect(batch[2].orderId).toBe(batch[0].orderId);
    const rows = await orm.em.fork().execute<Array<{ id: string; number: string; amount_tiyn: string; errors: unknown; events: string }>>(
      "select o.id, o.number, o.amount_tiyn, o.errors, (select count(*) from order_event e where e.order_id = o.id and e.to_state = 'received') as events from payment_order o where o.source = 'erp2' order by o.number",
    );
    expect(rows.map((r) => [r.number, Number(r.amount_tiyn), Number(r.events)])).toEqual([['M1', 15_000_000, 1], ['M2', 1_000, 1], ['M3', 15_000_000, 1]]);
    expect(rows[2].errors).toEqual([expect.objectContaining({ field: 'date', code: 'DATE_INVALID' })]);
    expect(enqueued.filter((id) => [batch[0].orderId, batch[3].orderId].includes(id))).toHaveLength(2);
  });

  it('records an order whose amount cannot be stored, with the reason, instead of dropping it', async () => {
    const [result] = await intakeOrders(orm.em.fork(), 'erp1', [{ order: sampleOrder({ number: 'BAD1', amount: '12,3456' }) }], port, { actor: 't' });
    const [row] = await orm.em.fork().execute<Array<{ errors: Array<{ field: string; code: string }> }>>('select errors from payment_order where id = ?', [result.orderId]);
    expect(row.errors).toEqual([expect.objectContaining({ field: 'amount', code: 'AMOUNT_FORMAT' })]);
  });

  describe('signatures form one chain: the newest valid CMS holds every valid signer', () => {
    const signature = (orderId: string, level: 'first' | 'second', login: string, cosignedId: number | null): NewSignature => ({
      orderId,
      userId: createHash('md5').update(login).digest('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5'),
      login,
      level,
      algorithm: 'RSA',
      serial: `serial-${login}`,
      subject: `CN=${login}`,
      iin: null,
      signingTime: new Date('2026-11-26T05:00:00Z'),
      documentSha256: 'ab'.repeat(32),
      cms: Buffer.from(`cms of ${login} over ${cosignedId ?? 'nothing'}`),
      mandate: false,
      cosignedId,
    });
    const now = new Date('2026-11-26T05:00:01Z');
    /** An order whose document is frozen (as the sign stage does before any signature), with the hash the signatures above carry. */
    const frozenOrder = async (number: string, sha256 = 'ab'.repeat(32)) => {
      const id = await newOrder(number);
      await orm.em.fork().execute(`insert into order_document (order_id, format, bytes, sha256, created_at) values (?, 'test', '\\x00', ?, now())`, [id, sha256]);
      // Signatures are recorded only on an order waiting for them.
      await orm.em.fork().execute("update payment_order set state = 'awaiting_signatures' where id = ?", [id]);
      return id;
    };

    it('records a signature only over the bytes frozen now (a withdrawn order corrected meanwhile has others)', async () => {
      const id = await frozenOrder('SIGSTALE', 'cd'.repeat(32));
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'first', 'ceo', null)], now)).toEqual([null]);
      expect(await validSignatures(orm.em.fork(), id)).toEqual([]);
    });

    it.each(['signed', 'submitted', 'invalid', 'held'])('records no signature on an order that moved on to %s while it was made (nothing stored, nothing counted)', async (state) => {
      const id = await frozenOrder(`SIGMOVED-${state}`);
      await orm.em.fork().execute('update payment_order set state = ? where id = ?', [state, id]);
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'first', 'ceo', null)], now)).toEqual([null]);
      expect(await orm.em.fork().execute('select id from order_signature where order_id = ?', [id])).toEqual([]);
    });

    it('records no signature by a signer whose block commits while the signature goes in (R-17: the block is waited for, not judged on a snapshot from before it)', async () => {
      const id = await frozenOrder('SIG-BLOCKED');
      const sig = signature(id, 'first', 'blocked-meanwhile', null);
      await orm.em.fork().execute(
        "insert into app_user (id, login, role, password_hash, password_changed_at, last_activity_at, created_at, updated_at) values (?, 'blocked-meanwhile', 'signer', 'x', now(), now(), now(), now())",
        [sig.userId],
      );
      // The block has updated the user and not yet committed (it voids the signatures there are, then commits).
      const block = orm.em.fork();
      await block.begin();
      await block.execute("update app_user set blocked_reason = 'admin' where id = ?", [sig.userId]);
      const recording = recordSignatures(orm.em.fork(), [sig], now);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await block.commit();
      expect(await recording).toEqual([null]);
      expect(await orm.em.fork().execute('select id from order_signature where order_id = ?', [id])).toEqual([]);
    });

    it('freezes a document only from the order as it still is: bytes built from a row read before a correction are not frozen', async () => {
      const id = await newOrder('FREEZE-STALE');
      const [{ version }] = await orm.em.fork().execute<Array<{ version: number }>>('select version from payment_order where id = ?', [id]);
      // Withdrawn and sent again corrected meanwhile (order-intake.ts replaceInvalid): a new version.
      await orm.em.fork().execute('update payment_order set version = version + 1 where id = ?', [id]);
      const stale = await freezeDocuments(orm.em.fork(), [id], () => ({ format: 'test', bytes: Buffer.from('old requisites'), version }), now);
      expect([stale.has(id), await loadDocuments(orm.em.fork(), [id])]).toEqual([false, new Map()]);
      const fresh = await freezeDocuments(orm.em.fork(), [id], () => ({ format: 'test', bytes: Buffer.from('corrected requisites'), version: version + 1 }), now);
      expect(fresh.get(id)?.bytes.toString()).toBe('corrected requisites');
    });

    it('records a signature only over the order\'s newest valid one', async () => {
      const id = await frozenOrder('SIG1');
      const [first] = await recordSignatures(orm.em.fork(), [signature(id, 'first', 'ceo', null)], now);
      expect(first).toEqual(expect.any(Number));
      // Made before the first was recorded (it cosigned nothing): its CMS lacks the first signer.
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'second', 'accountant', null)], now)).toEqual([null]);
      const [second] = await recordSignatures(orm.em.fork(), [signature(id, 'second', 'accountant', first)], now);
      expect(second).toEqual(expect.any(Number));
      expect((await validSignatures(orm.em.fork(), id)).map((s) => [s.login, s.level])).toEqual([['ceo', 'first'], ['accountant', 'second']]);
      // Each recorded signature, and only those, is on the audit chain (same statement).
      expect((await auditedAsChained('order.signed', id)).map((r) => [r.actor, r.details.level])).toEqual([['user:ceo', 'first'], ['user:accountant', 'second']]);

      // the first signer's signature stops counting; a new first signature cosigns the newest valid one.
      await orm.em.fork().execute('update order_signature set valid = false where id = ?', [first]);
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'first', 'deputy', null)], now)).toEqual([null]);
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'first', 'deputy', first)], now)).toEqual([null]);
      expect(await recordSignatures(orm.em.fork(), [signature(id, 'first', 'deputy', second)], now)).toEqual([expect.any(Number)]);
    });

    it('of two signatures over the same CMS recorded at once, on other levels, exactly one counts', async () => {
      const ids = await Promise.all(Array.from({ length: 8 }, (_, i) => frozenOrder(`SIGRACE${i}`)));
      const outcomes = await Promise.all(
        ids.flatMap((id) => [
          recordSignatures(orm.em.fork(), [signature(id, 'first', 'ceo', null)], now),
          recordSignatures(orm.em.fork(), [signature(id, 'second', 'accountant', null)], now),
        ]),
      );
      for (let i = 0; i < ids.length; i++) {
        expect(outcomes.slice(2 * i, 2 * i + 2).flat().filter((o) => o !== null)).toHaveLength(1);
        expect(await validSignatures(orm.em.fork(), ids[i])).toHaveLength(1);
      }
    });

    it('the migration chains the valid signatures an order already had, in the order given', async () => {
      const id = await newOrder('SIGOLD');
      const migrator = orm.getMigrator();
      await migrator.down({ to: 'Migration20261126020000_signature_chain' });
      try {
        const insert = (level: string, login: string, valid: boolean) =>
          orm.em.fork().execute(
            `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, signing_time, document_sha256, cms, valid, created_at)
             values (?, gen_random_uuid(), ?, ?, 'RSA', 's', 'CN', now(), 'x', '\\x00', ?, now())`,
            [id, login, level, valid],
          );
        await insert('first', 'old-ceo', false);
        await insert('first', 'ceo', true);
        await insert('second', 'accountant', true);
      } finally {
        await migrator.up();
      }
      const rows = await orm.em.fork().execute<Array<{ id: string; login: string; cosigned_id: string | null }>>('select id, login, cosigned_id from order_signature where order_id = ? order by id', [id]);
      expect(rows.map((r) => [r.login, r.cosigned_id === null ? null : Number(r.cosigned_id)])).toEqual([['old-ceo', null], ['ceo', null], ['accountant', Number(rows[1].id)]]);
    });
  });
});
