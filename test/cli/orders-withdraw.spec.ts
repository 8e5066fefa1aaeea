import { runCli } from '../support/cli';
import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';
import { freezeDocuments } from '../../connector/signing/order-signatures';

/**
 * `connector orders withdraw`: an order the ERP's user no longer wants, nothing of which reached
 * the bank, ends `invalid` (WITHDRAWN) with the reason; on the built CLI, real PostgreSQL and Redis.
 */
describe('connector orders withdraw', () => {
  const world = appWorld('orders_withdraw', {}, { role: 'producer', quiet: true });

  const cli = (args: string[]) => runCli(args, { env: world.env.env, cwd: world.env.workDir, timeoutMs: 60_000 });
  const q = <T>(sql: string, params: unknown[] = []) => world.context.orm.em.fork().execute<T[]>(sql, params);
  const intake = async (number: string, amount = '150000.00') =>
    (await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number, amount }) }], { enqueueValidate: async () => undefined }, { actor: 'test' }))[0];

  it('withdraws a validated order with the words its ERP user reads; the corrected document is then taken under the same number', async () => {
    const first = await intake('WD-1');
    await q(`update payment_order set state = 'validated' where id = ?`, [first.orderId]);
    // The amount was wrong: a changed body under the same number is a conflict while the first stands.
    expect((await intake('WD-1', '160000.00')).conflict).toBeDefined();

    const run = await cli(['orders', 'withdraw', first.orderId as string, '--reason', 'wrong amount, asked by the accountant A. Seitkali']);
    expect([run.code, run.stderr]).toEqual([0, expect.stringMatching(/validated -> invalid, withdrawn/)]);
    const [row] = await q<{ state: string; errors: Array<{ field: string; code: string; message: string }> }>('select state, errors from payment_order where id = ?', [first.orderId]);
    expect(row.state).toBe('invalid');
    expect(row.errors).toEqual([expect.objectContaining({ field: 'order', code: 'WITHDRAWN', message: 'Документ отозван: wrong amount, asked by the accountant A. Seitkali' })]);
    const [event] = await q<{ actor: string; reason: string }>(`select actor, reason from order_event where order_id = ? and to_state = 'invalid'`, [first.orderId]);
    expect([event.actor, event.reason]).toEqual([expect.stringMatching(/^cli:/), 'withdrawn by an operator: wrong amount, asked by the accountant A. Seitkali']);
    const jobs = await world.context.queues.get('writeback').getJobs(['delayed', 'waiting']);
    expect(jobs.filter((j) => j.name === 'erp.writeback').length).toBeGreaterThan(0);

    // Never signed: the corrected document takes its place, one order, validated again.
    const corrected = await intake('WD-1', '160000.00');
    expect([corrected.orderId, corrected.conflict]).toEqual([first.orderId, undefined]);
    expect(await q('select state, amount_tiyn from payment_order where id = ?', [first.orderId])).toEqual([{ state: 'received', amount_tiyn: '16000000' }]);
  });

  it('an order withdrawn while it waited for signatures (its document frozen, never signed) is taken corrected under the same number, its old bytes dropped', async () => {
    const first = await intake('WD-AWAIT');
    await q(`update payment_order set state = 'awaiting_signatures' where id = ?`, [first.orderId]);
    // As the sign stage does when the order starts to wait: the bytes to sign are frozen.
    await freezeDocuments(world.context.orm.em.fork(), [first.orderId as string], () => ({ format: 'test', bytes: Buffer.from('bytes of 150000.00') }), new Date());
    const stands = await intake('WD-AWAIT', '160000.00');
    expect(stands.conflict).toBeDefined();

    expect((await cli(['orders', 'withdraw', first.orderId as string, '--reason', 'wrong amount'])).code).toBe(0);
    // What the conflict's advice promised: withdrawn, the corrected document comes again under its number.
    const corrected = await intake('WD-AWAIT', '160000.00');
    expect([corrected.orderId, corrected.conflict]).toEqual([first.orderId, undefined]);
    expect(await q('select state, amount_tiyn from payment_order where id = ?', [first.orderId])).toEqual([{ state: 'received', amount_tiyn: '16000000' }]);
    // The old amount's bytes are gone: the sign stage freezes the corrected ones.
    expect(await q('select order_id from order_document where order_id = ?', [first.orderId])).toEqual([]);
  });

  it('an order once signed is not replaced (its signatures are over the old bytes): a new number is needed', async () => {
    const first = await intake('WD-SIGNED');
    await freezeDocuments(world.context.orm.em.fork(), [first.orderId as string], () => ({ format: 'test', bytes: Buffer.from('bytes') }), new Date());
    await q(
      `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, signing_time, document_sha256, cms, valid, created_at)
       values (?, gen_random_uuid(), 'ceo', 'first', 'RSA', 's', 'CN', now(), 'x', '\\x00', false, now())`,
      [first.orderId],
    );
    await q(`update payment_order set state = 'invalid' where id = ?`, [first.orderId]);
    expect((await intake('WD-SIGNED', '160000.00')).conflict).toBeDefined();
    expect(await q('select count(*)::int as n from order_document where order_id = ?', [first.orderId])).toEqual([{ n: 1 }]);
  });

  it.each([
    ['submitting', null, 0],
    ['submitted', null, 1],
    ['executed', null, 1],
    ['failed', 'submitting', 1],
    ['failed', 'submitted', 1],
    // Back before the send only through a retry (its lookup first): sent once, it may be at the bank.
    ['awaiting_signatures', null, 1],
    ['signed', null, 1],
  ])('refuses an order %s (failed from %s, %d attempt(s)): the bank may have it', async (state, failedFrom, attempts) => {
    const order = await intake(`WD-${state}-${failedFrom ?? 'x'}`);
    await q(`update payment_order set state = ?, failed_from = ?, submit_attempts = ? where id = ?`, [state, failedFrom, attempts, order.orderId]);
    const run = await cli(['orders', 'withdraw', order.orderId as string, '--reason', 'not wanted']);
    expect([run.code, run.stderr]).toEqual([1, expect.stringMatching(/^NOT_WITHDRAWABLE: .*the bank may have it/m)]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [order.orderId]))[0].state).toBe(state);
  });

  it.each([
    ['signed', null, 0],
    ['held', null, 0],
    ['failed', 'signed', 0],
    ['failed', 'submitting', 0],
  ])('withdraws an order %s (failed from %s, %d attempts): nothing of it was sent', async (state, failedFrom, attempts) => {
    const order = await intake(`WD-ok-${state}-${failedFrom ?? 'x'}`);
    await q(`update payment_order set state = ?, failed_from = ?, submit_attempts = ? where id = ?`, [state, failedFrom, attempts, order.orderId]);
    expect((await cli(['orders', 'withdraw', order.orderId as string, '--reason', 'paid another way'])).code).toBe(0);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [order.orderId]))[0].state).toBe('invalid');
  });

  it('refuses an order whose debit a statement shows (paid by hand after it failed): the ERP would be told it was not paid', async () => {
    const order = await intake('WD-PAID');
    await q(`update payment_order set state = 'failed', failed_from = 'signed' where id = ?`, [order.orderId]);
    const em = world.context.orm.em.fork();
    sampleStatementLine(em, { account: sampleOrder().payer.iban, bankLineId: 'BL-WD-PAID', bookingDate: '2026-11-24', direction: 'debit', amountTiyn: 15_000_000, orderId: order.orderId as string });
    await em.flush();
    await q(`update statement_line set match_kind = 'unexplained' where bank_line_id = 'BL-WD-PAID'`);
    const run = await cli(['orders', 'withdraw', order.orderId as string, '--reason', 'not wanted']);
    expect([run.code, run.stderr]).toEqual([1, expect.stringMatching(/^ALREADY_DEBITED: order .* is not withdrawn: statement line BL-WD-PAID/m)]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [order.orderId]))[0].state).toBe('failed');
  });

  it('a reason is required', async () => {
    const order = await intake('WD-R');
    const blank = await cli(['orders', 'withdraw', order.orderId as string, '--reason', '  ']);
    expect([blank.code, blank.stderr]).toEqual([2, expect.stringMatching(/^REASON_REQUIRED: /m)]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [order.orderId]))[0].state).toBe('received');
  });
});
