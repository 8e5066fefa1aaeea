import { Migration } from '@mikro-orm/migrations';

/**
 * When the admins were told of an incident by e-mail (`alerted_at`; null: not yet). Every open
 * incident is mailed once (queue/incident-alerts.ts; the lockdown's by its own notice); the
 * partial index keeps the scheduler's look for new ones cheap.
 */
export class Migration20261126030000_incident_alerts extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table incident add column alerted_at timestamptz null;');
    // Incidents from before e-mail alerts are not mailed at the upgrade (they are in `connector
    // incidents list`): a backlog in the admins' inbox would bury the new ones.
    this.addSql('update incident set alerted_at = opened_at;');
    this.addSql("create index incident_unalerted_idx on incident (opened_at, id) where alerted_at is null and status = 'open';");
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists incident_unalerted_idx;');
    this.addSql('alter table incident drop column if exists alerted_at;');
  }
}
