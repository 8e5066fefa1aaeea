import { Migration } from '@mikro-orm/migrations';

/**
 * The send lease gets an owner: the token of the sender that took it. A sender whose lease lapsed
 * while it waited (for a send slot, behind a slow bank) and was then taken by another sender must
 * neither pass the last look before the bank call on the other's lease nor clear it: only the
 * holder of the current token may send and release.
 */
export class Migration20261126010000_send_lease_owner extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table payment_order add column send_lease_owner uuid null;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table payment_order drop column if exists send_lease_owner;');
  }
}
