import type { EntityManager } from '@mikro-orm/postgresql';
import type { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { isoOfEpochDay } from '../calendar/kz-calendar-data';
import { kzLocalDayOf } from '../calendar/kz-time';

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
      'Each incident is mailed when it is found; one with a deadline is reminded of when half its time is gone and when the deadline passes. connector incidents list shows those still open.',
    ].join('\n'),
  };
}

/**
 * R-17 (tell the bank within 1 business day that a user lost authority), R-27 (notify an erroneous
 * execution within 3 operational days), R-29: the product "records and reminds". The first mail is
 * easy to miss, so an open incident with a deadline is mailed again when half its time to act is
 * gone (stage 1), and once more when the deadline has passed (stage 2). Only for a point crossed
 * after the first mail: an incident first told when already overdue is not mailed again a minute later.
 */
export type ReminderStage = 1 | 2;
export interface IncidentReminder extends AlertableIncident {
  stage: ReminderStage;
}

/**
 * Open incidents with a deadline whose next reminder is due, the nearest deadline first; the
 * overdue ones only unless `halfTime` (halfTimeReminderNow: a business day's morning).
 */
export async function incidentsToRemind(em: EntityManager, now: Date, limit = MAX_DIGEST, halfTime = true): Promise<IncidentReminder[]> {
  const rows = await em.execute<Array<{ id: string; kind: string; severity: string; title: string; opened_at: Date; deadline_at: Date; stage: number }>>(
    `select id, kind, severity, title, opened_at, deadline_at, case when deadline_at <= ? then 2 else 1 end as stage from incident
      where status = 'open' and deadline_at is not null and alerted_at is not null
        and ((? and reminders < 1 and opened_at + (deadline_at - opened_at) / 2 <= ? and opened_at + (deadline_at - opened_at) / 2 > alerted_at)
          or (reminders < 2 and deadline_at <= ? and deadline_at > alerted_at))
      order by deadline_at, id limit ?`,
    [now, halfTime, now, now, limit],
  );
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    severity: r.severity,
    title: r.title,
    openedAt: new Date(r.opened_at),
    deadlineAt: new Date(r.deadline_at),
    stage: Number(r.stage) === 2 ? 2 : 1,
  }));
}

/**
 * Whether a half-time reminder goes out now: on a Kazakhstan business day from 09:00, when a person
 * can act on it. Half of "by Monday's cut-off" found on Friday evening falls on Sunday, and a mail
 * then is read on Monday among the weekend's, if at all; it waits for Monday 09:00 instead. An
 * overdue reminder goes out at once. A calendar that cannot say (its data ended) does not hold it back.
 */
export function halfTimeReminderNow(calendar: Pick<KzBusinessCalendar, 'isBusinessDay'>, now: Date): boolean {
  const { epochDay, msOfDay } = kzLocalDayOf(now.getTime());
  try {
    return calendar.isBusinessDay(isoOfEpochDay(epochDay)) && msOfDay >= 9 * 3_600_000;
  } catch {
    return true;
  }
}

/** Records the reminders sent (an overdue one also counts as the half-time one it stands for). */
export async function markIncidentsReminded(em: EntityManager, reminders: readonly Pick<IncidentReminder, 'id' | 'stage'>[], at: Date): Promise<void> {
  for (const stage of [1, 2] as const) {
    const ids = reminders.filter((r) => r.stage === stage).map((r) => r.id);
    if (ids.length) await em.execute(`update incident set reminders = greatest(reminders, ?), reminded_at = ? where id in (${ids.map(() => '?').join(', ')})`, [stage, at, ...ids]);
  }
}

/** The reminder as a person reads it: the overdue first, each with its deadline and what to do. */
export function incidentReminderText(reminders: readonly IncidentReminder[], more: boolean, now: Date): { subject: string; text: string } {
  if (reminders.length === 0) throw new Error('an incident reminder needs at least one incident');
  const overdue = reminders.filter((r) => r.stage === 2);
  const first = overdue[0] ?? reminders[0];
  const count = `${reminders.length}${more ? '+' : ''}`;
  const subject = overdue.length
    ? `Reminder: ${count === '1' ? 'an incident is' : `${count} incidents are`} past the deadline, the first: ${first.title}`
    : `Reminder: ${count === '1' ? 'an incident has' : `${count} incidents have`} half the time to act left, the first: ${first.title}`;
  const hours = (d: Date) => Math.round(Math.abs(d.getTime() - now.getTime()) / 3_600_000);
  const lines = [...overdue, ...reminders.filter((r) => r.stage === 1)].flatMap((r) => [
    `- [${r.severity}] ${r.title}`,
    `  kind ${r.kind}, opened ${r.openedAt.toISOString()}, deadline ${(r.deadlineAt as Date).toISOString()} (${r.stage === 2 ? `passed ${hours(r.deadlineAt as Date)} h ago` : `in about ${hours(r.deadlineAt as Date)} h`})`,
    `  connector incidents show ${r.id}`,
  ]);
  return {
    subject,
    text: [
      'These incidents are still open and have a deadline (telling the bank of R-17, R-27, R-29, or renewing the Client Secret of R-1/R-2):',
      '',
      ...lines,
      ...(more ? ['', 'More are due: connector incidents list'] : []),
      '',
      'An incident with a deadline is mailed when found, again when half its time is gone, and once more when the deadline passes.',
    ].join('\n'),
  };
}
