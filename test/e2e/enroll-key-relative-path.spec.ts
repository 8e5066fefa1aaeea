import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestEnv, freePort, type TestEnv } from '../support/test-env';
import { startDemoWorld, type DemoWorld } from '../../connector/demo/demo-world';
import { createLogger } from '../../connector/logging/logger';
import { userDeps } from '../../connector/app/user-context';
import { createUser, enrollKey } from '../../connector/users/user.service';

/**
 * `users enroll-key LOGIN --keystore PATH`: the path is as the signer agent sees it (a relative one
 * under the agent's working directory). The keystore's SHA-256 in the audit record is what a
 * lockdown's resolve compares to tell a new key from the compromised one enrolled again: it
 * must be the digest of the file the agent enrolled, not of whatever file of that name lies where the
 * admin's shell happens to be.
 */
describe('enroll-key with a relative path: the audit digest is of the file the agent enrolled (real signer agent, PostgreSQL)', () => {
  let env: TestEnv;
  let world: DemoWorld;
  let shellDir: string;
  const cwd = process.cwd();

  beforeAll(async () => {
    env = await createTestEnv('enrollrel', { CONNECTOR_BANK_URL: `http://127.0.0.1:${await freePort()}`, CONNECTOR_SIGNER_URL: `http://127.0.0.1:${await freePort()}` });
    world = await startDemoWorld(env.config, join(env.workDir, 'world'), createLogger({ level: 'silent' }));
    shellDir = mkdtempSync(join(tmpdir(), 'enroll-shell-'));
  });
  afterAll(async () => {
    process.chdir(cwd);
    rmSync(shellDir, { recursive: true, force: true });
    await world?.close();
    await env?.cleanup();
  });

  it('records the SHA-256 of the keystore the agent took, from the agent\'s working directory', async () => {
    const ceo = world.pki.keystores.find((k) => k.name === 'rsa-ceo');
    if (!ceo) throw new Error('the world has no CEO keystore');
    // The agent's working directory is the world's folder: the keystore the admin means is there.
    copyFileSync(ceo.path, join(env.workDir, 'world', 'enrolled.p12'));
    const agentSide = createHash('sha256').update(readFileSync(ceo.path)).digest('hex');
    // The admin's shell is elsewhere, where another file of that name lies (an old copy, say).
    writeFileSync(join(shellDir, 'enrolled.p12'), randomBytes(2048));
    process.chdir(shellDir);

    await createUser(userDeps(world.context), { login: 'demo.relative', role: 'signer', iin: ceo.iin, password: `Rel-${randomBytes(9).toString('base64url')}1a`, actor: 'test' });
    const status = await enrollKey(userDeps(world.context), { login: 'demo.relative', keystorePath: 'enrolled.p12', actor: 'test' });
    expect(status).toMatchObject({ keystorePath: join(env.workDir, 'world', 'enrolled.p12') });
    const [audit] = await world.context.orm.em.fork().execute<Array<{ sha: string | null }>>(
      "select details->>'keystoreSha256' as sha from audit_event where action = 'signer.key_enrolled' and subject = 'demo.relative'",
    );
    expect(audit.sha).toBe(agentSide);
  });
});
