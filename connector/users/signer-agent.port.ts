import type { ConnectorConfig } from '../../config/config.schema';
import { SignerAgentClient, SignerAgentError } from '../../signer-agent/agent/signer-agent.client';

/**
 * What the users capability asks of the signer agent (signer-agent/agent/README.md). The agent
 * knows each user's key by the connector's user id (the `:userId` of its API): the id the
 * pipeline signs with, so a key enrolled and unlocked here is the key that signs, and the one a
 * block wipes. Disabling a user wipes their unlocked key at once (R-17, R-30:
 * "their EDS no longer accepted"); unlocking goes through the connector so that wrong keystore
 * passwords count toward the user's lock-out (R-12: "the agent only counts").
 */
export type KeyUnlockResult =
  | { ok: true; status: unknown }
  /** `wrongInARow`: the agent's count of wrong keystore passwords in a row for this user (WRONG_PASSWORD). */
  | { ok: false; code: string; message: string; wrongPassword: boolean; httpStatus: number; wrongInARow?: number };

export interface SignerAgentPort {
  /** Resolves with a warning text when the agent could not be reached (the block still holds in the connector). */
  lockUser(userId: string): Promise<{ locked: boolean; warning?: string }>;
  unlockKey(userId: string, password: string): Promise<KeyUnlockResult>;
  /** Enrolls a keystore with the user's IIN as the expected certificate IIN. */
  enrollKey(userId: string, keystorePath: string, expectedIin: string | null): Promise<unknown>;
}

/** The agent's refusal of an unlock, as the users module reads it (exported for its test). */
export function unlockRefusal(err: unknown): KeyUnlockResult {
  if (err instanceof SignerAgentError) {
    const inARow = (err.details as { wrongPasswordCount?: unknown } | undefined)?.wrongPasswordCount;
    return {
      ok: false,
      code: err.code,
      message: err.message,
      wrongPassword: err.code === 'WRONG_PASSWORD',
      httpStatus: err.status >= 400 && err.status < 500 ? err.status : 502,
      ...(typeof inARow === 'number' && Number.isInteger(inARow) ? { wrongInARow: inARow } : {}),
    };
  }
  return { ok: false, code: 'SIGNER_UNREACHABLE', message: 'the signer agent is not reachable; check connector-signer-agent', wrongPassword: false, httpStatus: 502 };
}

export function signerAgentPortFromConfig(config: Pick<ConnectorConfig, 'signer'>, cwd?: string): SignerAgentPort {
  let client: SignerAgentClient | undefined;
  const agent = () => (client ??= SignerAgentClient.fromConfig(config, cwd));
  return {
    async lockUser(userId) {
      try {
        await agent().lock(userId);
        return { locked: true };
      } catch (err) {
        // A user with no enrolled key has nothing to lock.
        if (err instanceof SignerAgentError && (err.code === 'NOT_ENROLLED' || err.code === 'NOT_FOUND')) return { locked: true };
        const code = err instanceof SignerAgentError ? err.code : 'SIGNER_UNREACHABLE';
        return { locked: false, warning: `signer agent did not confirm the key lock (${code}); check connector-signer-agent` };
      }
    },
    async unlockKey(userId, password) {
      try {
        return { ok: true, status: await agent().unlock(userId, password) };
      } catch (err) {
        return unlockRefusal(err);
      }
    },
    async enrollKey(userId, keystorePath, expectedIin) {
      return agent().enroll(userId, { keystorePath, expectedIin });
    },
  };
}
