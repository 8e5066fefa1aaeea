import { Migration } from '@mikro-orm/migrations';

/** Foundation schema: orders and their events, audit log, incidents, API keys, statements. */
export class Migration20261125000000_foundation extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table payment_order (
        id uuid primary key,
        source text not null,
        erp_document_id text null,
        number text not null,
        doc_date date not null,
        value_date date not null,
        amount_tiyn bigint not null check (amount_tiyn >= 0),
        currency text not null,
        payer_name text not null,
        payer_iin_bin text not null,
        payer_iban text not null,
        payer_bic text not null,
        payer_kod text not null,
        beneficiary_name text not null,
        beneficiary_iin_bin text not null,
        beneficiary_iban text not null,
        beneficiary_bic text not null,
        beneficiary_kbe text not null,
        knp text not null,
        kbk text null,
        purpose text not null,
        state text not null check (state in ('received','validated','invalid','awaiting_signatures','signed',
          'submitting','submitted','executed','rejected','deemed_executed','held','failed')),
        version integer not null default 1,
        external_id text not null,
        errors jsonb null,
        warnings jsonb null,
        last_error text null,
        failed_from text null,
        held_from text null,
        submit_attempts integer not null default 0,
        bank_reference text null,
        bank_status text null,
        bank_reason_code text null,
        bank_reason_text text null,
        raw_document text null,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        state_changed_at timestamptz not null,
        -- DESIGN.md: the natural key makes the same document dropped twice one order.
        constraint payment_order_natural_key unique (source, number, doc_date, payer_iban),
        constraint payment_order_external_id_key unique (external_id)
      );`);
    this.addSql(`create index payment_order_state_idx on payment_order (state, state_changed_at);`);
    this.addSql(`create index payment_order_erp_document_idx on payment_order (erp_document_id);`);
    this.addSql(`create index payment_order_payer_idx on payment_order (payer_iban, created_at);`);
    this.addSql(`
      create table order_event (
        id bigserial primary key,
        order_id uuid not null references payment_order (id) on delete cascade,
        from_state text null,
        to_state text not null,
        actor text not null,
        reason text null,
        details jsonb null,
        at timestamptz not null
      );`);
    this.addSql(`create index order_event_order_idx on order_event (order_id, id);`);
    this.addSql(`
      create table audit_event (
        seq bigint primary key,
        at timestamptz not null,
        actor text not null,
        action text not null,
        subject text null,
        details jsonb null,
        prev_hash text not null,
        hash text not null
      );`);
    this.addSql(`
      create table incident (
        id uuid primary key,
        kind text not null,
        severity text not null check (severity in ('low','medium','high','critical')),
        status text not null check (status in ('open','resolved')),
        title text not null,
        evidence jsonb not null default '{}'::jsonb,
        timeline jsonb not null default '[]'::jsonb,
        dedupe_key text null,
        deadline_at timestamptz null,
        opened_at timestamptz not null,
        resolved_at timestamptz null,
        resolved_by text null
      );`);
    this.addSql(`create unique index incident_open_dedupe_idx on incident (dedupe_key) where status = 'open' and dedupe_key is not null;`);
    this.addSql(`
      create table api_key (
        id uuid primary key,
        name text not null unique,
        key_hash text not null unique,
        key_prefix text not null,
        accounts text[] not null default '{}',
        created_at timestamptz not null,
        revoked_at timestamptz null,
        last_used_at timestamptz null
      );`);
    this.addSql(`
      create table idempotency_record (
        scope text not null,
        idempotency_key text not null,
        request_hash text not null,
        response_status integer not null,
        response_body jsonb not null,
        created_at timestamptz not null,
        primary key (scope, idempotency_key)
      );`);
    this.addSql(`
      create table statement (
        id uuid primary key,
        account text not null,
        currency text not null,
        period_from date not null,
        period_to date not null,
        kind text not null check (kind in ('booked','intraday')),
        opening_balance bigint not null,
        closing_balance bigint not null,
        balanced boolean not null,
        source text not null,
        fetched_at timestamptz not null
      );`);
    this.addSql(`create index statement_account_idx on statement (account, period_from, period_to);`);
    this.addSql(`
      create table statement_line (
        id uuid primary key,
        account text not null,
        bank_line_id text not null,
        statement_id uuid null references statement (id) on delete set null,
        booking_date date not null,
        value_date date not null,
        direction text not null check (direction in ('debit','credit')),
        amount_tiyn bigint not null check (amount_tiyn >= 0),
        currency text not null,
        status text not null check (status in ('booked','pending')),
        kind text not null check (kind in ('payment','fee','tax','other')),
        is_fee boolean not null default false,
        counterparty_name text not null,
        counterparty_iin_bin text not null,
        counterparty_iban text not null,
        counterparty_bic text not null,
        purpose text not null,
        knp text null,
        document_number text null,
        document_date date null,
        bank_reference text null,
        external_id text null,
        order_id uuid null references payment_order (id) on delete set null,
        created_at timestamptz not null,
        -- LESSONS.md 5: a re-fetched statement stores no line twice.
        constraint statement_line_bank_key unique (account, bank_line_id)
      );`);
    this.addSql(`create index statement_line_value_idx on statement_line (account, value_date);`);
    this.addSql(`create index statement_line_order_idx on statement_line (order_id);`);
  }

  override async down(): Promise<void> {
    for (const table of ['statement_line', 'statement', 'idempotency_record', 'api_key', 'incident', 'audit_event', 'order_event', 'payment_order']) {
      this.addSql(`drop table if exists ${table} cascade;`);
    }
  }
}
