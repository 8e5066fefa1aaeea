import { Migration } from '@mikro-orm/migrations';

/**
 * The lockdown flag (R-29..R-31): one row, the truth; Redis `<prefix>:lockdown` mirrors it for the
 * workers' fast check. In PostgreSQL so that a Redis flush cannot silently lift a lockdown.
 */
export class Migration20261125040000_lockdown extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table lockdown_state (
        id smallint primary key check (id = 1),
        state text not null check (state in ('normal', 'locked')),
        since timestamptz null,
        reason text null,
        scope text null,
        trigger text null,
        incident_id uuid null,
        warnings jsonb not null default '[]',
        updated_at timestamptz not null,
        updated_by text not null
      );`);
    this.addSql("insert into lockdown_state (id, state, updated_at, updated_by) values (1, 'normal', now(), 'migration');");
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists lockdown_state;');
  }
}
