import { appWorld } from '../support/app-world';
import { openIncident, TIMELINE_MAX } from '../../connector/incidents/incident.service';

/** A trigger that fires all day (say, an attacker's logins) adds to one open incident, on real PostgreSQL. */
describe('incident repeats', () => {
  const world = appWorld('incident-timeline');

  it('count every repeat, and keep the first entries, a note of how many went and the latest', async () => {
    const repeats = TIMELINE_MAX + 30;
    let id = '';
    for (let i = 0; i < repeats; i += 1) {
      const { incident, created } = await openIncident(world.db(), {
        kind: 'security_alert',
        severity: 'high',
        title: `failed logins from 203.0.113.${i % 250}`,
        dedupeKey: 'security_alert:brute-force:admin',
        actor: 'test',
        now: new Date(Date.UTC(2026, 10, 26, 6, 0, i)),
      });
      expect(created).toBe(i === 0);
      id = incident.id;
    }
    const [row] = await world.db().execute<Array<{ timeline: Array<{ text: string }>; evidence: { occurrences: number } }>>('select timeline, evidence from incident where id = ?', [id]);
    expect(row.evidence.occurrences).toBe(repeats);
    expect(row.timeline).toHaveLength(TIMELINE_MAX);
    // The first 20 entries, one saying how many went, the latest 79.
    expect(row.timeline[0].text).toBe('failed logins from 203.0.113.0');
    expect(row.timeline[19].text).toBe('again: failed logins from 203.0.113.19');
    expect(row.timeline[20].text).toBe(`${repeats - TIMELINE_MAX + 1} entries left out here (the timeline keeps the first 20 and the latest)`);
    expect(row.timeline[21].text).toBe(`again: failed logins from 203.0.113.${repeats - 79}`);
    expect(row.timeline[TIMELINE_MAX - 1].text).toBe(`again: failed logins from 203.0.113.${(repeats - 1) % 250}`);
  });

  it('the same key opened at once by several callers (a batch of polls) makes one incident, none of them an error', async () => {
    const input = { kind: 'credentials_revoked', severity: 'critical' as const, title: 'The bank refused our Client ID / Secret (401)', dedupeKey: 'race:credentials', actor: 'test', onRepeat: 'ignore' as const };
    const results = await Promise.all(Array.from({ length: 8 }, () => openIncident(world.db(), input)));
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.incident.id)).size).toBe(1);
  });

  it('a key opened `once` opens nothing again after a person resolved it; without `once` it opens a new one', async () => {
    const base = { kind: 'status_unknown', severity: 'high' as const, title: 'Order 7: unknown status', actor: 'test', onRepeat: 'ignore' as const };
    const first = await openIncident(world.db(), { ...base, dedupeKey: 'once:7', once: true });
    await world.db().execute("update incident set status = 'resolved', resolved_at = now() where id = ?", [first.incident.id]);
    const again = await openIncident(world.db(), { ...base, dedupeKey: 'once:7', once: true });
    expect(again).toMatchObject({ created: false, incident: { id: first.incident.id, status: 'resolved' } });

    const other = await openIncident(world.db(), { ...base, dedupeKey: 'many:7' });
    await world.db().execute("update incident set status = 'resolved', resolved_at = now() where id = ?", [other.incident.id]);
    expect((await openIncident(world.db(), { ...base, dedupeKey: 'many:7' })).created).toBe(true);
  });
});
