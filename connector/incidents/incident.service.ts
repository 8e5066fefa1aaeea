import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Incident, type IncidentSeverity, type TimelineEntry } from '../persistence/entities';
import { appendAudit } from '../audit/audit.log';

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
  deadlineAt?: Date;
  actor: string;
  now?: Date;
}

export async function openIncident(em: EntityManager, input: OpenIncidentInput): Promise<{ incident: Incident; created: boolean }> {
  const now = input.now ?? new Date();
  const entry: TimelineEntry = { at: now.toISOString(), actor: input.actor, text: input.title };
  return em.transactional(async (tx) => {
    if (input.dedupeKey) {
      const existing = await tx.findOne(Incident, { dedupeKey: input.dedupeKey, status: 'open' });
      if (existing) {
        if (input.onRepeat === 'ignore') return { incident: existing, created: false };
        existing.timeline = [...existing.timeline, { ...entry, text: `again: ${input.title}` }];
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

export async function listIncidents(em: EntityManager, filter: { status?: 'open' | 'resolved' } = {}): Promise<Incident[]> {
  return em.find(Incident, filter.status ? { status: filter.status } : {}, { orderBy: { openedAt: 'desc' } });
}

export async function getIncident(em: EntityManager, id: string): Promise<Incident | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
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
