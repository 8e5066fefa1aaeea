import { DelayedError } from 'bullmq';
import type { BusinessApiClient } from '../../adapters/bank/business-api/business-api.client';
import { BankError, parseBankError } from '../../adapters/bank/business-api/business-api.errors';
import type { TestEnv } from '../support/test-env';
import type { AppContext } from '../../connector/app/app-context';
import { handleSubmitOrder } from '../../queue/jobs/submit-order.job';
import type { World } from '../../connector/demo/pipeline-world';
import { AllButSubmit, fakeSubmitJob, recordingJob, startProofWorld } from '../support/pipeline-world';

/**
 * The submit stage against a bank that answers the way real banks do when they misbehave: each test
 * drives the submit job by hand on real PostgreSQL, Redis and the sandbox, scripting the answers of
 * the bank client's calls it needs odd.
 */
const SOURCE = 'odd-submit';

describe('the submit stage against an odd bank', () => {
  let env: TestEnv;
  let context: AppContext;
  let world: World;
  let stages: AllButSubmit | undefined;

  beforeAll(async () => {
    ({ env, context, world } = await startProofWorld('oddsubmit'));
  }, 120_000);

  afterAll(async () => {
    await stages?.close();
    await world?.close();
    await context?.close();
    await env?.cleanup();
  });

  const row = async (orderId: string) =>
    (await context.orm.em.fork().execute<Array<{ state: string; submit_attempts: number }>>('select state, submit_attempts from payment_order where id = ?', [orderId]))[0];

  /** One signed order, its submit job not yet run. */
  async function signedOrder(): Promise<string> {
    stages ??= new AllButSubmit(context);
    const orderId = await stages.signedOrder(SOURCE, 'O');
    return orderId;
  }

  /** The context with the bank client's `submit` and `lookup` answered as scripted (the rest is the sandbox's). */
  function oddBank(script: { submit?: BusinessApiClient['submit']; lookup?: () => Promise<never> }): AppContext {
    const bank = context.services.bank();
    const odd = Object.create(bank) as typeof bank;
    if (script.submit) odd.submit = script.submit;
    if (script.lookup) odd.lookup = script.lookup;
    return { ...context, services: { ...context.services, bank: () => odd } };
  }

  it('R-24: a 429 with a Retry-After of 0 does not send again at once, over and over; one of a year does not park the order for a year', async () => {
    const orderId = await signedOrder();
    const { job, delays } = recordingJob(fakeSubmitJob(orderId));
    let sends = 0;
    const limited = (retryAfterMs: number) =>
      oddBank({
        submit: async () => {
          sends += 1;
          throw parseBankError({ operation: 'submit', status: 429, headers: { 'retry-after': String(retryAfterMs / 1000) }, body: { code: 'RATE_LIMITED', message: 'too many requests' } });
        },
      });
    for (let i = 0; i < 3; i += 1) await expect(handleSubmitOrder({ orderId }, limited(0), job)).rejects.toBeInstanceOf(DelayedError);
    expect(sends).toBe(3);
    const { backoffMs } = context.config.queue;
    // As without a Retry-After: from queue.backoffMs, doubling; never at once.
    expect(delays.map((d) => Math.round(d / backoffMs))).toEqual([1, 2, 4]);
    delays.length = 0;
    await expect(handleSubmitOrder({ orderId }, limited(365 * 86_400_000), job)).rejects.toBeInstanceOf(DelayedError);
    expect(delays[0]).toBeLessThanOrEqual(3_600_000 + 50);
    expect(delays[0]).toBeGreaterThan(3_600_000 - 1_000);
    expect((await row(orderId)).state).toBe('submitting');
    await expect(handleSubmitOrder({ orderId }, context, job)).resolves.toEqual({ state: 'submitted' });
  }, 120_000);

  it('a 409 EXTERNAL_ID_CONFLICT to the resend after an unknown outcome is not a refusal: the bank holds a document under our external id, most likely ours; the next lookup finds it', async () => {
    const orderId = await signedOrder();
    const { job } = recordingJob(fakeSubmitJob(orderId));
    const bank = context.services.bank();
    // The first send reaches the bank, which registers it; its answer is lost.
    const lost = oddBank({
      submit: async (input, opts) => {
        await bank.submit(input, opts);
        throw new BankError('OUTCOME_UNKNOWN', 'the submit may have reached the bank but no answer came (ECONNRESET); look the document up by its external id before anything else');
      },
    });
    await expect(handleSubmitOrder({ orderId }, lost, job)).rejects.toBeInstanceOf(DelayedError);
    expect(await row(orderId)).toEqual({ state: 'submitting', submit_attempts: 1 });
    // The retry: the bank's lookup does not find it yet (its registry lags), and the resend of the very
    // same document is answered 409 "another document under this external id".
    const conflict = oddBank({
      lookup: async () => {
        throw parseBankError({ operation: 'lookup', status: 404, body: { code: 'NOT_FOUND', message: 'no document with this external id' } });
      },
      submit: async () => {
        throw parseBankError({ operation: 'submit', status: 409, body: { code: 'EXTERNAL_ID_CONFLICT', message: 'a document with this externalId already exists' } });
      },
    });
    await handleSubmitOrder({ orderId }, conflict, job).catch(() => undefined);
    // Never `rejected`: 1C would have a document the bank holds paid a second time.
    expect((await row(orderId)).state).toBe('submitting');
    // The next run looks it up first and finds it.
    await expect(handleSubmitOrder({ orderId }, context, job)).resolves.toEqual({ state: 'submitted', via: 'lookup' });
  }, 120_000);
});
