import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import { P12 } from '../fixtures/nca/fixtures';
import { buildOnce, startAgent } from './signer-agent.harness';

/**
 * A token feared leaked is replaced the way the agent makes one: delete the file, restart the
 * agent. The connector's long-running callers (the worker's signing, the API's unlock, the
 * lockdown's wipe) hold a client that read the old token; they must reach the new agent without a
 * restart of their own, above all the lockdown, whose wipe must not fail with 401.
 */
jest.setTimeout(120_000);

beforeAll(() => buildOnce(), 180_000);

describe('signer agent client: the token file replaced while the caller runs', () => {
  it('a client of the token file reaches the agent restarted with a new token: status, lockdown, unlock', async () => {
    const first = await startAgent({ config: { testMode: true, signer: { workers: 1 } }, args: ['--url', 'unix:agent.sock'] });
    const dir = first.dir;
    const client = new SignerAgentClient({ url: `unix:${join(dir, 'agent.sock')}`, tokenFile: '.connector/signer.token', cwd: dir, timeoutMs: 30_000 });
    let second: Awaited<ReturnType<typeof startAgent>> | undefined;
    try {
      await client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
      expect((await client.status()).users.map((u) => u.userId)).toEqual(['alice']);
      expect(await first.stop()).toBe(0);

      rmSync(join(dir, '.connector', 'signer.token'));
      second = await startAgent({ dir, args: ['--url', 'unix:agent.sock'] });
      expect(second.token).not.toBe(first.token);

      await expect(client.status()).resolves.toMatchObject({ users: [expect.objectContaining({ userId: 'alice' })] });
      await expect(client.unlock('alice', P12.rsaSign2021.password)).resolves.toMatchObject({ unlocked: true });
      await expect(client.lockdown('test: token rotated')).resolves.toMatchObject({ wipedUsers: ['alice'] });
      // A wrong token stays wrong: a client given the old token itself (no file to read again) gets nowhere.
      await expect(new SignerAgentClient({ url: `unix:${join(dir, 'agent.sock')}`, token: first.token }).status()).rejects.toMatchObject({ code: 'SIGNER_NOT_AUTHENTIC' });
    } finally {
      await first.stop();
      await second?.stop();
    }
  });
});
