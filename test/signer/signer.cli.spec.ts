import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseCms } from '../../signer-agent/cms/cms.parser';
import { createDetachedCms } from '../../signer-agent/cms/cms.signer';
import { createLoadedKey, inspectPkcs12, openPkcs12 } from '../../signer-agent/keystore/pkcs12.reader';
import { CA, CRL, nca, P12 } from '../fixtures/nca/fixtures';

/**
 * The built CLI as a child process (INTERFACES.md "CLI conventions" and "Signatures"): exit
 * codes, "CODE: message" on stderr, the verify --json shape, and OpenSSL on what we write.
 */
const ROOT = resolve(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'connector', 'cli', 'main.js');
let dir: string;

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'inherit' });
  dir = mkdtempSync(join(tmpdir(), 'signer-cli-'));
  writeFileSync(join(dir, 'doc.xml'), '<payment><purpose>Оплата по договору №7</purpose></payment>\n');
}, 180_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function cli(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env };
  const r = spawnSync(process.execPath, [MAIN, ...args], { cwd: dir, input: options.stdin ?? '', env });
  return { status: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
const doc = () => join(dir, 'doc.xml');
const out = (name: string) => join(dir, name);
const sign = (p12: { path: string; password: string }, sig: string, extra: string[] = [], env?: Record<string, string>) =>
  cli(['sign', '--p12', p12.path, '--password-stdin', '--in', doc(), '--out', out(sig), ...extra], { stdin: `${p12.password}\n`, env });

function opensslVerify(sig: string, when: string): number | null {
  return spawnSync('openssl', [
    'cms', '-verify', '-binary', '-inform', 'DER', '-in', out(sig), '-content', doc(),
    '-CAfile', CA.rsa, '-partial_chain', '-attime', String(Math.floor(Date.parse(when) / 1000)), '-out', '/dev/null',
  ]).status;
}

describe('connector keys inspect', () => {
  it('prints algorithm, subject, IIN/BIN, roles, key usage and validity as JSON', () => {
    const r = cli(['keys', 'inspect', '--p12', P12.gostCeoRevoked.path, '--password-stdin', '--json'], { stdin: 'Aa123456\n' });
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      algorithm: 'GOST34.10-2015-512', iin: '123456789011', bin: '123456789021',
      roles: ['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.1'],
      keyUsage: ['digitalSignature', 'nonRepudiation', 'keyEncipherment'],
      notBefore: expect.stringMatching(/^2022-07-27T/), notAfter: expect.stringMatching(/^2023-07-27T/),
    });
    expect(r.stdout).toContain('АО \\"ТЕСТ\\"');
  });

  it('WRONG_PASSWORD (exit 1), no --password-stdin (exit 2)', () => {
    const wrong = cli(['keys', 'inspect', '--p12', P12.rsaSign2021.path, '--password-stdin'], { stdin: 'Wr0ngSecret\n' });
    expect([wrong.status, wrong.stderr]).toEqual([1, expect.stringMatching(/^WRONG_PASSWORD: /)]);
    expect(wrong.stderr + wrong.stdout).not.toContain('Wr0ngSecret');
    expect(cli(['keys', 'inspect', '--p12', P12.gost2004.path, '--password-stdin'], { stdin: 'Qwerty13\n' }).stderr).toMatch(/^WRONG_PASSWORD: /);
    expect(cli(['keys', 'inspect', '--p12', P12.rsaSign2021.path]).status).toBe(2);
  });

  it('shows a GOST 34.310-2004 keystore (exit 0), saying it cannot sign; sign still refuses it', () => {
    const old = cli(['keys', 'inspect', '--p12', P12.gost2004.path, '--password-stdin', '--json'], { stdin: `${P12.gost2004.password}\n` });
    expect(old.status).toBe(0);
    expect(JSON.parse(old.stdout)).toMatchObject({
      algorithm: 'GOST34.310-2004', keyAlgorithmOid: '1.2.398.3.10.1.1.1.1', iin: '123456789011', bin: '123456789021',
      roles: ['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.1'], keyUsage: ['digitalSignature', 'nonRepudiation'],
      notBefore: expect.stringMatching(/^2022-01-18T/), notAfter: expect.stringMatching(/^2023-01-18T/),
      canSign: false, warnings: [expect.stringMatching(/cannot sign: .*GOST 34\.310-2004.*replaced/)],
    });
    expect(old.stderr).toMatch(/^WARNING: this key cannot sign: .*NCA RK has replaced GOST 34\.310-2004/m);
    const human = cli(['keys', 'inspect', '--p12', P12.gost2004.path, '--password-stdin'], { stdin: `${P12.gost2004.password}\n` });
    expect(human.status).toBe(0);
    expect(human.stdout).toMatch(/^algorithm: +GOST34\.310-2004 \(cannot sign/m);
    expect(human.stdout).toMatch(/^IIN: +123456789011$/m);
    expect(human.stderr).toMatch(/^WARNING: this key cannot sign: /m);
    // A key sign can use says nothing of the kind.
    const usable = cli(['keys', 'inspect', '--p12', P12.rsaSign2021.path, '--password-stdin', '--json'], { stdin: `${P12.rsaSign2021.password}\n` });
    expect([usable.status, usable.stderr]).toEqual([0, '']);
    expect(JSON.parse(usable.stdout)).toMatchObject({ algorithm: 'RSA-SHA256', canSign: true, warnings: [] });
    const refused = sign(P12.gost2004, 'g2004.p7s', ['--at', '2022-06-01T00:00:00Z'], { CONNECTOR_TEST_MODE: '1' });
    expect([refused.status, refused.stderr]).toEqual([1, expect.stringMatching(/^UNSUPPORTED_ALGORITHM: .*GOST 34\.310-2004.*replaced/)]);
  });
});

