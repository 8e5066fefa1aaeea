import { Migration } from '@mikro-orm/migrations';

/**
 * Who made the stored Client ID / Secret unusable: `bank` (the bank answered CREDENTIALS_REVOKED,
 * R-2) or `lockdown` (a lockdown in scope marked them compromised, R-29/R-31; the bank said
 * nothing). `credentials status`, `doctor` and `GET /api/v1/me` told every revocation as the bank's
 * answer. Existing rows are classified by the prefix the lockdown wrote into the reason, which is
 * dropped from the reason now that the column says it.
 */
export class Migration20261126070000_credentials_revoked_source extends Migration {
  override async up(): Promise<void> {
    this.addSql("alter table credential_vault add column if not exists revoked_source text null check (revoked_source in ('bank', 'lockdown'));");
    this.addSql(`
      update credential_vault
         set revoked_source = case when revoked_reason like 'compromise suspected (lockdown): %' then 'lockdown' else 'bank' end,
             revoked_reason = case when revoked_reason like 'compromise suspected (lockdown): %' then substr(revoked_reason, length('compromise suspected (lockdown): ') + 1) else revoked_reason end
       where revoked_at is not null and revoked_source is null;`);
  }

  override async down(): Promise<void> {
    this.addSql("update credential_vault set revoked_reason = 'compromise suspected (lockdown): ' || coalesce(revoked_reason, '') where revoked_source = 'lockdown';");
    this.addSql('alter table credential_vault drop column if exists revoked_source;');
  }
}
