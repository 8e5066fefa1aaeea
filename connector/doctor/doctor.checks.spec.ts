import { chmodSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load-config';
import { kzCalendarFromConfig } from '../calendar/kz-business-calendar';
import { checkAlertChannel, checkCalendar, checkOnecFolders, checkProxyTrust, checkSignerTrust, runDoctor } from './doctor.checks';
import { TEST_CRL_DIR } from '../../signer-agent/certificates/trust.store';

const config = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'doctor-')) });
const lastDate = kzCalendarFromConfig(config).coverage().lastDate;
const daysBefore = (n: number) => new Date(Date.parse(`${lastDate}T12:00:00Z`) - n * 86_400_000);

describe('doctor: calendar data', () => {
  it('fails, as a core check, once deadlines a few business days ahead run past the data, and after it', () => {
    expect(checkCalendar(config, daysBefore(-2))).toMatchObject({ name: 'calendar', core: true, verdict: 'FAIL', detail: expect.stringContaining(`ends ${lastDate}`) });
    expect(checkCalendar(config, daysBefore(2))).toMatchObject({ core: true, verdict: 'FAIL' });
  });

  it('warns in the last 90 days of the data, naming how many are left', () => {
    expect(checkCalendar(config, daysBefore(60))).toMatchObject({ core: false, verdict: 'WARN', detail: `the business-day data ends ${lastDate}, in 60 days` });
  });

  it('well before the end: OK, or WARN naming how many items of the current year are still provisional', () => {
    const at = daysBefore(400);
    const year = Number(at.toISOString().slice(0, 4));
    const provisional = kzCalendarFromConfig(config).unconfirmed().filter((u) => u.year === year).length;
    const result = checkCalendar(config, at);
    if (provisional) expect(result).toMatchObject({ core: false, verdict: 'WARN', detail: expect.stringMatching(new RegExp(`^${year}: ${provisional} item\\(s\\) of the calendar not yet official`)) });
    else expect(result).toEqual({ name: 'calendar', core: false, verdict: 'OK', detail: `business days known until ${lastDate}` });
  });
});

describe('doctor: an admin alert channel', () => {
  const notify = (over: Partial<typeof config.lockdown.notify>) => ({ ...config, lockdown: { ...config.lockdown, notify: { ...config.lockdown.notify, ...over } } });

  it('warns (fails with --strict) when nobody would hear of an incident', () => {
    expect(checkAlertChannel(config, false)).toMatchObject({ name: 'alerts', core: false, verdict: 'WARN', hint: expect.stringContaining('lockdown.notify.smtp') });
    expect(checkAlertChannel(config, true)).toMatchObject({ core: true, verdict: 'FAIL' });
    // Admins listed, but no mail server to reach them: still nobody.
    expect(checkAlertChannel(notify({ emails: ['ops@example.kz'] }), false).verdict).toBe('WARN');
  });

  it('is OK with e-mail through a mail server; a webhook alone carries only the lockdown notices', () => {
    const smtp = { host: 'mail.example.kz', port: 587, security: 'starttls' as const, from: 'c@example.kz', timeoutMs: 10_000 };
    expect(checkAlertChannel(notify({ emails: ['ops@example.kz'], smtp }), true)).toEqual({ name: 'alerts', core: false, verdict: 'OK', detail: 'e-mail to 1 admin(s)' });
    expect(checkAlertChannel(notify({ webhookUrl: 'https://hooks.example.kz/x' }), false)).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/^incidents reach no one: only the lockdown notices go to the webhook/) });
  });

  it("names the admins' webhook secret that would sign nothing: none, empty (falling back to webhooks.secretFile), or readable by others", () => {
    const smtp = { host: 'mail.example.kz', port: 587, security: 'starttls' as const, from: 'c@example.kz', timeoutMs: 10_000 };
    const dir = mkdtempSync(join(tmpdir(), 'doctor-alerts-'));
    const empty = join(dir, 'empty.secret');
    writeFileSync(empty, '', { mode: 0o600 });
    const loose = join(dir, 'loose.secret');
    writeFileSync(loose, 'loose-admin-secret\n');
    chmodSync(loose, 0o644);
    const good = join(dir, 'good.secret');
    writeFileSync(good, 'good-admin-secret\n', { mode: 0o600 });
    const hook = { emails: ['ops@example.kz'], smtp, webhookUrl: 'https://hooks.example.kz/x' };
    const withErpFile = (file: string) => ({ ...notify(hook), webhooks: { ...config.webhooks, secretFile: file } });
    expect(checkAlertChannel(notify(hook), true)).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/no lockdown notice is sent by webhook: lockdown\.notify\.webhookUrl is set, but neither lockdown\.notify\.webhookSecretFile nor webhooks\.secretFile/) });
    expect(checkAlertChannel(withErpFile(empty), false)).toMatchObject({ verdict: 'WARN', detail: `e-mail to 1 admin(s); no lockdown notice is sent by webhook: webhooks.secretFile (lockdown.notify.webhookSecretFile unset) ${empty} is empty: an HMAC with an empty key is one anyone can compute; write the HMAC secret the receiver verifies with into it (mode 0600)` });
    const looseResult = checkAlertChannel(notify({ ...hook, webhookSecretFile: loose }), false);
    expect(looseResult).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining(`lockdown.notify.webhookSecretFile ${loose} may be read by group or others (mode 0644)`) });
    expect(JSON.stringify(looseResult)).not.toContain('loose-admin-secret');
    expect(checkAlertChannel(notify({ ...hook, webhookSecretFile: good }), true)).toMatchObject({ verdict: 'OK', detail: 'e-mail to 1 admin(s), lockdown notices also by webhook' });
  });
});

