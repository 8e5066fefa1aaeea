import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';
import { buildOnce, startAgent, type AgentProcess } from './signer-agent.harness';

/**
 * `http://[::1]:PORT` is one of the three addresses the signer agent listens on (and the config
 * takes for the bank too). `connector doctor` must reach a component there, not report it down.
 */
jest.setTimeout(120_000);

describe('connector doctor: components on [::1]', () => {
  let env: TestEnv;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    buildOnce();
    env = await createTestEnv('doctoripv6');
  }, 180_000);
  afterAll(async () => {
    await agent?.stop();
    await env?.cleanup();
  });

  it('reaches the signer agent listening on http://[::1]:PORT (OK, also with --strict)', async () => {
    agent = await startAgent({ config: { testMode: true, signer: { workers: 1 } }, args: ['--url', 'http://[::1]:0'] });
    expect(agent.url).toMatch(/^http:\/\/\[::1\]:\d+$/);
    const tokenFile = join(agent.dir, '.connector', 'signer.token');
    const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: agent.url, CONNECTOR_SIGNER_TOKEN_FILE: tokenFile }, cwd: env.workDir });
    const report = JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> };
    expect(report.checks.find((c) => c.name === 'signer-agent')).toMatchObject({ verdict: 'OK', detail: expect.stringMatching(new RegExp(`^${escape(agent.url)} answered HTTP 200; it holds the token of ${escape(tokenFile)} \\(agent .*, 0 keys enrolled\\)$`)) });
  });

  it('an agent that answers but does not hold the token the connector reads (another token file) is WARN, FAIL with --strict, naming the file', async () => {
    if (!agent) throw new Error('no agent: the test above starts it');
    const otherToken = join(env.workDir, 'other.token');
    writeFileSync(otherToken, 'another-token-of-at-least-16-chars\n', { mode: 0o600 });
    const run = (args: string[]) => runCli(['doctor', '--json', ...args], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: agent!.url, CONNECTOR_SIGNER_TOKEN_FILE: otherToken }, cwd: env.workDir });
    const check = async (args: string[]) => (JSON.parse((await run(args)).stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string }> }).checks.find((c) => c.name === 'signer-agent');
    expect(await check([])).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining('did not prove that it holds the signer token'), hint: expect.stringContaining(otherToken) });
    expect(await check(['--strict'])).toMatchObject({ verdict: 'FAIL' });
    // The token's text is never shown.
    expect(JSON.stringify(await check([]))).not.toContain('another-token-of-at-least-16-chars');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
