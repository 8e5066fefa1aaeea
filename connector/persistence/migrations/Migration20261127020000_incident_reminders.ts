import { Migration } from '@mikro-orm/migrations';

/**
 * R-29 ("records and reminds"): an open incident with a deadline is mailed again when
 * half its time to act is gone and once more when the deadline passes. `reminders` says how far
 * it got (0 none, 1 half-time, 2 overdue), `reminded_at` when the last reminder went out.
 * Incidents that exist at the upgrade count as reminded as far as they already are, so the first
 * run after it sends no backlog of reminders for deadlines long past.
 */
export class Migration20261127020000_incident_reminders extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table incident add column reminders smallint not null default 0, add column reminded_at timestamptz null;`);
    this.addSql(`
      update incident set reminders = case when deadline_at <= now() then 2 else 1 end, reminded_at = now()
       where status = 'open' and deadline_at is not null and opened_at + (deadline_at - opened_at) / 2 <= now();`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table incident drop column reminders, drop column reminded_at;`);
  }
}
