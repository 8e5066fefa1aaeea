import { Migration } from '@mikro-orm/migrations';

/**
 * Statements and write-back (issue 15 stages 5-7):
 * - one statement row per account and period: a re-fetch updates it (balances, kind, time) instead
 *   of piling up copies (LESSONS.md 5 at the statement level; lines were already unique);
 * - `statement_line.match_kind` records what reconciliation made of a line (order, fee, tax,
 *   credit, unexplained, mismatch), so a re-run neither re-links nor re-alerts;
 * - `writeback_mark` remembers the hash of what was last written to the ERP for each target, so
 *   each change is written exactly once (issue 15 stage 7).
 */
export class Migration20261125190000_statements extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create unique index statement_period_key on statement (account, period_from, period_to);`);
    this.addSql(`alter table statement_line add column match_kind text null
      check (match_kind is null or match_kind in ('order','fee','tax','credit','unexplained','mismatch','pending'));`);
    this.addSql(`alter table statement_line add column reconciled_at timestamptz null;`);
    this.addSql(`create index statement_line_booking_idx on statement_line (account, booking_date);`);
    this.addSql(`
      create table writeback_mark (
        target text primary key,
        content_hash text not null,
        path text null,
        written_at timestamptz not null,
        writes integer not null default 1
      );`);
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists writeback_mark;');
    this.addSql('drop index if exists statement_line_booking_idx;');
    this.addSql('alter table statement_line drop column if exists reconciled_at;');
    this.addSql('alter table statement_line drop column if exists match_kind;');
    this.addSql('drop index if exists statement_period_key;');
  }
}