describe('doctor: whose signatures count (R-15, R-30)', () => {
  const signer = (over: Partial<typeof config.signer>, testMode = false) => ({ ...config, testMode, signer: { ...config.signer, ...over } });

  it('warns (fails with --strict) when no trust anchor is there: every signer would be refused', () => {
    // This build ships no production NCA certificate, and outside test mode the test CAs are not trusted.
    expect(checkSignerTrust(signer({}), false)).toMatchObject({ name: 'signer-trust', verdict: 'WARN', detail: 'no trust anchor: every signer certificate is refused' });
    expect(checkSignerTrust(signer({}), true)).toMatchObject({ core: true, verdict: 'FAIL' });
  });

  it('warns without a CRL (a certificate NCA revoked would be accepted), and is OK with one', () => {
    expect(checkSignerTrust(signer({}, true), false)).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/trust anchor\(s\), no CRL: a certificate NCA revoked is still accepted/) });
    // CRLs without requireRevocation: fail open when a CRL goes stale (LESSONS.md 14).
    expect(checkSignerTrust(signer({ crl: [TEST_CRL_DIR], requireRevocation: false }, true), false)).toMatchObject({
      verdict: 'WARN',
      detail: expect.stringMatching(/1 CRL source\(s\), revocation not required: a certificate whose CRL is stale or missing still signs$/),
      hint: expect.stringContaining('signer.requireRevocation: true'),
    });
    expect(checkSignerTrust(signer({ crl: [TEST_CRL_DIR], requireRevocation: false }, true), true)).toMatchObject({ core: true, verdict: 'FAIL' });
    expect(checkSignerTrust(signer({ crl: [TEST_CRL_DIR], requireRevocation: true }, true), true)).toMatchObject({ verdict: 'OK', detail: expect.stringMatching(/1 CRL source\(s\), revocation required$/) });
  });

  it('names a trust path that cannot be read', () => {
    expect(checkSignerTrust(signer({ trust: ['/nonexistent/nca.pem'] }), false)).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining('/nonexistent/nca.pem') });
  });
});

describe('doctor: the reverse proxy in front of the API', () => {
  const withApi = (api: Partial<typeof config.api>) => ({ ...config, api: { ...config.api, ...api } });

  it.each([
    ['an https console and no trusted proxy', { consoleOrigins: ['https://connector.corp.kz'], trustedProxies: [] }, 'WARN'],
    ['an https console behind a named proxy', { consoleOrigins: ['https://connector.corp.kz'], trustedProxies: ['127.0.0.1'] }, 'OK'],
    ['no https console (on the LAN, no proxy)', { consoleOrigins: ['http://10.0.0.5:8080'], trustedProxies: [] }, 'OK'],
  ])('%s: %s', (_what, api, verdict) => {
    const result = checkProxyTrust(withApi(api));
    expect(result).toMatchObject({ name: 'api-proxy', core: false, verdict });
    if (verdict === 'WARN') expect(result.hint).toMatch(/api\.trustedProxies/);
  });
});

