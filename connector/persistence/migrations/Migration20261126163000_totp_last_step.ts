import { Migration } from '@mikro-orm/migrations';

/**
 * R-14, RFC 6238 section 5.2: the TOTP time step (30-second counter) of the last code that logged
 * a user in. A code of that step or an earlier one is refused: without it the same code, seen over
 * a shoulder or through a phishing proxy together with the password, logged in again for up to
 * 90 seconds (the current step and one either side). Null: no code used since the seed was set.
 */
export class Migration20261126163000_totp_last_step extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table app_user add column if not exists totp_last_step bigint null;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table app_user drop column if exists totp_last_step;');
  }
}
