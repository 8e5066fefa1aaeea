import type { JobContext } from './job-context';
import { SmtpMailer } from '../adapters/mail/smtp.mailer';
import { kzCalendarFromConfig } from '../connector/calendar/kz-business-calendar';
import type { EntityManager } from '@mikro-orm/postgresql';
import {
  incidentDigestText,
  halfTimeReminderNow,
  incidentReminderText,
  incidentsToAlert,
  incidentsToRemind,
  markIncidentsAlerted,
  markIncidentsReminded,
  MAX_DIGEST,
  type AlertableIncident,
} from '../connector/incidents/incident.alerts';

export type IncidentAlertResult =
  | { status: 'disabled' | 'busy' | 'none' }
  | { status: 'sent'; incidents: number; more: boolean; rejected: string[] }
  | { status: 'failed'; incidents: number; error: string };

/**
 * Mails the open incidents not yet told to the admins (`lockdown.notify.emails` through
 * `lockdown.notify.smtp`), one digest of up to MAX_DIGEST, and records them as told once the mail
 * server took it. Run by the scheduler's leader, not by a queue: under lockdown every queue is
 * paused, and that is when incidents matter most. One runner at a time (a PostgreSQL advisory
 * lock, held with the transaction for the send). At least once: a crash between the server
 * taking the message and the commit mails those incidents again.
 */
export function mailIncidentAlerts(context: JobContext): Promise<IncidentAlertResult> {
  return mailOnce(context, 'incident.alert', {
    find: (tx, now, limit) => incidentsToAlert(tx, now, limit),
    text: (found, more) => incidentDigestText(found, more),
    mark: (tx, found, at) => markIncidentsAlerted(tx, found.map((i) => i.id), at),
  });
}

/**
 * Mails the reminders that are due (incident.alerts.ts `incidentsToRemind`: half the time to act
 * gone, or the deadline passed, for open incidents with a deadline), one mail of up to MAX_DIGEST,
 * under the same lock and with the same at-least-once guarantee as the new incidents' digest.
 */
export function mailIncidentReminders(context: JobContext): Promise<IncidentAlertResult> {
  return mailOnce(context, 'incident.reminder', {
    // Half-time reminders wait for a business day's morning; overdue ones go at once.
    find: (tx, now, limit) => incidentsToRemind(tx, now, limit, halfTimeReminderNow(kzCalendarFromConfig(context.config), now)),
    text: (found, more, now) => incidentReminderText(found, more, now),
    mark: (tx, found, at) => markIncidentsReminded(tx, found, at),
  });
}

/** One mail of up to MAX_DIGEST incidents that `find` gives, recorded by `mark` once the mail server took it. */
async function mailOnce<T extends AlertableIncident>(
  context: JobContext,
  event: string,
  how: {
    find: (tx: EntityManager, now: Date, limit: number) => Promise<T[]>;
    text: (found: T[], more: boolean, now: Date) => { subject: string; text: string };
    mark: (tx: EntityManager, found: T[], at: Date) => Promise<void>;
  },
): Promise<IncidentAlertResult> {
  const { emails, smtp } = context.config.lockdown.notify;
  if (emails.length === 0 || !smtp) return { status: 'disabled' };
  return context.orm.em.fork().transactional(async (tx): Promise<IncidentAlertResult> => {
    const [lock] = await tx.execute<Array<{ got: boolean }>>(`select pg_try_advisory_xact_lock(hashtext('connector:incident-alerts')) as got`);
    if (!lock.got) return { status: 'busy' };
    const now = context.clock.now();
    const found = await how.find(tx, now, MAX_DIGEST + 1);
    if (found.length === 0) return { status: 'none' };
    const batch = found.slice(0, MAX_DIGEST);
    const more = found.length > MAX_DIGEST;
    const sent = await new SmtpMailer(smtp, emails).send(how.text(batch, more, now));
    if (!sent.ok) {
      context.logger.error({ event: `${event}.failed`, incidents: batch.length, err: sent.error });
      return { status: 'failed', incidents: batch.length, error: sent.error };
    }
    await how.mark(tx, batch, context.clock.now());
    if (sent.rejected.length) context.logger.warn({ event: `${event}.rejected_recipients`, rejected: sent.rejected });
    context.logger.info({ event: `${event}.sent`, incidents: batch.length, to: sent.accepted });
    return { status: 'sent', incidents: batch.length, more, rejected: sent.rejected };
  });
}
