import { randomBytes } from 'node:crypto';
import { appWorld } from '../support/app-world';
import { startHarness, type Harness } from '../../adapters/bank/test/sandbox.harness';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';
import { VaultBankCredentials } from '../../connector/app/vault-bank-credentials';
import { credentialStatus, markCredentialsRevoked, rotateSecret, setCredentials } from '../../connector/vault/credential.vault';
import { SecretBox } from '../../connector/vault/secret-box';
import { ManualClock } from '../../connector/shared/clock';
import { eventually } from '../support/test-env';

/**
 * The pipeline's bank credentials (the vault's pair) as the real bank client uses them against the
 * real sandbox: a token the bank issued restarts the pair's idle clock; a pair marked
 * revoked (the bank's answer, or a lockdown) sends nothing more to the bank, not even status polls
 * with a token got before; a rotation makes it work again.
 */
describe('VaultBankCredentials with the real bank client and sandbox', () => {
  const world = appWorld('vault-bank-creds');
  let h: Harness;
  const clock = new ManualClock(new Date('2026-11-25T05:00:00Z'));
  const vault = () => ({ em: world.db(), box: SecretBox.fromConfig(world.env.config), clock });
  const stats = () => h.admin<Record<string, number>>('GET', '/stats');
  /** The worker reads the vault's version at most once a second (VERSION_READ_MS). */
  const versionRead = () => new Promise((resolve) => setTimeout(resolve, 1_100));

  const FIRST = { clientId: 'test-client', clientSecret: `first-${randomBytes(8).toString('hex')}` };
  /** The pair the bank issues at the rotation (a second client of the sandbox). */
  const ROTATED = { clientId: 'test-client-2', clientSecret: `rotated-${randomBytes(8).toString('hex')}` };

  beforeAll(async () => {
    h = await startHarness({ clients: [FIRST, ROTATED] });
  });
  afterAll(async () => {
    await h?.stop();
    await h?.drop();
  });

  it('a token issued restarts the idle clock; once revoked, nothing goes to the bank; rotated, it works again', async () => {
    await setCredentials(vault(), { ...FIRST, actor: 'test' });
    expect((await credentialStatus(vault())).lastUsedAt).toBeNull();
    const client = h.client({ credentials: new VaultBankCredentials(world.env.config, world.context.orm, clock) });

    await expect(client.getStatus('no-such-document')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await stats()).tokenRequests).toBe(1);
    await eventually(async () => (await credentialStatus(vault())).lastUsedAt === clock.now().toISOString(), { what: 'the successful use to be recorded' });

    // Marked revoked (as the pipeline does when the bank says so, or a lockdown of the credentials).
    await markCredentialsRevoked(vault(), { reason: 'the bank answered CREDENTIALS_REVOKED', actor: 'test' });
    await versionRead();
    const before = await stats();
    const refused = await client.getStatus('no-such-document').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(BankError);
    expect(refused).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', details: { providerCode: 'CREDENTIALS_REVOKED' }, message: expect.stringMatching(/nothing was sent to the bank.*credentials rotate/) });
    // Neither the token got before nor a new token request: the bank heard nothing.
    expect(await stats()).toEqual(before);

    clock.set(new Date('2026-11-26T05:00:00Z'));
    await rotateSecret(vault(), { ...ROTATED, actor: 'test' });
    await versionRead();
    await expect(client.getStatus('no-such-document')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect((await stats()).tokenRequests).toBe(before.tokenRequests + 1);
    await eventually(async () => (await credentialStatus(vault())).lastUsedAt === clock.now().toISOString(), { what: 'the rotated pair\'s use to be recorded' });
  });

  it('a token refused by the bank is not a successful use', async () => {
    await rotateSecret(vault(), { clientSecret: 'not-the-bank-secret', actor: 'test' });
    const usedBefore = (await credentialStatus(vault())).lastUsedAt;
    clock.set(new Date('2026-11-27T05:00:00Z'));
    const client = h.client({ credentials: new VaultBankCredentials(world.env.config, world.context.orm, clock) });
    await expect(client.getStatus('no-such-document')).rejects.toMatchObject({ code: 'AUTH' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await credentialStatus(vault())).lastUsedAt).toBe(usedBefore);
  });
});
