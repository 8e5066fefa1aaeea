import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load-config';
import { createLogger } from '../../connector/logging/logger';
import { startSignerAgent } from '../../signer-agent/agent/signer-agent.process';

/**
 * The signer agent's bearer token is all a caller needs to have an unlocked key sign any bytes
 * (a payment order the bank treats as hand-signed, R-18). A token file that group or others may
 * read hands that to every local account: the agent refuses to start on it, as the vault refuses
 * a master key file that is not private.
 */
describe('signer agent: a token file others may read', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signer-token-open-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const start = (tokenFile: string) =>
    startSignerAgent({
      config: loadConfig({ env: {}, cwd: dir, overrides: { 'signer.tokenFile': tokenFile, 'signer.url': `unix:${join(dir, 'agent.sock')}`, testMode: true } }),
      logger: createLogger({ level: 'silent' }),
      cwd: dir,
      workers: 1,
    });

  it.each([['0644', 0o644], ['0640', 0o640], ['0604', 0o604]])('mode %s: refused with SIGNER_TOKEN_PERMISSIONS naming the file and chmod 600, before it listens', async (_shown, mode) => {
    const tokenFile = join(dir, 'signer.token');
    writeFileSync(tokenFile, 'a-token-of-enough-length-0123456789\n');
    chmodSync(tokenFile, mode);
    await expect(start(tokenFile)).rejects.toMatchObject({ code: 'SIGNER_TOKEN_PERMISSIONS', message: expect.stringContaining(`chmod 600 ${tokenFile}`) });
  });

  it('mode 0600 (as the agent creates it) starts', async () => {
    const tokenFile = join(dir, 'signer.token');
    writeFileSync(tokenFile, 'a-token-of-enough-length-0123456789\n');
    chmodSync(tokenFile, 0o600);
    const agent = await start(tokenFile);
    await agent.stop();
  });
});
