import { runCli, type CliResult } from '../support/cli';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { openOrm, type Orm } from '../../connector/persistence/database';
import { systemClock } from '../../connector/shared/clock';
import { markCredentialsRevoked } from '../../connector/vault/credential.vault';

/**
 * `connector credentials ...` and `doctor` about the vault, on the built CLI as child processes
 * against a real database: what an operator reads is what happened.
 */
let env: TestEnv;
let orm: Orm;

beforeAll(async () => {
  env = await createTestEnv('credentials_cli');
  orm = await openOrm(env.config);
}, 60_000);
afterAll(async () => {
  await orm?.close();
  await env?.cleanup();
});

/** The CLI in the test's work directory, its master key file given by CONNECTOR_MASTER_KEY_FILE. */
const cli = (args: string[], input?: string): Promise<CliResult> => runCli(args, { env: { ...env.env, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9' }, cwd: env.workDir, input });

async function doctorCheck(name: string): Promise<{ verdict: string; detail: string; hint?: string; core: boolean }> {
  const res = await cli(['doctor', '--json']);
  return (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string; core: boolean }> }).checks.find((c) => c.name === name)!;
}

describe('who made the Client ID / Secret unusable is told as it was', () => {
  it('the bank answering CREDENTIALS_REVOKED: "the bank answered"', async () => {
    expect((await cli(['credentials', 'set', '--client-id', 'client-who', '--secret-stdin'], 'Who-Client-Secret-1\n')).code).toBe(0);
    await markCredentialsRevoked({ em: orm.em.fork(), clock: systemClock }, { reason: 'the bank answered CREDENTIALS_REVOKED: the pair is blocked', actor: 'system:bank-client' });
    const status = await cli(['credentials', 'status', '--json']);
    expect(status.code).toBe(1);
    expect(JSON.parse(status.stdout)).toMatchObject({ usable: false, revokedBy: 'bank' });
    expect(status.stderr).toMatch(/BLOCKED CREDENTIALS_REVOKED: the bank answered that the Client ID \/ Secret are blocked or revoked/);
    expect((await doctorCheck('bank-credentials')).detail).toMatch(/^CREDENTIALS_REVOKED: the bank answered/);
    expect((await cli(['credentials', 'rotate', '--secret-stdin'], 'Who-Client-Secret-2\n')).code).toBe(0);
  });

  it('a lockdown (scope credentials): says the lockdown marked them, by whom and why, and never that the bank answered', async () => {
    const on = await cli(['lockdown', 'on', '--reason', 'Client Secret pasted into a chat', '--scope', 'credentials']);
    expect(on.code).toBe(0);
    const human = await cli(['credentials', 'status']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/usable: +NO \(revoked \S+ by a lockdown, not the bank: Client Secret pasted into a chat\)/);
    expect(human.stderr).toMatch(/BLOCKED CREDENTIALS_REVOKED: a lockdown marked the Client ID \/ Secret compromised on \S+ \(by cli:\S+: Client Secret pasted into a chat\); the bank did not block them/);
    const json = JSON.parse((await cli(['credentials', 'status', '--json'])).stdout);
    expect(json).toMatchObject({ usable: false, revokedBy: 'lockdown', revokedReason: 'Client Secret pasted into a chat' });
    const doctor = await doctorCheck('bank-credentials');
    expect(doctor.detail).toMatch(/^CREDENTIALS_REVOKED: a lockdown marked the Client ID \/ Secret compromised/);
    for (const text of [human.stdout, human.stderr, JSON.stringify(json), doctor.detail]) expect(text).not.toMatch(/the bank answered/);
  });
});
