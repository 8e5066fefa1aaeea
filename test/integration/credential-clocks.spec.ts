import { appWorld } from '../support/app-world';
import { SecretBox } from '../../connector/vault/secret-box';
import { raiseCredentialClockIncidents, rotateSecret, setCredentials } from '../../connector/vault/credential.vault';
import { ManualClock } from '../../connector/shared/clock';

/**
 * the Client ID / Secret's two clocks (days since generated, days since last used) become
 * incidents the admins are told of (the incident digest mails them), one per clock and threshold,
 * resolved once the clock no longer warns. Real PostgreSQL.
 */
describe('credential clocks as incidents (R-1, R-2)', () => {
  const world = appWorld('credential-clocks');
  const start = new Date('2026-01-10T06:00:00Z');
  const clock = new ManualClock(start);
  const day = (n: number) => new Date(start.getTime() + n * 86_400_000);

  const deps = () => ({ em: world.db(), clock, box: SecretBox.fromConfig(world.env.config) });
  const openClockIncidents = async () =>
    world.context.orm.em
      .fork()
      .execute<Array<{ kind: string; severity: string; deadline_at: Date; title: string }>>(
        "select kind, severity, deadline_at, title from incident where status = 'open' and dedupe_key like 'credentials-clock:%' order by opened_at, kind",
      );

  it('opens one incident per clock at day 75 and another at day 85, each with the day the bank may block the pair; none before', async () => {
    clock.set(start);
    await setCredentials(deps(), { clientId: 'clock-client', clientSecret: 'Clock-Secret-123', actor: 'test' });
    clock.set(day(74));
    expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 0, resolved: 0 });

    clock.set(day(75));
    expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 2, resolved: 0 });
    // The sweeper looks every 30 s: each look after the first changes nothing (no growing timeline).
    for (let i = 0; i < 3; i++) expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 0, resolved: 0 });
    const entries = await world.db().execute<Array<{ n: number }>>("select jsonb_array_length(timeline) as n from incident where dedupe_key like 'credentials-clock:%' and status = 'open'");
    expect(entries.map((e) => Number(e.n))).toEqual([1, 1]);
    const warned = await openClockIncidents();
    expect(warned.map((i) => [i.kind, i.severity])).toEqual([['credentials_aging', 'medium'], ['credentials_idle', 'medium']]);
    for (const i of warned) expect(new Date(i.deadline_at)).toEqual(day(90));
    expect(warned[0].title).toMatch(/generated 75 days ago .*connector credentials rotate/);

    // Day 85: urgent; the day-75 ones are resolved (their clock now warns at another level).
    clock.set(day(85));
    expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 2, resolved: 2 });
    expect((await openClockIncidents()).map((i) => [i.kind, i.severity])).toEqual([['credentials_aging', 'high'], ['credentials_idle', 'high']]);
  });

  it('a successful use stops the idle clock, a rotation both; their incidents are resolved', async () => {
    clock.set(day(86));
    // What the bank client records after a successful call (VaultBankCredentials.onTokenIssued, once the bank issued a token).
    await world.db().execute('update credential_vault set last_used_at = ? where id = 1', [clock.now()]);
    expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 0, resolved: 1 });
    expect((await openClockIncidents()).map((i) => i.kind)).toEqual(['credentials_aging']);

    await rotateSecret(deps(), { clientSecret: 'Clock-Secret-456', actor: 'test' });
    expect(await raiseCredentialClockIncidents(deps())).toEqual({ opened: 0, resolved: 1 });
    expect(await openClockIncidents()).toEqual([]);
  });

  it('the pair in use stored again (a provisioning script run twice) changes nothing: its age is not restarted', async () => {
    const generated = (await world.db().execute<Array<{ generated_at: Date }>>('select generated_at from credential_vault where id = 1'))[0].generated_at;
    const audits = async () => Number((await world.db().execute<Array<{ n: string }>>("select count(*) as n from audit_event where action = 'credentials.set'"))[0].n);
    const before = await audits();
    clock.set(day(120));
    const status = await setCredentials(deps(), { clientId: 'clock-client', clientSecret: 'Clock-Secret-456', actor: 'test' });
    expect(status.usable).toBe(true);
    expect((await world.db().execute<Array<{ generated_at: Date }>>('select generated_at from credential_vault where id = 1'))[0].generated_at).toEqual(generated);
    expect(await audits()).toBe(before);
    // Marked revoked (a lockdown, the bank), the same secret is refused: it would pass for a new one.
    await world.db().execute("update credential_vault set revoked_at = now(), revoked_reason = 'test', revoked_source = 'lockdown' where id = 1");
    await expect(setCredentials(deps(), { clientId: 'clock-client', clientSecret: 'Clock-Secret-456', actor: 'test' })).rejects.toMatchObject({ code: 'SECRET_UNCHANGED' });
  });
});
