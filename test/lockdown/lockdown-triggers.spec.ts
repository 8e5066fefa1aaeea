import type { FastifyInstance } from 'fastify';
import { buildApiWithExtensions } from '../../connector/api/api.extensions';
import type { Job } from 'bullmq';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { verifyWebhook } from '../../adapters/erp/http/webhook.signature';
import { getIncident, listIncidents, openIncident } from '../../connector/incidents/incident.service';
import { handleSweepOrders } from '../../queue/jobs/sweep-orders.job';
import { fetchAndReconcile } from '../../queue/jobs/fetch-statement.job';
import { createUser, grantRight, resetPassword } from '../../connector/users/user.service';
import { userDeps } from '../../connector/app/user-context';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { lockdownStatusOf, triggerLockdown } from '../../queue/lockdown.trigger';
import { eventually } from '../support/test-env';
import { bodyOf, headerValue, startMailServer } from '../support/mail-server';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { STATUS_FILE } from '../../queue/jobs/write-back.job';
import { join } from 'node:path';
import { demoDocuments, demoOnecExport } from '../../connector/demo/demo-orders';
import { startScheduler } from '../../queue/scheduler.runner';
import { dispatchWebhooks } from '../../queue/jobs/dispatch-webhooks.job';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { sampleOrder } from '../support/orders.fixture';
import { ONEC_SOURCE } from '../../adapters/erp/onec-exchange/onec-exchange.types';
import { startLockdownWorld, type LockdownWorld } from './lockdown.harness';
import { lockdownOnCompromiseCode, lockdownOnRefusalCode } from '../../queue/jobs/pipeline.helpers';
import { BankError } from '../../adapters/bank/business-api/business-api.errors';

