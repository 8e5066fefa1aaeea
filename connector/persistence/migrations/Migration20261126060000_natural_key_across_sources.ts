import { Migration } from '@mikro-orm/migrations';

/**
 * One order per document, whichever way it came in. The natural key was (source, number, date,
 * payer account), and an API key's source is its name, so the same document sent again after a
 * key was rotated (a revoked name cannot be taken again), or once through a 1C file and once
 * over HTTP, became a second order and went to the bank a second time. The bank itself tells
 * documents apart by payer account, number and date (the sandbox's ledger counts duplicates by
 * that key); the connector's key is now the same, across sources.
 *
 * Existing databases may already hold such twins. They stay, visible as they are, with
 * `natural_key_seq` 1, 2, ...; every new document takes seq 0, so it meets that twin in the unique
 * key. Seq 0 goes to the first twin that is not `invalid` (one that went on, perhaps was paid):
 * were it an invalid twin, the next delivery of the document would count as its correction and
 * be sent again.
 */
export class Migration20261126060000_natural_key_across_sources extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table payment_order add column if not exists natural_key_seq smallint not null default 0;');
    this.addSql(`
      update payment_order p set natural_key_seq = t.seq
        from (select id, row_number() over (partition by payer_iban, number, doc_date order by (state = 'invalid'), created_at, id) - 1 as seq from payment_order) t
       where p.id = t.id and t.seq > 0;`);
    this.addSql('alter table payment_order drop constraint if exists payment_order_natural_key;');
    this.addSql('alter table payment_order add constraint payment_order_natural_key unique (payer_iban, number, doc_date, natural_key_seq);');
  }

  override async down(): Promise<void> {
    this.addSql('alter table payment_order drop constraint if exists payment_order_natural_key;');
    this.addSql('alter table payment_order add constraint payment_order_natural_key unique (source, number, doc_date, payer_iban);');
    this.addSql('alter table payment_order drop column if exists natural_key_seq;');
  }
}