/**
 * The 1C folders, on real folders. Tests may run as root, whom chmod does not stop: the unwritable
 * case is a folder whose parent is a regular file (ENOTDIR for every user, root included), and a
 * "folder" that is a file. A 0500 folder is tried as well, but only where it can fail (not as root).
 */
describe('doctor: the 1C folders', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'doctor-onec-'));
  const withFolders = (inboxDir: string, outboxDir: string) => loadConfig({ env: {}, cwd, overrides: { 'onec.inboxDir': inboxDir, 'onec.outboxDir': outboxDir } });
  const byName = async (inboxDir: string, outboxDir: string, strict = false) =>
    Object.fromEntries((await checkOnecFolders(withFolders(inboxDir, outboxDir), strict, cwd)).map((c) => [c.name, c]));

  it('is OK for folders this user can write into, and leaves nothing behind', async () => {
    mkdirSync(join(cwd, 'in'));
    mkdirSync(join(cwd, 'out'));
    const checks = await byName('in', 'out');
    expect(checks['onec-inbox']).toMatchObject({ verdict: 'OK', detail: expect.stringMatching(/in writable by /) });
    expect(checks['onec-outbox']).toMatchObject({ verdict: 'OK' });
    expect(readdirSync(join(cwd, 'in'))).toEqual([]);
  });

  it('warns of a missing folder the worker would create', async () => {
    const checks = await byName('not-yet/inbox', 'out');
    expect(checks['onec-inbox']).toMatchObject({ verdict: 'WARN', core: false, detail: expect.stringContaining('does not exist yet'), hint: expect.stringContaining('onec.inboxDir') });
  });

  it('does not promise that the worker creates a missing outbox: it only takes files from it, so 1C cannot export until someone creates it', async () => {
    const checks = await byName('in', 'no-outbox-yet/out');
    expect(checks['onec-outbox']).toMatchObject({ verdict: 'WARN', core: false, hint: expect.stringContaining('Create the folder') });
    expect(checks['onec-outbox'].detail).toMatch(/no-outbox-yet\/out does not exist: 1C cannot export into it, and the worker never creates it/);
    expect(checks['onec-outbox'].detail).not.toContain('the worker creates it');
  });

  it('tells a folder that cannot be written (its parent is a file): WARN, FAIL deciding the exit code with --strict', async () => {
    writeFileSync(join(cwd, 'blocker'), 'a file where a folder should be');
    const checks = await byName('blocker/inbox', 'blocker');
    expect(checks['onec-inbox']).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/blocker\/inbox a part of its path is a file, not a folder.* for /), hint: expect.stringContaining('onec.inboxDir: kl_to_1c.txt') });
    expect(checks['onec-outbox']).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/blocker is a file, not a folder/) });
    const strict = await byName('blocker/inbox', 'blocker', true);
    expect(strict['onec-inbox']).toMatchObject({ verdict: 'FAIL', core: true });
    expect(strict['onec-outbox']).toMatchObject({ verdict: 'FAIL', core: true });
  });

  it("tells an outbox whose processing/, archive/ or error/ the worker cannot use (a file, or a link, in its place): 1C's files would never be taken in", async () => {
    mkdirSync(join(cwd, 'sub-in'));
    mkdirSync(join(cwd, 'sub-out'));
    mkdirSync(join(cwd, 'sub-out', 'processing'));
    writeFileSync(join(cwd, 'sub-out', 'archive'), 'a file where the worker puts its archive/ folder');
    const checks = await byName('sub-in', 'sub-out');
    expect(checks['onec-outbox']).toMatchObject({
      verdict: 'WARN',
      detail: expect.stringMatching(/sub-out has a file named archive where the worker's archive\/ folder goes: no file 1C exports can be moved to archive\/: each stays in processing\/ and opens an incident for /),
      hint: expect.stringContaining('processing/, archive/ and error/'),
    });
    expect((await byName('sub-in', 'sub-out', true))['onec-outbox']).toMatchObject({ verdict: 'FAIL', core: true });
    unlinkSync(join(cwd, 'sub-out', 'archive'));
    mkdirSync(join(cwd, 'elsewhere'));
    symlinkSync(join(cwd, 'elsewhere'), join(cwd, 'sub-out', 'error'));
    expect((await byName('sub-in', 'sub-out'))['onec-outbox']).toMatchObject({ verdict: 'WARN', detail: expect.stringMatching(/sub-out has error\/ as a symbolic link, which the worker refuses to move files through/) });
    unlinkSync(join(cwd, 'sub-out', 'error'));
    expect((await byName('sub-in', 'sub-out'))['onec-outbox']).toMatchObject({ verdict: 'OK' });
  });

  const notRoot = process.getuid?.() !== 0;
  (notRoot ? it : it.skip)('tells a folder without write permission for this user (not as root: chmod does not stop root)', async () => {
    mkdirSync(join(cwd, 'readonly'));
    chmodSync(join(cwd, 'readonly'), 0o500);
    try {
      expect((await byName('readonly', 'out'))['onec-inbox']).toMatchObject({ verdict: 'WARN', detail: expect.stringContaining('is not writable (EACCES)') });
    } finally {
      chmodSync(join(cwd, 'readonly'), 0o700);
    }
  });
});

