import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';

const NCA = '/work/shared/testdata/nca';

/**
 * `--out` names a file. The admin who gives the 1C exchange folder instead (or a path through a
 * file) reads which flag, which path and what to give, not a rename of a temp file they never named.
 */
describe('--out that cannot be written', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv('out_file');
  });
  afterAll(async () => {
    await env.cleanup();
  });

  it('a folder is a usage error (exit 2) said before any work, naming the file to give, and leaves nothing beside it', async () => {
    const inbox = join(env.workDir, 'exchange', 'inbox');
    mkdirSync(inbox, { recursive: true });
    // PostgreSQL out of reach: the refusal comes before anything is read or asked.
    const statement = await runCli(['onec', 'statement', '--account', 'KZ88998CTB0000000001', '--from', '2026-11-27', '--to', '2026-11-27', '--out', inbox], {
      env: { ...env.env, CONNECTOR_DATABASE_URL: 'postgresql://postgres@127.0.0.1:1/nowhere' },
      cwd: env.workDir,
    });
    expect([statement.code, statement.stderr]).toEqual([2, `USAGE: --out ${inbox} is a folder: give the path of the file to write, e.g. ${join(inbox, 'kl_to_1c.txt')}\n`]);

    const sign = await runCli(
      ['sign', '--p12', `${NCA}/rsa/ncanode_individual_sign_rsa_2021.p12`, '--password-stdin', '--in', join(NCA, 'cms', 'content.txt'), '--out', inbox, '--trust', `${NCA}/ca/nca_rsa_test.pem`, '--at', '2021-08-01T00:00:00Z'],
      { env: env.env, cwd: env.workDir, input: 'Qwerty12\n' },
    );
    expect([sign.code, sign.stderr]).toEqual([2, `USAGE: --out ${inbox} is a folder: give the path of the file to write, e.g. ${join(inbox, 'document.p7s')}\n`]);
    expect(readdirSync(join(env.workDir, 'exchange'))).toEqual(['inbox']);
  });

  it('a path through a file is OUTPUT_UNWRITABLE naming the flag and the path given, not the temp file', async () => {
    writeFileSync(join(env.workDir, 'inbox.txt'), 'a file where a folder was meant');
    const out = join(env.workDir, 'inbox.txt', 'kl_to_1c_status.txt');
    const res = await runCli(['onec', 'statuses', '--out', out], { env: env.env, cwd: env.workDir });
    expect([res.code, res.stderr]).toEqual([1, `OUTPUT_UNWRITABLE: --out ${out} cannot be written: its folder ${join(env.workDir, 'inbox.txt')} is a file, not a folder (EEXIST); give another path, or fix the folder\n`]);
  });
});
