import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';

/**
 * a bank URL may carry a secret, in its userinfo (`https://user:pass@host`, or a token as the
 * user name) or in its query (`?token=...`). Doctor printed CONNECTOR_BANK_URL as given, on stdout
 * and in --json, where an operator pastes it into a ticket and a monitoring job keeps it. It now
 * prints it through `redactedUrl`: scheme, host, path and the query's names only.
 */
describe('connector doctor names the bank without the secrets its URL may carry', () => {
  const USER = 'Canary-Bank-User-51c7';
  const PASSWORD = 'Canary-Bank-Pw-93be0a';
  const TOKEN = 'Canary-Bank-Token-e41d';
  let env: TestEnv;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    env = await createTestEnv('doctor_url_secrets');
    server = createServer((_req, res) => res.writeHead(404).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await env.cleanup();
  });

  it.each([
    ['answering', () => port],
    ['unreachable', () => 1],
  ])('a bank endpoint %s: its line shows scheme://host/path and the query names, never the user, password or token', async (_what, portOf) => {
    const url = `http://${USER}:${PASSWORD}@127.0.0.1:${portOf()}/gw?token=${TOKEN}`;
    const res = await runCli(['doctor', '--json'], {
      env: { ...env.env, CONNECTOR_BANK_URL: url, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' },
      cwd: env.workDir,
      timeoutMs: 60_000,
    });
    const bank = (JSON.parse(res.stdout) as { checks: Array<{ name: string; detail: string }> }).checks.find((c) => c.name === 'bank')!;
    expect(bank.detail).toMatch(new RegExp(`^http://\\*\\*\\*:\\*\\*\\*@127\\.0\\.0\\.1:${portOf()}/gw\\?token=\\*\\*\\*`));
    const all = `${res.stdout}\n${res.stderr}`;
    for (const secret of [USER, PASSWORD, TOKEN]) expect(all).not.toContain(secret);
  }, 90_000);
});
