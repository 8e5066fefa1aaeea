import type { BusinessApiClient } from '../adapters/bank/business-api/business-api.client';
import type { SignerAgentClient } from '../signer-agent/agent/signer-agent.client';

export interface CredentialsProblem {
  code: string;
  /** Names what to do (and the key file); never holds a secret. */
  message: string;
}

/**
 * The outside services the pipeline's jobs call: the bank (through its one adapter, R-3) and
 * the local signer agent. Built lazily by the entry point, so a process that never signs or
 * submits never opens them.
 */
export interface PipelineServices {
  bank(): BusinessApiClient;
  signer(): SignerAgentClient;
  /**
   * Why the stored bank credentials cannot be used now, or null when they can: CREDENTIALS_REVOKED
   * (the bank's answer or a lockdown), or the vault's master key cannot open the secret
   * (MASTER_KEY_MISSING, MASTER_KEY_MISMATCH, ...: a configuration error of this installation).
   */
  credentialsProblem(): Promise<CredentialsProblem | null>;
  markCredentialsRevoked(reason: string): Promise<void>;
  close(): void;
}
