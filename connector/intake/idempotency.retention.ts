import type { EntityManager } from '@mikro-orm/postgresql';

/**
 * Deletes the `Idempotency-Key` records older than `keepDays` (config `api.idempotencyKeepDays`),
 * at most `limit` per call so that one sweep never holds a long delete; the sweeper calls it every
 * run, and a backlog goes in a few runs. Returns how many went.
 */
export async function purgeIdempotencyRecords(em: EntityManager, now: Date, keepDays: number, limit = 1_000): Promise<number> {
  const before = new Date(now.getTime() - keepDays * 86_400_000);
  const rows = await em.execute<Array<{ n: string }>>(
    `with gone as (
       delete from idempotency_record where ctid in (select ctid from idempotency_record where created_at < ? limit ?) returning 1
     ) select count(*) as n from gone`,
    [before, limit],
  );
  return Number(rows[0].n);
}
