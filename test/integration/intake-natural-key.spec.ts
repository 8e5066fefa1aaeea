import { appWorld } from '../support/app-world';
import { intakeOrders, type IntakeQueuePort, type IntakeResult } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { sampleOrder } from '../support/orders.fixture';

/**
 * One order per document (payer account, number, date), whichever way it arrives, on real
 * PostgreSQL: an ERP key rotated, or the same document through a 1C file and over HTTP, must not
 * reach the bank twice; a changed document under a taken key is a conflict; a document refused as
 * invalid and sent again corrected is validated again.
 */
describe('intake: the natural key across sources', () => {
  const world = appWorld('intake-key');
  const enqueued: string[] = [];
  const queue: IntakeQueuePort = { enqueueValidate: async (ids) => void enqueued.push(...ids) };
  const state = async (id: string) => (await world.db().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0].state;
  const count = async (number: string) => Number((await world.db().execute<Array<{ n: string }>>('select count(*) as n from payment_order where number = ?', [number]))[0].n);

  it('the same document from another source (a rotated API key, a 1C file) is the first order, not a second', async () => {
    const order = sampleOrder({ number: 'NK-1' });
    const [first] = await intakeOrders(world.db(), 'api:erp-main', [{ order }], queue, { actor: 't' });
    const [again] = await intakeOrders(world.db(), 'api:erp-main-2026', [{ order }], queue, { actor: 't' });
    const [viaFile] = await intakeOrders(world.db(), 'onec', [{ order: { ...order } }], queue, { actor: 't' });
    expect(first.created).toBe(true);
    expect([again, viaFile].map((r) => [r.orderId, r.created, r.conflict])).toEqual([
      [first.orderId, false, undefined],
      [first.orderId, false, undefined],
    ]);
    expect(await count('NK-1')).toBe(1);
    // Another payer account or another date is another document.
    const [otherAccount] = await intakeOrders(world.db(), 'onec', [{ order: { ...order, payer: { ...order.payer, iban: 'KZ86125KZT5004100100' } } }], queue, { actor: 't' });
    expect(otherAccount.created).toBe(true);
  });

  it('the number is trimmed and NFC before the key is looked up: "NK-10", " NK-10", "NK-10\\t", "\\ufeffNK-10", "NK-10\\u00a0" are one order', async () => {
    const variants = ['NK-10', 'NK-10 ', ' NK-10', 'NK-10\t', '\ufeffNK-10', 'NK-10\u00a0', '\u2003NK-10\r\n'];
    const results: IntakeResult[] = [];
    for (const [index, number] of variants.entries()) {
      results.push((await intakeOrders(world.db(), index % 2 ? 'onec' : 'api:erp', [{ order: sampleOrder({ number }) }], queue, { actor: 't' }))[0]);
    }
    expect(results.map((r) => [r.orderId, r.created, r.conflict])).toEqual(variants.map((_, i) => [results[0].orderId, i === 0, undefined]));
    expect(await count('NK-10')).toBe(1);
    // Composed and decomposed forms of one letter are one number (NFC): "Й" and "И" + U+0306.
    const [composed] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-\u041910' }) }], queue, { actor: 't' });
    const [decomposed] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-\u0418\u030610' }) }], queue, { actor: 't' });
    expect([decomposed.orderId, decomposed.created]).toEqual([composed.orderId, false]);
  });

  it('a changed document under a taken key is a conflict naming each field, and changes nothing', async () => {
    const order = sampleOrder({ number: 'NK-2', amount: '10.00' });
    const [first] = await intakeOrders(world.db(), 'onec', [{ order }], queue, { actor: 't' });
    await transitionOrder(world.db(), first.orderId, 'validated', { actor: 't', from: 'received' });
    const changed = { ...order, amount: '20.00', beneficiary: { ...order.beneficiary, iban: 'KZ86125KZT5004100100' } };
    const [conflict] = await intakeOrders(world.db(), 'api:erp', [{ order: changed }], queue, { actor: 't' });
    expect(conflict).toMatchObject({ orderId: first.orderId, created: false, state: 'validated' });
    expect(conflict.conflict).toEqual({
      state: 'validated',
      differences: [
        { field: 'amount', stored: '10.00', received: '20.00' },
        { field: 'beneficiary.iban', stored: order.beneficiary.iban, received: 'KZ86125KZT5004100100' },
      ],
    });
    const [row] = await world.db().execute<Array<{ amount_tiyn: string; source: string; version: number }>>('select amount_tiyn, source, version from payment_order where id = ?', [first.orderId]);
    expect([Number(row.amount_tiyn), row.source]).toEqual([1000, 'onec']);
    expect(await count('NK-2')).toBe(1);
  });

  it('two versions of one document in one delivery: the first is taken, the second is a conflict, the good one beside them goes through', async () => {
    const a = sampleOrder({ number: 'NK-3', amount: '10.00' });
    const b = sampleOrder({ number: 'NK-3', amount: '20.00' });
    const good = sampleOrder({ number: 'NK-4' });
    const results = await intakeOrders(world.db(), 'onec', [{ order: a }, { order: b }, { order: good }], queue, { actor: 't' });
    expect(results.map((r) => [r.created, r.conflict?.differences.map((d) => d.field)])).toEqual([
      [true, undefined],
      [false, ['amount']],
      [true, undefined],
    ]);
    expect(results[1].orderId).toBe(results[0].orderId);
  });

  it('an amount that cannot be read, sent twice as written, is one invalid order; written otherwise, it is a correction', async () => {
    const unreadable = sampleOrder({ number: 'NK-7', amount: '1 000,5O' });
    const [first] = await intakeOrders(world.db(), 'onec', [{ order: unreadable }], queue, { actor: 't' });
    await transitionOrder(world.db(), first.orderId, 'invalid', { actor: 't', from: 'received' });
    const [same] = await intakeOrders(world.db(), 'onec', [{ order: unreadable }], queue, { actor: 't' });
    expect([same.orderId, same.corrected, same.conflict, same.state]).toEqual([first.orderId, undefined, undefined, 'invalid']);
    const [fixed] = await intakeOrders(world.db(), 'onec', [{ order: { ...unreadable, amount: '1000.50' } }], queue, { actor: 't' });
    expect([fixed.orderId, fixed.corrected, fixed.state]).toEqual([first.orderId, true, 'received']);
    const [row] = await world.db().execute<Array<{ amount_tiyn: string; errors: unknown }>>('select amount_tiyn, errors from payment_order where id = ?', [first.orderId]);
    expect([Number(row.amount_tiyn), row.errors]).toEqual([100_050, null]);
  });

  it('the same correction twice in one delivery: the first replaces the invalid order, the second is the same document', async () => {
    const [first] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-8', amount: '5.00' }) }], queue, { actor: 't' });
    await transitionOrder(world.db(), first.orderId, 'invalid', { actor: 't', from: 'received' });
    const fixed = sampleOrder({ number: 'NK-8', amount: '12.34' });
    const results = await intakeOrders(world.db(), 'onec', [{ order: fixed }, { order: fixed }, { order: { ...fixed, amount: '1.00' } }], queue, { actor: 't' });
    expect(results.map((r) => [r.orderId, r.corrected ?? false, r.conflict?.differences ?? null])).toEqual([
      [first.orderId, true, null],
      [first.orderId, false, null],
      [first.orderId, false, [{ field: 'amount', stored: '12.34', received: '1.00' }]],
    ]);
  });

  it('an invalid order that was signed once (held by a lockdown, then found invalid) is not replaced: its signed document must not go with new requisites', async () => {
    const [first] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-9' }) }], queue, { actor: 't' });
    await world.db().execute("insert into order_document (order_id, format, bytes, sha256, created_at) values (?, 'kz-payment-order-xml/1', '\\x3c3e', 'x', now())", [first.orderId]);
    // Its signature no longer counts after the lockdown's resolve, but it was made over those bytes.
    await world.db().execute(
      `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, signing_time, document_sha256, cms, valid, created_at)
       values (?, gen_random_uuid(), 'ceo', 'first', 'RSA', 's', 'CN', now(), 'x', '\\x00', false, now())`,
      [first.orderId],
    );
    await transitionOrder(world.db(), first.orderId, 'invalid', { actor: 't', from: 'received' });
    const [again] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-9', amount: '1.00' }) }], queue, { actor: 't' });
    expect([again.orderId, again.corrected, again.conflict?.state, await state(first.orderId)]).toEqual([first.orderId, undefined, 'invalid', 'invalid']);
  });

  it('a delivery of 20,000 documents with ERP ids is taken in one go (it took a lock per document, past PostgreSQL\'s shared lock table: "out of shared memory")', async () => {
    const items = Array.from({ length: 20_000 }, (_, i) => ({ order: sampleOrder({ number: `BULK-${i}`, erpDocumentId: `BULK-DOC-${i}` }) }));
    const results = await intakeOrders(world.db(), 'api:erp', items, queue, { actor: 't' });
    expect(results.filter((r) => r.created)).toHaveLength(20_000);
    const [{ n }] = await world.db().execute<Array<{ n: string }>>("select count(*) as n from payment_order where number like 'BULK-%'");
    expect(Number(n)).toBe(20_000);
  }, 120_000);

  describe('a 1C document that comes back under another date of its year (1C numbers a payment order uniquely within its year)', () => {
    const onec = { actor: 't', numberedWithinYear: true };
    const on = (number: string, date: string, extra: Partial<ReturnType<typeof sampleOrder>> = {}) => sampleOrder({ number, date, valueDate: date, ...extra });

    it('re-dated with the same amount to the same account while its order lives: a conflict naming the date, nothing stored', async () => {
      const [first] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-1', '2026-03-02') }], queue, onec);
      await transitionOrder(world.db(), first.orderId, 'validated', { actor: 't', from: 'received' });
      const [redated] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-1', '2026-03-03') }], queue, onec);
      expect(redated).toMatchObject({ orderId: first.orderId, created: false, state: 'validated', conflict: { state: 'validated', redated: true, differences: [{ field: 'date', stored: '2026-03-02', received: '2026-03-03' }] } });
      expect(await count('RD-1')).toBe(1);
      // An ERP that does not number within the year (HTTP, no ERP id: its numbers may restart daily
      // or monthly for a recurring equal payment) is not held to it: another date is another document.
      const [viaApi] = await intakeOrders(world.db(), 'api:erp', [{ order: on('RD-1', '2026-11-20') }], queue, { actor: 't' });
      expect([viaApi.created, viaApi.conflict]).toEqual([true, undefined]);
    });

    it('another amount, another beneficiary account, another year or another payer account is another document', async () => {
      await intakeOrders(world.db(), 'onec', [{ order: on('RD-2', '2026-03-02') }], queue, onec);
      const others = await intakeOrders(world.db(), 'onec', [
        { order: on('RD-2', '2026-03-03', { amount: '1.00' }) },
        { order: on('RD-2', '2026-03-04', { beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ86125KZT5004100100' } }) },
        { order: on('RD-2', '2025-12-31') },
        { order: on('RD-2', '2026-03-05', { payer: { ...sampleOrder().payer, iban: 'KZ86125KZT5004100100' } }) },
      ], queue, onec);
      expect(others.map((r) => [r.created, r.conflict])).toEqual([[true, undefined], [true, undefined], [true, undefined], [true, undefined]]);
    });

    it('once its first order ended invalid (withdrawn, stale) or rejected, a re-dated copy is taken: the payment was not made', async () => {
      const [invalid] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-3', '2026-03-02') }], queue, onec);
      await transitionOrder(world.db(), invalid.orderId, 'invalid', { actor: 't', from: 'received' });
      const [afterInvalid] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-3', '2026-03-03') }], queue, onec);
      expect([afterInvalid.created, afterInvalid.conflict]).toEqual([true, undefined]);
      await world.db().execute("update payment_order set state = 'rejected' where id = ?", [afterInvalid.orderId]);
      const [afterRejected] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-3', '2026-03-04') }], queue, onec);
      expect([afterRejected.created, afterRejected.conflict]).toEqual([true, undefined]);
      // The one now live holds the number: a further copy under another date is a conflict with it.
      const [again] = await intakeOrders(world.db(), 'onec', [{ order: on('RD-3', '2026-03-05') }], queue, onec);
      expect([again.orderId, again.conflict?.differences]).toEqual([afterRejected.orderId, [{ field: 'date', stored: '2026-03-04', received: '2026-03-05' }]]);
    });

    it('two dates of one document in one delivery: the first is taken, the second is a conflict with it, and the document sent again on its own date is the same order', async () => {
      const results = await intakeOrders(world.db(), 'onec', [{ order: on('RD-4', '2026-03-02') }, { order: on('RD-4', '2026-03-03') }, { order: on('RD-4', '2026-03-02') }], queue, onec);
      expect(results.map((r) => [r.orderId, r.created, r.conflict?.redated])).toEqual([
        [results[0].orderId, true, undefined],
        [results[0].orderId, false, true],
        [results[0].orderId, false, undefined],
      ]);
      expect(await count('RD-4')).toBe(1);
    });

    it('documents that carry an ERP id are told apart by it, not by their number within the year', async () => {
      const results = await intakeOrders(world.db(), 'api:erp', [{ order: on('RD-5', '2026-03-02', { erpDocumentId: 'RD-5-a' }) }, { order: on('RD-5', '2026-03-03', { erpDocumentId: 'RD-5-b' }) }], queue, onec);
      expect(results.map((r) => [r.created, r.conflict])).toEqual([[true, undefined], [true, undefined]]);
    });
  });

  it('the same document under another ERP id is a conflict naming erpDocumentId, and the stored id stays', async () => {
    const [first] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-20', erpDocumentId: 'DOC-1' }) }], queue, { actor: 't' });
    const [other] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-20', erpDocumentId: 'DOC-2' }) }], queue, { actor: 't' });
    expect([other.orderId, other.created, other.conflict?.differences]).toEqual([first.orderId, false, [{ field: 'erpDocumentId', stored: 'DOC-1', received: 'DOC-2' }]]);
    // Without an id on either side (a 1C file carries none) it is the same document.
    const [viaFile] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-20' }) }], queue, { actor: 't' });
    expect([viaFile.orderId, viaFile.conflict]).toEqual([first.orderId, undefined]);
    const [row] = await world.db().execute<Array<{ erp_document_id: string }>>('select erp_document_id from payment_order where id = ?', [first.orderId]);
    expect(row.erp_document_id).toBe('DOC-1');
  });

  it('an invalid order is not replaced by a "correction" under another ERP id, and a correction without one keeps the stored id', async () => {
    // Ids of their own: one ERP id is one live order on an account (NK-20 above holds DOC-1).
    const broken = sampleOrder({ number: 'NK-21', erpDocumentId: 'DOC-21-1', beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ00722S000000067890' } });
    const [first] = await intakeOrders(world.db(), 'api:erp', [{ order: broken }], queue, { actor: 't' });
    await transitionOrder(world.db(), first.orderId, 'invalid', { actor: 't', from: 'received' });
    const [otherId] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-21', erpDocumentId: 'DOC-21-2' }) }], queue, { actor: 't' });
    expect([otherId.corrected, otherId.conflict?.differences.map((d) => d.field), await state(first.orderId)]).toEqual([undefined, ['erpDocumentId', 'beneficiary.iban'], 'invalid']);
    const [viaFile] = await intakeOrders(world.db(), 'onec', [{ order: sampleOrder({ number: 'NK-21' }) }], queue, { actor: 't' });
    expect([viaFile.orderId, viaFile.corrected]).toEqual([first.orderId, true]);
    const [row] = await world.db().execute<Array<{ erp_document_id: string; beneficiary_iban: string }>>('select erp_document_id, beneficiary_iban from payment_order where id = ?', [first.orderId]);
    expect(row).toEqual({ erp_document_id: 'DOC-21-1', beneficiary_iban: sampleOrder().beneficiary.iban });
  });

  it('two live orders of one ERP id taken before the one-live-order rule: each sent again unchanged is its own order, a third number conflicts', async () => {
    const [older] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-30', erpDocumentId: 'DOC-30' }) }], queue, { actor: 't' });
    const [newer] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-31' }) }], queue, { actor: 't' });
    // As the old release stored a renumbered copy: the same ERP id on a second live order.
    await world.db().execute("update payment_order set erp_document_id = 'DOC-30' where id = ?", [newer.orderId]);
    const [again] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-31', erpDocumentId: 'DOC-30' }) }], queue, { actor: 't' });
    expect([again.orderId, again.created, again.conflict]).toEqual([newer.orderId, false, undefined]);
    const [third] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-32', erpDocumentId: 'DOC-30' }) }], queue, { actor: 't' });
    expect([third.orderId, third.conflict?.erpDocumentId]).toEqual([older.orderId, 'DOC-30']);
  });

  it('orders stored while the queue cannot take them (Redis down) are answered as stored, not as an error, and the failure is logged', async () => {
    const warned: unknown[] = [];
    const down: IntakeQueuePort = {
      enqueueValidate: async () => {
        throw new Error('Connection is closed.');
      },
    };
    const [stored] = await intakeOrders(world.db(), 'api:erp', [{ order: sampleOrder({ number: 'NK-6' }) }], down, { actor: 't', logger: { warn: (o: unknown) => void warned.push(o) } as never });
    expect([stored.created, await state(stored.orderId)]).toEqual([true, 'received']);
    expect(warned).toEqual([expect.objectContaining({ event: 'intake.handoff_failed', orders: 1, error: 'Connection is closed.' })]);
  });

  it('an invalid order sent again corrected is replaced under the same id and validated again, its change on record', async () => {
    const broken = sampleOrder({ number: 'NK-5', beneficiary: { ...sampleOrder().beneficiary, iban: 'KZ00722S000000067890' } });
    const [first] = await intakeOrders(world.db(), 'onec', [{ order: broken, rawDocument: 'first' }], queue, { actor: 't' });
    await transitionOrder(world.db(), first.orderId, 'invalid', { actor: 't', from: 'received' });
    enqueued.length = 0;
    // The same broken document again: nothing changes, nothing is queued.
    const [same] = await intakeOrders(world.db(), 'onec', [{ order: broken }], queue, { actor: 't' });
    expect([same.created, same.corrected, same.state, enqueued]).toEqual([false, undefined, 'invalid', []]);

    const fixed = sampleOrder({ number: 'NK-5' });
    const [corrected] = await intakeOrders(world.db(), 'onec', [{ order: fixed, rawDocument: 'second' }], queue, { actor: 'onec-outbox' });
    expect(corrected).toMatchObject({ orderId: first.orderId, externalId: first.externalId, created: false, corrected: true, state: 'received' });
    expect(enqueued).toEqual([first.orderId]);
    const [row] = await world.db().execute<Array<{ beneficiary_iban: string; raw_document: string; errors: unknown }>>('select beneficiary_iban, raw_document, errors from payment_order where id = ?', [first.orderId]);
    expect(row).toEqual({ beneficiary_iban: fixed.beneficiary.iban, raw_document: 'second', errors: null });
    const [event] = await world.db().execute<Array<{ from_state: string; to_state: string; actor: string; details: unknown }>>(
      "select from_state, to_state, actor, details from order_event where order_id = ? and from_state = 'invalid'",
      [first.orderId],
    );
    expect(event).toEqual({
      from_state: 'invalid',
      to_state: 'received',
      actor: 'onec-outbox',
      details: { changed: [{ field: 'beneficiary.iban', stored: 'KZ00722S000000067890', received: fixed.beneficiary.iban }] },
    });
    expect(await count('NK-5')).toBe(1);

    // Once it moved on, a third version is a conflict again.
    await transitionOrder(world.db(), first.orderId, 'validated', { actor: 't', from: 'received' });
    const [late] = await intakeOrders(world.db(), 'onec', [{ order: { ...fixed, amount: '1.00' } }], queue, { actor: 't' });
    expect(late.conflict?.state).toBe('validated');
    expect(await state(first.orderId)).toBe('validated');
  });
});
