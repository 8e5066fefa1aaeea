import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import { buildOnce, startAgent, type AgentProcess } from './signer-agent.harness';

/**
 * The agent's token file is replaced (an operator who fears it leaked deletes it; the agent, started
 * again, makes a new one, as its own message says) while the worker, the API and the scheduler keep
 * running. Their clients read the file once: with the old token every call was refused, the
 * lockdown's key wipe from those processes too ("signer agent not reached ... NOT wiped").
 */
describe('signer agent token replaced while the connector keeps running (real agent processes)', () => {
  let dir: string;
  let agent: AgentProcess | undefined;

  beforeAll(() => buildOnce());
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signer-token-rotated-'))));
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("a long-running process's client takes the new token: the lockdown's wipe still reaches the agent", async () => {
    const url = `unix:${join(dir, 'agent.sock')}`;
    const args = ['--url', url, '--workers', '1'];
    const tokenFile = join(dir, '.connector', 'signer.token');
    agent = await startAgent({ dir, args });
    // As a worker's, the API's or the lockdown port's client: the token is read from the file.
    const client = new SignerAgentClient({ url, tokenFile, timeoutMs: 30_000 });
    await expect(client.lockdown('before the rotation')).resolves.toMatchObject({ wipedUsers: [] });

    const first = readFileSync(tokenFile, 'utf8').trim();
    await agent.stop();
    rmSync(tokenFile);
    agent = await startAgent({ dir, args });
    expect(agent.token).not.toBe(first);

    await expect(client.lockdown('after the rotation')).resolves.toMatchObject({ wipedUsers: [] });
    await expect(client.status()).resolves.toMatchObject({ users: [] });
  }, 90_000);

  it('a wrong token stays refused (UNAUTHENTICATED) when the file did not change', async () => {
    const url = `unix:${join(dir, 'agent.sock')}`;
    agent = await startAgent({ dir, args: ['--url', url, '--workers', '1'] });
    const wrongFile = join(dir, 'other.token');
    writeFileSync(wrongFile, 'a-token-of-enough-length-but-wrong\n', { mode: 0o600 });
    const client = new SignerAgentClient({ url, tokenFile: wrongFile, timeoutMs: 30_000 });
    await expect(client.status()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  }, 90_000);
});
