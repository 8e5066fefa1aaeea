import { demoOrders, DEMO_ACCOUNTS } from '../../connector/demo/demo-orders';
import { openIncident } from '../../connector/incidents/incident.service';
import { intakeOrders } from '../../connector/intake/order-intake';
import { totp } from '../../connector/users/totp';
import { checkLogin, grantRight } from '../../connector/users/user.service';
import { activeUser, Browser, enrollTotpSeed, uniq, usersTestEnvOfFile } from './users-test.env';

/** Findings of the security audit, each over the real API, PostgreSQL and Redis. */
const env = usersTestEnvOfFile({ start: '2026-03-02T04:00:00Z' });

describe('R-14 second factor: a TOTP code is good for one login only (RFC 6238 section 5.2)', () => {
  test('the code that just logged in is refused a second time, also from another address; the next step logs in', async () => {
    const login = uniq('replay');
    await activeUser(env, login, 'viewer', 'Replay-Pass-1');
    const seed = await enrollTotpSeed(env, login);
    const code = totp(seed, env.clock.now());
    expect((await new Browser(env).login(login, 'Replay-Pass-1', code)).statusCode).toBe(200);
    // Whoever saw the password and the code (a shoulder, a phishing proxy) replays them within the window.
    env.clock.advance(10_000);
    const replay = await new Browser(env).login(login, 'Replay-Pass-1', code);
    expect([replay.statusCode, replay.json().code]).toEqual([401, 'TOTP_REQUIRED']);
    // A code of an earlier step than the one used is refused too, even inside the +-1 step window.
    const earlier = totp(seed, new Date(env.clock.now().getTime() - 30_000));
    if (earlier !== code) expect((await new Browser(env).login(login, 'Replay-Pass-1', earlier)).statusCode).toBe(401);
    env.clock.advance(30_000);
    expect((await new Browser(env).login(login, 'Replay-Pass-1', totp(seed, env.clock.now()))).statusCode).toBe(200);
  });

  test('a new seed (totp-enroll again) starts afresh', async () => {
    const login = uniq('reenroll');
    await activeUser(env, login, 'viewer', 'Reenroll-Pass-1');
    const first = await enrollTotpSeed(env, login);
    expect((await new Browser(env).login(login, 'Reenroll-Pass-1', totp(first, env.clock.now()))).statusCode).toBe(200);
    const second = await enrollTotpSeed(env, login);
    expect((await new Browser(env).login(login, 'Reenroll-Pass-1', totp(second, env.clock.now()))).statusCode).toBe(200);
  });
});

