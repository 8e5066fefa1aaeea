import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ConnectorError } from '../../connector/shared/errors';
import { AgentMetrics } from './agent.metrics';
import { KeyRegistry } from './key-registry.store';
import { KeySessionManager } from './key-session.manager';
import { SignerAgentService } from './signer-agent.service';
import type { SigningPool } from './signing.pool';
import type { KeyFacts } from './signing.protocol';
import type { SignJournal } from './sign-journal.writer';

/**
 * An unlock that ends any way but a started session must leave no key in the workers: the
 * keystore went to them, and a worker that answers late (after a timeout) or an unlock overtaken
 * by an unenroll or a new enrolment still holds it. The pool stands in for the worker threads and
 * records what they were told.
 */
const FACTS: KeyFacts = { algorithm: 'RSA-SHA256', subject: 'CN=Test', iin: '123456789011', bin: null, serial: '01', notBefore: '2021-01-01T00:00:00Z', notAfter: '2031-01-01T00:00:00Z' };

function world(clock: { now(): Date } = { now: () => new Date() }) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-service-'));
  const keystore = join(dir, 'key.p12');
  writeFileSync(keystore, Buffer.from('not really a keystore'));
  const told: string[] = [];
  let answer: (outcome: KeyFacts | Error) => void = () => undefined;
  const pool = {
    currentEpoch: () => 1,
    unlock: (userId: string) => {
      told.push(`unlock ${userId}`);
      return new Promise<KeyFacts>((resolve, reject) => (answer = (o) => (o instanceof Error ? reject(o) : resolve(o))));
    },
    lock: (userId: string) => void told.push(`lock ${userId}`),
    sign: async () => {
      told.push('sign');
      throw new Error('signed with a key that should have been wiped');
    },
  } as unknown as SigningPool;
  const registry = new KeyRegistry(join(dir, 'registry.json')).load();
  // The manager calls back into the service (declared next) only when a session ends.
  const sessions = new KeySessionManager(60_000, 600_000, (userId, reason) => service.onSessionEnd(userId, reason));
  const service = new SignerAgentService({
    registry,
    sessions,
    pool,
    journal: { append: async () => undefined } as unknown as SignJournal,
    metrics: new AgentMetrics(() => 0),
    clock,
    logger: pino({ level: 'silent' }),
    cwd: dir,
    testMode: true,
    maxDocumentBytes: 1 << 20,
  });
  return { dir, keystore, told, service, sessions, answer: (o: KeyFacts | Error) => answer(o), close: () => { sessions.endAll(); rmSync(dir, { recursive: true, force: true }); } };
}

const untilTold = async (told: string[], what: string) => {
  for (let i = 0; i < 200 && !told.includes(what); i += 1) await new Promise((r) => setTimeout(r, 5));
  if (!told.includes(what)) throw new Error(`the workers were never told "${what}" (told: ${told.join(', ')})`);
};

/** The worker answers; what the workers are told from then on (the wipe must come after the answer). */
const answerThenTold = (w: ReturnType<typeof world>, outcome: KeyFacts | Error) => {
  const before = w.told.length;
  w.answer(outcome);
  return () => w.told.slice(before);
};

describe('an unlock that does not end in a session leaves no key in the workers', () => {
  it('overtaken by an unenroll: refused, and the key the workers opened is wiped', async () => {
    const w = world();
    try {
      await w.service.enroll('u1', w.keystore, null);
      const unlocking = w.service.unlock('u1', 'pw');
      await untilTold(w.told, 'unlock u1');
      await w.service.unenroll('u1');
      const toldAfter = answerThenTold(w, FACTS);
      await expect(unlocking).rejects.toMatchObject({ code: 'KEY_LOCKED' });
      expect(toldAfter()).toContain('lock u1');
      expect(w.sessions.get('u1')).toBeUndefined();
    } finally {
      w.close();
    }
  });

  it.each([
    ['its key opened', FACTS],
    ["the old keystore's password wrong", new ConnectorError('WRONG_PASSWORD', 'wrong keystore password')],
  ] as const)('overtaken by a new enrolment (the worker answers: %s): refused, the key wiped, no wrong password counted against the new keystore', async (_what, outcome) => {
    const w = world();
    try {
      await w.service.enroll('u2', w.keystore, null);
      const unlocking = w.service.unlock('u2', 'pw');
      await untilTold(w.told, 'unlock u2');
      await w.service.enroll('u2', w.keystore, '123456789011');
      const toldAfter = answerThenTold(w, outcome);
      // The old keystore does not become the new one.
      await expect(unlocking).rejects.toMatchObject({ code: 'KEY_LOCKED' });
      expect(toldAfter()).toContain('lock u2');
      expect(w.service.status('u2')).toMatchObject({ unlocked: false, wrongPasswordCount: 0 });
    } finally {
      w.close();
    }
  });

  it('a worker that timed out (it may still open the key later): the key is wiped after it', async () => {
    const w = world();
    try {
      await w.service.enroll('u3', w.keystore, null);
      const unlocking = w.service.unlock('u3', 'pw');
      await untilTold(w.told, 'unlock u3');
      const toldAfter = answerThenTold(w, new ConnectorError('SIGNER_TIMEOUT', 'the signing worker did not answer in time'));
      await expect(unlocking).rejects.toMatchObject({ code: 'SIGNER_TIMEOUT' });
      expect(toldAfter()).toContain('lock u3');
    } finally {
      w.close();
    }
  });
});

describe('R-13: an unlocked key is judged by the time that passed, not only by its timers', () => {
  it('a key idle past its idle time while its timer did not fire (the host slept, the VM was paused) signs nothing: locked, and the workers wipe it', async () => {
    let now = Date.parse('2026-11-25T10:00:00Z');
    const w = world({ now: () => new Date(now) });
    try {
      await w.service.enroll('u4', w.keystore, null);
      const unlocking = w.service.unlock('u4', 'pw');
      await untilTold(w.told, 'unlock u4');
      w.answer(FACTS);
      await unlocking;
      // 61 s on the wall clock (the idle time is 60 s); no timer fired: the process did not run.
      now += 61_000;
      const before = w.told.length;
      await expect(w.service.sign({ userId: 'u4', orderId: 'o1', document: Buffer.from('doc'), cosign: null, expected: { iin: null, bin: null } })).rejects.toMatchObject({ code: 'KEY_LOCKED' });
      expect(w.told.slice(before)).toEqual(['lock u4']);
      expect(w.service.status('u4')).toMatchObject({ unlocked: false });
    } finally {
      w.close();
    }
  });
});
