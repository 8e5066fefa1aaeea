import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bearerToken, ensureToken, readToken, resolveTokenFile, tokenMatches } from './agent-token.store';

describe('agent token', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'signer-token-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates the token file with mode 0600 and random content on first use, then reuses it', () => {
    const path = join(dir, '.connector', 'signer.token');
    const first = ensureToken(path);
    expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(ensureToken(path)).toBe(first);
    expect(readToken(path)).toBe(first);
    const other = join(dir, 'other.token');
    expect(ensureToken(other)).not.toBe(first);
  });

  it('resolves a relative token file under the working directory', () => {
    expect(resolveTokenFile('.connector/signer.token', '/srv/app')).toBe('/srv/app/.connector/signer.token');
    expect(resolveTokenFile('/etc/t', '/srv/app')).toBe('/etc/t');
  });

  it('refuses a missing or too short token file with a code', () => {
    expect(() => readToken(join(dir, 'none'))).toThrow(expect.objectContaining({ code: 'SIGNER_TOKEN_MISSING' }));
    writeFileSync(join(dir, 'short'), 'abc\n');
    expect(() => readToken(join(dir, 'short'))).toThrow(expect.objectContaining({ code: 'SIGNER_TOKEN_UNREADABLE' }));
  });

  it('compares tokens exactly (any difference, prefix or length refuses)', () => {
    const token = 'x'.repeat(20) + 'secret';
    expect(tokenMatches(token, token)).toBe(true);
    expect(tokenMatches(undefined, token)).toBe(false);
    expect(tokenMatches(token.slice(0, -1), token)).toBe(false);
    expect(tokenMatches(`${token}x`, token)).toBe(false);
    expect(tokenMatches(token.toUpperCase(), token)).toBe(false);
  });

  it('takes the token only from "Authorization: Bearer <token>"', () => {
    expect(bearerToken('Bearer abc.def')).toBe('abc.def');
    expect(bearerToken('bearer abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
    expect(bearerToken(undefined)).toBeUndefined();
  });
});
