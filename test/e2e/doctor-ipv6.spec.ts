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
    const res = await runCli(['doctor', '--json'], { env: { ...env.env, CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: agent.url }, cwd: env.workDir });
    const report = JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> };
    expect(report.checks.find((c) => c.name === 'signer-agent')).toMatchObject({ verdict: 'OK', detail: `${agent.url} answered HTTP 200` });
  });
});
