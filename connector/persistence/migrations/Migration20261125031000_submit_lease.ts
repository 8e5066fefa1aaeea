import { Migration } from '@mikro-orm/migrations';

/**
 * A send lease per order: only one worker at a time may look an order up and send it, even when
 * BullMQ runs the same job twice (a lapsed lock, LESSONS.md 10). A worker that dies mid-send
 * leaves the lease to expire (bank timeout + margin); the next one starts with a lookup.
 */
export class Migration20261125031000_submit_lease extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table payment_order add column send_lease_until timestamptz null;');
  }

  override async down(): Promise<void> {
    this.addSql('alter table payment_order drop column if exists send_lease_until;');
  }
}
