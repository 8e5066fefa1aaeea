import { Migration } from '@mikro-orm/migrations';

/**
 * Webhook delivery state: the `order_event` table is the outbox of status changes (written in the
 * same transaction as each transition); this row remembers the last event the ERP acknowledged
 * and the backoff of the one being retried. In PostgreSQL, not Redis: losing it would resend history.
 */
export class Migration20261125180000_webhooks extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table webhook_cursor (
        name text primary key,
        last_event_id bigint not null default 0,
        attempts integer not null default 0,
        next_attempt_at timestamptz null,
        last_error text null,
        updated_at timestamptz not null
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists webhook_cursor;');
  }
}
