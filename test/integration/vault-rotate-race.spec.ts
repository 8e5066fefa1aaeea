import { appWorld } from '../support/app-world';
import { credentialStatus, rotateSecret, SECRET_PURPOSE, setCredentials } from '../../connector/vault/credential.vault';
import { rotateMasterKey } from '../../connector/vault/master-key.rotation';
import { loadMasterKey } from '../../connector/vault/master-key.store';
import { SecretBox } from '../../connector/vault/secret-box';
import { CredentialVault } from '../../connector/persistence/entities';
import { ManualClock } from '../../connector/shared/clock';
import { createUser, enrollTotp, TOTP_PURPOSE } from '../../connector/users/user.service';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `credentials set` (or `rotate`) committing while `vault rotate-key` re-seals, as two processes
 * would run them. The row is held locked by the test for a moment, so that both are caught midway
 * (the set sealed, the rotation's re-seal read the row): without one lock between them the
 * rotation wrote back the Client Secret the set had just replaced, and the new one was lost.
 */
describe('vault rotate-key and credentials set at the same time', () => {
  const world = appWorld('vault-rotate-race');
  const clock = new ManualClock(new Date('2026-11-25T05:00:00Z'));
  // Each "process" its own box, read from the installation's key file before the rotation.
  const vault = () => ({ em: world.db(), box: SecretBox.fromConfig(world.env.config), clock });
  const storedSecret = async () => {
    const row = await world.db().findOneOrFail(CredentialVault, { id: 1 });
    return { keyId: SecretBox.keyIdOf(row.secretEnc), secret: SecretBox.fromConfig(world.env.config).decrypt(row.secretEnc, SECRET_PURPOSE) };
  };

  /** Runs `store` and a master key rotation while the row it writes is held locked, then lets go. */
  async function race(store: () => Promise<unknown>, row = 'select id from credential_vault where id = 1 for update'): Promise<void> {
    const holder = await world.db().getKnex().transaction();
    await holder.raw(row);
    const stored = store();
    await pause(300);
    const rotated = rotateMasterKey({ em: world.db(), clock, config: world.env.config }, 'test');
    await pause(700);
    await holder.commit();
    await Promise.all([stored, rotated]);
  }

  test('the Client Secret stored by a set that ran during the rotation is the one kept, under the new key', async () => {
    await setCredentials(vault(), { clientId: 'race-client', clientSecret: 'first-secret-value-1', actor: 'test' });
    await race(() => setCredentials(vault(), { clientId: 'race-client', clientSecret: 'second-secret-value-2', actor: 'test' }));
    const ring = loadMasterKey(SecretBox.fromConfig(world.env.config).keyFile);
    expect(ring.byId.size).toBe(1);
    expect(await storedSecret()).toEqual({ keyId: ring.current.id, secret: 'second-secret-value-2' });
    expect((await credentialStatus(vault())).clientId).toBe('race-client');
  }, 30_000);

  test('the same for credentials rotate', async () => {
    await race(() => rotateSecret(vault(), { clientSecret: 'third-secret-value-3', actor: 'test' }));
    const ring = loadMasterKey(SecretBox.fromConfig(world.env.config).keyFile);
    expect(ring.byId.size).toBe(1);
    expect(await storedSecret()).toEqual({ keyId: ring.current.id, secret: 'third-secret-value-3' });
  }, 30_000);

  test('a TOTP seed enrolled during the rotation stays readable once the old key is dropped', async () => {
    const deps = () => ({ em: world.db(), clock, config: world.env.config, box: () => SecretBox.fromConfig(world.env.config) });
    const user = await createUser(deps(), { login: 'race.user', role: 'viewer', password: 'Race-Pass-123', actor: 'test' });
    let seed = '';
    await race(
      async () => (seed = (await enrollTotp(deps(), { login: 'race.user', actor: 'test' })).secret),
      `select id from app_user where id = '${user.id}' for update`,
    );
    const [row] = await world.db().execute<Array<{ totp_secret_enc: string }>>('select totp_secret_enc from app_user where id = ?', [user.id]);
    expect(SecretBox.fromConfig(world.env.config).decrypt(row.totp_secret_enc, TOTP_PURPOSE(user.id))).toBe(seed);
  }, 30_000);
});
