import { Migration } from '@mikro-orm/migrations';

/**
 * Each signature names the signature whose CMS it cosigned (`cosigned_id`; null for the first).
 * The detached CMS of an order's newest valid signature is what the bank receives, so it must hold
 * every valid signer: a signature is recorded only when what it cosigned is still the order's
 * newest valid signature (checked by the insert), and two signatures cosigning the same one (or
 * both none) cannot both be valid (this index), so a person signing through the API while a
 * standing mandate signs the other level cannot leave two CMSs that each lack the other signer.
 * Existing valid signatures are chained in the order they were given.
 */
export class Migration20261126020000_signature_chain extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table order_signature add column cosigned_id bigint null;');
    this.addSql(`
      update order_signature s set cosigned_id = p.previous
        from (select id, lag(id) over (partition by order_id order by id) as previous from order_signature where valid) p
       where s.id = p.id and p.previous is not null;`);
    this.addSql('create unique index order_signature_chain_idx on order_signature (order_id, coalesce(cosigned_id, 0)) where valid;');
  }

  override async down(): Promise<void> {
    this.addSql('drop index if exists order_signature_chain_idx;');
    this.addSql('alter table order_signature drop column if exists cosigned_id;');
  }
}
