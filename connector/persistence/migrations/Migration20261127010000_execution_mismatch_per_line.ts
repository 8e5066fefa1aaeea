import { Migration } from '@mikro-orm/migrations';

/**
 * `execution_mismatch` incidents are raised once per statement line (`execution_mismatch:<orderId>:<bankLineId>`),
 * no longer once per order: with one key per order, a later wrong debit naming an order that already
 * had a mismatch (open or resolved) opened nothing. An incident of the old key was raised for the line
 * its evidence names, so it takes that line's key: a re-run over that line finds it and opens no
 * second incident for it, while the other lines that named the order get their own.
 */
export class Migration20261127010000_execution_mismatch_per_line extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      update incident set dedupe_key = dedupe_key || ':' || (evidence->>'bankLineId')
       where kind = 'execution_mismatch' and dedupe_key ~ '^execution_mismatch:[^:]+$' and coalesce(evidence->>'bankLineId', '') <> '';`);
  }

  override async down(): Promise<void> {
    // Back to one key per order: only the earliest incident of each order keeps it (the open-key index allows one open per key).
    this.addSql(`
      update incident i set dedupe_key = substring(i.dedupe_key from '^(execution_mismatch:[^:]+):')
       where i.kind = 'execution_mismatch' and i.dedupe_key ~ '^execution_mismatch:[^:]+:.+$'
         and i.id = (select f.id from incident f where f.kind = 'execution_mismatch' and f.dedupe_key like substring(i.dedupe_key from '^(execution_mismatch:[^:]+):') || ':%' order by f.opened_at, f.id limit 1);`);
  }
}
