import type { AppContext } from '../../connector/app/app-context';
import { getIncident } from '../../connector/incidents/incident.service';
import { lockdownStatusOf } from '../../queue/lockdown.trigger';
import type { SignerAgentClient, SignInput } from '../../signer-agent/agent/signer-agent.client';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * who signed is the certificate in the CMS. A tampered agent that signs with one
 * person's unlocked key and names another person in its answer (IIN, subject) would have the
 * connector record the wrong signer, and defeat "one person, one signature", which compares IINs.
 * The real agent signs over the frozen bytes with the CEO's key; only its JSON is changed on the way
 * back. The pipeline runs for real (workers, PostgreSQL, Redis, the bank sandbox).
 */
describe('lockdown on a signature whose certificate is not the signer the agent names', () => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown_signer_identity');
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('the signature is not recorded, the order is not sent, the connector locks down naming the signer', async () => {
    const agent = world.context.services.signer();
    const revoked = world.pki.keystores.find((k) => k.name === 'rsa-revoked');
    if (!revoked) throw new Error('the world has no second person');
    let answered = 0;
    const lying: SignerAgentClient = Object.assign(Object.create(agent) as SignerAgentClient, {
      signMany: async (userId: string, inputs: readonly SignInput[]) =>
        (await agent.signMany(userId, inputs)).map((o) => {
          if (!('documentSha256' in o)) return o;
          answered += 1;
          return { ...o, iin: revoked.iin, subject: `CN=ЖУМАБАЕВ ДАНИЯР, SERIALNUMBER=IIN${revoked.iin}, C=KZ` };
        }),
    });
    const context: AppContext = { ...world.context, services: Object.assign(Object.create(world.context.services) as AppContext['services'], { signer: () => lying }) };

    await world.unlock('ceo');
    world.startWorkers(context);
    const [id] = await world.intake(['SI-LIE']);

    const status = await eventually(async () => {
      const s = await lockdownStatusOf(world.context);
      return s.state === 'locked' && s.incidentId ? s : null;
    }, { timeoutMs: 30_000, what: 'lockdown' });
    expect(answered).toBeGreaterThan(0);
    const incident = await getIncident(world.context.orm.em.fork(), status.incidentId!);
    expect(incident!.evidence).toMatchObject({ trigger: 'certificate_check_failed', scope: 'user:ceo', evidence: { orderId: id, login: 'ceo', reportedIin: revoked.iin, code: 'IDENTITY_MISMATCH' } });
    expect(await world.unlocked('ceo')).toBe(false);

    expect(await world.context.orm.em.fork().execute('select id from order_signature where order_id = ?', [id])).toEqual([]);
    await eventually(async () => ((await world.states([id]))[id] === 'held' ? true : null), { timeoutMs: 15_000, what: 'the order held' });
    expect((await world.ledger()).total).toBe(0);
  }, 60_000);
});
