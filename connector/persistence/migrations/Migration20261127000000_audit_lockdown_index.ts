import { Migration } from '@mikro-orm/migrations';

/**
 * Resolving a lockdown asks which users' EDS its triggers named (`missingResolutionSteps` reads the
 * `lockdown.engaged` / `lockdown.retriggered` audit records of its incident): without an index, a
 * scan of the whole audit log on every resolve attempt, as for the enrolments
 * (Migration20261126050000). Only those records enter this partial index.
 */
export class Migration20261127000000_audit_lockdown_index extends Migration {
  override async up(): Promise<void> {
    this.addSql("create index if not exists audit_event_lockdown_idx on audit_event (subject) where action in ('lockdown.engaged', 'lockdown.retriggered');");
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists audit_event_lockdown_idx;');
  }
}
