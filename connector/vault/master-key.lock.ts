import type { EntityManager } from '@mikro-orm/postgresql';
import { takeAdvisoryLockWaiting, withAdvisoryMutex } from '../persistence/database';

/**
 * One advisory lock for "the master key is changing" (`vault rotate-key`) and "a secret is being
 * sealed" (`credentials set` / `rotate`, a TOTP enrolment). Without it a secret sealed while a
 * rotation ran could be sealed under the key the rotation was about to drop (unreadable once it
 * did), or be overwritten by the rotation's re-seal of the value it replaced (the new Client Secret
 * lost, the old one back). A rotation re-seals every secret, so a sealer may wait that long.
 */
const MASTER_KEY_LOCK = ['hashtext(?)', ['vault:master-key']] as const;
export const MASTER_KEY_LOCK_WAIT_MS = 60_000;

/** Taken inside the transaction that seals and stores a secret, before it seals: held until it commits. */
export async function holdMasterKeyForSealing(tx: EntityManager): Promise<void> {
  await takeAdvisoryLockWaiting(tx, MASTER_KEY_LOCK_WAIT_MS, MASTER_KEY_LOCK[0], [...MASTER_KEY_LOCK[1]]);
}

/** Runs a rotation of the master key with no secret being sealed meanwhile. */
export async function withMasterKeyChanging<T>(em: EntityManager, work: () => Promise<T>): Promise<T> {
  return withAdvisoryMutex(em, MASTER_KEY_LOCK_WAIT_MS, MASTER_KEY_LOCK[0], [...MASTER_KEY_LOCK[1]], work);
}
