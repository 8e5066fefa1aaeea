import { Migration } from '@mikro-orm/migrations';

/**
 * The signed document and its signatures: the exact bytes, frozen once built, and every
 * signature with who, when and which certificate.
 */
export class Migration20261125030000_pipeline extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table order_document (
        order_id uuid primary key references payment_order (id) on delete cascade,
        format text not null,
        bytes bytea not null,
        sha256 text not null,
        created_at timestamptz not null
      );`);
    this.addSql(`
      create table order_signature (
        id bigserial primary key,
        order_id uuid not null references payment_order (id) on delete cascade,
        user_id uuid not null,
        login text not null,
        level text not null check (level in ('first','second')),
        algorithm text not null,
        serial text not null,
        subject text not null,
        iin text null,
        signing_time timestamptz not null,
        document_sha256 text not null,
        -- The detached CMS after this signature (it holds every signer so far).
        cms bytea not null,
        mandate boolean not null default false,
        valid boolean not null default true,
        invalidated_reason text null,
        created_at timestamptz not null
      );`);
    this.addSql(`create unique index order_signature_level_idx on order_signature (order_id, level) where valid;`);
    this.addSql(`create index order_signature_user_idx on order_signature (user_id) where valid;`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists order_signature;');
    this.addSql('drop table if exists order_document;');
  }
}
