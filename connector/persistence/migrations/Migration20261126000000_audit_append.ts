import { Migration } from '@mikro-orm/migrations';

/**
 * `audit_append(records jsonb)`: appends audit records to the hash chain in one round trip.
 *
 * Before, an append was four or five round trips (begin or savepoint, advisory lock, read of the
 * chain's head, insert, commit), and a busy pipeline appends several times per batch of orders.
 * The function takes the same advisory lock ("audt"), reads the head after the lock (a VOLATILE
 * function takes a fresh snapshot for each statement, so it sees every append committed before the
 * lock was granted), and chains the records in the order given.
 *
 * Each record carries the canonical JSON of its body split around the sequence number (`head`,
 * `tail`), built by `auditRecordParts` in connector/audit/audit.log.ts, so the hash is the one
 * `auditHash` computes: sha256(prev_hash || '\n' || head || seq || tail), in hex. `verifyAudit`
 * checks chains written either way.
 */
export class Migration20261126000000_audit_append extends Migration {
  override async up(): Promise<void> {
    this.addSql(`
      create or replace function audit_append(records jsonb)
      returns table (appended_seq bigint, appended_hash text)
      language plpgsql volatile as $fn$
      declare
        head_seq bigint;
        head_hash text;
        r jsonb;
        seqs bigint[] := '{}';
        prevs text[] := '{}';
        hashes text[] := '{}';
      begin
        perform pg_advisory_xact_lock(1635083380); -- 0x61756474, "audt": one chain, many processes
        select e.seq, e.hash into head_seq, head_hash from audit_event e order by e.seq desc limit 1;
        if not found then
          head_seq := 0;
          head_hash := repeat('0', 64);
        end if;
        for r in select value from jsonb_array_elements(records) with ordinality as x(value, n) order by n loop
          head_seq := head_seq + 1;
          prevs := prevs || head_hash;
          head_hash := encode(sha256(convert_to(head_hash || E'\\n' || (r->>'head') || head_seq::text || (r->>'tail'), 'UTF8')), 'hex');
          seqs := seqs || head_seq;
          hashes := hashes || head_hash;
        end loop;
        insert into audit_event (seq, at, actor, action, subject, details, prev_hash, hash)
          select s.seq, (x.value->>'at')::timestamptz, x.value->>'actor', x.value->>'action', x.value->>'subject',
                 nullif(x.value->'details', 'null'::jsonb), s.prev, s.hash
            from jsonb_array_elements(records) with ordinality as x(value, n)
            join unnest(seqs, prevs, hashes) with ordinality as s(seq, prev, hash, n) on s.n = x.n;
        return query select s.seq, s.hash from unnest(seqs, hashes) with ordinality as s(seq, hash, n) order by s.n;
      end
      $fn$;`);
  }

  override async down(): Promise<void> {
    this.addSql('drop function if exists audit_append(jsonb);');
  }
}
