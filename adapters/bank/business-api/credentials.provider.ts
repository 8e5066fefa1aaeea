import { readFile } from 'node:fs/promises';
import { looseFileMode } from '../../../connector/shared/secret-file';
import { BankError } from './business-api.errors';

/** The bank's Client ID / Client Secret pair. The secret never leaves this object except into the token request's Authorization header. */
export interface BankCredentials {
  clientId: string;
  clientSecret: string;
  /** What `version()` says of this pair (providers that have one). */
  version?: string;
}

/**
 * Where the client gets its credentials: config (a secret file) or the environment, or the
 * credential vault (connector/app/pipeline-services.factory.ts). `onRevoked()` is called when the
 * bank answered CREDENTIALS_REVOKED, so a vault can mark the pair compromised.
 */
export interface CredentialsProvider {
  getCredentials(): Promise<BankCredentials>;
  /**
   * A value that changes whenever the stored pair changes (rotated, replaced), never derived from
   * the secret in clear; asked before every bank call, so it must be cheap (one indexed read). When
   * it differs from the one the cached token was fetched with, the client drops that token at once:
   * after `credentials rotate` (after a compromise, R-29) the old secret's token is not used again
   * from our side, and a mistyped new secret shows at the next call, not when the token expires.
   */
  version?(): Promise<string>;
  onRevoked?(): void | Promise<void>;
  /** The bank issued a token for the pair of this `version` (the one `getCredentials` gave): a successful use. */
  onTokenIssued?(version?: string): void | Promise<void>;
}

export interface ConfigCredentialsOptions {
  clientId?: string;
  clientSecretFile?: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Reads the Client ID from `bank.clientId` and the secret from `bank.clientSecretFile`, else from
 * `CONNECTOR_BANK_CLIENT_SECRET`. Read at each token request (not cached here), so a rotated file
 * is picked up without a restart.
 */
export class ConfigCredentialsProvider implements CredentialsProvider {
  constructor(private readonly options: ConfigCredentialsOptions) {}

  async getCredentials(): Promise<BankCredentials> {
    const env = this.options.env ?? process.env;
    const clientId = this.options.clientId;
    if (!clientId) throw new BankError('AUTH', 'no bank Client ID configured: set bank.clientId (or CONNECTOR_BANK_CLIENT_ID)');
    let clientSecret: string | undefined;
    if (this.options.clientSecretFile) {
      await refuseLooseSecretFile(this.options.clientSecretFile);
      try {
        clientSecret = (await readFile(this.options.clientSecretFile, 'utf8')).replace(/\r?\n$/, '');
      } catch (err) {
        // The path is configuration, not a secret; the content never appears in a message.
        throw new BankError('AUTH', `the Client Secret file ${this.options.clientSecretFile} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    } else {
      clientSecret = env.CONNECTOR_BANK_CLIENT_SECRET;
    }
    if (!clientSecret) throw new BankError('AUTH', 'no bank Client Secret configured: set bank.clientSecretFile or CONNECTOR_BANK_CLIENT_SECRET');
    return { clientId, clientSecret };
  }
}

/**
 * a Client Secret file that group or others may read is not used, as the vault's master key
 * file is not (SECRET_FILE_PERMISSIONS; the bank client makes it CREDENTIALS_UNAVAILABLE: orders
 * wait, an incident says so). A file that cannot be stat'ed is left to the read that follows.
 */
async function refuseLooseSecretFile(path: string): Promise<void> {
  const mode = looseFileMode(path);
  if (mode) {
    throw Object.assign(
      new Error(`the Client Secret file ${path} may be read by group or others (mode ${mode}): anyone on this machine could read the bank's Client Secret (R-4); run chmod 600 ${path}, or store the pair in the vault (connector credentials set --secret-stdin)`),
      { code: 'SECRET_FILE_PERMISSIONS' },
    );
  }
}

/** Fixed credentials (tests, the demo's embedded sandbox). */
export class StaticCredentialsProvider implements CredentialsProvider {
  revoked = 0;
  constructor(private readonly credentials: BankCredentials) {}
  async getCredentials(): Promise<BankCredentials> {
    return this.credentials;
  }
  onRevoked(): void {
    this.revoked += 1;
  }
}
