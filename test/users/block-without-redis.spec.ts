import IORedis from 'ioredis';
import { listIncidents } from '../../connector/incidents/incident.service';
import { SessionStore } from '../../connector/users/session.store';
import type { SignerAgentPort } from '../../connector/users/signer-agent.port';
import { blockUser, createUser, findUser, grantRight, resetPassword } from '../../connector/users/user.service';
import { uniq, usersTestEnvOfFile, type UsersTestEnv } from './users-test.env';
import { DEMO_ACCOUNTS } from '../../connector/demo/demo-orders';

/**
 * a user who lost authority is disabled at once, their key locked in the signer agent,
 * and the bank reminded within 1 business day. `connector users block` (and a lockdown of scope
 * user:LOGIN, which calls the same) with Redis away used to block the user in PostgreSQL and then
 * fail on ending the sessions: the key stayed unlocked in the agent, no reminder was opened, and
 * the command said it failed. Sessions live in Redis: with Redis away none is usable, and the block
 * in PostgreSQL refuses every one at its next request; the rest of the block must still happen.
 */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

function depsWithoutRedis(e: UsersTestEnv, locked: string[]) {
  // Nothing listens on port 1: every command fails, as with Redis stopped.
  const redis = new IORedis('redis://127.0.0.1:1', { maxRetriesPerRequest: 1, connectTimeout: 500, retryStrategy: () => 200, lazyConnect: true });
  redis.on('error', () => undefined);
  const agent: SignerAgentPort = {
    lockUser: async (userId) => {
      locked.push(userId);
      return { locked: true };
    },
    unlockKey: async () => ({ ok: false, code: 'X', message: 'x', wrongPassword: false, httpStatus: 500 }),
    enrollKey: async () => null,
  };
  return { deps: { ...e.deps(), sessions: new SessionStore(redis, e.prefix, { idleMs: 1_800_000, absoluteMs: 43_200_000 }), signerAgent: agent }, redis };
}

describe('disabling a user with Redis away', () => {
  test('users block: blocked, key locked in the agent, bank reminder opened; the sessions named as a warning', async () => {
    const login = uniq('leaver');
    await createUser(env.deps(), { login, role: 'signer', password: 'Leaver-Pass-1', actor: 'test' });
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], rights: 'manage', level: 'first', actor: 'test' });
    const user = (await findUser(env.context.orm.em.fork(), login))!;
    const locked: string[] = [];
    const { deps, redis } = depsWithoutRedis(env, locked);
    try {
      const result = await blockUser(deps, { login, actor: 'cli:test', reason: 'dismissed' });
      expect(result.incidentId).not.toBeNull();
      expect(result.warnings).toEqual([expect.stringMatching(/sessions were not ended: Redis could not be reached \(.+\); they end at their next request because the user is blocked/)]);
    } finally {
      redis.disconnect();
    }
    expect((await findUser(env.context.orm.em.fork(), login))!.blockedReason).toBe('admin');
    expect(locked).toEqual([user.id]);
    const reminders = (await listIncidents(env.context.orm.em.fork(), { status: 'open' })).filter((i) => i.kind === 'authority_revoked' && i.evidence.login === login);
    expect(reminders).toHaveLength(1);
  });

  test("users reset-password: the user's key is locked in the agent all the same (whoever sets the password cannot sign with it)", async () => {
    const login = uniq('reset');
    await createUser(env.deps(), { login, role: 'signer', password: 'Reset-Pass-1', actor: 'test' });
    const user = (await findUser(env.context.orm.em.fork(), login))!;
    const locked: string[] = [];
    const { deps, redis } = depsWithoutRedis(env, locked);
    try {
      const result = await resetPassword(deps, { login, password: 'Reset-Pass-2', actor: 'cli:test' });
      expect(result.warnings).toEqual([expect.stringMatching(/sessions were not ended: Redis could not be reached \(.+\)/)]);
    } finally {
      redis.disconnect();
    }
    expect(locked).toEqual([user.id]);
    expect((await findUser(env.context.orm.em.fork(), login))!.mustChangePassword).toBe(true);
  });
});
