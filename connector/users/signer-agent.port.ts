import type { ConnectorConfig } from '../../config/config.schema';
import { SignerAgentClient, SignerAgentError } from '../../signer-agent/agent/signer-agent.client';

/**
 * What disabling a user asks of the signer agent (R-17, R-30: "their EDS no longer accepted"):
 * wipe the user's unlocked key at once. The agent identifies users by login.
 */
export interface SignerAgentPort {
  /** Resolves with a warning text when the agent could not be reached (the block still holds in the connector). */
  lockUser(login: string): Promise<{ locked: boolean; warning?: string }>;
}

export function signerAgentPortFromConfig(config: Pick<ConnectorConfig, 'signer'>, cwd?: string): SignerAgentPort {
  return {
    async lockUser(login) {
      let client: SignerAgentClient;
      try {
        client = SignerAgentClient.fromConfig(config, cwd);
        await client.lock(login);
        return { locked: true };
      } catch (err) {
        // A user with no enrolled key has nothing to lock.
        if (err instanceof SignerAgentError && (err.code === 'NOT_ENROLLED' || err.code === 'NOT_FOUND')) return { locked: true };
        const code = err instanceof SignerAgentError ? err.code : 'SIGNER_UNREACHABLE';
        return { locked: false, warning: `signer agent did not confirm the key lock (${code}); the connector refuses this user's signatures regardless; check connector-signer-agent` };
      }
    },
  };
}

/** For tests and installations without an agent. */
export const noSignerAgent: SignerAgentPort = { lockUser: async () => ({ locked: true }) };
