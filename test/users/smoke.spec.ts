import { startUsersTestEnv, activeUser, type UsersTestEnv } from './users-test.env';

let env: UsersTestEnv;
beforeAll(async () => {
  env = await startUsersTestEnv();
});
afterAll(async () => {
  await env?.close();
});

test('smoke', async () => {
  const b = await activeUser(env, 'anna', 'viewer', 'Secret-Pass1');
  const me = await b.request('GET', '/api/v1/me');
  expect(me.statusCode).toBe(200);
  const orders = await b.request('GET', '/api/v1/orders');
  expect(orders.json()).toEqual({ orders: [], nextCursor: null });
});
