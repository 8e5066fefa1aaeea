import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { looseFileMode, readSigningSecret } from './secret-file';

/** The one judgement of a signing secret's file: what would make an HMAC anyone can compute or forge. */
describe('readSigningSecret', () => {
  const dir = mkdtempSync(join(tmpdir(), 'secret-file-'));
  const file = (name: string, text: string, mode: number) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  it('gives the trimmed secret of a private file', () => {
    expect(readSigningSecret(file('good', '  s3cret-value \n', 0o600), 'webhooks.secretFile')).toEqual({ secret: 's3cret-value' });
    expect(looseFileMode(join(dir, 'good'))).toBeNull();
  });

  it.each([
    ['empty', '', 0o600, /^webhooks\.secretFile \S+ is empty: an HMAC with an empty key is one anyone can compute/],
    ['blank', ' \n\t\n', 0o400, /^webhooks\.secretFile \S+ is empty/],
    ['group-readable', 'Canary-Secret-1', 0o640, /^webhooks\.secretFile \S+ may be read by group or others \(mode 0640\).*chmod 600/],
    ['world-readable', 'Canary-Secret-2', 0o644, /^webhooks\.secretFile \S+ may be read by group or others \(mode 0644\)/],
  ])('refuses a file that is %s, naming the key and the file, never the content', (name, text, mode, problem) => {
    const path = file(name, text, mode);
    const read = readSigningSecret(path, 'webhooks.secretFile');
    expect(read).toEqual({ problem: expect.stringMatching(problem) });
    expect((read as { problem: string }).problem).toContain(path);
    expect(JSON.stringify(read)).not.toContain('Canary');
  });

  it('refuses a file that is not there, saying why', () => {
    expect(readSigningSecret(join(dir, 'absent'), 'lockdown.notify.webhookSecretFile')).toEqual({ problem: expect.stringMatching(/^lockdown\.notify\.webhookSecretFile \S+absent cannot be read \(ENOENT\)/) });
  });
});
