import type { AppContext } from '../../connector/app/app-context';
import type { SubmitPaymentInput } from '../../adapters/bank/business-api/business-api.client';
import { lockdownStatusOf, triggerLockdown } from '../../queue/lockdown.trigger';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * Issue 16: nothing reaches the bank once a lockdown holds. The submit stage's last look at the
 * lockdown comes before the bank call; the one request a sender may still have on its way is the
 * one it sent then. A 401 to it (the bank's "not processed": a token that expired at the bank) makes
 * the client fetch a new token and send the order again: that second request is a new send, and
 * must not leave under a lockdown that landed after the look. Real pipeline, sandbox, PostgreSQL, Redis.
 */
describe('lockdown: the repeat of a submit after the bank\'s 401 is a send of its own', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown-send-gate');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('a lockdown that lands after the last look, with the bank answering 401, sends nothing to the bank', async () => {
    const real = world.context.services.bank();
    let landed: string | undefined;
    // The lock lands right after the submit stage's last look (its bank call has begun), and the
    // bank has dropped the connector's token meanwhile: the request is answered 401.
    const bank = Object.assign(Object.create(real) as typeof real, {
      submit: async (input: SubmitPaymentInput, opts: Parameters<typeof real.submit>[1]) => {
        if (!landed) {
          // A token the connector holds (fetched before): the bank drops it below.
          await bank.listAccounts();
          landed = (await triggerLockdown(world.context, { trigger: 'manual', reason: 'test: lands after the last look', scope: 'users', actor: 'cli:tester' })).incidentId;
          await world.admin('POST', '/tokens/expire');
        }
        return real.submit.call(bank, input, opts);
      },
    });
    const context: AppContext = { ...world.context, services: Object.assign(Object.create(world.context.services) as AppContext['services'], { bank: () => bank }) };

    await world.unlock('ceo');
    world.startWorkers(context);
    const [id] = await world.intake(['SG-401']);
    const [{ external_id: externalId }] = await world.context.orm.em.fork().execute<Array<{ external_id: string }>>('select external_id from payment_order where id = ?', [id]);
    // The attempt over: its send lease given back.
    const row = await eventually(
      async () => {
        const [r] = await world.context.orm.em.fork().execute<Array<{ state: string; submit_attempts: number; send_lease_owner: string | null }>>('select state, submit_attempts, send_lease_owner from payment_order where id = ?', [id]);
        return landed && (r.state !== 'submitting' || r.send_lease_owner === null) ? r : null;
      },
      { timeoutMs: 60_000, what: 'the submit attempt under the lockdown over' },
    );
    await world.stopWorkers();
    expect((await lockdownStatusOf(world.context)).incidentId).toBe(landed);
    expect(row.state).toBe('submitting');
    // The bank took nothing: the 401'd request was not processed and no second one left.
    const ledger = await world.ledger();
    expect(ledger.submissions.filter((s) => s.externalId === externalId && s.accepted)).toEqual([]);
    // Nothing was taken, so no attempt stays counted: the order is one never sent (its pre-lockdown
    // signature is judged again by the resolve, as for every order not yet at the bank).
    expect(row.submit_attempts).toBe(0);
  }, 120_000);
});