describe('doctor: what it judged and what went wrong', () => {
  const offline = { CONNECTOR_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/x', CONNECTOR_BANK_URL: 'http://127.0.0.1:1', CONNECTOR_SIGNER_URL: 'http://127.0.0.1:1' };

  it('names the config file it judged, or that there was none (run from another folder than the installation)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'doctor-config-'));
    const none = await runDoctor({ env: { ...offline }, cwd: dir });
    expect(none.checks.find((c) => c.name === 'config')).toMatchObject({
      verdict: 'OK',
      detail: `valid: no config file (CONNECTOR_CONFIG unset, no connector.config.json in ${dir}): defaults and the CONNECTOR_* environment only`,
    });
    writeFileSync(join(dir, 'connector.config.json'), '{}');
    const found = await runDoctor({ env: { ...offline }, cwd: dir });
    expect(found.checks.find((c) => c.name === 'config')).toMatchObject({ verdict: 'OK', detail: `valid: ${join(dir, 'connector.config.json')} and the CONNECTOR_* environment` });
  }, 30_000);

  it("says why Redis cannot be used (refused, a database it does not have, a host name that does not resolve), not ioredis's \"Connection is closed.\" or OK", async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'doctor-redis-'));
    const refused = await runDoctor({ env: { ...offline, CONNECTOR_REDIS_URL: 'redis://127.0.0.1:1' }, cwd });
    expect(refused.checks.find((c) => c.name === 'redis')).toMatchObject({ verdict: 'FAIL', detail: 'redis://127.0.0.1:1: connect ECONNREFUSED 127.0.0.1:1' });
    const redis = process.env.CONNECTOR_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
    // A database the server does not have: ioredis goes on in database 0 after the refused SELECT, the worker does not.
    const noSuchDatabase = await runDoctor({ env: { ...offline, CONNECTOR_REDIS_URL: `${redis}/9999` }, cwd });
    expect(noSuchDatabase.checks.find((c) => c.name === 'redis')).toMatchObject({ verdict: 'FAIL', detail: `${redis}/9999: ERR DB index is out of range`, hint: expect.stringMatching(/^fix the database number at the end of CONNECTOR_REDIS_URL/) });
    expect(noSuchDatabase.ok).toBe(false);
    const unknown = await runDoctor({ env: { ...offline, CONNECTOR_REDIS_URL: 'redis://redis.invalid:6379' }, cwd });
    expect(unknown.checks.find((c) => c.name === 'redis')).toMatchObject({ verdict: 'FAIL', detail: expect.stringMatching(/^redis:\/\/redis\.invalid:6379: getaddrinfo (ENOTFOUND|EAI_AGAIN) redis\.invalid$/) });
  }, 30_000);
});
