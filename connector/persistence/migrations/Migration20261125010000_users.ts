import { Migration } from '@mikro-orm/migrations';

/**
 * Users, their password history and account rights (R-5..R-17), and the bank credential vault
 * . Secrets are never stored in clear: password hashes are scrypt, the TOTP seed
 * and the Client Secret are AES-256-GCM ciphertexts under the master key file.
 */
export class Migration20261125010000_users extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create table app_user (
        id uuid primary key,
        -- R-5: one personal account per login; logins are kept lower-case so "Ivan" and "ivan" are one.
        login text not null,
        iin text null check (iin is null or iin ~ '^[0-9]{12}$'),
        role text not null check (role in ('admin','signer','operator','viewer')),
        password_hash text not null,
        password_changed_at timestamptz not null,
        must_change_password boolean not null default true,
        failed_attempts integer not null default 0,
        locked_until timestamptz null,
        blocked_reason text null check (blocked_reason is null or blocked_reason in ('admin','inactive')),
        blocked_at timestamptz null,
        last_activity_at timestamptz not null,
        totp_secret_enc text null,
        created_at timestamptz not null,
        updated_at timestamptz not null,
        constraint app_user_login_key unique (login),
        constraint app_user_login_lower check (login = lower(login))
      );`);
    this.addSql(`
      create table password_history (
        id bigserial primary key,
        user_id uuid not null references app_user (id) on delete cascade,
        password_hash text not null,
        created_at timestamptz not null
      );`);
    this.addSql(`create index password_history_user_idx on password_history (user_id, id desc);`);
    this.addSql(`
      create table user_account_right (
        id bigserial primary key,
        user_id uuid not null references app_user (id) on delete cascade,
        -- An IBAN, or '*' for every account of the client (R-16 "manage all accounts").
        account text not null,
        rights text not null check (rights in ('info','manage')),
        sign_limit_tiyn bigint null check (sign_limit_tiyn is null or sign_limit_tiyn >= 0),
        sign_level text null check (sign_level is null or sign_level in ('first','second')),
        granted_at timestamptz not null,
        granted_by text not null,
        constraint user_account_right_key unique (user_id, account)
      );`);
    this.addSql(`
      create table credential_vault (
        -- R-1: one Client ID / Client Secret pair per installation.
        id smallint primary key check (id = 1),
        client_id text not null,
        secret_enc text not null,
        generated_at timestamptz not null,
        last_used_at timestamptz null,
        revoked_at timestamptz null,
        revoked_reason text null,
        updated_at timestamptz not null,
        updated_by text not null
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists credential_vault;');
    this.addSql('drop table if exists user_account_right;');
    this.addSql('drop table if exists password_history;');
    this.addSql('drop table if exists app_user;');
  }
}
