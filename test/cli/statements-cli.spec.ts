import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startHarness, type Harness } from '../../adapters/bank/test/sandbox.harness';
import { PAYER_IBAN } from '../../adapters/bank/test/fixtures';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { onecToStatement } from '../../adapters/erp/onec-exchange/onec-statement.mapper';
import { runCli } from '../support/cli';
import { createTestEnv, type TestEnv } from '../support/test-env';

/** `connector onec statement` (INTERFACES.md) as a real child process against the sandbox. */
const TODAY = '2026-11-25';

describe('connector onec statement', () => {
  let env: TestEnv;
  let h: Harness;
  let cliEnv: NodeJS.ProcessEnv;

  beforeAll(async () => {
    env = await createTestEnv('stmtcli', { CONNECTOR_FAKE_NOW: '2026-11-25T04:00:00Z' });
    h = await startHarness();
    const secretFile = join(env.workDir, 'bank.secret');
    writeFileSync(secretFile, `${h.secret}\n`, { mode: 0o600 });
    cliEnv = { ...env.env, CONNECTOR_BANK_URL: h.url, CONNECTOR_BANK_CLIENT_ID: 'test-client', CONNECTOR_BANK_CLIENT_SECRET_FILE: secretFile };
    await h.admin('POST', `/accounts/${PAYER_IBAN}/incoming`, { amount: '77.00' });
  });
  afterAll(async () => {
    await h?.stop();
    await h?.drop();
    await env?.cleanup();
  });

  const args = (account: string, out: string, extra: string[] = []) => ['onec', 'statement', '--account', account, '--from', TODAY, '--to', TODAY, '--out', out, ...extra];

  it('fetches, stores and writes the statement 1C imports', async () => {
    const out = join(env.workDir, 'out', 'kl_to_1c.txt');
    const r = await runCli(args(PAYER_IBAN, out, ['--encoding', 'utf8', '--json']), { env: cliEnv, cwd: env.workDir });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout);
    expect(summary).toMatchObject({ path: out, account: PAYER_IBAN, encoding: 'utf8', lines: 1, fetched: { stored: 1, incidents: 0 } });
    const bytes = readFileSync(out);
    expect(bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    const { statement } = onecToStatement(parseOnecExchange(bytes));
    expect(statement.account).toBe(PAYER_IBAN);
    expect(statement.lines.map((l) => [l.direction, l.amount])).toEqual([['credit', 7700]]);
    expect(statement.closingBalance - statement.openingBalance).toBe(7700);

    // Again with --no-fetch and the default (windows) encoding: same statement from the store.
    const again = await runCli(args(PAYER_IBAN, out, ['--no-fetch']), { env: cliEnv, cwd: env.workDir });
    expect(again.code).toBe(0);
    expect(again.stdout.trim()).toBe(out);
    expect(parseOnecExchange(readFileSync(out)).file.encoding).toMatch(/1251/);
    expect(onecToStatement(parseOnecExchange(readFileSync(out))).statement.lines).toHaveLength(1);
  });

  it('refuses with a code: nothing stored (exit 1), a bad account (exit 2), the bank refusing the credentials (exit 1)', async () => {
    const out = join(env.workDir, 'x.txt');
    const none = await runCli(args(DEMO.poorIban, out, ['--no-fetch']), { env: cliEnv, cwd: env.workDir });
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^STATEMENT_NOT_STORED: /);
    const bad = await runCli(args('KZ123', out), { env: cliEnv, cwd: env.workDir });
    expect(bad.code).toBe(2);
    const wrongSecret = join(env.workDir, 'wrong.secret');
    writeFileSync(wrongSecret, 'not-the-secret\n');
    const denied = await runCli(args(PAYER_IBAN, out), { env: { ...cliEnv, CONNECTOR_BANK_CLIENT_SECRET_FILE: wrongSecret }, cwd: env.workDir });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^AUTH: the bank's statement could not be fetched/);
    expect(denied.stderr).not.toContain('not-the-secret');
  });
});
