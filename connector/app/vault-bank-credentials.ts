import { createHash } from 'node:crypto';
import { ConfigCredentialsProvider, type BankCredentials, type CredentialsProvider as BankCredentialsProvider } from '../../adapters/bank/business-api/credentials.provider';
import type { CredentialsProblem } from '../../queue/pipeline-services';
import type { ConnectorConfig } from '../../config/config.schema';
import { CredentialVault } from '../persistence/entities';
import type { Orm } from '../persistence/database';
import type { Clock } from '../shared/clock';
import { ConnectorError } from '../shared/errors';
import { markCredentialsRevoked, revokedMessage, SECRET_PURPOSE } from '../vault/credential.vault';
import { SecretBox } from '../vault/secret-box';

/** How long a read of the vault's version serves the bank calls after it. */
const VERSION_READ_MS = 1_000;

/** The version of the config's pair (no vault row): the vault's first pair is a change too. */
const CONFIG_VERSION = 'config';

/**
 * Changes with every `credentials set` / `rotate` (a new sealed value each time; also a master key
 * rotation's re-seal: one token fetched too many, harmless), and when the pair is marked revoked
 * (the token got with it is dropped: nothing more goes to the bank with it). A hash of
 * ciphertext, never of the secret.
 */
function versionOf(clientId: string, secretEnc: string, revoked: boolean): string {
  return createHash('sha256')
    .update(clientId)
    .update('\n')
    .update(secretEnc)
    .update(revoked ? '\nrevoked' : '')
    .digest('base64url');
}

/**
 * The bank client's credentials: the vault's pair when one is stored, else the
 * config's (`bank.clientId` + `bank.clientSecretFile` or CONNECTOR_BANK_CLIENT_SECRET).
 * The secret is decrypted per token request and never kept here. The master key file is only
 * read, never created: a new key could open nothing (MASTER_KEY_MISSING names the file instead).
 */
export class VaultBankCredentials implements BankCredentialsProvider {
  private box?: SecretBox;
  private versionRead?: { at: number; value: Promise<string> };
  /** The sealed value last opened successfully: the same one opens again (the key ring only grows in memory). */
  private opened?: string;
  private readonly fallback: ConfigCredentialsProvider;
  constructor(
    private readonly config: ConnectorConfig,
    private readonly orm: Orm,
    private readonly clock: Clock,
  ) {
    this.fallback = new ConfigCredentialsProvider({ clientId: config.bank.clientId, clientSecretFile: config.bank.clientSecretFile });
  }

  /**
   * The pair for a token request. A pair marked revoked (by the bank's answer or a lockdown) is
   * refused here, so nothing goes to the bank with it (R-31: after a compromise the product must
   * not keep hammering the bank; status polls and statement fetches ask for tokens too).
   */
  async getCredentials(): Promise<BankCredentials> {
    const row = await this.orm.em.fork().findOne(CredentialVault, { id: 1 });
    if (!row) return { ...(await this.fallback.getCredentials()), version: CONFIG_VERSION };
    if (row.revokedAt) throw new ConnectorError('CREDENTIALS_REVOKED', revokedMessage(row));
    const clientSecret = this.openBox().decrypt(row.secretEnc, SECRET_PURPOSE);
    return { clientId: row.clientId, clientSecret, version: versionOf(row.clientId, row.secretEnc, false) };
  }

  /**
   * The bank issued a token for the pair: it was used successfully, so its idle clock restarts
   * . Only the pair that was asked for: a rotation in between starts its own clock.
   * Best effort: the clock is counted in days, and the next token tries again.
   */
  async onTokenIssued(version?: string): Promise<void> {
    if (version === CONFIG_VERSION) return;
    const now = this.clock.now();
    const rows = await this.orm.em
      .fork()
      .execute<Array<{ client_id: string; secret_enc: string; revoked: boolean }>>('select client_id, secret_enc, revoked_at is not null as revoked from credential_vault where id = 1');
    const row = rows[0];
    if (!row || (version !== undefined && versionOf(row.client_id, row.secret_enc, row.revoked) !== version)) return;
    await this.orm.em.fork().execute('update credential_vault set last_used_at = ? where id = 1 and secret_enc = ? and (last_used_at is null or last_used_at < ?)', [now, row.secret_enc, now]);
  }

  /**
   * Asked before every bank call; the client drops its token when this changes. Read by primary key
   * at most once per VERSION_READ_MS (calls in between share the last read): a rotation reaches
   * the next call within that second, and a busy worker does not pay one more round trip to
   * PostgreSQL, before every submission and status poll, to learn that nothing changed.
   */
  version(): Promise<string> {
    const now = Date.now();
    if (this.versionRead && now - this.versionRead.at < VERSION_READ_MS) return this.versionRead.value;
    const value = this.orm.em
      .fork()
      .execute<Array<{ client_id: string; secret_enc: string; revoked: boolean }>>('select client_id, secret_enc, revoked_at is not null as revoked from credential_vault where id = 1')
      .then((rows) => (rows[0] ? versionOf(rows[0].client_id, rows[0].secret_enc, rows[0].revoked) : CONFIG_VERSION));
    const read = { at: now, value };
    this.versionRead = read;
    // A failed read is not remembered: the next call reads again.
    value.catch(() => {
      if (this.versionRead === read) this.versionRead = undefined;
    });
    return value;
  }

  /** Loaded on first use; a missing or unreadable key file is tried again next time (an operator may restore it). */
  private openBox(): SecretBox {
    return (this.box ??= SecretBox.open(this.config));
  }

  /**
   * Why no order can be sent with the stored pair now, or null: revoked (the bank's answer or a
   * lockdown), or a vault the master key in use cannot open (MASTER_KEY_MISSING, MASTER_KEY_MISMATCH,
   * ...: a configuration error, not the bank's). One indexed read; the secret is opened only when
   * its sealed value changed since it last opened, and dropped at once.
   */
  async problem(): Promise<CredentialsProblem | null> {
    const row = await this.orm.em.fork().findOne(CredentialVault, { id: 1 });
    if (!row) return null;
    if (row.revokedAt) return { code: 'CREDENTIALS_REVOKED', message: revokedMessage(row) };
    if (row.secretEnc === this.opened) return null;
    try {
      this.openBox().decrypt(row.secretEnc, SECRET_PURPOSE);
    } catch (err) {
      if (!(err instanceof ConnectorError)) throw err;
      return { code: err.code, message: `the stored Client Secret cannot be opened, so no order can be sent to the bank: ${err.message}` };
    }
    this.opened = row.secretEnc;
    return null;
  }

  async onRevoked(): Promise<void> {
    await markCredentialsRevoked({ em: this.orm.em.fork(), clock: this.clock }, { reason: 'the bank answered CREDENTIALS_REVOKED', actor: 'system:bank-client' });
  }
}