describe('connector sign / verify with the real NCA keys', () => {
  it('RSA: signs at --at, OpenSSL verifies it, verify --json gives the fixed shape', () => {
    const s = sign(P12.rsaSign2021, 'rsa.p7s', ['--at', '2021-06-01T08:00:00Z', '--trust', CA.rsa]);
    expect([s.status, s.stderr]).toEqual([0, expect.stringContaining('signing-time 2021-06-01T08:00:00.000Z')]);
    expect(opensslVerify('rsa.p7s', '2021-07-01T00:00:00Z')).toBe(0);
    // --at without an offset is Kazakhstan time (UTC+6 in 2021), never the zone of the machine.
    const wall = sign(P12.rsaSign2021, 'rsa-wall.p7s', ['--at', '2021-06-01T14:00', '--trust', CA.rsa], { TZ: 'America/New_York' });
    expect([wall.status, wall.stderr]).toEqual([0, expect.stringContaining('signing-time 2021-06-01T08:00:00.000Z')]);
    const v = cli(['verify', '--in', doc(), '--sig', out('rsa.p7s'), '--trust', CA.rsa, '--at', '2021-07-01T00:00:00Z', '--json']);
    expect(v.status).toBe(0);
    const json = JSON.parse(v.stdout);
    expect(Object.keys(json)).toEqual(['valid', 'signers']);
    expect(Object.keys(json.signers[0])).toEqual(['subject', 'iin', 'bin', 'algorithm', 'signingTime', 'serial', 'verdict', 'code', 'message']);
    expect(json).toMatchObject({
      valid: true,
      signers: [{ iin: '123456789011', bin: null, algorithm: 'RSA-SHA256', signingTime: '2021-06-01T08:00:00.000Z', verdict: 'valid', code: null }],
    });
    // Verified after the certificate expired: invalid, exit 1.
    const late = cli(['verify', '--in', doc(), '--sig', out('rsa.p7s'), '--trust', CA.rsa, '--at', '2022-09-01T00:00:00Z', '--json']);
    expect(late.status).toBe(1);
    expect(JSON.parse(late.stdout).signers[0].code).toBe('CERT_EXPIRED');
    expect(late.stderr).toMatch(/^CERT_EXPIRED: /m);
  });

  it('--password-stdin typed at a terminal: asked for without echo (R-4), and the signature is made', async () => {
    // A real terminal (a pty from util-linux `script`): the password is typed once the prompt shows.
    const command = [process.execPath, MAIN, 'sign', '--p12', P12.rsaSign2021.path, '--password-stdin', '--in', doc(), '--out', out('tty.p7s'), '--at', '2021-06-01T08:00:00Z', '--trust', CA.rsa]
      .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
      .join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME, TERM: 'dumb' } });
    let screen = '';
    child.stdout.on('data', (d: Buffer) => (screen += d.toString('utf8')));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    const deadline = Date.now() + 30_000;
    while (!screen.includes('Keystore password: ') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(screen).toContain('Keystore password: ');
    child.stdin.write(`${P12.rsaSign2021.password}\r`);
    expect(await exited).toBe(0);
    expect(screen).toContain('signing-time 2021-06-01T08:00:00.000Z');
    expect(screen).not.toContain(P12.rsaSign2021.password);
    expect(opensslVerify('tty.p7s', '2021-07-01T00:00:00Z')).toBe(0);
  }, 60_000);

  it('refusals with their codes: expired, revoked per CRL, AUTH key, untrusted, revocation required', () => {
    const expect1 = (r: ReturnType<typeof cli>, code: string) => expect([r.status, r.stderr.split('\n').find((l) => /^[A-Z_]+: /.test(l))]).toEqual([1, expect.stringMatching(new RegExp(`^${code}: `))]);
    expect1(sign(P12.rsaSign2021, 'x1.p7s', ['--at', '2022-09-01T00:00:00Z', '--trust', CA.rsa]), 'CERT_EXPIRED');
    expect1(sign(P12.rsaSignRevoked, 'x2.p7s', ['--at', '2022-09-01T00:00:00Z', '--trust', CA.rsa, '--crl', CRL.rsa]), 'CERT_REVOKED');
    expect1(sign(P12.rsaAuthRevoked, 'x3.p7s', ['--at', '2022-09-01T00:00:00Z', '--trust', CA.rsa]), 'NOT_A_SIGNING_KEY');
    expect1(sign(P12.rsaSign2021, 'x4.p7s', ['--at', '2021-06-01T00:00:00Z', '--trust', CA.gost2022]), 'CHAIN_UNTRUSTED');
    expect1(sign(P12.rsaSign2021, 'x5.p7s', ['--at', '2021-06-01T00:00:00Z', '--trust', CA.rsa, '--require-revocation']), 'REVOCATION_UNKNOWN');
    expect1(sign(P12.gostCeoRevoked, 'x6.p7s', ['--at', '2022-09-01T00:00:00Z', '--trust', CA.gost2022, '--crl', CRL.gost2022]), 'CERT_REVOKED');
    expect(sign(P12.rsaSign2021, 'x7.p7s', ['--at', 'yesterday', '--trust', CA.rsa]).status).toBe(2);
  });

  it('default trust: the NCA test CAs only in test mode (CONNECTOR_TEST_MODE=1)', () => {
    expect(sign(P12.rsaSign2021, 'd1.p7s', ['--at', '2021-06-01T00:00:00Z']).stderr).toMatch(/^CHAIN_UNTRUSTED: /m);
    expect(sign(P12.rsaSign2021, 'd2.p7s', ['--at', '2021-06-01T00:00:00Z'], { CONNECTOR_TEST_MODE: '1' }).status).toBe(0);
    const v = cli(['verify', '--in', doc(), '--sig', out('d2.p7s'), '--at', '2021-06-02T00:00:00Z'], { env: { CONNECTOR_TEST_MODE: '1' } });
    expect([v.status, v.stdout]).toEqual([0, expect.stringMatching(/^signer #1: VALID /)]);
  });

  it('--cosign: the first SignerInfo is kept byte for byte and OpenSSL verifies both signers', () => {
    expect(sign(P12.rsaSign2021, 'c1.p7s', ['--at', '2021-06-01T00:00:00Z', '--trust', CA.rsa]).status).toBe(0);
    expect(sign(P12.rsaSign2021, 'c2.p7s', ['--at', '2021-06-03T00:00:00Z', '--trust', CA.rsa, '--cosign', out('c1.p7s')]).status).toBe(0);
    const first = parseCms(readFileSync(out('c1.p7s')));
    const both = parseCms(readFileSync(out('c2.p7s')));
    expect(both.signerInfos).toHaveLength(2);
    expect(both.signerInfos[0].raw.equals(first.signerInfos[0].raw)).toBe(true);
    expect(opensslVerify('c2.p7s', '2021-07-01T00:00:00Z')).toBe(0);
    const v = JSON.parse(cli(['verify', '--in', doc(), '--sig', out('c2.p7s'), '--trust', CA.rsa, '--at', '2021-07-01T00:00:00Z', '--json']).stdout);
    expect(v.signers.map((s: { signingTime: string }) => s.signingTime)).toEqual(['2021-06-01T00:00:00.000Z', '2021-06-03T00:00:00.000Z']);
  });

  it('--cosign GOST then RSA and RSA then GOST: both signatures verify cryptographically', () => {
    const trust = ['--trust', CA.rsa, '--trust', CA.gost2022];
    expect(sign(P12.gostIndividual, 'g1.p7s', ['--at', '2022-09-01T00:00:00Z', ...trust]).status).toBe(0);
    expect(sign(P12.rsaSign2021, 'g2.p7s', ['--at', '2021-12-01T00:00:00Z', ...trust, '--cosign', out('g1.p7s')]).status).toBe(0);
    expect(sign(P12.rsaSign2021, 'r1.p7s', ['--at', '2021-12-01T00:00:00Z', ...trust]).status).toBe(0);
    expect(sign(P12.gostIndividual, 'r2.p7s', ['--at', '2022-09-01T00:00:00Z', ...trust, '--cosign', out('r1.p7s')]).status).toBe(0);
    for (const sig of ['g2.p7s', 'r2.p7s']) {
      const v = cli(['verify', '--in', doc(), '--sig', out(sig), ...trust, '--at', '2022-09-02T00:00:00Z', '--json']);
      const codes = Object.fromEntries(JSON.parse(v.stdout).signers.map((s: { algorithm: string; code: string }) => [s.algorithm, s.code]));
      // The RSA test certificate expired 2022-01-18, before the GOST one began: judged in 2022-09 it is CERT_EXPIRED, not BAD_SIGNATURE.
      expect([v.status, codes]).toEqual([1, { 'GOST34.10-2015-512': null, 'RSA-SHA256': 'CERT_EXPIRED' }]);
    }
  });

  it('the real KalkanCrypt two-signer CMS judged 2022-09-28: GOST valid, RSA CERT_EXPIRED, exit 1', () => {
    const v = cli([
      'verify', '--in', nca('cms', 'content.txt'), '--sig', nca('cms', 'kalkan_rsa+gost2015_attached.p7s'),
      '--trust', CA.rsa, '--trust', CA.gost2022, '--crl', CRL.gost2022, '--at', '2022-09-28T00:00:00Z', '--json',
    ]);
    expect(v.status).toBe(1);
    expect(JSON.parse(v.stdout)).toMatchObject({
      valid: false,
      signers: [
        { algorithm: 'GOST34.10-2015-512', iin: '123456789012', signingTime: expect.stringMatching(/^2022-09-27/), verdict: 'valid', code: null },
        { algorithm: 'RSA-SHA256', iin: '123456789011', verdict: 'invalid', code: 'CERT_EXPIRED' },
      ],
    });
  });

  it('a GOST 34.310-2004 signer: UNSUPPORTED_ALGORITHM, and algorithm stays within the fixed values (RSA-SHA256, GOST34.10-2015-512, or null)', () => {
    // A CMS whose signer certificate is the GOST 2004 one (its SignerInfo made with an RSA key: the
    // verdict never gets that far, the certificate's algorithm refuses it first).
    const legacy = inspectPkcs12(readFileSync(P12.gost2004.path), P12.gost2004.password);
    const rsa = openPkcs12(readFileSync(P12.rsaSign2021.path), P12.rsaSign2021.password);
    const key = createLoadedKey(rsa.material(), legacy.certificateDer);
    writeFileSync(out('gost2004.p7s'), createDetachedCms({ key, content: readFileSync(doc()), signingTime: new Date('2022-06-01T00:00:00Z') }));
    rsa.wipe();
    key.wipe();
    const v = cli(['verify', '--in', doc(), '--sig', out('gost2004.p7s'), '--trust', CA.gost2004, '--at', '2022-06-01T00:00:00Z', '--json']);
    expect(v.status).toBe(1);
    const [signer] = JSON.parse(v.stdout).signers;
    expect(signer).toMatchObject({ iin: '123456789011', bin: '123456789021', verdict: 'invalid', code: 'UNSUPPORTED_ALGORITHM', message: expect.stringContaining('34.310-2004') });
    // INTERFACES.md: `algorithm` one of `RSA-SHA256`, `GOST34.10-2015-512` (the message names the old one).
    expect([null, 'RSA-SHA256', 'GOST34.10-2015-512']).toContain(signer.algorithm);
  });

  it('exit 2 when the input cannot be read; --help answers', () => {
    expect(cli(['verify', '--in', doc(), '--sig', doc(), '--trust', CA.rsa]).status).toBe(2);
    expect(cli(['verify', '--in', join(dir, 'missing'), '--sig', doc(), '--trust', CA.rsa]).status).toBe(2);
    expect(cli(['verify', '--in', doc(), '--sig', out('rsa.p7s'), '--trust', join(dir, 'missing.pem')]).status).toBe(2);
    for (const args of [['sign', '--help'], ['verify', '--help'], ['keys', 'inspect', '--help']]) expect(cli(args).status).toBe(0);
  });
});
