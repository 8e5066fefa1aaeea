import { randomUUID } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import { UniqueConstraintViolationException, type FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { PageCursor } from '../shared/page-cursor';
import { ConnectorError } from '../shared/errors';
import { singleLine } from '../shared/text';
import { Incident, type IncidentSeverity, type TimelineEntry } from '../persistence/entities';
import { appendAudit } from '../audit/audit.log';
import { isUuid } from '../shared/uuid';

export interface OpenIncidentInput {
  kind: string;
  severity: IncidentSeverity;
  title: string;
  evidence?: Record<string, unknown>;
  /** One open incident per key: a repeat of the same trigger adds to its timeline instead. */
  dedupeKey?: string;
  /**
   * What a repeat of an open incident's key does: `note` (default) adds "again: ..." to its
   * timeline and counts it; `ignore` changes nothing (for a condition a periodic check finds again
   * and again while it lasts: one entry per look would grow the incident without end).
   */
  onRepeat?: 'note' | 'ignore';
  /**
   * At most one incident per key, ever: once a person resolved it, the same key opens none again
   * (a per-order condition that each poll finds again, such as a status that stays unknown: a new
   * incident at every poll after the resolution would bury the others).
   */
  once?: boolean;
  deadlineAt?: Date;
  actor: string;
  now?: Date;
}

/** Entries an incident's timeline keeps at most: the first ones, a note of how many went, the latest. */
export const TIMELINE_MAX = 100;
const TIMELINE_HEAD = 20;

/**
 * Appends to an incident's timeline, keeping it at most TIMELINE_MAX entries: the first 20 (the
 * opening and what was done about it first), one entry saying how many were left out, and the
 * latest. A trigger that fires all day (an attacker's logins, a lockdown asked for again and
 * again) must not grow one row without bound; `occurrences` keeps the full count.
 */
export function appendToTimeline(timeline: readonly TimelineEntry[], entries: readonly TimelineEntry[], now: Date): TimelineEntry[] {
  const all = [...timeline, ...entries];
  if (all.length <= TIMELINE_MAX) return all;
  const isGap = (e: TimelineEntry) => e.actor === 'connector' && /^\d+ entries left out/.test(e.text);
  const head = all.slice(0, TIMELINE_HEAD);
  const rest = all.slice(TIMELINE_HEAD);
  const earlierGap = rest.find(isGap);
  const before = earlierGap ? Number(/^(\d+)/.exec(earlierGap.text)![1]) : 0;
  const tail = rest.filter((e) => !isGap(e)).slice(-(TIMELINE_MAX - TIMELINE_HEAD - 1));
  const leftOut = before + rest.filter((e) => !isGap(e)).length - tail.length;
  return [...head, { at: now.toISOString(), actor: 'connector', text: `${leftOut} entries left out here (the timeline keeps the first ${TIMELINE_HEAD} and the latest)` }, ...tail];
}

export async function openIncident(em: EntityManager, input: OpenIncidentInput): Promise<{ incident: Incident; created: boolean }> {
  try {
    return await openIncidentOnce(em, input);
  } catch (err) {
    // Two callers opened the same key at once (a batch of polls finding one condition): the other
    // one's incident is there now, and this is a repeat of it.
    if (!input.dedupeKey || !(err instanceof UniqueConstraintViolationException)) throw err;
    return openIncidentOnce(em, input);
  }
}

async function openIncidentOnce(em: EntityManager, input: OpenIncidentInput): Promise<{ incident: Incident; created: boolean }> {
  const now = input.now ?? new Date();
  const entry: TimelineEntry = { at: now.toISOString(), actor: input.actor, text: input.title };
  return em.transactional(async (tx) => {
    if (input.dedupeKey && input.once) {
      const any = await tx.findOne(Incident, { dedupeKey: input.dedupeKey }, { orderBy: { openedAt: 'desc' } });
      if (any && any.status !== 'open') return { incident: any, created: false };
    }
    if (input.dedupeKey) {
      const existing = await tx.findOne(Incident, { dedupeKey: input.dedupeKey, status: 'open' });
      if (existing) {
        if (input.onRepeat === 'ignore') return { incident: existing, created: false };
        existing.timeline = appendToTimeline(existing.timeline, [{ ...entry, text: `again: ${input.title}` }], now);
        existing.evidence = { ...existing.evidence, occurrences: Number(existing.evidence.occurrences ?? 1) + 1 };
        await tx.flush();
        return { incident: existing, created: false };
      }
    }
    const incident = tx.create(Incident, {
      id: randomUUID(),
      kind: input.kind,
      severity: input.severity,
      status: 'open',
      title: input.title,
      evidence: input.evidence ?? {},
      timeline: [entry],
      dedupeKey: input.dedupeKey ?? null,
      deadlineAt: input.deadlineAt ?? null,
      openedAt: now,
    });
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'incident.opened', subject: incident.id, details: { kind: input.kind, severity: input.severity }, at: now });
    return { incident, created: true };
  });
}

/**
 * Incidents newest first (by when they were opened, then id); with `limit`, a page of them, and
 * with `before` (the last of the previous page), the page after it.
 */
export async function listIncidents(em: EntityManager, filter: { status?: 'open' | 'resolved'; limit?: number; before?: PageCursor } = {}): Promise<Incident[]> {
  const where: FilterQuery<Incident> = {
    ...(filter.status ? { status: filter.status } : {}),
    ...(filter.before ? { $or: [{ openedAt: { $lt: filter.before.at } }, { openedAt: filter.before.at, id: { $lt: filter.before.id } }] } : {}),
  };
  return em.find(Incident, where, { orderBy: { openedAt: 'desc', id: 'desc' }, ...(filter.limit ? { limit: filter.limit } : {}) });
}

