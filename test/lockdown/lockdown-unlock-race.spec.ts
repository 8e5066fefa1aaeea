import type { FastifyInstance } from 'fastify';
import { buildApiWithExtensions } from '../../connector/api/api.extensions';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { signerAgentPortFromConfig, type SignerAgentPort } from '../../connector/users/signer-agent.port';
import { blockUser, findUser, logoutEverywhere } from '../../connector/users/user.service';
import { userDeps } from '../../connector/app/user-context';
import { lockdownStatusOf, triggerLockdown } from '../../queue/lockdown.trigger';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';

/**
 * A signer unlocks their key over the API (one process) at the moment a lockdown is engaged by
 * another (the worker on a bank refusal, `connector lockdown on`): the API looked at the flag before
 * the lock landed, the lockdown wiped the agent, and then the unlock reached the agent. The key
 * stayed unlocked under the lockdown that had just wiped every key. Real agent process, real
 * PostgreSQL and Redis; the other process's lockdown is engaged on a context of its own, between the
 * API's look and its call to the agent.
 */
describe('a key unlocked over the API while another process engages the lockdown', () => {
  let world: LockdownWorld;
  let other: AppContext;
  let api: FastifyInstance;
  /** Set by a test: run just before the API's unlock call reaches the agent. */
  let beforeAgentUnlock: (() => Promise<unknown>) | undefined;

  beforeAll(async () => {
    world = await startLockdownWorld('lockdown_unlock_race');
    other = await createAppContext({ config: world.config, logger: createLogger({ level: 'silent' }), role: 'worker' });
    const agent = signerAgentPortFromConfig(world.config);
    const port: SignerAgentPort = {
      ...agent,
      unlockKey: async (userId, password) => {
        await beforeAgentUnlock?.();
        return agent.unlockKey(userId, password);
      },
    };
    // The API's own context object: its users wiring (and so this agent port) is its own.
    api = buildApiWithExtensions({ ...world.context }, { users: { signerAgent: port } });
    await world.context.orm.em.fork().execute("update app_user set must_change_password = false where login = 'ceo'");
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await other?.close();
    await world?.close();
  });
  afterEach(async () => {
    beforeAgentUnlock = undefined;
    await world.reset();
    await world.agent.client.lockdown('test reset');
  });

  const password = () => world.pki.keystores.find((k) => k.name === 'rsa-ceo')!.password;
  async function unlockOverApi() {
    const login = await api.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: { login: 'ceo', password: 'Correct-Horse-9' } });
    expect(login.statusCode).toBe(200);
    const cookie = String(login.headers['set-cookie']).split(';')[0];
    return api.inject({ method: 'POST', url: '/api/v1/me/key/unlock', headers: { 'content-type': 'application/json', cookie }, payload: { password: password() } });
  }

  it('without a lockdown the key is unlocked (the set-up works)', async () => {
    const res = await unlockOverApi();
    expect(res.statusCode).toBe(200);
    expect(await world.unlocked('ceo')).toBe(true);
  }, 60_000);

  it('the unlock that reached the agent after the wipe is undone: 423 LOCKED_DOWN, the key locked', async () => {
    beforeAgentUnlock = () => triggerLockdown(other, { trigger: 'manual', reason: 'engaged by another process during an unlock', scope: 'users', actor: 'test' });
    const res = await unlockOverApi();
    expect((await lockdownStatusOf(world.context)).state).toBe('locked');
    expect(await world.unlocked('ceo')).toBe(false);
    expect({ status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ status: 423, code: 'LOCKED_DOWN' });
  }, 60_000);

  it('so is one that reached it after an admin blocked the user from another process (R-17): 401, the key locked', async () => {
    beforeAgentUnlock = () => blockUser(userDeps(other), { login: 'ceo', actor: 'cli:admin', reason: 'left the company' });
    const res = await unlockOverApi();
    expect(await world.unlocked('ceo')).toBe(false);
    expect({ status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  }, 60_000);

  it('and one that reached it after the user logged out everywhere (R-13, another tab or API host): 401, the key locked', async () => {
    beforeAgentUnlock = async () => {
      const user = await findUser(other.orm.em.fork(), 'ceo');
      return logoutEverywhere(userDeps(other), user!);
    };
    const res = await unlockOverApi();
    expect(await world.unlocked('ceo')).toBe(false);
    expect({ status: res.statusCode, code: (res.json() as { code: string }).code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  }, 60_000);
});
