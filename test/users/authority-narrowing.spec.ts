import { DEMO_ACCOUNTS } from '../../connector/demo/demo-orders';
import { listIncidents } from '../../connector/incidents/incident.service';
import { mayUserSign } from '../../connector/users/authority';
import { createUser, findUser, grantRight, revokeRight } from '../../connector/users/user.service';
import { uniq, usersTestEnvOfFile } from './users-test.env';

/**
 * R-17 (terms 6.1.13, 7.2.4): the bank is told within 1 business day of a user losing the authority
 * to sign for an account. What the user may sign for is decided by the right that applies to the
 * account (authority.ts: an explicit right wins over "all accounts"), so the reminder must follow
 * that right, not the row that was changed.
 */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

async function signerWithManageAll(): Promise<{ login: string; id: string }> {
  const login = uniq('cfo');
  await createUser(env.deps(), { login, role: 'signer', password: 'Start-Pass-1', actor: 'test' });
  await grantRight(env.deps(), { login, account: 'all', rights: 'manage', level: 'first', actor: 'test' });
  const user = (await findUser(env.context.orm.em.fork(), login))!;
  return { login, id: user.id };
}

const reminders = async (login: string) =>
  (await listIncidents(env.context.orm.em.fork(), { status: 'open' })).filter((i) => i.kind === 'authority_revoked' && i.evidence.login === login).map((i) => i.evidence.account);

describe('R-17: the bank reminder follows the right that decides the account', () => {
  test('an explicit information-only right taking one account out of "manage all" is a loss of the authority to sign for it', async () => {
    const { login, id } = await signerWithManageAll();
    expect((await mayUserSign(env.context.orm.em.fork(), id, DEMO_ACCOUNTS[0], 100)).allowed).toBe(true);
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], rights: 'info', actor: 'test' });
    // The user may no longer sign for the account...
    expect(await mayUserSign(env.context.orm.em.fork(), id, DEMO_ACCOUNTS[0], 100)).toMatchObject({ allowed: false, reason: 'INFO_ONLY' });
    // ...so the bank must hear of it, as with a revoke.
    expect(await reminders(login)).toEqual([DEMO_ACCOUNTS[0]]);
  });

  test('an explicit manage right without a signature level taking one account out of "manage all" is a loss too', async () => {
    const { login, id } = await signerWithManageAll();
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[1], rights: 'manage', actor: 'test' });
    expect(await mayUserSign(env.context.orm.em.fork(), id, DEMO_ACCOUNTS[1], 100)).toMatchObject({ allowed: false, reason: 'NO_SIGNATURE_LEVEL' });
    expect(await reminders(login)).toEqual([DEMO_ACCOUNTS[1]]);
  });

  test('revoking an explicit right while "manage all" still signs for the account is no loss: the bank is not told a false one', async () => {
    const { login, id } = await signerWithManageAll();
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], rights: 'manage', level: 'second', actor: 'test' });
    expect(await revokeRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], actor: 'test' })).toBe(true);
    // The "all accounts" right applies again: the user still signs for the account.
    expect((await mayUserSign(env.context.orm.em.fork(), id, DEMO_ACCOUNTS[0], 100)).allowed).toBe(true);
    expect(await reminders(login)).toEqual([]);
  });

  test('the cases that already held still hold: revoking or narrowing a signing right the user holds on its own', async () => {
    const login = uniq('acct');
    await createUser(env.deps(), { login, role: 'signer', password: 'Start-Pass-1', actor: 'test' });
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], rights: 'manage', level: 'first', actor: 'test' });
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[1], rights: 'manage', level: 'first', actor: 'test' });
    await grantRight(env.deps(), { login, account: DEMO_ACCOUNTS[0], rights: 'info', actor: 'test' });
    await revokeRight(env.deps(), { login, account: DEMO_ACCOUNTS[1], actor: 'test' });
    expect((await reminders(login)).sort()).toEqual([...DEMO_ACCOUNTS].sort());
    // "manage all" taken away altogether.
    const all = await signerWithManageAll();
    await revokeRight(env.deps(), { login: all.login, account: 'all', actor: 'test' });
    expect(await reminders(all.login)).toEqual(['*']);
  });
});
