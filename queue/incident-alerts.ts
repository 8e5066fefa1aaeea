import type { JobContext } from './job-context';
import { SmtpMailer } from '../adapters/mail/smtp.mailer';
import { incidentDigestText, incidentsToAlert, markIncidentsAlerted, MAX_DIGEST } from '../connector/incidents/incident.alerts';

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
export async function mailIncidentAlerts(context: JobContext): Promise<IncidentAlertResult> {
  const { emails, smtp } = context.config.lockdown.notify;
  if (emails.length === 0 || !smtp) return { status: 'disabled' };
  return context.orm.em.fork().transactional(async (tx): Promise<IncidentAlertResult> => {
    const [lock] = await tx.execute<Array<{ got: boolean }>>(`select pg_try_advisory_xact_lock(hashtext('connector:incident-alerts')) as got`);
    if (!lock.got) return { status: 'busy' };
    const found = await incidentsToAlert(tx, context.clock.now(), MAX_DIGEST + 1);
    if (found.length === 0) return { status: 'none' };
    const digest = found.slice(0, MAX_DIGEST);
    const more = found.length > MAX_DIGEST;
    const sent = await new SmtpMailer(smtp, emails).send(incidentDigestText(digest, more));
    if (!sent.ok) {
      context.logger.error({ event: 'incident.alert.failed', incidents: digest.length, err: sent.error });
      return { status: 'failed', incidents: digest.length, error: sent.error };
    }
    await markIncidentsAlerted(tx, digest.map((i) => i.id), context.clock.now());
    if (sent.rejected.length) context.logger.warn({ event: 'incident.alert.rejected_recipients', rejected: sent.rejected });
    context.logger.info({ event: 'incident.alert.sent', incidents: digest.length, to: sent.accepted });
    return { status: 'sent', incidents: digest.length, more, rejected: sent.rejected };
  });
}
