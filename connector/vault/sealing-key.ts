import { existsSync } from 'node:fs';
import type { EntityManager } from '@mikro-orm/postgresql';
import { appendAudit } from '../audit/audit.log';
import { ConnectorError } from '../shared/errors';
import { SECRET_PURPOSE } from './credential.vault';
import { KEY_FILE_HINT, loadMasterKey, loadOrCreateMasterKey, type MasterKeyRing } from './master-key.store';
import { SecretBox } from './secret-box';

/** A secret the database holds sealed under the master key (R-4), named for an operator. */
export interface SealedSecret {
  what: string;
  purpose: string;
  sealed: string;
}

export interface UnreadableSecret extends SealedSecret {
  code: string;
}

/** Every secret sealed under the master key: the bank's Client Secret and the users' TOTP seeds. */
export async function sealedSecrets(em: EntityManager): Promise<SealedSecret[]> {
  const vault = await em.execute<Array<{ secret_enc: string }>>('select secret_enc from credential_vault where id = 1');
  const users = await em.execute<Array<{ id: string; login: string; totp_secret_enc: string }>>('select id, login, totp_secret_enc from app_user where totp_secret_enc is not null order by login');
  return [
    ...vault.map((v) => ({ what: 'the bank Client Secret', purpose: SECRET_PURPOSE, sealed: v.secret_enc })),
    // The purpose of a TOTP seed (users/user.service.ts TOTP_PURPOSE), as master-key.rotation.ts.
    ...users.map((u) => ({ what: `the TOTP seed of ${u.login}`, purpose: `user.totp:${u.id}`, sealed: u.totp_secret_enc })),
  ];
}

/** The secrets `ring` cannot open (each opened and dropped at once; nothing is shown). */
export function unreadableWith(ring: MasterKeyRing, secrets: SealedSecret[]): UnreadableSecret[] {
  const box = new SecretBox(ring);
  const out: UnreadableSecret[] = [];
  for (const secret of secrets) {
    try {
      box.decrypt(secret.sealed, secret.purpose);
    } catch (err) {
      out.push({ ...secret, code: err instanceof ConnectorError ? err.code : 'MASTER_KEY_UNREADABLE' });
    }
  }
  return out;
}

function listed(secrets: SealedSecret[]): string {
  const shown = secrets.slice(0, 5).map((s) => s.what);
  return `${shown.join(', ')}${secrets.length > shown.length ? ` and ${secrets.length - shown.length} more` : ''}`;
}

function keyIds(secrets: SealedSecret[]): string {
  return [...new Set(secrets.map((s) => SecretBox.keyIdOf(s.sealed) ?? '?'))].join(', ');
}

/** Which secrets, and the master keys they were sealed under: for an operator, nothing secret. */
export function describeSecrets(secrets: SealedSecret[]): string {
  return `${listed(secrets)} (sealed under master key ${keyIds(secrets)})`;
}

const LOST_HINT = 'only if that key is lost for good, add --master-key-lost (what was sealed under it stays unreadable: users re-enrol TOTP)';

/**
 * The master key `credentials set` seals the new Client Secret with. The key file's default path
 * is relative to the working directory (INTERFACES.md), so run from elsewhere the command used to
 * create a second key there and seal under it: the worker, reading the installation's file, could
 * then open nothing. Refused instead, naming the file, when
 * - the file does not exist while the database holds sealed secrets (a new key could open none), or
 * - the file cannot open a sealed secret that this command does not replace (a TOTP seed).
 * The stored Client Secret itself being unreadable does not refuse: it is what gets replaced.
 * `masterKeyLost`: the operator says the key that sealed them is gone; recorded in the audit log.
 */
export async function sealingKeyFor(
  em: EntityManager,
  path: string,
  input: { masterKeyLost?: boolean; actor: string; now: Date },
): Promise<{ box: SecretBox; created: boolean; unreadable: UnreadableSecret[] }> {
  const secrets = await sealedSecrets(em);
  const exists = existsSync(path);
  const unreadable: UnreadableSecret[] = exists ? unreadableWith(loadMasterKey(path), secrets) : secrets.map((s) => ({ ...s, code: 'MASTER_KEY_MISSING' }));
  const blocking = exists ? unreadable.filter((s) => s.purpose !== SECRET_PURPOSE) : unreadable;
  if (blocking.length > 0) {
    if (!input.masterKeyLost) {
      throw exists
        ? new ConnectorError(
            'MASTER_KEY_MISMATCH',
            `the master key file in use, ${path}, cannot open ${describeSecrets(blocking)}: it is not the key file that sealed them, and a Client Secret sealed with it would leave two master keys. Nothing was stored: ${KEY_FILE_HINT}; ${LOST_HINT}`,
          )
        : new ConnectorError(
            'MASTER_KEY_MISSING',
            `the master key file ${path} does not exist, but the database holds ${listed(blocking)} sealed under master key ${keyIds(blocking)}: a new key here would be a second master key, and the worker, reading the installation's key file, could not open a secret sealed with it. Nothing was stored and no key file created: ${KEY_FILE_HINT}; ${LOST_HINT}`,
          );
    }
    await appendAudit(em, { actor: input.actor, action: 'vault.master_key_declared_lost', subject: path, details: { unreadable: blocking.map((s) => s.what), keyIds: keyIds(blocking) }, at: input.now });
  }
  return { box: new SecretBox(loadOrCreateMasterKey(path)), created: !exists, unreadable };
}
