import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { openIncident } from '../../connector/incidents/incident.service';
import { mailIncidentAlerts, mailIncidentReminders } from '../../queue/incident-alerts';
import { startScheduler } from '../../queue/scheduler.runner';
import { bodyOf, headerValue, startMailServer, type TestMailServer } from '../support/mail-server';

/** New incidents reach the admins by e-mail, each once, through a real SMTP server on loopback. */
describe('incident alerts by e-mail (real PostgreSQL, Redis and SMTP server)', () => {
  const login = { user: 'connector@example.kz', password: 'Incident-Smtp-Secret' };
  let env: TestEnv;
  let context: AppContext;
  let mail: TestMailServer;
  let withMail: AppContext;
  let passwordFile: string;

  beforeAll(async () => {
    env = await createTestEnv('incident-alerts');
    context = await createAppContext({ config: env.config, role: 'worker' });
    mail = await startMailServer(login);
    passwordFile = join(env.workDir, 'smtp.password');
    const caFile = join(env.workDir, 'smtp-ca.pem');
    writeFileSync(passwordFile, login.password);
    writeFileSync(caFile, mail.caPem);
    const smtp = { host: '127.0.0.1', port: mail.port, security: 'starttls' as const, from: 'connector@example.kz', user: login.user, passwordFile, caFile, timeoutMs: 5_000 };
    withMail = withNotify(context, { emails: ['ops@example.kz'], smtp, incidentsEveryMs: 1_000 });
  });
  afterAll(async () => {
    await mail.close();
    await context.close();
    await env.cleanup();
  });
  beforeEach(async () => {
    await context.orm.em.fork().execute('delete from incident');
    mail.received.length = 0;
  });

  function withNotify(base: AppContext, notify: Partial<AppContext['config']['lockdown']['notify']>): AppContext {
    return { ...base, config: { ...base.config, lockdown: { ...base.config.lockdown, notify: { ...base.config.lockdown.notify, ...notify } } } } as AppContext;
  }
  const open = (kind: string, title: string, severity: 'low' | 'medium' | 'high' | 'critical' = 'high', deadlineAt?: Date) =>
    openIncident(context.orm.em.fork(), { kind, severity, title, actor: 'test', ...(deadlineAt ? { deadlineAt } : {}) });

  it('mails the open incidents in one digest, each once; the lockdown\'s own and resolved ones are left out', async () => {
    const gap = await open('statement_gap', 'Statement gap on KZ12 between 2026-11-24 and 2026-11-25', 'high');
    const debit = await open('unexplained_debit', 'A debit of 1 000 000.00 KZT no order explains', 'critical', new Date('2026-11-30T12:00:00Z'));
    await open('security_alert', 'alert-only trigger (mailed by the lockdown notice)');
    const resolved = await open('status_overdue', 'already handled', 'medium');
    await context.orm.em.fork().execute("update incident set status = 'resolved' where id = ?", [resolved.incident.id]);

    expect(await mailIncidentAlerts(withMail)).toEqual({ status: 'sent', incidents: 2, more: false, rejected: [] });
    expect(mail.received).toHaveLength(1);
    const [message] = mail.received;
    expect(message.to).toEqual(['ops@example.kz']);
    expect(headerValue(message.raw, 'subject')).toBe('2 new incidents, the worst critical: A debit of 1 000 000.00 KZT no order explains');
    const body = bodyOf(message.raw);
    expect(body).toContain(`connector incidents show ${gap.incident.id}`);
    expect(body).toContain(`connector incidents show ${debit.incident.id}`);
    expect(body).toContain('act before 2026-11-30T12:00:00.000Z');
    expect(body).not.toContain('alert-only trigger');
    expect(body).not.toContain('already handled');

    // Told once: a second run finds nothing; a repeat of the same incident (dedupe) is not new.
    expect(await mailIncidentAlerts(withMail)).toEqual({ status: 'none' });
    await openIncident(context.orm.em.fork(), { kind: 'statement_gap', severity: 'high', title: 'again', actor: 'test', dedupeKey: 'k1' });
    await openIncident(context.orm.em.fork(), { kind: 'statement_gap', severity: 'high', title: 'again', actor: 'test', dedupeKey: 'k1' });
    expect(await mailIncidentAlerts(withMail)).toMatchObject({ status: 'sent', incidents: 1 });
    expect(await mailIncidentAlerts(withMail)).toEqual({ status: 'none' });
    expect(mail.received).toHaveLength(2);
  });

  it('takes a lockdown incident only when its own notice did not get through (untold after the grace)', async () => {
    const told = await open('lockdown', 'Lockdown: told by its notice', 'critical');
    await context.orm.em.fork().execute('update incident set alerted_at = now() where id = ?', [told.incident.id]);
    const fresh = await open('lockdown', 'Lockdown: its notice may still be on its way', 'critical');
    const missed = await open('security_alert', 'Alert-only trigger whose notice failed', 'high');
    await context.orm.em.fork().execute("update incident set opened_at = now() - interval '10 minutes' where id in (?, ?)", [missed.incident.id, told.incident.id]);
    expect(await mailIncidentAlerts(withMail)).toMatchObject({ status: 'sent', incidents: 1 });
    const body = bodyOf(mail.received[0].raw);
    expect(body).toContain(missed.incident.id);
    expect(body).not.toContain(told.incident.id);
    expect(body).not.toContain(fresh.incident.id);
  });

  it('the migration marks the incidents that exist at the upgrade as told (no backlog in the inbox)', async () => {
    const old = await open('statement_gap', 'from before e-mail alerts');
    const migrator = context.orm.getMigrator();
    await migrator.down({ to: 'Migration20261126030000_incident_alerts' });
    await migrator.up();
    const [row] = await context.orm.em.fork().execute<Array<{ alerted_at: Date | null; opened_at: Date }>>('select alerted_at, opened_at from incident where id = ?', [old.incident.id]);
    expect(row.alerted_at).toEqual(row.opened_at);
    expect(await mailIncidentAlerts(withMail)).toEqual({ status: 'none' });
  });

  it('keeps an incident for the next run when the mail server refuses, and never names the password', async () => {
    const wrongFile = join(env.workDir, 'smtp.wrong');
    writeFileSync(wrongFile, 'Wrong-Incident-Secret');
    const broken = withNotify(withMail, { smtp: { ...(withMail.config.lockdown.notify.smtp as NonNullable<AppContext['config']['lockdown']['notify']['smtp']>), passwordFile: wrongFile } });
    const { incident } = await open('executed_missing_from_statement', 'Executed order 17 missing from the closed day statement');
    const failed = await mailIncidentAlerts(broken);
    expect(failed).toMatchObject({ status: 'failed', incidents: 1 });
    if (failed.status === 'failed') expect(failed.error).not.toContain('Wrong-Incident-Secret');
    expect(mail.received).toEqual([]);
    const [row] = await context.orm.em.fork().execute<Array<{ alerted_at: Date | null }>>('select alerted_at from incident where id = ?', [incident.id]);
    expect(row.alerted_at).toBeNull();
    expect(await mailIncidentAlerts(withMail)).toMatchObject({ status: 'sent', incidents: 1 });
    expect(bodyOf(mail.received[0].raw)).toContain(incident.id);
  });

  it('does nothing without admins or a mail server', async () => {
    await open('statement_gap', 'nobody to tell');
    expect(await mailIncidentAlerts(withNotify(context, { emails: [], smtp: undefined }))).toEqual({ status: 'disabled' });
    expect(await mailIncidentAlerts(withNotify(withMail, { smtp: undefined }))).toEqual({ status: 'disabled' });
  });

  it('two runners at once mail each incident once', async () => {
    await open('statement_unbalanced', 'Opening + lines != closing on KZ34');
    const results = await Promise.all([mailIncidentAlerts(withMail), mailIncidentAlerts(withMail)]);
    // One sends; the other finds the lock held ('busy') or, should it come after the commit, nothing new.
    expect(results.filter((r) => r.status === 'sent')).toHaveLength(1);
    expect(results.filter((r) => r.status !== 'sent').map((r) => r.status)).toEqual([expect.stringMatching(/^(busy|none)$/)]);
    expect(mail.received).toHaveLength(1);
  });

  describe('reminders (R-17, R-27, R-29: "records and reminds")', () => {
    // The reminders' clock: a Wednesday, 11:00 in Almaty, unless a test moves it (half-time reminders wait for a business day's morning).
    let base = Date.parse('2026-11-25T06:00:00Z');
    const hours = (n: number) => new Date(base + n * 3_600_000);
    const remindNow = () => mailIncidentReminders({ ...withMail, clock: { now: () => new Date(base) } } as AppContext);
    beforeEach(() => {
      base = Date.parse('2026-11-25T06:00:00Z');
    });
    /** An incident told `toldHoursAgo` ago, opened `openedHoursAgo` ago, its deadline `deadlineInHours` from now. */
    async function told(title: string, openedHoursAgo: number, toldHoursAgo: number, deadlineInHours: number | null) {
      const { incident } = await open('authority_revoked', title, 'high', deadlineInHours === null ? undefined : hours(deadlineInHours));
      await context.orm.em.fork().execute('update incident set opened_at = ?, alerted_at = ? where id = ?', [hours(-openedHoursAgo), hours(-toldHoursAgo), incident.id]);
      return incident.id;
    }
    const reminders = async (id: string) => (await context.orm.em.fork().execute<Array<{ reminders: number }>>('select reminders from incident where id = ?', [id]))[0].reminders;

    it('mails an open incident again when half its time is gone, once more when the deadline passed, and then no more', async () => {
      const id = await told('Tell the bank that a.seitkali lost authority', 20, 19, 4);
      await told('Not yet half-way', 2, 2, 20);
      await told('No deadline', 30, 29, null);
      const done = await told('Resolved', 20, 19, 4);
      await context.orm.em.fork().execute("update incident set status = 'resolved' where id = ?", [done]);

      expect(await remindNow()).toEqual({ status: 'sent', incidents: 1, more: false, rejected: [] });
      expect(headerValue(mail.received[0].raw, 'subject')).toBe('Reminder: an incident has half the time to act left, the first: Tell the bank that a.seitkali lost authority');
      expect(bodyOf(mail.received[0].raw)).toMatch(new RegExp(`in about 4 h\\)[\\s\\S]*connector incidents show ${id}`));
      expect(await reminders(id)).toBe(1);
      expect(await remindNow()).toEqual({ status: 'none' });

      await context.orm.em.fork().execute('update incident set deadline_at = ? where id = ?', [hours(-3), id]);
      expect(await remindNow()).toMatchObject({ status: 'sent', incidents: 1 });
      expect(headerValue(mail.received[1].raw, 'subject')).toBe('Reminder: an incident is past the deadline, the first: Tell the bank that a.seitkali lost authority');
      expect(bodyOf(mail.received[1].raw)).toContain('passed 3 h ago');
      expect(await reminders(id)).toBe(2);
      expect(await remindNow()).toEqual({ status: 'none' });
      expect(mail.received).toHaveLength(2);
    });

    it('an incident overdue before anyone was told gets the overdue reminder only, not the half-time one first; one first told when already overdue gets none', async () => {
      const slept = await told('The scheduler was down past half-time and the deadline', 30, 29, -2);
      await told('First told after its deadline', 30, 1, -2);
      expect(await remindNow()).toMatchObject({ status: 'sent', incidents: 1 });
      expect(headerValue(mail.received[0].raw, 'subject')).toMatch(/^Reminder: an incident is past the deadline, the first: The scheduler was down/);
      expect(await reminders(slept)).toBe(2);
      expect(await remindNow()).toEqual({ status: 'none' });
    });

    it('a half-time reminder due at the weekend waits for Monday 09:00 in Almaty; an overdue one goes at once', async () => {
      base = Date.parse('2026-11-29T06:00:00Z'); // Sunday, 11:00 in Almaty
      const half = await told('Found on Friday evening, due Monday 17:00', 40, 39, 30);
      const late = await told('Due on Saturday', 60, 59, -20);
      expect(await remindNow()).toMatchObject({ status: 'sent', incidents: 1 });
      expect(await reminders(late)).toBe(2);
      expect(await reminders(half)).toBe(0);
      base = Date.parse('2026-11-30T03:59:00Z'); // Monday, 08:59
      expect(await remindNow()).toEqual({ status: 'none' });
      base = Date.parse('2026-11-30T04:00:00Z'); // Monday, 09:00
      expect(await remindNow()).toMatchObject({ status: 'sent', incidents: 1 });
      expect(await reminders(half)).toBe(1);
    });

    it('the migration counts the incidents that exist at the upgrade as reminded as far as they already are (no backlog of reminders)', async () => {
      // The migration reads the database's clock.
      base = Date.now();
      const overdue = await told('Overdue before the upgrade', 30, 29, -2);
      const halfway = await told('Half-way before the upgrade', 20, 19, 4);
      const early = await told('Early at the upgrade', 2, 2, 20);
      const migrator = context.orm.getMigrator();
      await migrator.down({ to: 'Migration20261127010000_execution_mismatch_per_line' });
      await migrator.up();
      expect([await reminders(overdue), await reminders(halfway), await reminders(early)]).toEqual([2, 1, 0]);
      expect(await remindNow()).toEqual({ status: 'none' });
    });

    it('keeps a reminder for the next run when the mail server refuses', async () => {
      const wrongFile = join(env.workDir, 'smtp.wrong-reminder');
      writeFileSync(wrongFile, 'Wrong-Reminder-Secret');
      const broken = withNotify(withMail, { smtp: { ...(withMail.config.lockdown.notify.smtp as NonNullable<AppContext['config']['lockdown']['notify']['smtp']>), passwordFile: wrongFile } });
      const id = await told('Notify the bank of an erroneous execution', 40, 39, 10);
      expect(await mailIncidentReminders({ ...broken, clock: { now: () => new Date(base) } } as AppContext)).toMatchObject({ status: 'failed', incidents: 1 });
      expect(await reminders(id)).toBe(0);
      expect(await remindNow()).toMatchObject({ status: 'sent', incidents: 1 });
    });
  });

  it('the scheduler\'s leader mails new incidents on its own, also under lockdown when every queue is paused', async () => {
    for (const queue of context.queues.all()) await queue.pause();
    const scheduler = await startScheduler(withMail, context.redis, { leaseMs: 3_000 });
    try {
      expect(scheduler.isLeader()).toBe(true);
      const { incident } = await open('credentials_revoked', 'The bank refused our Client ID / Secret (401)', 'critical');
      await eventually(async () => (mail.received.length === 1 ? true : null), { timeoutMs: 15_000, what: 'the incident e-mail' });
      expect(bodyOf(mail.received[0].raw)).toContain(incident.id);
    } finally {
      await scheduler.close();
      for (const queue of context.queues.all()) await queue.resume();
    }
  });
});