/** Issue 16 "Proof": each trigger fires for real, and the lock it causes is the full lockdown. */
describe('lockdown triggers', () => {
  let world: LockdownWorld;
  let api: FastifyInstance;

  beforeAll(async () => {
    // `revoked` (whose certificate the CA's CRL lists) is the first mandated signer here.
    world = await startLockdownWorld('lockdown_triggers', (c) => ({
      ...c,
      signing: { ...c.signing, mandates: [{ login: 'revoked', account: '*', upTo: '100000000' }, ...c.signing.mandates] },
    }));
    api = buildApiWithExtensions(world.context, { users: { signerAgent: { lockUser: async () => ({ locked: true }), unlockKey: async () => ({ ok: false, code: 'X', message: 'x', wrongPassword: false, httpStatus: 502 }), enrollKey: async () => ({}) } } });
    await api.ready();
    for (const login of ['alice', 'bob', 'carol', 'dave']) {
      await createUser(userDeps(world.context), { login, role: login === 'dave' ? 'admin' : 'viewer', password: 'Correct-Horse-9', actor: 'test' });
    }
    // As if each had set their own password already (an admin-set one must be changed first, R-10).
    await world.context.orm.em.fork().execute("update app_user set must_change_password = false where login in ('alice', 'bob', 'carol', 'dave')");
  }, 120_000);
  afterAll(async () => {
    await api?.close();
    await world?.close();
  });
  beforeEach(async () => {
    await world.reset();
  });
  afterEach(async () => {
    await world.stopWorkers();
  });

  const incidentOf = async () => {
    const status = await lockdownStatusOf(world.context);
    expect(status.state).toBe('locked');
    const incident = await getIncident(world.context.orm.em.fork(), status.incidentId!);
    return { status, evidence: incident!.evidence as { trigger: string; scope: string; evidence?: Record<string, unknown> } };
  };
  const login = async (who: string, password: string) => api.inject({ method: 'POST', url: '/api/v1/auth/login', headers: { 'content-type': 'application/json' }, payload: { login: who, password } });

  it('the bank answering "credentials revoked" (sandbox switch) locks down with scope credentials', async () => {
    await world.admin('PUT', '/credentials', { revoked: true });
    try {
      await world.unlock('ceo');
      world.startWorkers();
      await world.intake(['TR-CRED']);
      const { evidence } = await eventually(async () => ((await lockdownStatusOf(world.context)).state === 'locked' ? incidentOf() : null), { timeoutMs: 30_000, what: 'lockdown' });
      expect(evidence.trigger).toBe('bank_credentials_revoked');
      expect(evidence.scope).toBe('credentials');
      for (const queue of world.context.queues.all()) expect(await queue.isPaused()).toBe(true);
    } finally {
      await world.admin('PUT', '/credentials', { revoked: false });
    }
  }, 60_000);

  it.each([
    ['at submit', 'submit', 'TR-REFUSED'],
    ['at execution', 'execution', 'TR-REFUSED-EXEC'],
  ] as const)('the bank refusing a document %s for a compromise reason (sandbox refusal) locks down the credentials, and the order ends rejected', async (_when, at, number) => {
    await world.admin('PUT', '/faults', { refuse: { code: 'CREDENTIALS_COMPROMISED', count: 1, at } });
    try {
      await world.unlock('ceo');
      world.startWorkers();
      const [id] = await world.intake([number]);
      const { evidence } = await eventually(async () => ((await lockdownStatusOf(world.context)).state === 'locked' ? incidentOf() : null), { timeoutMs: 30_000, what: 'lockdown' });
      expect(evidence.trigger).toBe('bank_refused_compromise');
      expect(evidence.scope).toBe('credentials');
      expect(evidence.evidence).toMatchObject({ orderId: id, reasonCode: 'CREDENTIALS_COMPROMISED' });
      expect((await world.states([id]))[id]).toBe('rejected');
    } finally {
      await world.admin('POST', '/faults/reset');
    }
  }, 60_000);

  it('the bank refusing our token for a compromise reason locks down, and the order it was sending is not rejected', async () => {
    await world.admin('PUT', '/faults', { refuse: { code: 'CREDENTIALS_COMPROMISED', count: 1, at: 'token' } });
    // The connector's cached token no longer works: the send gets a 401 and asks for a new one.
    await world.admin('POST', '/tokens/expire');
    try {
      await world.unlock('ceo');
      world.startWorkers();
      const [id] = await world.intake(['TR-TOKEN-REFUSED']);
      const { evidence } = await eventually(async () => ((await lockdownStatusOf(world.context)).state === 'locked' ? incidentOf() : null), { timeoutMs: 30_000, what: 'lockdown' });
      expect(evidence.trigger).toBe('bank_refused_compromise');
      expect(evidence.evidence).toMatchObject({ orderId: id, reasonCode: 'CREDENTIALS_COMPROMISED', operation: 'token' });
      // The bank refused us, not the document: the order is not finished as refused (the ERP would pay it again).
      expect((await world.states([id]))[id]).toBe('submitting');
      const [{ external_id: externalId }] = await world.context.orm.em.fork().execute<Array<{ external_id: string }>>('select external_id from payment_order where id = ?', [id]);
      expect((await world.ledger()).submissions.find((s) => s.externalId === externalId)?.accepted ?? false).toBe(false);
    } finally {
      await world.admin('POST', '/faults/reset');
    }
  }, 60_000);

  it('a compromise code widens a lockdown that held one user to the credentials, and a batch of such refusals engages it once', async () => {
    const em = world.context.orm.em.fork();
    const engaged = await triggerLockdown(world.context, { trigger: 'manual', reason: 'test: one signer reported a lost token', scope: 'user:alice', actor: 'cli:tester' });
    expect(engaged.scope).toBe('user:alice');
    const compromised = async () => (await em.execute<Array<{ revoked_source: string | null }>>('select revoked_source from credential_vault where id = 1'))[0]?.revoked_source ?? null;
    expect(await compromised()).toBeNull();

    // Orders in flight when the lock landed: the bank refuses each for a compromise reason, a poll too.
    const refusals = Array.from({ length: 4 }, (_, i) => ({ orderId: `order-${i}`, reasonCode: 'CREDENTIALS_COMPROMISED' }));
    await Promise.all(refusals.map((evidence) => lockdownOnCompromiseCode(world.context, 'CREDENTIALS_COMPROMISED', `the bank refused ${evidence.orderId}`, evidence)));
    await lockdownOnRefusalCode(world.context, new BankError('AUTH', 'refused', { operation: 'status', httpStatus: 403, bankCode: 'CREDENTIALS_COMPROMISED' }), { orderId: 'order-poll' });
    // A code the configuration does not name locks nothing more.
    await lockdownOnCompromiseCode(world.context, 'INSUFFICIENT_FUNDS', 'the bank refused an order', {});

    const status = await lockdownStatusOf(world.context);
    expect(status).toMatchObject({ state: 'locked', incidentId: engaged.incidentId, scope: 'all' });
    // The Client Secret is now to be rotated before the resolve, as for any credentials lockdown.
    expect(await compromised()).toBe('lockdown');
    const audit = await em.execute<Array<{ action: string; trigger: string }>>(
      "select action, details->>'trigger' as trigger from audit_event where subject = ? and action in ('lockdown.engaged', 'lockdown.retriggered') order by seq",
      [engaged.incidentId],
    );
    // The manual engage, then the bank's code once (whichever refusal came first), not once per order.
    expect(audit).toEqual([
      { action: 'lockdown.engaged', trigger: 'manual' },
      { action: 'lockdown.retriggered', trigger: 'bank_refused_compromise' },
    ]);
  }, 60_000);
  it('a revoked signer certificate (the test CRL) at signing locks down with that user in scope', async () => {
    await grantRight(userDeps(world.context), { login: 'revoked', account: DEMO.payerIban, rights: 'manage', level: 'first', limitTiyn: null, actor: 'test' });
    try {
      await world.unlock('revoked');
      world.startWorkers();
      const [id] = await world.intake(['TR-CERT']);
      const { status, evidence } = await eventually(async () => ((await lockdownStatusOf(world.context)).state === 'locked' ? incidentOf() : null), { timeoutMs: 30_000, what: 'lockdown' });
      expect(evidence.trigger).toBe('certificate_check_failed');
      expect(status.scope).toBe('user:revoked');
      expect(evidence.evidence).toMatchObject({ login: 'revoked', code: 'CERT_REVOKED' });
      await eventually(async () => (await world.states([id]))[id] === 'held', { what: 'the order held' });
      const user = await world.context.orm.em.fork().execute<Array<{ blocked_reason: string | null }>>("select blocked_reason from app_user where login = 'revoked'");
      expect(user[0].blocked_reason).toBe('admin');
    } finally {
      await world.context.orm.em.fork().execute("delete from user_account_right where user_id = (select id from app_user where login = 'revoked')");
    }
  }, 60_000);

  it('brute force through the login API (lock-outs across accounts) locks down', async () => {
    for (const who of ['alice', 'bob']) {
      for (let i = 0; i < 5; i += 1) await login(who, 'wrong-password-1');
    }
    expect((await lockdownStatusOf(world.context)).state).toBe('normal'); // two lock-outs: people forget passwords
    for (let i = 0; i < 5; i += 1) await login('carol', 'wrong-password-1');
    const { status, evidence } = await incidentOf();
    expect(evidence.trigger).toBe('brute_force');
    expect(status.scope).toBe('users');
    expect((evidence.evidence as { logins: string[] }).logins.sort()).toEqual(['alice', 'bob', 'carol']);
  }, 60_000);

  it('brute force: repeated login attempts on a disabled account lock down', async () => {
    await world.context.orm.em.fork().execute("update app_user set blocked_reason = 'admin', blocked_at = now() where login = 'bob'");
    for (let i = 0; i < 2; i += 1) expect((await login('bob', 'Correct-Horse-9')).statusCode).toBe(403);
    expect((await lockdownStatusOf(world.context)).state).toBe('normal');
    await login('bob', 'guess-3');
    const { status, evidence } = await incidentOf();
    expect(evidence.trigger).toBe('brute_force');
    expect(evidence.evidence).toMatchObject({ kind: 'disabled_login', logins: ['bob'], count: 3 });
    // Every user's sessions and keys, not the Client Secret: three requests of a stranger who knows
    // a blocked login must not stop every payment until the bank issues a new pair.
    expect(status.scope).toBe('users');
    const [vault] = await world.context.orm.em.fork().execute<Array<{ revoked_at: Date | null }>>('select revoked_at from credential_vault where id = 1');
    expect(vault.revoked_at).toBeNull();
  }, 60_000);

  it('an unexplained debit (sandbox injection) found by the statement fetch opens its incident, and the maintenance sweep locks down on it', async () => {
    await world.admin('POST', `/accounts/${DEMO.payerIban}/debit`, { amount: '777.00', purpose: 'not ours' });
    const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
    // The real path: the statement fetch reconciles and opens the incident (R-29), the sweep escalates it.
    await fetchAndReconcile(world.context, DEMO.payerIban, today, today);
    const [opened] = await world.context.orm.em.fork().execute<Array<{ id: string; evidence: { amount?: unknown } }>>("select id, evidence from incident where kind = 'unexplained_debit' and status = 'open' and evidence::text like '%777%'");
    expect(opened).toBeDefined();
    expect((await lockdownStatusOf(world.context)).state).toBe('normal');
    const job = { id: 'sweep-debit', attemptsMade: 0 } as unknown as Job;
    expect(await handleSweepOrders({}, world.context, job)).toMatchObject({ escalated: 1 });
    const { status, evidence } = await incidentOf();
    expect(status.state).not.toBe('normal');
    expect(evidence.trigger).toBe('unexplained_debit');
    expect(evidence.evidence).toEqual({ incidentId: opened.id });
  }, 60_000);

  it('a reconciliation incident (execution mismatch) is escalated by the maintenance sweep, once', async () => {
    const { incident } = await openIncident(world.context.orm.em.fork(), { kind: 'execution_mismatch', severity: 'critical', title: 'executed document 17 differs from what was signed', evidence: { orderId: 'x' }, actor: 'system:reconciliation' });
    const job = { id: 'sweep-test', attemptsMade: 0 } as unknown as Job;
    expect(await handleSweepOrders({}, world.context, job)).toMatchObject({ escalated: 1 });
    const { evidence } = await incidentOf();
    expect(evidence.trigger).toBe('execution_mismatch');
    expect(evidence.evidence).toEqual({ incidentId: incident.id });
    expect(await handleSweepOrders({}, world.context, job)).toMatchObject({ escalated: 0 });
  }, 60_000);

  it('1C intake stays open under lockdown: the scheduler takes the outbox file, the orders wait as held', async () => {
    await triggerLockdown(world.context, { trigger: 'manual', reason: 'test: intake while locked', scope: 'all' });
    const scheduler = await startScheduler(world.context, world.context.redis, { leaseMs: 3_000 });
    try {
      const run = String(Date.now()).slice(-7);
      const docs = demoDocuments(run);
      const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
      mkdirSync(world.config.onec.outboxDir, { recursive: true });
      const tmp = join(world.config.onec.outboxDir, `.tmp-${run}`);
      writeFileSync(tmp, demoOnecExport(docs, today));
      renameSync(tmp, join(world.config.onec.outboxDir, `1c_to_kl_${run}.txt`));
      const rows = await eventually(
        async () => {
          const found = await world.context.orm.em.fork().execute<Array<{ state: string }>>('select state from payment_order where source = ? and number like ?', [ONEC_SOURCE, `${run}%`]);
          // Stored, then held by the same intake a moment later: wait for the second step too.
          return found.length === docs.length && found.every((r) => r.state !== 'received') ? found : null;
        },
        { timeoutMs: 20_000, what: 'the 1C orders stored and held' },
      );
      expect(rows.map((r) => r.state)).toEqual(docs.map(() => 'held'));
      // 1C learns that they are held (its only way back is the status report; the write-back queue is paused).
      const held = await eventually(
        async () => {
          const path = join(world.config.onec.inboxDir, STATUS_FILE);
          if (!existsSync(path)) return null;
          const states = parseOnecExchange(readFileSync(path)).documents.filter((d) => d.order.number.startsWith(run)).map((d) => d.order.raw['КодСтатуса']);
          return states.length === docs.length ? states : null;
        },
        { timeoutMs: 20_000, what: 'the held orders in the 1C status report' },
      );
      expect(held).toEqual(docs.map(() => 'held'));
    } finally {
      await scheduler.close();
    }
  }, 60_000);

  it('an HTTP ERP learns by its status webhook that its orders are held, while the lockdown lasts', async () => {
    const received: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        received.push(body);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const secretFile = join(world.env.workDir, 'erp-webhook.secret');
    writeFileSync(secretFile, 'erp-hook-secret\n', { mode: 0o600 });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/erp`;
    const context = { ...world.context, config: { ...world.config, webhooks: { ...world.config.webhooks, url, secretFile } } };
    let scheduler: Awaited<ReturnType<typeof startScheduler>> | undefined;
    try {
      const run = String(Date.now()).slice(-7);
      const [order] = await intakeOrders(world.context.orm.em.fork(), 'api:erp', [{ order: sampleOrder({ number: `WH-${run}` }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
      await transitionOrder(world.context.orm.em.fork(), order.orderId, 'validated', { actor: 't' });
      await dispatchWebhooks(context, world.context.redis);
      await triggerLockdown(world.context, { trigger: 'manual', reason: 'test: webhooks while locked', scope: 'all' });
      scheduler = await startScheduler(context, world.context.redis, { leaseMs: 3_000 });
      const held = await eventually(async () => received.map((b) => JSON.parse(b) as { orderId: string; state: string }).find((b) => b.orderId === order.orderId && b.state === 'held') ?? null, {
        timeoutMs: 20_000,
        what: 'the held status webhook',
      });
      expect(held).toMatchObject({ previousState: 'validated' });
    } finally {
      await scheduler?.close();
      server.close();
    }
  }, 60_000);

  it('alerts admins by a signed webhook when one is configured', async () => {
    const received: Array<{ body: string; ts: string; sig: string }> = [];
    let down = false;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        if (down) return void res.writeHead(503).end();
        received.push({ body, ts: String(req.headers['x-connector-timestamp']), sig: String(req.headers['x-connector-signature']) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const secretFile = join(world.env.workDir, 'admin-webhook.secret');
      writeFileSync(secretFile, 'admin-hook-secret\n', { mode: 0o600 });
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const context = { ...world.context, config: { ...world.config, lockdown: { ...world.config.lockdown, notify: { ...world.config.lockdown.notify, webhookUrl: url, webhookSecretFile: secretFile } } } };
      const result = await triggerLockdown(context, { trigger: 'manual', reason: 'test: webhook', scope: 'user:alice' });
      expect(result.warnings).toEqual([]);
      expect(received).toHaveLength(1);
      expect(verifyWebhook('admin-hook-secret', received[0].ts, received[0].body, received[0].sig, new Date())).toBe(true);
      expect(JSON.parse(received[0].body)).toMatchObject({ event: 'lockdown.engaged', incidentId: result.incidentId, trigger: 'manual', scope: 'user:alice' });
      // The same lockdown found again (another worker process meeting the same refusal, a second
      // report): in the timeline and the audit log, not another alert.
      await triggerLockdown(context, { trigger: 'manual', reason: 'test: webhook again', scope: 'user:alice' });
      expect(received).toHaveLength(1);
      // Its scope widened: the admins hear of it.
      await triggerLockdown(context, { trigger: 'manual', reason: 'test: the Client Secret too', scope: 'credentials' });
      expect(received).toHaveLength(2);
      expect(JSON.parse(received[1].body)).toMatchObject({ event: 'lockdown.engaged', incidentId: result.incidentId, scope: 'all' });
      // A new trigger whose alert reached nobody (the webhook down) is alerted again by the next engage.
      down = true;
      const lost = await triggerLockdown(context, { trigger: 'unexplained_debit', reason: 'test: a debit nobody ordered', scope: 'all' });
      expect(lost.warnings.join(' ')).toMatch(/webhook/);
      down = false;
      await triggerLockdown(context, { trigger: 'unexplained_debit', reason: 'test: the same debit seen again', scope: 'all' });
      expect(received).toHaveLength(3);
      expect(JSON.parse(received[2].body)).toMatchObject({ trigger: 'unexplained_debit' });
      await triggerLockdown(context, { trigger: 'unexplained_debit', reason: 'test: and again', scope: 'all' });
      expect(received).toHaveLength(3);
    } finally {
      server.close();
    }
  });

  it('never signs the admins\' notice with an empty secret or one others may read: nothing is sent, the warning names the key and the file', async () => {
    const received: string[] = [];
    const server = createServer((req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        received.push(String(req.headers['x-connector-signature']));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const empty = join(world.env.workDir, 'admin-webhook-empty.secret');
      writeFileSync(empty, '\n', { mode: 0o600 });
      const loose = join(world.env.workDir, 'admin-webhook-loose.secret');
      writeFileSync(loose, 'admin-loose-secret\n');
      chmodSync(loose, 0o644);
      // The admins' own file unset: the ERP's webhooks.secretFile is the one used, and named as such.
      const withFiles = (own: string | undefined, shared: string | undefined) => ({
        ...world.context,
        config: { ...world.config, webhooks: { ...world.config.webhooks, secretFile: shared }, lockdown: { ...world.config.lockdown, notify: { ...world.config.lockdown.notify, webhookUrl: url, webhookSecretFile: own } } },
      });
      const first = await triggerLockdown(withFiles(undefined, empty), { trigger: 'manual', reason: 'test: empty secret', scope: 'user:alice' });
      expect(first.warnings).toContainEqual(expect.stringMatching(new RegExp(`^admins were not alerted by webhook: webhooks\\.secretFile \\(lockdown\\.notify\\.webhookSecretFile unset\\) ${empty.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is empty`)));
      const second = await triggerLockdown(withFiles(loose, undefined), { trigger: 'unexplained_debit', reason: 'test: loose secret', scope: 'all' });
      expect(second.warnings).toContainEqual(expect.stringMatching(/^admins were not alerted by webhook: lockdown\.notify\.webhookSecretFile .* may be read by group or others \(mode 0644\).*chmod 600/));
      expect(received).toEqual([]);
      expect(JSON.stringify([first, second])).not.toContain('admin-loose-secret');
    } finally {
      server.close();
    }
  });

  it('e-mails the admins the bank checklist through the configured SMTP server (login over TLS only)', async () => {
    const login = { user: 'connector@example.kz', password: 'Smtp-Secret-For-Lockdown' };
    const mail = await startMailServer(login);
    try {
      const passwordFile = join(world.env.workDir, 'smtp.password');
      const caFile = join(world.env.workDir, 'smtp-ca.pem');
      writeFileSync(passwordFile, `${login.password}\n`);
      writeFileSync(caFile, mail.caPem);
      const smtp = { host: '127.0.0.1', port: mail.port, security: 'starttls' as const, from: 'connector@example.kz', user: login.user, passwordFile, caFile, timeoutMs: 5_000 };
      const notify = { ...world.config.lockdown.notify, emails: ['ops@example.kz', 'cfo@example.kz'], smtp };
      const context = { ...world.context, config: { ...world.config, lockdown: { ...world.config.lockdown, notify } } };
      // A reason with line breaks (a person's report) stays one line in the status and the e-mail.
      const result = await triggerLockdown(context, { trigger: 'manual', reason: 'test:\r\ne-mail', scope: 'credentials' });
      expect((await lockdownStatusOf(world.context)).reason).toBe('test: e-mail');
      expect(result.warnings).toEqual([]);
      expect(mail.logins).toEqual([{ ...login, secure: true }]);
      expect(mail.received).toHaveLength(1);
      const [message] = mail.received;
      expect(message.to).toEqual(['ops@example.kz', 'cfo@example.kz']);
      expect(headerValue(message.raw, 'subject')).toBe(`LOCKDOWN: the bank connector stopped itself; call the bank before ${result.checklist?.deadline} (test: e-mail)`);
      const body = bodyOf(message.raw);
      for (const phone of ['+7 7172 770 622', '+7 800 080 0711', '7711']) expect(body).toContain(phone);
      expect(body).toContain(`incident: ${result.incidentId}`);
      expect(body).toContain('connector credentials rotate');
      // The incident's timeline says who was alerted; the SMTP password is nowhere in it.
      const incident = await getIncident(world.context.orm.em.fork(), result.incidentId);
      expect(JSON.stringify(incident)).toContain('admins alerted (manual): e-mail to ops@example.kz, cfo@example.kz');
      // Told: the incident digest does not mail it again.
      const [told] = await world.context.orm.em.fork().execute<Array<{ alerted_at: Date | null }>>('select alerted_at from incident where id = ?', [result.incidentId]);
      expect(told.alerted_at).not.toBeNull();

      // A mail server that refuses the login (a second trigger): the warning says so, and neither it
      // nor the incident nor the lockdown record names the password.
      const wrongFile = join(world.env.workDir, 'smtp.wrong');
      writeFileSync(wrongFile, 'Wrong-Lockdown-Smtp-Secret\n');
      const broken = { ...context, config: { ...context.config, lockdown: { ...context.config.lockdown, notify: { ...notify, smtp: { ...smtp, passwordFile: wrongFile } } } } };
      const again = await triggerLockdown(broken, { trigger: 'manual', reason: 'test: e-mail refused', scope: 'all' });
      expect(again.warnings).toEqual([expect.stringMatching(new RegExp(`^admins' e-mail not sent \\(SMTP 127\\.0\\.0\\.1:${mail.port}: EAUTH .*\\); call them$`))]);
      const records = JSON.stringify([again, await getIncident(world.context.orm.em.fork(), again.incidentId), await lockdownStatusOf(world.context)]);
      for (const secret of ['Wrong-Lockdown-Smtp-Secret', Buffer.from('Wrong-Lockdown-Smtp-Secret').toString('base64'), login.password]) expect(records).not.toContain(secret);
    } finally {
      await mail.close();
    }
  });

  it('says, as a warning of the lockdown, that admins listed for e-mail got none when no SMTP server is configured', async () => {
    const notify = { ...world.config.lockdown.notify, emails: ['ops@example.kz'], smtp: undefined };
    const context = { ...world.context, config: { ...world.config, lockdown: { ...world.config.lockdown, notify } } };
    const result = await triggerLockdown(context, { trigger: 'manual', reason: 'test: no smtp', scope: 'all' });
    expect(result.warnings).toEqual(['lockdown.notify.emails is set but lockdown.notify.smtp is not: no e-mail was sent to the 1 admin(s); call them']);
    expect((await lockdownStatusOf(world.context)).warnings).toEqual(result.warnings);
  });

  it('a trigger configured `alert` raises an incident and locks nothing', async () => {
    const context = { ...world.context, config: { ...world.config, lockdown: { ...world.config.lockdown, triggers: { ...world.config.lockdown.triggers, unexplained_debit: 'alert' as const } } } };
    const result = await triggerLockdown(context, { trigger: 'unexplained_debit', reason: 'alert only', scope: 'all' });
    expect(result.engaged).toBe(false);
    expect((await lockdownStatusOf(world.context)).state).toBe('normal');
    for (const queue of world.context.queues.all()) expect(await queue.isPaused()).toBe(false);
    const incident = await getIncident(world.context.orm.em.fork(), result.incidentId);
    expect(incident?.kind).toBe('security_alert');
  });

  it('a person reports over the API; GET /api/v1/lockdown shows the lock; only an admin resolves', async () => {
    const res = await login('dave', 'Correct-Horse-9');
    expect(res.statusCode).toBe(200);
    const adminCookie = String(res.headers['set-cookie']).split(';')[0];
    const viewer = await login('alice', 'Correct-Horse-9');
    const viewerCookie = String(viewer.headers['set-cookie']).split(';')[0];
    const report = await api.inject({ method: 'POST', url: '/api/v1/incidents', headers: { 'content-type': 'application/json', cookie: viewerCookie }, payload: { what: 'client_secret', description: 'I pasted the Client Secret into a public chat' } });
    expect(report.statusCode).toBe(201);
    const body = report.json() as { incident: { id: string }; lockdown: { scope: string } };
    expect(body.lockdown.scope).toBe('credentials');
    // The viewer's session ended with everyone's; the admin logs in again and reads the state.
    const again = await login('dave', 'Correct-Horse-9');
    const cookie = String(again.headers['set-cookie']).split(';')[0];
    expect(cookie).not.toBe(adminCookie);
    const state = await api.inject({ method: 'GET', url: '/api/v1/lockdown', headers: { cookie } });
    expect(state.statusCode).toBe(200);
    expect(Object.keys(state.json())).toEqual(['state', 'since', 'reason', 'scope', 'incidentId', 'heldOrders', 'warnings']);
    expect(state.json()).toMatchObject({ state: 'locked', scope: 'credentials', incidentId: body.incident.id });
    // No key is unlocked again while locked down.
    const unlock = await api.inject({ method: 'POST', url: '/api/v1/me/key/unlock', headers: { 'content-type': 'application/json', cookie }, payload: { password: 'anything' } });
    expect(unlock.statusCode).toBe(423);
    expect(unlock.json().code).toBe('LOCKED_DOWN');
    const list = await api.inject({ method: 'GET', url: '/api/v1/incidents', headers: { cookie } });
    expect((list.json() as { incidents: Array<{ id: string }> }).incidents.map((i) => i.id)).toContain(body.incident.id);
    const bob = await login('carol', 'Correct-Horse-9');
    const bobCookie = String(bob.headers['set-cookie']).split(';')[0];
    const refused = await api.inject({ method: 'POST', url: `/api/v1/incidents/${body.incident.id}/resolve`, headers: { 'content-type': 'application/json', cookie: bobCookie }, payload: {} });
    expect(refused.statusCode).toBe(403);
    const missing = await api.inject({ method: 'POST', url: `/api/v1/incidents/${body.incident.id}/resolve`, headers: { 'content-type': 'application/json', cookie }, payload: { bankReference: 'ACB-1' } });
    expect(missing.statusCode).toBe(422);
    // An HTTP client is told the JSON field it must send, not a CLI flag.
    expect((missing.json() as { details: { missing: string[] } }).details.missing).toEqual([expect.stringMatching(/give bankNotifiedAt \(an ISO time\)/), expect.stringMatching(/Client Secret rotation/)]);
    expect(missing.json().message).not.toMatch(/--bank/);
  }, 60_000);

  it("resolves a lockdown over HTTP with the README's body {note, bankNotifiedAt, bankReference}; what is missing is named by its JSON field", async () => {
    // A viewer's password leaked: scope user:bob (no signing rights, so no EDS step), bob blocked.
    const bob = await login('bob', 'Correct-Horse-9');
    const report = await api.inject({ method: 'POST', url: '/api/v1/incidents', headers: { 'content-type': 'application/json', cookie: String(bob.headers['set-cookie']).split(';')[0] }, payload: { what: 'password', description: 'typed it into a phishing page' } });
    expect(report.statusCode).toBe(201);
    const id = (report.json() as { incident: { id: string } }).incident.id;
    expect((await lockdownStatusOf(world.context)).scope).toBe('user:bob');
    const cookie = String((await login('dave', 'Correct-Horse-9')).headers['set-cookie']).split(';')[0];
    const resolve = (payload: Record<string, string>) => api.inject({ method: 'POST', url: `/api/v1/incidents/${id}/resolve`, headers: { 'content-type': 'application/json', cookie }, payload });

    const noteOnly = await resolve({ note: 'password reset, bank not called yet' });
    expect([noteOnly.statusCode, noteOnly.json().code]).toEqual([422, 'LOCKDOWN_STEPS_MISSING']);
    // The leaked password is a step too (R-29, R-30): unblocked with it, whoever read it logs in as bob.
    const passwordStep = expect.stringMatching(/^password of bob: it was reported leaked; set a new one before bob is unblocked \(connector users reset-password bob --password-stdin/);
    expect(noteOnly.json().details.missing).toEqual([
      expect.stringMatching(/^bank notification: give bankNotifiedAt \(an ISO time\), when the bank was told/),
      expect.stringMatching(/^bank notification: give bankReference, the bank's reference/),
      passwordStep,
    ]);
    expect(noteOnly.json().message).not.toMatch(/--bank/);
    const notIso = await resolve({ note: 'x', bankNotifiedAt: 'yesterday', bankReference: 'ACB-7' });
    expect(notIso.json().details.missing).toEqual([expect.stringMatching(/^bank notification: bankNotifiedAt "yesterday" is not an ISO time/), passwordStep]);
    const untouched = await resolve({ note: 'the bank blocked his access', bankNotifiedAt: new Date(Date.now() - 60_000).toISOString(), bankReference: 'ACB-7' });
    expect([untouched.statusCode, untouched.json().details.missing]).toEqual([422, [passwordStep]]);
    expect((await lockdownStatusOf(world.context)).state).toBe('locked');
    // An admin sets bob a new password (bob changes it at his next login).
    await resetPassword(userDeps(world.context), { login: 'bob', password: 'Fresh-Horse-17', actor: 'test' });

    const done = await resolve({ note: 'bob changed his password; the bank blocked his access meanwhile', bankNotifiedAt: new Date(Date.now() - 60_000).toISOString(), bankReference: 'ACB-7' });
    expect(done.statusCode).toBe(200);
    expect(done.json()).toMatchObject({ incidentId: id, lockdown: { state: 'normal' } });
    const incident = await getIncident(world.context.orm.em.fork(), id);
    expect(incident?.status).toBe('resolved');
    expect(incident?.timeline.map((t) => t.text)).toContainEqual(expect.stringMatching(/^resolved: bob changed his password; the bank blocked his access meanwhile; /));
    const [audit] = await world.context.orm.em.fork().execute<Array<{ details: { note: string; bankReference: string } }>>("select details from audit_event where action = 'lockdown.resolved' and subject = ?", [id]);
    expect(audit.details).toMatchObject({ note: 'bob changed his password; the bank blocked his access meanwhile', bankReference: 'ACB-7' });
  }, 60_000);

  it('GET /api/v1/incidents: all newest first, or pages with every incident once through nextCursor, ties on the moment included; bad cursors and limits are 400', async () => {
    const at = new Date('2026-01-15T10:00:00Z');
    for (const [k, moment] of [at, at, at, new Date(at.getTime() - 60_000), new Date(at.getTime() + 60_000)].entries()) {
      await openIncident(world.context.orm.em.fork(), { kind: 'statement_gap', severity: 'medium', title: `paging ${k}`, actor: 'test', now: moment });
    }
    const res = await login('dave', 'Correct-Horse-9');
    const cookie = String(res.headers['set-cookie']).split(';')[0];
    const all = (await listIncidents(world.context.orm.em.fork())).map((i) => i.id);
    expect(all.length).toBeGreaterThanOrEqual(5);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await api.inject({ method: 'GET', url: `/api/v1/incidents?limit=2${cursor ? `&cursor=${cursor}` : ''}`, headers: { cookie } });
      expect(page.statusCode).toBe(200);
      const body = page.json() as { incidents: Array<{ id: string }>; nextCursor: string | null };
      expect(body.incidents.length).toBeLessThanOrEqual(2);
      seen.push(...body.incidents.map((i) => i.id));
      cursor = body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(all);
    const whole = (await api.inject({ method: 'GET', url: '/api/v1/incidents', headers: { cookie } })).json() as { incidents: Array<{ id: string }>; nextCursor: string | null };
    expect([whole.incidents.map((i) => i.id), whole.nextCursor]).toEqual([all, null]);
    const open = (await api.inject({ method: 'GET', url: '/api/v1/incidents?status=open', headers: { cookie } })).json() as { incidents: Array<{ status: string }>; nextCursor: string | null };
    expect(open.incidents.every((i) => i.status === 'open')).toBe(true);
    const hyphens = Buffer.from(`${at.toISOString()}|${'-'.repeat(36)}`).toString('base64url');
    for (const bad of ['cursor=bm90LWEtY3Vyc29y', `cursor=${hyphens}`, 'limit=0', 'limit=501', 'status=closed']) {
      const refused = await api.inject({ method: 'GET', url: `/api/v1/incidents?${bad}`, headers: { cookie } });
      expect([bad, refused.statusCode, refused.json().code]).toEqual([bad, 400, 'INVALID_REQUEST']);
    }
  });
});
