import { BusinessApiClient } from '../../adapters/bank/business-api/business-api.client';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import type { PipelineServices } from '../../queue/pipeline-services';
import { markCredentialsRevoked } from '../vault/credential.vault';
import { VaultBankCredentials } from './vault-bank-credentials';
import type { ConnectorConfig } from '../../config/config.schema';
import type { Orm } from '../persistence/database';
import type { Clock } from '../shared/clock';
import type { Logger } from '../logging/logger';

export function createPipelineServices(config: ConnectorConfig, orm: Orm, clock: Clock, logger: Logger): PipelineServices {
  let bank: BusinessApiClient | undefined;
  let signer: SignerAgentClient | undefined;
  const credentials = new VaultBankCredentials(config, orm, clock);
  return {
    bank: () => (bank ??= BusinessApiClient.fromConfig(config.bank, { credentials, logger })),
    signer: () => (signer ??= SignerAgentClient.fromConfig(config)),
    credentialsProblem: () => credentials.problem(),
    markCredentialsRevoked: (reason) => markCredentialsRevoked({ em: orm.em.fork(), clock }, { reason, actor: 'system:pipeline' }),
    close: () => bank?.close(),
  };
}
