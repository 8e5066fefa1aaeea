import type { BusinessApiClient } from '../adapters/bank/business-api/business-api.client';
import type { SignerAgentClient } from '../signer-agent/agent/signer-agent.client';

/**
 * The outside services the pipeline's jobs call: the bank (through its one adapter, R-3) and
 * the local signer agent. Built lazily by the entry point, so a process that never signs or
 * submits never opens them.
 */
export interface PipelineServices {
  bank(): BusinessApiClient;
  signer(): SignerAgentClient;
  /** Whether the bank credentials may be used (false after the bank said they are revoked). */
  credentialsUsable(): Promise<boolean>;
  markCredentialsRevoked(reason: string): Promise<void>;
  close(): void;
}
