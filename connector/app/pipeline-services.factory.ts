import { BusinessApiClient } from '../../adapters/bank/business-api/business-api.client';
import { ConfigCredentialsProvider, type BankCredentials, type CredentialsProvider as BankCredentialsProvider } from '../../adapters/bank/business-api/credentials.provider';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import type { PipelineServices } from '../../queue/pipeline-services';
import { CredentialVault } from '../persistence/entities';
import { SecretBox } from '../vault/secret-box';
import { credentialsUsable, markCredentialsRevoked, SECRET_PURPOSE } from '../vault/credential.vault';
import type { ConnectorConfig } from '../../config/config.schema';
import type { Orm } from '../persistence/database';
import type { Clock } from '../shared/clock';
import type { Logger } from '../logging/logger';

/**
 * The bank client's credentials: the vault's pair when one is stored, else the
 * config's (`bank.clientId` + `bank.clientSecretFile` or CONNECTOR_BANK_CLIENT_SECRET).
 * The secret is decrypted per token request and never kept here.
 */
class VaultBankCredentials implements BankCredentialsProvider {
  private box?: SecretBox;
  private readonly fallback: ConfigCredentialsProvider;
  constructor(
    private readonly config: ConnectorConfig,
    private readonly orm: Orm,
    private readonly clock: Clock,
  ) {
    this.fallback = new ConfigCredentialsProvider({ clientId: config.bank.clientId, clientSecretFile: config.bank.clientSecretFile });
  }

  async getCredentials(): Promise<BankCredentials> {
    const row = await this.orm.em.fork().findOne(CredentialVault, { id: 1 });
    if (!row) return this.fallback.getCredentials();
    this.box ??= SecretBox.fromConfig(this.config);
    const clientSecret = this.box.decrypt(row.secretEnc, SECRET_PURPOSE);
    void this.orm.em
      .fork()
      .execute('update credential_vault set last_used_at = ? where id = 1', [this.clock.now()])
      .catch(() => undefined);
    return { clientId: row.clientId, clientSecret };
  }

  async onRevoked(): Promise<void> {
    await markCredentialsRevoked({ em: this.orm.em.fork(), clock: this.clock }, { reason: 'the bank answered CREDENTIALS_REVOKED', actor: 'system:bank-client' });
  }
}

export function createPipelineServices(config: ConnectorConfig, orm: Orm, clock: Clock, logger: Logger): PipelineServices {
  let bank: BusinessApiClient | undefined;
  let signer: SignerAgentClient | undefined;
  return {
    bank: () => (bank ??= BusinessApiClient.fromConfig(config.bank, { credentials: new VaultBankCredentials(config, orm, clock), logger })),
    signer: () => (signer ??= SignerAgentClient.fromConfig(config)),
    credentialsUsable: () => credentialsUsable({ em: orm.em.fork(), clock }),
    markCredentialsRevoked: (reason) => markCredentialsRevoked({ em: orm.em.fork(), clock }, { reason, actor: 'system:pipeline' }),
    close: () => bank?.close(),
  };
}