describe('R-16 over the HTTP API: nothing of an account a person has no right on', () => {
  /** Orders taken in without a queue (nothing moves them on), one per demo account. */
  async function storedOrders(): Promise<Map<string, string>> {
    const orders = demoOrders(String(Date.now()).slice(-7), '2026-03-02').filter((o, i, all) => all.findIndex((p) => p.payer.iban === o.payer.iban) === i);
    const results = await intakeOrders(env.context.orm.em.fork(), 'erp', orders.map((order) => ({ order })), { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    return new Map(results.map((r, i) => [orders[i].payer.iban, r.orderId]));
  }

  test('signing an order of another account is 404 whatever its state, and moves nothing', async () => {
    const [mine, theirs] = DEMO_ACCOUNTS;
    const login = uniq('othersigner');
    const signer = await activeUser(env, login, 'signer', 'Other-Signer-1');
    await grantRight(env.deps(), { login, account: mine, rights: 'manage', level: 'first', actor: 'test' });
    const ids = await storedOrders();
    const id = ids.get(theirs) as string;
    const stateOf = async () => (await env.context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where id = ?', [id]))[0].state;
    // Received, not yet waiting for signatures: the answer said so (409) to someone who may not know the order exists.
    const received = await signer.request('POST', `/api/v1/orders/${id}/sign`, {});
    expect([received.statusCode, received.json().code]).toEqual([404, 'NOT_FOUND']);
    // Validated: the outsider's request moved it to awaiting_signatures and froze its document before it was refused.
    await env.context.orm.em.fork().execute("update payment_order set state = 'validated' where id = ?", [id]);
    const validated = await signer.request('POST', `/api/v1/orders/${id}/sign`, {});
    expect([validated.statusCode, validated.json().code]).toEqual([404, 'NOT_FOUND']);
    expect(await stateOf()).toBe('validated');
    expect(Number((await env.context.orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from order_document where order_id = ?', [id]))[0].n)).toBe(0);
    // The same person on their own account's order is answered as before.
    const own = await signer.request('POST', `/api/v1/orders/${ids.get(mine)}/sign`, {});
    expect([own.statusCode, own.json().code]).toEqual([409, 'NOT_AWAITING_SIGNATURES']);
    // An id that is no UUID at all (36 dashes passed the old check) finds nothing, not a database error.
    const dashes = await signer.request('POST', `/api/v1/orders/${'-'.repeat(36)}/sign`, {});
    expect([dashes.statusCode, dashes.json().code]).toEqual([404, 'NOT_FOUND']);
  });

  test("incidents (balances, counterparties, people's IINs of every account) are read by admins only", async () => {
    const [mine, theirs] = DEMO_ACCOUNTS;
    const { incident } = await openIncident(env.context.orm.em.fork(), {
      kind: 'unexplained_debit',
      severity: 'critical',
      title: `Debit of 9000000.00 from ${theirs} on 2026-03-01 matches no order: possible unauthorised payment`,
      evidence: { account: theirs, amount: '9000000.00', counterparty: { name: 'ТОО "Поставщик"', iban: 'KZ86125KZT5004100100' } },
      actor: 'test',
    });
    const viewerLogin = uniq('incviewer');
    const viewer = await activeUser(env, viewerLogin, 'viewer', 'Inc-Viewer-1');
    await grantRight(env.deps(), { login: viewerLogin, account: mine, rights: 'info', actor: 'test' });
    const operator = await activeUser(env, uniq('incoperator'), 'operator', 'Inc-Operator-1');
    for (const person of [viewer, operator]) {
      const res = await person.request('GET', '/api/v1/incidents');
      expect([res.statusCode, res.json().code]).toEqual([403, 'FORBIDDEN']);
      expect(res.body).not.toContain(theirs);
    }
    const admin = await activeUser(env, uniq('incadmin'), 'admin', 'Inc-Admin-1');
    const list = await admin.request('GET', '/api/v1/incidents');
    expect(list.statusCode).toBe(200);
    expect((list.json().incidents as Array<{ id: string }>).map((i) => i.id)).toContain(incident.id);
    // Anyone may still report a suspected compromise and read the lockdown state.
    expect((await viewer.request('GET', '/api/v1/lockdown')).statusCode).toBe(200);
    // Resolving is an admin's too, and a non-admin learns nothing of which incident ids exist.
    for (const id of [incident.id, '00000000-0000-4000-8000-000000000000']) {
      const res = await operator.request('POST', `/api/v1/incidents/${id}/resolve`, { note: 'seen' });
      expect([res.statusCode, res.json().code]).toEqual([403, 'FORBIDDEN']);
    }
    // An admin naming an id that is no UUID (36 dashes) hears "no such incident", not a database error.
    const dashes = await admin.request('POST', `/api/v1/incidents/${'-'.repeat(36)}/resolve`, { note: 'seen' });
    expect([dashes.statusCode, dashes.json().code]).toEqual([404, 'NOT_FOUND']);
  });
});

describe('R-4: a password typed into the login field is not kept', () => {
  test('a failed login under a login nobody has leaves the typed text in neither the audit log nor the log', async () => {
    const login = uniq('typo');
    await activeUser(env, login, 'viewer', 'Typo-Pass-1');
    // The classic slip: the password goes into the login field (and the login into the password field).
    const typed = 'wh1te-rabbit.42';
    const res = await new Browser(env).login(typed, login);
    expect([res.statusCode, res.json().code]).toEqual([401, 'INVALID_CREDENTIALS']);
    const rows = await env.context.orm.em.fork().execute<Array<{ n: string }>>(
      "select count(*) as n from audit_event where action = 'auth.login.failed' and (actor || ' ' || subject || ' ' || coalesce(details::text, '')) ilike ?",
      [`%${typed}%`],
    );
    expect(Number(rows[0].n)).toBe(0);
    expect(env.logLines.join('\n')).not.toContain(typed);
    // The attempt is still on the audit log, with its address.
    const [last] = await env.context.orm.em.fork().execute<Array<{ subject: string; details: { code: string; ip: string } }>>("select subject, details from audit_event where action = 'auth.login.failed' order by seq desc limit 1");
    expect(last.details.code).toBe('INVALID_CREDENTIALS');
    expect(last.details.ip).toMatch(/^10\./);
  });
});

describe('R-12: five wrong passwords lock the login, also against attempts already under way', () => {
  test('an attempt that read the login before five others locked it does not log in with the right password, nor lift the lock', async () => {
    const login = uniq('burst');
    await activeUser(env, login, 'viewer', 'Burst-Pass-1');
    // A burst of guesses in parallel (several addresses, the per-IP limit is 30 a minute): each
    // reads the login unlocked, then checks its password. The right one is checked last.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let reached!: () => void;
    const atPasswordCheck = new Promise<void>((resolve) => (reached = resolve));
    const lastGuess = checkLogin(env.deps(), { login, password: 'Burst-Pass-1', ip: '10.9.9.9' }, async () => {
      reached();
      await held;
    }).then(
      () => 'logged in',
      (err: { code?: string }) => err.code,
    );
    await atPasswordCheck;
    const wrong = [];
    for (let i = 0; i < 5; i += 1) wrong.push((await new Browser(env).login(login, `Wrong-Guess-${i}`)).statusCode);
    expect(wrong).toEqual([401, 401, 401, 401, 423]);
    release();
    expect(await lastGuess).toBe('LOCKED_TEMPORARILY');
    // The lock holds for the right password too.
    const after = await new Browser(env).login(login, 'Burst-Pass-1');
    expect([after.statusCode, after.json().code]).toEqual([423, 'LOCKED_TEMPORARILY']);
  });
});

describe('R-29: under lockdown a person signing is told so', () => {
  test('POST /api/v1/orders/:id/sign while locked down answers 423 LOCKED_DOWN, records no signature', async () => {
    const [account] = DEMO_ACCOUNTS;
    const login = uniq('locksigner');
    const signer = await activeUser(env, login, 'signer', 'Lock-Signer-1');
    await grantRight(env.deps(), { login, account, rights: 'manage', level: 'first', actor: 'test' });
    const order = demoOrders(String(Date.now()).slice(-7), '2026-03-02').find((o) => o.payer.iban === account)!;
    const [stored] = await intakeOrders(env.context.orm.em.fork(), 'erp', [{ order }], { enqueueValidate: async () => undefined, enqueueValidated: async () => undefined }, { actor: 'test' });
    await env.context.orm.em.fork().execute("update payment_order set state = 'validated' where id = ?", [stored.orderId]);
    await env.context.redis.set(`${env.prefix}:lockdown`, '1');
    try {
      const res = await signer.request('POST', `/api/v1/orders/${stored.orderId}/sign`, {});
      expect([res.statusCode, res.json().code]).toEqual([423, 'LOCKED_DOWN']);
      expect(env.logLines.join('\n')).not.toContain('"api.error"');
    } finally {
      await env.context.redis.del(`${env.prefix}:lockdown`);
    }
    expect(Number((await env.context.orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from order_signature where order_id = ?', [stored.orderId]))[0].n)).toBe(0);
  });
});

describe('R-16: a right on one account narrows a right on all accounts, for submitting as for signing', () => {
  test('an operator who manages all accounts but was given information-only rights on one cannot submit orders for that one', async () => {
    const [open, narrowed] = DEMO_ACCOUNTS;
    const login = uniq('narrowed');
    const operator = await activeUser(env, login, 'operator', 'Narrow-Pass-1');
    await grantRight(env.deps(), { login, account: 'all', rights: 'manage', actor: 'test' });
    // The payroll account: look, do not send.
    await grantRight(env.deps(), { login, account: narrowed, rights: 'info', actor: 'test' });
    const orders = demoOrders(uniq('n'), '2026-03-02');
    const refused = await operator.request('POST', '/api/v1/orders', orders.find((o) => o.payer.iban === narrowed));
    expect([refused.statusCode, refused.json().code]).toEqual([403, 'ACCOUNT_NOT_ALLOWED']);
    const mixed = orders.filter((o) => o.payer.iban === open).slice(1, 2).concat(orders.filter((o) => o.payer.iban === narrowed).slice(0, 1));
    expect(mixed.map((o) => o.payer.iban)).toEqual([open, narrowed]);
    const batch = await operator.request('POST', '/api/v1/orders', { orders: mixed });
    expect([batch.statusCode, batch.json().code]).toEqual([403, 'ACCOUNT_NOT_ALLOWED']);
    const allowed = await operator.request('POST', '/api/v1/orders', orders.find((o) => o.payer.iban === open));
    expect(allowed.statusCode).toBe(201);
    // Reading the narrowed account stays allowed.
    expect((await operator.request('GET', '/api/v1/orders')).statusCode).toBe(200);
  });
});

describe('R-8: an admin reset does not bring back one of the last 7 passwords either', () => {
  test('resetting a password to the current or an earlier one is 422 REUSED; a new one is set', async () => {
    const admin = await activeUser(env, uniq('resetadmin'), 'admin', 'Reset-Admin-1');
    const login = uniq('resetme');
    // activeUser sets Tmp-Resetme-Pass-1, then the user changes it to Resetme-Pass-1.
    await activeUser(env, login, 'viewer', 'Resetme-Pass-1');
    // An old password may be the one that leaked: whoever knows it would log in first and make the forced change.
    for (const old of ['Tmp-Resetme-Pass-1', 'Resetme-Pass-1']) {
      const res = await admin.request('POST', `/api/v1/users/${login}/reset-password`, { password: old });
      expect([old, res.statusCode, res.json().code]).toEqual([old, 422, 'REUSED']);
    }
    expect((await new Browser(env).login(login, 'Tmp-Resetme-Pass-1')).statusCode).toBe(401);
    expect((await admin.request('POST', `/api/v1/users/${login}/reset-password`, { password: 'Fresh-Reset-9' })).statusCode).toBe(204);
    expect((await new Browser(env).login(login, 'Fresh-Reset-9')).json().mustChangePassword).toBe(true);
  });
});
