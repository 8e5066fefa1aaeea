import { readFile } from 'node:fs/promises';
import { BankError } from './business-api.errors';

/** The bank's Client ID / Client Secret pair. The secret never leaves this object except into the token request's Authorization header. */
export interface BankCredentials {
  clientId: string;
  clientSecret: string;
}

/**
 * Where the client gets its credentials. Today: config (a secret file) or the environment; the
 * users issue's credential vault implements the same port later. `invalidate()` is called when the
 * bank answered CREDENTIALS_REVOKED, so a vault can mark the pair compromised.
 */
export interface CredentialsProvider {
  getCredentials(): Promise<BankCredentials>;
  onRevoked?(): void | Promise<void>;
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
