import { Migration } from '@mikro-orm/migrations';

/**
 * Each status event keeps the order as it was at the transition (amount, number, date, ERP id,
 * source, external id, errors: connector/orders/order-event.snapshot.ts), written by the statement
 * that writes the event. The status webhook read them from `payment_order` at delivery instead: an
 * event delivered late (the ERP's endpoint down) showed the order as corrected since.
 * Events written before this migration keep null: what their order was then is not known any
 * more, and copying today's values into them would store the very mistake; the webhook falls back
 * to the order's current values for them, as before.
 */
export class Migration20261128000000_order_event_snapshot extends Migration {
  override async up(): Promise<void> {
    this.addSql(`alter table order_event add column order_snapshot jsonb null;`);
  }

  override async down(): Promise<void> {
    this.addSql(`alter table order_event drop column order_snapshot;`);
  }
}
