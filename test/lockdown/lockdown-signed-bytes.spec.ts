import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AppContext } from '../../connector/app/app-context';
import { getIncident } from '../../connector/incidents/incident.service';
import { lockdownStatusOf } from '../../queue/lockdown.trigger';
import type { SignerAgentClient, SignInput } from '../../signer-agent/agent/signer-agent.client';
import { eventually } from '../support/test-env';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * Issue 16, R-18: a signature over other bytes than the order's frozen document is a sign of
 * compromise (a tampered agent, or something between the worker and the agent swapping the
 * document). The real signer agent signs exactly the bytes it is sent and reports their digest, so
 * it cannot be made to lie about what it signed: here the bytes are swapped on their way to it
 * (the order's amount raised) and the real agent returns a real CMS over them. The pipeline runs
 * for real (workers, PostgreSQL, Redis, the bank sandbox): the standing mandate's signature is
 * refused, the connector locks down naming the signer, and nothing reaches the bank.
 */
describe.each([
  ['an agent sent other bytes, which says so (its sha256 is of them)', 'swap' as const],
  // The agent's JSON is not the evidence: a tampered agent that reports our document's digest while
  // its CMS covers other bytes is caught by verifying the CMS over the frozen bytes.
  ["an agent that signs other bytes and reports the frozen document's sha256", 'lie' as const],
])('lockdown on a signature over other bytes than the frozen document: %s', (_what, mode) => {
  let world: LockdownWorld;

  beforeAll(async () => {
    world = await startLockdownWorld(`lockdown_signed_bytes_${mode}`);
  }, 120_000);
  afterAll(async () => {
    await world?.close();
  });

  it('the order is not signed nor sent to the bank; the lockdown names the signer, with both digests in its incident', async () => {
    const agent = world.context.services.signer();
    const frozenSha: string[] = [];
    const swapped: Buffer[] = [];
    // The real agent, sent the order for 9 000.00 instead of the frozen 1 000.00.
    const swapping: SignerAgentClient = Object.assign(Object.create(agent) as SignerAgentClient, {
      signMany: async (userId: string, inputs: readonly SignInput[]) => {
        const outputs = await agent.signMany(
          userId,
          inputs.map((input) => {
            const frozen = Buffer.from(input.document).toString('utf8');
            frozenSha.push(createHash('sha256').update(input.document).digest('hex'));
            const other = Buffer.from(frozen.replace('<Amount>1000.00</Amount>', '<Amount>9000.00</Amount>'), 'utf8');
            if (other.toString('utf8') === frozen) throw new Error('the test could not find the amount in the document it swaps');
            swapped.push(other);
            return { ...input, document: other };
          }),
        );
        // 'lie': the answer claims the frozen document's digest, the CMS still covers the other bytes.
        return mode === 'lie' ? outputs.map((o, i) => ('documentSha256' in o ? { ...o, documentSha256: frozenSha[frozenSha.length - inputs.length + i] } : o)) : outputs;
      },
    });
    const context: AppContext = { ...world.context, services: Object.assign(Object.create(world.context.services) as AppContext['services'], { signer: () => swapping }) };

    await world.unlock('ceo');
    world.startWorkers(context);
    const [id] = await world.intake(['SB-SWAP']);
    const [{ external_id: externalId }] = await world.context.orm.em.fork().execute<Array<{ external_id: string }>>('select external_id from payment_order where id = ?', [id]);

    const status = await eventually(async () => {
      const s = await lockdownStatusOf(world.context);
      // Recorded, not only flagged: the Redis flag is set first, the incident a moment later.
      return s.state === 'locked' && s.incidentId ? s : null;
    }, { timeoutMs: 30_000, what: 'lockdown' });
    // The agent did sign, and over the swapped bytes: the CMS it returned is genuine, just not of our document.
    expect(swapped.length).toBeGreaterThan(0);

    const [frozen] = await world.context.orm.em.fork().execute<Array<{ bytes: Buffer; sha256: string }>>('select bytes, sha256 from order_document where order_id = ?', [id]);
    expect(Buffer.from(frozen.bytes).toString('utf8')).toContain('<Amount>1000.00</Amount>');
    const incident = await getIncident(world.context.orm.em.fork(), status.incidentId!);
    expect(incident).toBeTruthy();
    expect(incident!.status).toBe('open');
    expect(incident!.evidence).toMatchObject({
      trigger: 'signed_bytes_mismatch',
      scope: 'user:ceo',
      evidence: { orderId: id, login: 'ceo', expectedSha256: frozen.sha256, signedSha256: mode === 'lie' ? frozen.sha256 : createHash('sha256').update(swapped[0]).digest('hex'), code: 'DIGEST_MISMATCH' },
    });
    expect(status.scope).toBe('user:ceo');
    for (const queue of world.context.queues.all()) expect(await queue.isPaused()).toBe(true);
    // the signer's key is wiped from the agent.
    expect(await world.unlocked('ceo')).toBe(false);
    // the login is named in PostgreSQL (the incident above), never in the agent's log or journal.
    const agentLockdowns = world.agent
      .output()
      .split('\n')
      .filter((line) => line.includes('"event":"signer.lockdown"'));
    expect(agentLockdowns).toHaveLength(1);
    const journalLockdowns = readFileSync(join(world.agent.dir, 'journal.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line.includes('"event":"lockdown"'));
    expect(journalLockdowns).toHaveLength(1);
    for (const line of [...agentLockdowns, ...journalLockdowns]) expect(line).not.toMatch(/\bceo\b/);

    // Nothing of it counts: no signature recorded, the order held, and the bank never saw it.
    expect(await world.context.orm.em.fork().execute('select id from order_signature where order_id = ?', [id])).toEqual([]);
    await eventually(async () => ((await world.states([id]))[id] === 'held' ? true : null), { timeoutMs: 15_000, what: 'the order held' });
    const ledger = await world.ledger();
    expect(ledger.submissions.find((s) => s.externalId === externalId)).toBeUndefined();
    expect(ledger.total).toBe(0);
  }, 60_000);
});
