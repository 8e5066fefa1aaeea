import { parentPort, workerData } from 'node:worker_threads';
import { createSigningBackend, type UnlockedKey } from './signing.backend';
import type { WorkerReply, WorkerRequest, WorkerSetup } from './signing.protocol';

/**
 * A signing worker thread. It holds the unlocked keys (LESSONS.md 10: CMS building and GOST math
 * off the main event loop) and wipes them on lock, on wipeAll, and whenever the shared wipe
 * epoch moved past the epoch a key was unlocked in (a lockdown takes effect before this thread
 * even reads its message).
 */
const setup = workerData as WorkerSetup;
const epoch = new Int32Array(setup.epoch);
const backend = createSigningBackend(setup);
const keys = new Map<string, { key: UnlockedKey; epoch: number }>();

function wipe(userId: string): boolean {
  const entry = keys.get(userId);
  if (!entry) return false;
  keys.delete(userId);
  entry.key.wipe();
  return true;
}

function wipeAll(): number {
  let n = 0;
  for (const userId of [...keys.keys()]) if (wipe(userId)) n += 1;
  return n;
}

/** Drops every key unlocked before the latest lockdown (the epoch is read atomically, never cached). */
function honourEpoch(): void {
  const current = Atomics.load(epoch, 0);
  for (const [userId, entry] of keys) if (entry.epoch !== current) wipe(userId);
}

function handle(msg: WorkerRequest): WorkerReply {
  switch (msg.type) {
    case 'ping':
      return { id: msg.id, ok: true };
    case 'wipeAll':
      return { id: msg.id, ok: true, wiped: wipeAll() };
    case 'lock':
      return { id: msg.id, ok: true, wiped: wipe(msg.userId) ? 1 : 0 };
    case 'unlock': {
      honourEpoch();
      wipe(msg.userId);
      const key = backend.open(msg.p12, msg.password, msg.expectedIin);
      // A lockdown that arrived while the keystore was being opened wins.
      if (Atomics.load(epoch, 0) !== msg.epoch) {
        key.wipe();
        return { id: msg.id, ok: false, code: 'KEY_LOCKED', message: 'a lockdown wiped the keys while this key was being unlocked; unlock again' };
      }
      keys.set(msg.userId, { key, epoch: msg.epoch });
      return { id: msg.id, ok: true, facts: key.facts };
    }
    case 'sign': {
      honourEpoch();
      const entry = keys.get(msg.userId);
      if (!entry) return { id: msg.id, ok: false, code: 'KEY_LOCKED', message: `the key of user ${msg.userId} is not unlocked` };
      const signed = backend.sign(entry.key, msg.document, new Date(msg.signingTime), msg.cosign, msg.expected);
      // Checked again after the work: a signature made across a lockdown is never handed out.
      if (Atomics.load(epoch, 0) !== entry.epoch) {
        wipeAll();
        return { id: msg.id, ok: false, code: 'KEY_LOCKED', message: 'a lockdown wiped the keys during signing' };
      }
      return { id: msg.id, ok: true, cms: signed.cms, signingTime: signed.signingTime.toISOString(), revocation: signed.revocation, facts: entry.key.facts };
    }
    default: {
      const never: never = msg;
      return { id: (never as { id: number }).id, ok: false, code: 'INTERNAL', message: 'unknown worker request' };
    }
  }
}

parentPort?.on('message', (msg: WorkerRequest) => {
  let reply: WorkerReply;
  try {
    reply = handle(msg);
  } catch (err) {
    const coded = err as { code?: unknown; message?: unknown };
    const code = typeof coded.code === 'string' && /^[A-Z][A-Z0-9_]*$/.test(coded.code) ? coded.code : 'SIGNING_FAILED';
    let message = code === 'SIGNING_FAILED' ? `signing failed inside the worker: ${String(coded.message)}` : String(coded.message);
    // Belt and braces: whatever a library put into its message, the password never leaves this thread.
    if (msg.type === 'unlock' && msg.password) message = message.split(msg.password).join('[REDACTED]');
    reply = { id: msg.id, ok: false, code, message };
  }
  parentPort?.postMessage(reply);
});
