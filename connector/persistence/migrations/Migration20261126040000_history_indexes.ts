import { Migration } from '@mikro-orm/migrations';

/**
 * Indexes for the queries that run all day over a growing history (years of orders). Measured on
 * 1,000,000 orders (`npm run bench:history`), each of these was a full scan of `payment_order`
 * taking 0.2-0.5 s of PostgreSQL on every run:
 * - `created_at, id`: the orders list of the API and the CLI (newest first, keyset pages) (the
 *   accounts whose statements are followed were read through it too, until 2026-11-26: now through
 *   `(state, state_changed_at)`, orders final for less than 3 days);
 * - `doc_date`: the 1C status report, rewritten after every burst of status changes;
 * - `bank_reference` and `number`: matching a statement's lines to orders (with the unique
 *   `external_id`, each line's keys are index lookups instead of a scan of the account's orders);
 * - `payer_iban, state, created_at, id`: the orders list of an API key limited to some accounts,
 *   filtered by state (each account's newest orders in that state);
 * - `incident (dedupe_key)` and the open incidents by `opened_at`: each reconciliation finding
 *   looks its incident up by key, open or resolved, and the sweep (every 30 s) and the admins'
 *   notices read the open ones;
 * - `idempotency_record (created_at)`: the sweeper deletes the records past
 *   `api.idempotencyKeepDays`.
 * Building them on a million orders takes a few seconds, during `connector migrate`.
 */
/** The indexes on `payment_order` (name and definition); `npm run bench:history` times the queries without and with these. */
export const PAYMENT_ORDER_HISTORY_INDEXES: ReadonlyArray<{ name: string; on: string }> = [
  { name: 'payment_order_created_idx', on: 'payment_order (created_at, id)' },
  { name: 'payment_order_doc_date_idx', on: 'payment_order (doc_date)' },
  { name: 'payment_order_bank_reference_idx', on: 'payment_order (bank_reference) where bank_reference is not null' },
  { name: 'payment_order_number_idx', on: 'payment_order (number)' },
  { name: 'payment_order_payer_state_idx', on: 'payment_order (payer_iban, state, created_at, id)' },
];

const OTHER_INDEXES: ReadonlyArray<{ name: string; on: string }> = [
  { name: 'incident_dedupe_key_idx', on: 'incident (dedupe_key) where dedupe_key is not null' },
  { name: 'incident_open_idx', on: "incident (opened_at) where status = 'open'" },
  { name: 'idempotency_record_created_idx', on: 'idempotency_record (created_at)' },
];

export class Migration20261126040000_history_indexes extends Migration {
  override async up(): Promise<void> {
    for (const index of [...PAYMENT_ORDER_HISTORY_INDEXES, ...OTHER_INDEXES]) this.addSql(`create index if not exists ${index.name} on ${index.on};`);
  }

  override async down(): Promise<void> {
    for (const index of [...PAYMENT_ORDER_HISTORY_INDEXES, ...OTHER_INDEXES].reverse()) this.addSql(`drop index if exists ${index.name};`);
  }
}