export async function getIncident(em: EntityManager, id: string): Promise<Incident | null> {
  if (!isUuid(id)) return null;
  return em.findOne(Incident, { id });
}

export function incidentView(incident: Incident) {
  return {
    id: incident.id,
    kind: incident.kind,
    severity: incident.severity,
    status: incident.status,
    title: incident.title,
    evidence: incident.evidence,
    timeline: incident.timeline,
    deadlineAt: incident.deadlineAt?.toISOString() ?? null,
    openedAt: incident.openedAt.toISOString(),
    resolvedAt: incident.resolvedAt?.toISOString() ?? null,
    resolvedBy: incident.resolvedBy ?? null,
  };
}

/** Incidents whose resolution must say when and how the bank was told (R-17, R-27, R-29). */
export const BANK_NOTICE_KINDS = ['authority_revoked', 'unexplained_debit', 'execution_mismatch'] as const;

/**
 * How far a bank-notice time may lie ahead of this machine's clock (a person's watch, a phone a
 * few minutes fast). No bound before the start of what it notifies: people often tell the bank
 * first (a debit seen in Internet-banking phoned in days before a late statement opens its
 * incident, an employee's departure reported before the block), and a refusal would only make the
 * operator record a false time.
 */
export const BANK_NOTICE_AHEAD_MS = 5 * 60_000;


export interface ResolveIncidentInput {
  id: string;
  actor: string;
  /** What was done about it, in a person's words. */
  note: string;
  bankNotifiedAt?: Date;
  /** `bankNotifiedAt` as the person gave it (named in a refusal). */
  bankNotifiedAtText?: string;
  bankReference?: string;
  now?: Date;
  /** Who asks: a refusal names the CLI's flags or the API's JSON fields (default: the CLI). */
  caller?: 'cli' | 'api';
}

/**
 * Closes an incident once a person has dealt with it (the lockdown's own is resolved by
 * `connector lockdown resolve`, which checks its steps). Those the bank must hear of need when and
 * under which reference it was told. The note and the bank notice go on the timeline and the
 * audit log; an incident already resolved is left as it is.
 */
export async function resolveIncident(em: EntityManager, input: ResolveIncidentInput): Promise<{ incident: Incident; resolved: boolean }> {
  const now = input.now ?? new Date();
  const note = singleLine(input.note);
  if (!note) throw new ConnectorError('INVALID_REQUEST', 'say in a note what was done about the incident', 2);
  return em.transactional(async (tx) => {
    const incident = isUuid(input.id) ? await tx.findOne(Incident, { id: input.id }, { lockMode: LockMode.PESSIMISTIC_WRITE }) : null;
    if (!incident) throw new ConnectorError('NOT_FOUND', `no incident ${input.id}`, 1);
    if (incident.kind === 'lockdown') throw new ConnectorError('LOCKDOWN_INCIDENT', 'a lockdown is resolved with connector lockdown resolve (it checks the steps the terms require)', 1);
    if (incident.status === 'resolved') return { incident, resolved: false };
    const needsBank = (BANK_NOTICE_KINDS as readonly string[]).includes(incident.kind);
    if (needsBank && (!input.bankNotifiedAt || !input.bankReference?.trim())) {
      const how = input.caller === 'api' ? 'give bankNotifiedAt (an ISO time) and bankReference' : '--bank-notified-at ISO --bank-reference TEXT';
      const missing = [...(input.bankNotifiedAt ? [] : ['bankNotifiedAt']), ...(input.bankReference?.trim() ? [] : ['bankReference'])];
      throw new ConnectorError('BANK_NOTICE_MISSING', `incident ${incident.id} (${incident.kind}) must say when and under which reference the bank was told: ${how}`, 1, { missing });
    }
    // R-29: a notice time in the future is a mistyped date, and the resolution would record the bank
    // as told when it was not: the notice is still missing (exit 1), as `lockdown resolve` lists it.
    if (input.bankNotifiedAt && input.bankNotifiedAt.getTime() > now.getTime() + BANK_NOTICE_AHEAD_MS) {
      const field = input.caller === 'api' ? 'bankNotifiedAt' : '--bank-notified-at';
      const given = input.bankNotifiedAtText ?? input.bankNotifiedAt.toISOString();
      throw new ConnectorError('BANK_NOTICE_MISSING', `${field} ${given} (${input.bankNotifiedAt.toISOString()}) is in the future (now ${now.toISOString()}): give the time the bank was told`, 1, { missing: ['bankNotifiedAt'] });
    }
    const bank = input.bankNotifiedAt && input.bankReference ? { notifiedAt: input.bankNotifiedAt.toISOString(), reference: singleLine(input.bankReference) } : null;
    incident.status = 'resolved';
    incident.resolvedAt = now;
    incident.resolvedBy = input.actor;
    incident.timeline = [...incident.timeline, { at: now.toISOString(), actor: input.actor, text: `resolved: ${note}${bank ? ` (bank told ${bank.notifiedAt}, reference ${bank.reference})` : ''}` }];
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'incident.resolved', subject: incident.id, details: { kind: incident.kind, note, bank }, at: now });
    return { incident, resolved: true };
  });
}

/**
 * Closes the open incidents of `dedupeKey` (any process's) once what opened them has healed: a
 * worker that writes the 1C folder again, an ERP that acknowledges its webhook. The ids it resolved.
 */
export async function resolveIncidentsByKey(em: EntityManager, dedupeKey: string, input: Omit<ResolveIncidentInput, 'id'>): Promise<string[]> {
  const open = await em.execute<Array<{ id: string }>>("select id from incident where status = 'open' and dedupe_key = ?", [dedupeKey]);
  const resolved: string[] = [];
  for (const { id } of open) if ((await resolveIncident(em, { ...input, id })).resolved) resolved.push(id);
  return resolved;
}
