import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { openIncident } from '../../connector/incidents/incident.service';
import { startScheduler } from '../../queue/scheduler.runner';
import { bodyOf, startMailServer, type TestMailServer } from '../support/mail-server';

/**
 * The machine's clock stepped back (NTP correcting a clock that ran ahead, a VM restored): the
 * scheduler's leader, waiting after a failed incident mail before it tries again, counted that wait
 * on the wall clock, so the step back was added to it: an hour back, no incident mail for an hour,
 * an unexplained debit or a lockdown included.
 */
describe("the scheduler's incident mail after the clock stepped back (real PostgreSQL, Redis and SMTP server)", () => {
  const login = { user: 'connector@example.kz', password: 'Clock-Jump-Smtp-Secret' };
  let env: TestEnv;
  let context: AppContext;
  let mail: TestMailServer;

  beforeAll(async () => {
    env = await createTestEnv('sched-clock');
    mail = await startMailServer(login);
    const base = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
    const passwordFile = join(env.workDir, 'smtp.password');
    const caFile = join(env.workDir, 'smtp-ca.pem');
    writeFileSync(passwordFile, 'a password the server refuses');
    writeFileSync(caFile, mail.caPem);
    const smtp = { host: '127.0.0.1', port: mail.port, security: 'starttls' as const, from: 'connector@example.kz', user: login.user, passwordFile, caFile, timeoutMs: 5_000 };
    context = { ...base, config: { ...base.config, lockdown: { ...base.config.lockdown, notify: { ...base.config.lockdown.notify, emails: ['ops@example.kz'], smtp, incidentsEveryMs: 1_000 } } } } as AppContext;
  });
  afterAll(async () => {
    jest.restoreAllMocks();
    await mail.close();
    await context.close();
    await env.cleanup();
  });

  it('a failed mail is tried again after its backoff, however far the clock stepped back meanwhile', async () => {
    const scheduler = await startScheduler(context, context.redis, { leaseMs: 3_000 });
    try {
      expect(scheduler.isLeader()).toBe(true);
      const { incident } = await openIncident(context.orm.em.fork(), { kind: 'unexplained_debit', severity: 'critical', title: 'A debit of 1 000 000.00 KZT no order explains', actor: 'test' });
      // The first try: the mail server refuses the login; the next waits 2 periods.
      await eventually(async () => mail.logins.length >= 1, { timeoutMs: 15_000, what: 'the first, refused, try' });
      await new Promise((resolve) => setTimeout(resolve, 300));
      writeFileSync(join(env.workDir, 'smtp.password'), login.password);
      // The clock steps back an hour.
      const realNow = Date.now.bind(Date);
      jest.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);

      await eventually(async () => (mail.received.length === 1 ? true : null), { timeoutMs: 15_000, what: 'the incident e-mail after the backoff' });
      expect(bodyOf(mail.received[0].raw)).toContain(incident.id);
    } finally {
      jest.restoreAllMocks();
      await scheduler.close();
    }
  }, 60_000);
});
