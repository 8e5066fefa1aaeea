import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../support/cli';
import { loadSandboxConfig, SandboxConfigError } from '../../adapters/bank/sandbox/sandbox.config';

/**
 * R-4: the sandbox's config file (CONNECTOR_SANDBOX_CONFIG) holds the Client Secret of every pair
 * it plays the bank for, and may hold a database URL with its password. A file that is not JSON
 * is named by where it breaks, never by JSON.parse's own words: Node quotes the text around the
 * fault, so a secret left unquoted came out on the CLI's stderr (and into PM2's logs).
 */
describe('a broken sandbox config file never shows the secrets in it', () => {
  const SECRET = 'Canary-Sandbox-Secret-3c91e7';
  const DB_PASSWORD = 'Canary-Db-Pw-51aa0d';
  let dir: string;
  let file: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'sandbox-config-'));
    file = join(dir, 'sandbox.json');
    // The secret is left unquoted (a hand edit): not JSON.
    writeFileSync(file, `{\n  "databaseUrl": "postgresql://bank:${DB_PASSWORD}@127.0.0.1:5432/x",\n  "clients": [{ "clientId": "erp-1", "clientSecret": ${SECRET} }]\n}\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('loadSandboxConfig names the file and where it breaks, not the text around the fault', () => {
    let err: unknown;
    try {
      loadSandboxConfig({ CONNECTOR_SANDBOX_CONFIG: file });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SandboxConfigError);
    const message = (err as Error).message;
    expect(message).toContain(file);
    expect(message).toMatch(/line 3, column \d+/);
    expect(`${message}\n${(err as Error).stack}`).not.toContain(SECRET.slice(0, 8));
    expect(`${message}\n${(err as Error).stack}`).not.toContain(DB_PASSWORD);
  });

  it('`connector sandbox` prints CONFIG_INVALID on stderr without the secret', async () => {
    const res = await runCli(['sandbox', '--port', '0'], { env: { CONNECTOR_SANDBOX_CONFIG: file, CONNECTOR_TEST_MODE: '1', CONNECTOR_CONFIG: undefined }, cwd: dir, timeoutMs: 30_000 });
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/^CONFIG_INVALID: sandbox config .* is not valid JSON: it breaks at line 3/m);
    // Not even the first characters of it: JSON.parse quotes about ten characters either side of the fault.
    expect(`${res.stdout}\n${res.stderr}`).not.toContain(SECRET.slice(0, 8));
    expect(`${res.stdout}\n${res.stderr}`).not.toContain(DB_PASSWORD);
  });
});
