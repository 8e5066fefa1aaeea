import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KeyRegistry } from './key-registry.store';

describe('KeyRegistry', () => {
  let dir: string;
  let path: string;
  const at = new Date('2026-01-05T10:00:00Z');
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'signer-registry-'));
    path = join(dir, 'keys.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('persists enrolments (paths only) with mode 0600', () => {
    new KeyRegistry(path).load().enroll('alice', '/keys/alice.p12', '123456789012', at);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const reloaded = new KeyRegistry(path).load();
    expect(reloaded.get('alice')).toMatchObject({ keystorePath: '/keys/alice.p12', expectedIin: '123456789012', wrongPasswordCount: 0 });
    expect(Object.keys(JSON.parse(readFileSync(path, 'utf8')).users.alice).sort()).toEqual(
      ['enrolledAt', 'expectedIin', 'keystorePath', 'lastWrongPasswordAt', 'wrongPasswordCount', 'wrongPasswordTotal'],
    );
  });

  it('counts wrong passwords per user across restarts and resets the consecutive count on unlock', () => {
    const registry = new KeyRegistry(path).load();
    registry.enroll('alice', '/keys/alice.p12', null, at);
    registry.enroll('bob', '/keys/bob.p12', null, at);
    registry.recordWrongPassword('alice', at);
    expect(registry.recordWrongPassword('alice', at)).toMatchObject({ wrongPasswordCount: 2, wrongPasswordTotal: 2 });
    const reloaded = new KeyRegistry(path).load();
    expect(reloaded.get('alice')).toMatchObject({ wrongPasswordCount: 2, lastWrongPasswordAt: at.toISOString() });
    expect(reloaded.get('bob')?.wrongPasswordCount).toBe(0);
    reloaded.recordUnlock('alice');
    expect(new KeyRegistry(path).load().get('alice')).toMatchObject({ wrongPasswordCount: 0, wrongPasswordTotal: 2 });
  });

  it('keeps the counter when the same keystore is enrolled again, starts fresh for a new one', () => {
    const registry = new KeyRegistry(path).load();
    registry.enroll('alice', '/keys/a.p12', null, at);
    registry.recordWrongPassword('alice', at);
    expect(registry.enroll('alice', '/keys/a.p12', null, at).wrongPasswordCount).toBe(1);
    expect(registry.enroll('alice', '/keys/new.p12', null, at).wrongPasswordCount).toBe(0);
  });

  it('refuses a broken registry file instead of starting empty (fail closed)', () => {
    writeFileSync(path, '{"version":1,"users":{"a":{}}}');
    expect(() => new KeyRegistry(path).load()).toThrow(expect.objectContaining({ code: 'SIGNER_REGISTRY_INVALID' }));
    writeFileSync(path, 'not json');
    expect(() => new KeyRegistry(path).load()).toThrow(expect.objectContaining({ code: 'SIGNER_REGISTRY_INVALID' }));
  });
});
