import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { ConnectorError } from '../shared/errors';
import { KEY_FILE_HINT, loadMasterKey, loadOrCreateMasterKey, rereadIfChanged, resolveMasterKeyPath, type MasterKeyRing } from './master-key.store';

/**
 * AES-256-GCM under the master key. A ciphertext is `v1:<keyId>:<iv>:<tag>:<data>`
 * (base64url parts). `purpose` is bound as additional data, so a TOTP seed cannot be swapped in
 * for a Client Secret (or one user's seed for another's) without failing authentication.
 */
export class SecretBox {
  constructor(private ring: MasterKeyRing) {}

  static fromConfig(config: { masterKeyFile: string }, cwd?: string): SecretBox {
    return new SecretBox(loadOrCreateMasterKey(resolveMasterKeyPath(config.masterKeyFile, cwd)));
  }

  /** A box on the existing key file only (MASTER_KEY_MISSING naming the path when there is none): for opening secrets. */
  static open(config: { masterKeyFile: string }, cwd?: string): SecretBox {
    return new SecretBox(loadMasterKey(resolveMasterKeyPath(config.masterKeyFile, cwd)));
  }

  /** The id of the master key a sealed value was written under (null when not in the v1 format). */
  static keyIdOf(sealed: string): string | null {
    const parts = sealed.split(':');
    return parts.length === 5 && parts[0] === 'v1' ? parts[1] : null;
  }

  get currentKeyId(): string {
    return this.ring.current.id;
  }

  /** The absolute path of the key file in use. */
  get keyFile(): string {
    return this.ring.path;
  }

  encrypt(plaintext: string, purpose: string): string {
    // A process running for weeks seals under the current key of the file, not of its start: a key
    // `vault rotate-key` dropped since would leave what it seals unreadable (a TOTP seed enrolled in the API).
    this.ring = rereadIfChanged(this.ring);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.ring.current.key, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    const tag = cipher.getAuthTag();
    return ['v1', this.ring.current.id, iv.toString('base64url'), tag.toString('base64url'), data.toString('base64url')].join(':');
  }

  decrypt(sealed: string, purpose: string): string {
    const parts = sealed.split(':');
    if (parts.length !== 5 || parts[0] !== 'v1') throw new ConnectorError('VAULT_CORRUPT', 'a sealed secret is not in the v1 format');
    let key = this.ring.byId.get(parts[1]);
    if (!key) {
      // Another process rotated the master key (connector vault rotate-key): read the file again.
      this.ring = loadOrCreateMasterKey(this.ring.path);
      key = this.ring.byId.get(parts[1]);
    }
    if (!key) {
      throw new ConnectorError('MASTER_KEY_MISSING', `a secret (${purpose}) is sealed under master key ${parts[1]}, which the master key file in use, ${this.ring.path}, does not hold: ${KEY_FILE_HINT}`);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(parts[2], 'base64url'));
      decipher.setAAD(Buffer.from(purpose, 'utf8'));
      decipher.setAuthTag(Buffer.from(parts[3], 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(parts[4], 'base64url')), decipher.final()]).toString('utf8');
    } catch {
      // AES-GCM's authentication is the only signal of a wrong key: the secret is never shown to tell.
      throw new ConnectorError(
        'MASTER_KEY_MISMATCH',
        `a sealed secret (${purpose}) failed authentication under master key ${parts[1]} of ${this.ring.path}: that file holds a different key under the same id (it is not the file that sealed the secret), or the secret was altered: ${KEY_FILE_HINT}`,
      );
    }
  }

  /** True when `sealed` was written under an older key than the current one. */
  isStale(sealed: string): boolean {
    return sealed.split(':')[1] !== this.ring.current.id;
  }

  reload(ring: MasterKeyRing): void {
    this.ring = ring;
  }
}
