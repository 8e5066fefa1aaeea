import type { EntityManager } from '@mikro-orm/postgresql';
import { appendAudit } from '../audit/audit.log';
import type { Clock } from '../shared/clock';
import { resealCredentials } from './credential.vault';
import { addMasterKey, pruneMasterKeys, resolveMasterKeyPath } from './master-key.store';
import { SecretBox } from './secret-box';

/**
 * Master key rotation: add a new current key, re-seal every secret under it (the Client Secret,
 * every TOTP seed), then drop the old keys. A crash midway is safe: old keys are dropped only
 * after everything was re-sealed, and a re-run re-seals what is still stale.
 */
export async function rotateMasterKey(deps: { em: EntityManager; clock: Clock; config: { masterKeyFile: string } }, actor: string, cwd?: string): Promise<{ keyId: string; resealed: number }> {
  const path = resolveMasterKeyPath(deps.config.masterKeyFile, cwd);
  const box = new SecretBox(addMasterKey(path));
  let resealed = (await resealCredentials({ em: deps.em, box, clock: deps.clock }, actor)) ? 1 : 0;
  const users = await deps.em.execute<Array<{ id: string; totp_secret_enc: string }>>('select id, totp_secret_enc from app_user where totp_secret_enc is not null');
  for (const user of users) {
    if (!box.isStale(user.totp_secret_enc)) continue;
    const purpose = `user.totp:${user.id}`;
    await deps.em.execute('update app_user set totp_secret_enc = ? where id = ? and totp_secret_enc = ?', [box.encrypt(box.decrypt(user.totp_secret_enc, purpose), purpose), user.id, user.totp_secret_enc]);
    resealed += 1;
  }
  const ring = pruneMasterKeys(path);
  await appendAudit(deps.em, { actor, action: 'vault.master_key_rotated', subject: ring.current.id, details: { resealed }, at: deps.clock.now() });
  return { keyId: ring.current.id, resealed };
}
