import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentialStatusOf } from './credential.vault';
import { addMasterKey, loadMasterKey, loadOrCreateMasterKey, pruneMasterKeys } from './master-key.store';
import { SecretBox } from './secret-box';
import type { CredentialVault } from '../persistence/entities';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'vault-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('master key file', () => {
  test('created 0600 on first use, in a 0700 directory, and reused', () => {
    const path = join(dir, 'sub', 'master.key');
    const ring = loadOrCreateMasterKey(path);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    expect(loadOrCreateMasterKey(path).current.key.equals(ring.current.key)).toBe(true);
  });
  test.each([[0o640], [0o604], [0o644], [0o666]])('mode %s is refused', (mode) => {
    const path = join(dir, 'master.key');
    loadOrCreateMasterKey(path);
    chmodSync(path, mode);
    expect(() => loadOrCreateMasterKey(path)).toThrow(/MASTER_KEY_PERMISSIONS|chmod 600/);
  });
  test('a malformed file is refused', () => {
    const path = join(dir, 'master.key');
    writeFileSync(path, 'not a key\n', { mode: 0o600 });
    expect(() => loadOrCreateMasterKey(path)).toThrow(/MASTER_KEY_INVALID|not "<id>/);
  });
});

describe('SecretBox (AES-256-GCM)', () => {
  test('round trip; ciphertext holds no clear text; purpose is bound', () => {
    const box = new SecretBox(loadOrCreateMasterKey(join(dir, 'm.key')));
    const sealed = box.encrypt('Canary-Secret-42', 'bank.clientSecret');
    expect(sealed).not.toContain('Canary');
    expect(Buffer.from(sealed.split(':')[4], 'base64url').toString()).not.toContain('Canary');
    expect(box.decrypt(sealed, 'bank.clientSecret')).toBe('Canary-Secret-42');
    expect(() => box.decrypt(sealed, 'user.totp:x')).toThrow(/failed authentication/);
    expect(box.encrypt('same', 'p')).not.toBe(box.encrypt('same', 'p'));
  });
  test('a flipped bit is detected', () => {
    const box = new SecretBox(loadOrCreateMasterKey(join(dir, 'm.key')));
    const parts = box.encrypt('value', 'p').split(':');
    const data = Buffer.from(parts[4], 'base64url');
    data[0] ^= 1;
    parts[4] = data.toString('base64url');
    expect(() => box.decrypt(parts.join(':'), 'p')).toThrow(/failed authentication/);
  });
  test('rotation: old ciphertexts stay readable until pruned; a box reloads a rotated file', () => {
    const path = join(dir, 'm.key');
    const box = new SecretBox(loadOrCreateMasterKey(path));
    const old = box.encrypt('value', 'p');
    const rotated = new SecretBox(addMasterKey(path));
    expect(rotated.currentKeyId).not.toBe(box.currentKeyId);
    expect(rotated.isStale(old)).toBe(true);
    expect(rotated.decrypt(old, 'p')).toBe('value');
    const fresh = rotated.encrypt('value', 'p');
    // The first box (loaded before the rotation) reads the new key from the file.
    expect(box.decrypt(fresh, 'p')).toBe('value');
    pruneMasterKeys(path);
    expect(readFileSync(path, 'utf8').trim().split('\n')).toHaveLength(1);
    expect(() => new SecretBox(loadOrCreateMasterKey(path)).decrypt(old, 'p')).toThrow(/sealed under master key k[0-9a-f]+, which the master key file in use, .*m\.key, does not hold/);
  });
  test('a box read before another process rotated and dropped the old key seals under the new one', () => {
    const path = join(dir, 'stale.key');
    const longRunning = new SecretBox(loadOrCreateMasterKey(path));
    longRunning.encrypt('warm', 'p');
    // `connector vault rotate-key` elsewhere: a new key, then the old one dropped.
    addMasterKey(path);
    pruneMasterKeys(path);
    const sealed = longRunning.encrypt('seed', 'p');
    expect(new SecretBox(loadMasterKey(path)).decrypt(sealed, 'p')).toBe('seed');
  });
});

