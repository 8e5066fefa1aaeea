import { runCli } from '../support/cli';
import { appWorld } from '../support/app-world';
import { intakeOrders } from '../../connector/intake/order-intake';
import { sampleOrder } from '../support/orders.fixture';
import { sampleStatementLine } from '../support/statement-line.fixture';

/**
 * `connector orders settle`: an order the bank never gave a final status the connector knows is
 * settled by a person who asked the bank, on the built CLI, real PostgreSQL and Redis.
 */
describe('connector orders settle', () => {
  const world = appWorld('orders_settle', {}, { role: 'producer', quiet: true });

  const cli = (args: string[]) => runCli(args, { env: world.env.env, cwd: world.env.workDir, timeoutMs: 60_000 });
  const q = <T>(sql: string, params: unknown[] = []) => world.context.orm.em.fork().execute<T[]>(sql, params);
  async function atBank(number: string, state: 'submitted' | 'deemed_executed', bankStatus: string): Promise<string> {
    const [r] = await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await q(`update payment_order set state = ?, bank_status = ?, bank_reference = ? where id = ?`, [state, bankStatus, `DOC-${number}`, r.orderId]);
    return r.orderId as string;
  }

  it('settles a submitted order under an unknown status as rejected with the words its ERP user reads, audited and written back', async () => {
    const id = await atBank('ST-1', 'submitted', 'returned');
    const run = await cli(['orders', 'settle', id, '--as', 'rejected', '--reason', 'returned by the bank: beneficiary account closed (call with A. Seitkali, 26.11)']);
    expect(run.code).toBe(0);
    expect(run.stderr + run.stdout).toMatch(/submitted -> rejected, settled by hand/);
    expect(await q('select state, bank_status, bank_reason_code, bank_reason_text from payment_order where id = ?', [id])).toEqual([
      { state: 'rejected', bank_status: 'rejected', bank_reason_code: 'SETTLED_BY_OPERATOR', bank_reason_text: 'returned by the bank: beneficiary account closed (call with A. Seitkali, 26.11)' },
    ]);
    const [event] = await q<{ actor: string; reason: string }>(`select actor, reason from order_event where order_id = ? and to_state = 'rejected'`, [id]);
    expect(event.actor).toMatch(/^cli:/);
    expect(event.reason).toMatch(/^settled by an operator: returned by the bank/);
    // Written back like any other change.
    const jobs = await world.context.queues.get('writeback').getJobs(['delayed', 'waiting']);
    expect(jobs.filter((j) => j.name === 'erp.writeback').length).toBeGreaterThan(0);

    // Settled once: a second settle is refused, nothing changes.
    const again = await cli(['orders', 'settle', id, '--as', 'executed', '--reason', 'x']);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^NOT_SETTLEABLE: order .* is rejected/m);
  });

  it('a deemed executed order may be settled only as rejected (a late refusal); a reason is required; --as is executed or rejected', async () => {
    const id = await atBank('ST-2', 'deemed_executed', 'in_processing');
    expect((await cli(['orders', 'settle', id, '--as', 'executed', '--reason', 'the bank says paid'])).stderr).toMatch(/^NOT_SETTLEABLE: /m);
    expect((await cli(['orders', 'settle', id, '--as', 'paid', '--reason', 'x'])).code).toBe(2);
    const blank = await cli(['orders', 'settle', id, '--as', 'rejected', '--reason', '  ']);
    expect([blank.code, blank.stderr]).toEqual([2, expect.stringMatching(/^REASON_REQUIRED: /m)]);
    const late = await cli(['orders', 'settle', id, '--as', 'rejected', '--reason', 'refused on 27.11: insufficient funds (bank letter 4411)']);
    expect(late.code).toBe(0);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [id]))[0].state).toBe('rejected');
  });

  it('a failed order whose debit a statement shows is never retried (it was paid); it is settled as executed', async () => {
    const [r] = await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'ST-3' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const id = r.orderId as string;
    // It failed before it was sent; someone paid it by hand in Internet-banking, and reconciliation linked the debit.
    await q(`update payment_order set state = 'failed', failed_from = 'signed', last_error = 'order.submit: stalled' where id = ?`, [id]);
    const em = world.context.orm.em.fork();
    sampleStatementLine(em, { account: sampleOrder().payer.iban, bankLineId: 'BL-ST-3', bookingDate: '2026-11-24', direction: 'debit', amountTiyn: 15_000_000, orderId: id });
    await em.flush();
    await q(`update statement_line set match_kind = 'order' where bank_line_id = 'BL-ST-3'`);

    const retry = await cli(['orders', 'retry', id]);
    expect([retry.code, retry.stderr]).toEqual([1, expect.stringMatching(/^ALREADY_DEBITED: .*statement line BL-ST-3 of 2026-11-24 shows its debit.*orders settle/m)]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [id]))[0].state).toBe('failed');

    const settled = await cli(['orders', 'settle', id, '--as', 'executed', '--reason', 'paid by hand in Internet-banking on 24.11 (A. Seitkali)']);
    expect(settled.code).toBe(0);
    expect(await q('select state, failed_from, bank_status from payment_order where id = ?', [id])).toEqual([{ state: 'executed', failed_from: null, bank_status: 'executed' }]);
    // A failed order never sent is withdrawn, not settled as rejected.
    const [other] = await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'ST-4' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await q(`update payment_order set state = 'failed', failed_from = 'signed' where id = ?`, [other.orderId]);
    expect((await cli(['orders', 'settle', other.orderId as string, '--as', 'rejected', '--reason', 'x'])).stderr).toMatch(/^NOT_SETTLEABLE: .*failed before anything of it was sent.*orders withdraw/m);
  });

  it('a failed order sent once, which the bank says it refused or never got, is settled as rejected (withdraw refuses it, a retry would send it again); never with its debit in a statement', async () => {
    const [r] = await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'ST-5' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const id = r.orderId as string;
    // Sent, refused each time under a code the release did not know, out of attempts.
    await q(`update payment_order set state = 'failed', failed_from = 'submitting', submit_attempts = 8, last_error = 'CONTRACT_VIOLATION: ...' where id = ?`, [id]);
    const withdraw = await cli(['orders', 'withdraw', id, '--reason', 'x']);
    expect([withdraw.code, withdraw.stderr]).toEqual([1, expect.stringMatching(/^NOT_WITHDRAWABLE: .*orders settle/m)]);
    const settled = await cli(['orders', 'settle', id, '--as', 'rejected', '--reason', 'the bank refused it: KBK closed (letter 5120 of 27.11)']);
    expect(settled.code).toBe(0);
    expect(await q('select state, failed_from, bank_reason_code, bank_reason_text from payment_order where id = ?', [id])).toEqual([
      { state: 'rejected', failed_from: null, bank_reason_code: 'SETTLED_BY_OPERATOR', bank_reason_text: 'the bank refused it: KBK closed (letter 5120 of 27.11)' },
    ]);

    // With its debit in a statement it was paid: not settled as rejected.
    const [paid] = await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'ST-6' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    await q(`update payment_order set state = 'failed', failed_from = 'submitting', submit_attempts = 1 where id = ?`, [paid.orderId]);
    const em = world.context.orm.em.fork();
    sampleStatementLine(em, { account: sampleOrder().payer.iban, bankLineId: 'BL-ST-6', bookingDate: '2026-11-24', direction: 'debit', amountTiyn: 15_000_000, orderId: paid.orderId as string });
    await em.flush();
    await q(`update statement_line set match_kind = 'order' where bank_line_id = 'BL-ST-6'`);
    const refused = await cli(['orders', 'settle', paid.orderId as string, '--as', 'rejected', '--reason', 'the bank says it never got it']);
    expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^ALREADY_DEBITED: order .* is not settled as rejected: statement line BL-ST-6/m)]);
    expect((await q<{ state: string }>('select state from payment_order where id = ?', [paid.orderId]))[0].state).toBe('failed');
  });

  it('orders list says when --limit cut the list (an operator looking for failed orders must know there are more)', async () => {
    await intakeOrders(world.context.orm.em.fork(), 'erp', [{ order: sampleOrder({ number: 'LIM-1' }) }, { order: sampleOrder({ number: 'LIM-2' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    const cut = await cli(['orders', 'list', '--limit', '1', '--json']);
    expect(cut.code).toBe(0);
    expect(JSON.parse(cut.stdout).orders).toHaveLength(1);
    expect(cut.stderr).toMatch(/^note: more than 1 orders; these are the newest 1: raise --limit to see more$/m);
    const all = await cli(['orders', 'list', '--limit', '1000']);
    expect(all.stderr).not.toMatch(/more than/);
  });
  it('orders list gives each amount in its own currency: a dollar payment is not read as tenge among the tenge ones', async () => {
    await intakeOrders(
      world.context.orm.em.fork(),
      'erp',
      [{ order: sampleOrder({ number: 'CUR-USD', amount: '2500.00', currency: 'USD' }) }, { order: sampleOrder({ number: 'CUR-KZT', amount: '2500.00' }) }],
      { enqueueValidate: async () => undefined },
      { actor: 'test' },
    );
    const list = await cli(['orders', 'list', '--limit', '1000']);
    expect(list.code).toBe(0);
    const row = (number: string) => list.stdout.split('\n').find((l) => l.includes(` ${number} `)) ?? '';
    expect(row('CUR-USD')).toMatch(/ 2500\.00 USD /);
    expect(row('CUR-KZT')).toMatch(/ 2500\.00 KZT /);
  });
});
