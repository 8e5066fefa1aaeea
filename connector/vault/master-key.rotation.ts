import type { EntityManager } from '@mikro-orm/postgresql';
import { appendAudit } from '../audit/audit.log';
import type { Clock } from '../shared/clock';
import { ConnectorError } from '../shared/errors';
import { resealCredentials } from './credential.vault';
import { withMasterKeyChanging } from './master-key.lock';
import { addMasterKey, KEY_FILE_HINT, loadMasterKey, pruneMasterKeys, resolveMasterKeyPath } from './master-key.store';
import { SecretBox } from './secret-box';
import { describeSecrets, sealedSecrets, unreadableWith } from './sealing-key';

/** Passes over the sealed secrets before the old keys go; one more than the first only when a secret was sealed under an old key meanwhile. */
const MAX_RESEAL_PASSES = 5;

/**
 * Master key rotation: add a new current key, re-seal every secret under it (the Client Secret,
 * every TOTP seed), then drop the old keys. A crash midway is safe: old keys are dropped only
 * after everything was re-sealed, and a re-run re-seals what is still stale.
 *
 * Checked before anything is written: the key file must exist (run from another folder, its
 * default relative path names another file, which was created and given a key) and must open every
 * sealed secret (else it is not the file that sealed them, and dropping its keys would lose nothing
 * of use while the real file stayed as it was).
 */
export async function rotateMasterKey(deps: { em: EntityManager; clock: Clock; config: { masterKeyFile: string } }, actor: string, cwd?: string): Promise<{ keyId: string; resealed: number }> {
  // No secret is sealed while the key changes (master-key.lock.ts): one sealed under the old key
  // after the last pass would be unreadable once it is dropped.
  return withMasterKeyChanging(deps.em, () => rotateHoldingTheKey(deps, actor, cwd));
}

async function rotateHoldingTheKey(deps: { em: EntityManager; clock: Clock; config: { masterKeyFile: string } }, actor: string, cwd?: string): Promise<{ keyId: string; resealed: number }> {
  const path = resolveMasterKeyPath(deps.config.masterKeyFile, cwd);
  const unreadable = unreadableWith(loadMasterKey(path), await sealedSecrets(deps.em));
  if (unreadable.length > 0) {
    throw new ConnectorError(
      'MASTER_KEY_MISMATCH',
      `the master key file in use, ${path}, cannot open ${describeSecrets(unreadable)}: it is not the key file that sealed them. Nothing was rotated and the file is unchanged: ${KEY_FILE_HINT}`,
    );
  }
  const box = new SecretBox(addMasterKey(path));
  let resealed = 0;
  // Another process may seal a secret under the old key while this runs (its ring read before the
  // new key was added): each pass re-seals what is stale, until one finds nothing.
  for (let pass = 0; pass < MAX_RESEAL_PASSES; pass++) {
    let now = (await resealCredentials({ em: deps.em, box, clock: deps.clock }, actor)) ? 1 : 0;
    const users = await deps.em.execute<Array<{ id: string; totp_secret_enc: string }>>('select id, totp_secret_enc from app_user where totp_secret_enc is not null');
    for (const user of users) {
      if (!box.isStale(user.totp_secret_enc)) continue;
      const purpose = `user.totp:${user.id}`;
      await deps.em.execute('update app_user set totp_secret_enc = ? where id = ? and totp_secret_enc = ?', [box.encrypt(box.decrypt(user.totp_secret_enc, purpose), purpose), user.id, user.totp_secret_enc]);
      now += 1;
    }
    resealed += now;
    if (now === 0) break;
  }
  const ring = pruneMasterKeys(path);
  await appendAudit(deps.em, { actor, action: 'vault.master_key_rotated', subject: ring.current.id, details: { resealed }, at: deps.clock.now() });
  return { keyId: ring.current.id, resealed };
}