describe('credential clocks (R-1, R-2): warn from day 75, urgent at day 85, of either clock', () => {
  const day = 86_400_000;
  const generated = new Date('2026-01-01T00:00:00Z');
  const row = (lastUsedDays: number | null, revoked = false): CredentialVault => ({
    id: 1,
    clientId: 'client-1',
    secretEnc: 'v1:x:y:z:w',
    generatedAt: generated,
    lastUsedAt: lastUsedDays === null ? null : new Date(generated.getTime() + lastUsedDays * day),
    revokedAt: revoked ? generated : null,
    revokedReason: revoked ? 'bank said 401 invalid_client' : null,
    updatedAt: generated,
    updatedBy: 'test',
  });
  test.each([
    ['day 74, used yesterday', 74, 73, []],
    ['day 75 since generation, used yesterday', 75, 74, ['warning:CREDENTIALS_AGING']],
    ['day 85 since generation, used yesterday', 85, 84, ['urgent:CREDENTIALS_AGING']],
    ['day 75, never used: both clocks', 75, null, ['warning:CREDENTIALS_AGING', 'warning:CREDENTIALS_IDLE']],
    ['day 86, never used: both urgent', 86, null, ['urgent:CREDENTIALS_AGING', 'urgent:CREDENTIALS_IDLE']],
  ])('%s', (_what, nowDay, lastUsedDay, expected) => {
    const status = credentialStatusOf(row(lastUsedDay), new Date(generated.getTime() + nowDay * day + 1000));
    expect(status.warnings.map((w) => `${w.level}:${w.code}`)).toEqual(expected);
    expect(status.usable).toBe(true);
    for (const w of status.warnings) {
      expect(w.message).toMatch(/2\.1\.1-2\.1\.2/);
      expect(w.message).toMatch(/connector credentials rotate --secret-stdin/);
    }
  });
  test('the idle clock alone warns (used once on day 1, now day 80)', () => {
    const status = credentialStatusOf({ ...row(1), generatedAt: new Date(generated.getTime() + 10 * day) }, new Date(generated.getTime() + 80 * day));
    expect(status.warnings.map((w) => `${w.level}:${w.code}`)).toEqual(['warning:CREDENTIALS_IDLE']);
  });
  test('revoked pair: unusable, says what to do', () => {
    const status = credentialStatusOf(row(1, true), new Date(generated.getTime() + 2 * day));
    expect(status.usable).toBe(false);
    expect(status.warnings[0]).toMatchObject({ level: 'blocked', code: 'CREDENTIALS_REVOKED' });
  });
  test('who made the pair unusable is told as it was: the bank, or a lockdown (the bank said nothing)', () => {
    const at = new Date(generated.getTime() + 2 * day);
    const bank = credentialStatusOf({ ...row(1, true), revokedSource: 'bank' }, at);
    expect(bank.revokedBy).toBe('bank');
    expect(bank.warnings[0].message).toMatch(/^the bank answered that the Client ID \/ Secret are blocked or revoked \(bank said 401 invalid_client\)/);
    const locked = credentialStatusOf({ ...row(1, true), revokedSource: 'lockdown', revokedReason: 'Client Secret pasted into a chat', updatedBy: 'cli:alice' }, at);
    expect(locked).toMatchObject({ usable: false, revokedBy: 'lockdown' });
    expect(locked.warnings[0]).toMatchObject({ level: 'blocked', code: 'CREDENTIALS_REVOKED' });
    expect(locked.warnings[0].message).toMatch(/^a lockdown marked the Client ID \/ Secret compromised on 2026-01-01T00:00:00.000Z \(by cli:alice: Client Secret pasted into a chat\); the bank did not block them/);
    expect(locked.warnings[0].message).not.toMatch(/the bank answered/);
    expect(locked.warnings[0].message).toMatch(/connector credentials rotate --secret-stdin/);
  });
  test('no pair stored', () => {
    expect(credentialStatusOf(null, generated)).toMatchObject({ configured: false, usable: false });
  });
});
