import { demoOrders, DEMO_ACCOUNTS } from '../../connector/demo/demo-orders';
import { intakeOrders } from '../../connector/intake/order-intake';
import { grantRight } from '../../connector/users/user.service';
import { activeUser, uniq, usersTestEnvOfFile } from './users-test.env';

/**
 * R-16 (terms 3.6, 6.1.11): "information only" users look; they do not act. `POST
 * /api/v1/orders/:id/sign` from a person who may see the account but may not sign for it (a viewer,
 * an operator, an information-only right, a right without a signature level) is refused before
 * anything is done to the order: it used to move a validated order to awaiting_signatures and
 * freeze its document (recorded as the worker's doing) and only then refuse.
 */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

async function validatedOrder(account: string): Promise<string> {
  const order = demoOrders(uniq('s').padStart(7, '0').slice(-7), '2026-03-02').find((o) => o.payer.iban === account)!;
  const [stored] = await intakeOrders(env.context.orm.em.fork(), 'erp', [{ order }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
  await env.context.orm.em.fork().execute("update payment_order set state = 'validated' where id = ?", [stored.orderId]);
  return stored.orderId;
}

const stateOf = async (id: string) => (await env.context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0].state;
const documents = async (id: string) => Number((await env.context.orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from order_document where order_id = ?', [id]))[0].n);

describe('R-16: a person who may not sign for the account is refused before the order is touched', () => {
  const [account] = DEMO_ACCOUNTS;
  test.each([
    ['a viewer with information-only rights', 'viewer', { rights: 'info' as const }, 'ROLE_CANNOT_SIGN'],
    ['an operator who manages the account', 'operator', { rights: 'manage' as const }, 'ROLE_CANNOT_SIGN'],
    ['a signer with information-only rights', 'signer', { rights: 'info' as const }, 'INFO_ONLY'],
    ['a signer whose right carries no signature level', 'signer', { rights: 'manage' as const }, 'NO_SIGNATURE_LEVEL'],
  ])('%s: 403 naming the reason; the order stays validated, no document frozen', async (_who, role, right, reason) => {
    const login = uniq('looker');
    const person = await activeUser(env, login, role as 'viewer' | 'operator' | 'signer', 'Looker-Pass-1');
    await grantRight(env.deps(), { login, account, ...right, actor: 'test' });
    const id = await validatedOrder(account);
    // The person sees the order...
    expect((await person.request('GET', `/api/v1/orders/${id}`)).statusCode).toBe(200);
    // ...and may not sign it.
    const res = await person.request('POST', `/api/v1/orders/${id}/sign`, {});
    expect([res.statusCode, res.json().code]).toEqual([403, reason]);
    expect(await stateOf(id)).toBe('validated');
    expect(await documents(id)).toBe(0);
  });

  test('a signer with a signature level on the account is still let through to signing', async () => {
    const login = uniq('cfo');
    const signer = await activeUser(env, login, 'signer', 'Signer-Pass-1');
    await grantRight(env.deps(), { login, account, rights: 'manage', level: 'first', actor: 'test' });
    const id = await validatedOrder(account);
    const res = await signer.request('POST', `/api/v1/orders/${id}/sign`, {});
    // The stand-in agent of the test world signs nothing: what matters is the order moved on to be signed.
    expect(res.statusCode).not.toBe(403);
    expect(await stateOf(id)).toBe('awaiting_signatures');
    expect(await documents(id)).toBe(1);
  });
});
