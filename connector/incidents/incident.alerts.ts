import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * The admins' alert for incidents (R-21 overdue statuses, statement gaps and imbalances,
 * reconciliation findings R-27, revoked credentials, ...): each open incident is told once, in a
 * digest of those found together. The lockdown's own incidents are told at once by its notice,
 * which marks them told when the mail went out; the digest takes them only when that notice did
 * not get through (still untold after LOCKDOWN_NOTICE_GRACE_MS).
 */
export const KINDS_THE_LOCKDOWN_NOTIFIES = ['lockdown', 'security_alert'] as const;
export const LOCKDOWN_NOTICE_GRACE_MS = 5 * 60_000;

/** Most incidents in one digest; more wait for the next one (a flood must not make a mail nobody reads). */
export const MAX_DIGEST = 50;

export interface AlertableIncident {
  id: string;
  kind: string;
  severity: string;
  title: string;
  openedAt: Date;
  deadlineAt: Date | null;
}

/** Open incidents not yet told to the admins, oldest first (those of the lockdown after their notice's grace). */
export async function incidentsToAlert(em: EntityManager, now: Date, limit = MAX_DIGEST): Promise<AlertableIncident[]> {
  const rows = await em.execute<Array<{ id: string; kind: string; severity: string; title: string; opened_at: Date; deadline_at: Date | null }>>(
    `select id, kind, severity, title, opened_at, deadline_at from incident
      where alerted_at is null and status = 'open'
        and (kind not in (${KINDS_THE_LOCKDOWN_NOTIFIES.map(() => '?').join(', ')}) or opened_at < ?)
      order by opened_at, id limit ?`,
    [...KINDS_THE_LOCKDOWN_NOTIFIES, new Date(now.getTime() - LOCKDOWN_NOTICE_GRACE_MS), limit],
  );
  return rows.map((r) => ({ id: r.id, kind: r.kind, severity: r.severity, title: r.title, openedAt: new Date(r.opened_at), deadlineAt: r.deadline_at ? new Date(r.deadline_at) : null }));
}

/** Records that the admins were told of these incidents (after the mail server took the message). */
export async function markIncidentsAlerted(em: EntityManager, ids: readonly string[], at: Date): Promise<void> {
  if (ids.length === 0) return;
  await em.execute(`update incident set alerted_at = ? where id in (${ids.map(() => '?').join(', ')}) and alerted_at is null`, [at, ...ids]);
}

const SEVERITY_ORDER = ['critical', 'high', 'medium', 'low'];

/** The digest as a person reads it: the worst first in the subject, each incident with what to do by when. */
export function incidentDigestText(incidents: readonly AlertableIncident[], more: boolean): { subject: string; text: string } {
  if (incidents.length === 0) throw new Error('an incident digest needs at least one incident');
  const worst = [...incidents].sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity))[0];
  const subject = incidents.length === 1 ? `Incident (${worst.severity}): ${worst.title}` : `${incidents.length}${more ? '+' : ''} new incidents, the worst ${worst.severity}: ${worst.title}`;
  const lines = incidents.flatMap((i) => [
    `- [${i.severity}] ${i.title}`,
    `  kind ${i.kind}, opened ${i.openedAt.toISOString()}${i.deadlineAt ? `, act before ${i.deadlineAt.toISOString()}` : ''}`,
    `  connector incidents show ${i.id}`,
  ]);
  return {
    subject,
    text: [
      'The bank connector opened incidents that need a person:',
      '',
      ...lines,
      ...(more ? ['', `More are open: connector incidents list`] : []),
      '',
      'Each incident is mailed once, when it is found; connector incidents list shows those still open.',
    ].join('\n'),
  };
}
