import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
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

/** The installation's directory: its master key is the default `.connector/master.key` under it. */
const installDir = () => join(env.workDir, 'install');
/** The CLI as an operator runs it in the installation (no CONNECTOR_MASTER_KEY_FILE). */
const cli = (args: string[], input?: string): Promise<CliResult> =>
  runCli(args, { env: { ...env.env, CONNECTOR_MASTER_KEY_FILE: undefined, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9' }, cwd: installDir(), input });

async function doctorCheck(name: string): Promise<{ verdict: string; detail: string; hint?: string; core: boolean }> {
  const res = await cli(['doctor', '--json']);
  return (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string; core: boolean }> }).checks.find((c) => c.name === name)!;
}

describe('the master key file: its default depends on the working directory (INTERFACES.md), a wrong one is said, never hidden', () => {
  const SECRET_1 = `Canary-Vault-Secret-${randomBytes(4).toString('hex')}`;
  const SECRET_2 = `Canary-Vault-Secret-${randomBytes(4).toString('hex')}`;
  const SECRET_3 = `Canary-Vault-Secret-${randomBytes(4).toString('hex')}`;
  const outputs: string[] = [];
  let install: string;
  let elsewhere: string;
  /** As an operator runs it: no CONNECTOR_MASTER_KEY_FILE, the default `.connector/master.key` under `cwd`. */
  const at = async (cwd: string, args: string[], input?: string, extra: NodeJS.ProcessEnv = {}): Promise<CliResult> => {
    const res = await runCli(args, { env: { ...env.env, CONNECTOR_MASTER_KEY_FILE: undefined, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9', ...extra }, cwd, input });
    outputs.push(res.stdout, res.stderr);
    return res;
  };
  const keyOf = (dir: string) => join(dir, '.connector', 'master.key');
  const doctorAt = async (cwd: string, extra: NodeJS.ProcessEnv = {}) => {
    const res = await at(cwd, ['doctor', '--json'], undefined, extra);
    return { code: res.code, check: (JSON.parse(res.stdout) as { checks: Array<{ name: string; verdict: string; detail: string; hint?: string; core: boolean }> }).checks.find((c) => c.name === 'bank-credentials')! };
  };

  beforeAll(() => {
    install = installDir();
    elsewhere = join(env.workDir, 'elsewhere');
    mkdirSync(install);
    mkdirSync(elsewhere);
  });
  afterAll(() => {
    // no secret in any output, whatever went wrong.
    for (const secret of [SECRET_1, SECRET_2, SECRET_3]) expect(outputs.join('\n')).not.toContain(secret);
  });

  it('credentials set says which key file it used; run from another directory it refuses to create a second key', async () => {
    const first = await at(install, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin'], `${SECRET_1}\n`);
    expect(first.code).toBe(0);
    expect(first.stderr).toContain(`sealed with master key k`);
    expect(first.stderr).toContain(`of ${keyOf(install)} (a new key file, created now: back it up with the database)`);

    // The audit's repro: the same command from /tmp/x silently made /tmp/x/.connector/master.key.
    const refused = await at(elsewhere, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin'], `${SECRET_2}\n`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^MASTER_KEY_MISSING: the master key file \S+ does not exist, but the database holds the bank Client Secret sealed under master key k[0-9a-f]+/m);
    expect(refused.stderr).toContain(keyOf(elsewhere));
    expect(refused.stderr).toContain('CONNECTOR_MASTER_KEY_FILE');
    expect(refused.stderr).toContain('Nothing was stored and no key file created');
    expect(existsSync(keyOf(elsewhere))).toBe(false);
    // Nor does rotate create one.
    const rotate = await at(elsewhere, ['credentials', 'rotate', '--secret-stdin'], `${SECRET_2}\n`);
    expect(rotate.code).toBe(1);
    expect(rotate.stderr).toMatch(/^MASTER_KEY_MISSING: the master key file \S+ does not exist/m);
    expect(existsSync(keyOf(elsewhere))).toBe(false);
    // The installation is as it was.
    const status = await at(install, ['credentials', 'status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ clientId: 'client-key', usable: true, masterKeyFile: keyOf(install) });
  });

  it('a secret sealed under another key: status and doctor open it and say MASTER_KEY_MISSING naming the file; set from the installation replaces it', async () => {
    // The state the old CLI left behind (here on purpose: the operator declares the key lost).
    const lost = await at(elsewhere, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin', '--master-key-lost'], `${SECRET_2}\n`);
    expect(lost.code).toBe(0);
    expect(lost.stderr).toContain(`of ${keyOf(elsewhere)} (a new key file, created now`);
    const audit = await orm.em.fork().execute<Array<{ subject: string }>>("select subject from audit_event where action = 'vault.master_key_declared_lost'");
    expect(audit.map((a) => a.subject)).toEqual([keyOf(elsewhere)]);

    const human = await at(install, ['credentials', 'status']);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(/usable: +NO \(MASTER_KEY_MISSING: see below\)/);
    expect(human.stdout).toContain(`master key:     ${keyOf(install)}`);
    expect(human.stderr).toMatch(/BLOCKED MASTER_KEY_MISSING: the stored Client Secret cannot be opened, so no order can be sent to the bank: a secret \(bank.clientSecret\) is sealed under master key k[0-9a-f]+, which the master key file in use, \S+, does not hold: run the connector from its installation directory, or set CONNECTOR_MASTER_KEY_FILE/);
    expect(human.stderr).toContain(keyOf(install));
    const json = JSON.parse((await at(install, ['credentials', 'status', '--json'])).stdout);
    expect(json).toMatchObject({ usable: false, masterKeyFile: keyOf(install), warnings: [expect.objectContaining({ level: 'blocked', code: 'MASTER_KEY_MISSING' })] });

    const doctor = await doctorAt(install);
    expect(doctor.code).toBe(1);
    expect(doctor.check).toMatchObject({ verdict: 'FAIL', core: true, hint: expect.stringContaining('CONNECTOR_MASTER_KEY_FILE') });
    expect(doctor.check.detail).toMatch(/^MASTER_KEY_MISSING: /);
    expect(doctor.check.detail).toContain(keyOf(install));
    // Pointed at the key that sealed it, both are satisfied.
    expect((await at(install, ['credentials', 'status'], undefined, { CONNECTOR_MASTER_KEY_FILE: keyOf(elsewhere) })).code).toBe(0);
    expect((await doctorAt(install, { CONNECTOR_MASTER_KEY_FILE: keyOf(elsewhere) })).check).toMatchObject({ verdict: 'OK', detail: expect.stringContaining(keyOf(elsewhere)) });

    // The fix: set again from the installation; the unreadable secret is what gets replaced.
    const fixed = await at(install, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin'], `${SECRET_3}\n`);
    expect(fixed.code).toBe(0);
    expect(fixed.stderr).toMatch(/note: the Client Secret stored before was sealed under master key k[0-9a-f]+, which \S+ does not hold \(MASTER_KEY_MISSING\); it is replaced/);
    expect((await at(install, ['credentials', 'status'])).code).toBe(0);
    expect((await doctorAt(install)).check.verdict).toBe('OK');
  });

  it('a key file with the same key id but another key: AES-GCM authentication says MASTER_KEY_MISMATCH', async () => {
    const [id] = readFileSync(keyOf(install), 'utf8').trim().split(':');
    const impostor = join(env.workDir, 'impostor.key');
    writeFileSync(impostor, `${id}:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    const status = await at(install, ['credentials', 'status', '--json'], undefined, { CONNECTOR_MASTER_KEY_FILE: impostor });
    expect(status.code).toBe(1);
    const warning = JSON.parse(status.stdout).warnings[0];
    expect(warning).toMatchObject({ level: 'blocked', code: 'MASTER_KEY_MISMATCH' });
    expect(warning.message).toContain(`failed authentication under master key ${id} of ${impostor}`);
    const doctor = await doctorAt(install, { CONNECTOR_MASTER_KEY_FILE: impostor });
    expect(doctor.code).toBe(1);
    expect(doctor.check).toMatchObject({ verdict: 'FAIL', core: true, detail: expect.stringMatching(/^MASTER_KEY_MISMATCH: .*failed authentication/) });
  });

  it("users' TOTP seeds sealed under the installation's key: set refuses both a missing and a different key file", async () => {
    expect((await at(install, ['users', 'add', 'alice', '--role', 'admin', '--password-stdin'], 'Alice-Start-Pass-1\n')).code).toBe(0);
    expect((await at(install, ['users', 'totp-enroll', 'alice'])).code).toBe(0);
    // `elsewhere` holds a key file now (the previous test), one that cannot open alice's seed.
    const different = await at(elsewhere, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin'], `${SECRET_2}\n`);
    expect(different.code).toBe(1);
    expect(different.stderr).toMatch(/^MASTER_KEY_MISMATCH: the master key file in use, \S+, cannot open the TOTP seed of alice \(sealed under master key k[0-9a-f]+\)/m);
    expect(different.stderr).toContain(keyOf(elsewhere));
    const nowhere = join(env.workDir, 'nowhere');
    mkdirSync(nowhere);
    const missing = await at(nowhere, ['credentials', 'set', '--client-id', 'client-key', '--secret-stdin'], `${SECRET_2}\n`);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/^MASTER_KEY_MISSING: the master key file \S+ does not exist, but the database holds the bank Client Secret, the TOTP seed of alice sealed under master key/m);
    expect(existsSync(keyOf(nowhere))).toBe(false);
    // Nothing changed: the installation still opens everything.
    expect((await at(install, ['credentials', 'status'])).code).toBe(0);
  });
});

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

describe("the pair's clocks (R-1) as doctor and credentials status tell them agree, on the connector's clock", () => {
  it('80 days on (a test clock, CONNECTOR_FAKE_NOW): both say CREDENTIALS_AGING', async () => {
    expect((await cli(['credentials', 'set', '--client-id', 'client-clock', '--secret-stdin'], 'Clock-Client-Secret-1\n')).code).toBe(0);
    const later = { CONNECTOR_FAKE_NOW: new Date(Date.now() + 80 * 86_400_000).toISOString() };
    const onClock = (args: string[]) => runCli(args, { env: { ...env.env, CONNECTOR_MASTER_KEY_FILE: undefined, CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9', ...later }, cwd: installDir() });
    const status = await onClock(['credentials', 'status', '--json']);
    expect(JSON.parse(status.stdout).warnings.map((w: { code: string }) => w.code)).toContain('CREDENTIALS_AGING');
    const doctor = (JSON.parse((await onClock(['doctor', '--json'])).stdout) as { checks: Array<{ name: string; verdict: string; detail: string }> }).checks.find((c) => c.name === 'bank-credentials')!;
    expect(doctor).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/^CREDENTIALS_AGING: /) });
  });
});

describe('--generated-at: R-1 counts from the day Internet-banking generated the pair, not from the day it was stored', () => {
  const day = 86_400_000;
  const kzDate = (ms: number) => new Date(ms + 5 * 3_600_000).toISOString().slice(0, 10);
  const status = async () => JSON.parse((await cli(['credentials', 'status', '--json'])).stdout) as { clientId: string; ageDays: number; warnings: Array<{ code: string }> };

  it('a pair stored 80 days after it was generated warns CREDENTIALS_AGING at once; a correction of the day alone changes only the day; a future or bad day is a usage error', async () => {
    const generated = kzDate(Date.now() - 80 * day);
    const set = await cli(['credentials', 'set', '--client-id', 'client-generated', '--secret-stdin', '--generated-at', generated], 'Generated-Client-Secret-1\n');
    expect(set.code).toBe(0);
    let now = await status();
    expect(now.clientId).toBe('client-generated');
    expect(now.ageDays).toBeGreaterThanOrEqual(79);
    expect(now.warnings.map((w) => w.code)).toContain('CREDENTIALS_AGING');

    // The same pair again, with the day corrected: only the day changes (a provisioning script's rerun changes nothing).
    expect((await cli(['credentials', 'set', '--client-id', 'client-generated', '--secret-stdin', '--generated-at', kzDate(Date.now() - 2 * day)], 'Generated-Client-Secret-1\n')).code).toBe(0);
    now = await status();
    expect(now.ageDays).toBeLessThanOrEqual(3);
    expect(now.warnings.map((w) => w.code)).not.toContain('CREDENTIALS_AGING');

    // rotate takes it too.
    expect((await cli(['credentials', 'rotate', '--secret-stdin', '--generated-at', kzDate(Date.now() - 86 * day)], 'Generated-Client-Secret-2\n')).code).toBe(0);
    expect((await status()).warnings.map((w) => w.code)).toContain('CREDENTIALS_AGING');

    const future = await cli(['credentials', 'set', '--client-id', 'client-generated', '--secret-stdin', '--generated-at', kzDate(Date.now() + 3 * day)], 'Generated-Client-Secret-3\n');
    expect(future.code).toBe(1);
    expect(future.stderr).toMatch(/^INVALID_GENERATED_AT: --generated-at \S+ is in the future/m);
    const bad = await cli(['credentials', 'set', '--client-id', 'client-generated', '--secret-stdin', '--generated-at', '20.11.2026'], 'Generated-Client-Secret-3\n');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--generated-at 20\.11\.2026 is not a date: expected YYYY-MM-DD/);
    // Refused before anything was stored: the rotated pair stands.
    expect((await status()).warnings.map((w) => w.code)).toContain('CREDENTIALS_AGING');
    for (const res of [set, future, bad]) expect(res.stdout + res.stderr).not.toMatch(/Generated-Client-Secret/);
  });
});
