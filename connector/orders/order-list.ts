import type { EntityManager } from '@mikro-orm/postgresql';

export interface OrderListFilter {
  /** Only orders paying from these accounts; 'all' for no restriction. */
  accounts: readonly string[] | 'all';
  state?: string;
  erpDocumentId?: string;
  /** Keyset: only orders older than this one (newest first). */
  before?: { createdAt: Date; id: string };
  limit: number;
}

/**
 * The ids of a page of orders, newest first (`created_at, id` descending), for `GET
 * /api/v1/orders`. Keyset paging: a page costs the same on the first day and after years of
 * history. For a key limited to some accounts each account is read on its own (its newest orders
 * from `payment_order_payer_idx`, or `payment_order_payer_state_idx` with a state) and the pages
 * merged: one walk over every order, newest first, until enough of a rare state on those accounts
 * turn up, took most of a second on a million orders.
 */
export async function orderIdsPage(em: EntityManager, filter: OrderListFilter): Promise<string[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.state) {
    where.push('state = ?');
    params.push(filter.state);
  }
  if (filter.erpDocumentId) {
    where.push('erp_document_id = ?');
    params.push(filter.erpDocumentId);
  }
  if (filter.before) {
    where.push('(created_at, id) < (?, ?)');
    params.push(filter.before.createdAt, filter.before.id);
  }
  if (filter.accounts === 'all') {
    const rows = await em.execute<Array<{ id: string }>>(
      `select id from payment_order ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ?`,
      [...params, filter.limit],
    );
    return rows.map((r) => r.id);
  }
  if (filter.accounts.length === 0) return [];
  const rows = await em.execute<Array<{ id: string }>>(
    `select p.id from unnest(array[${filter.accounts.map(() => '?').join(', ')}]::text[]) as a (iban)
       cross join lateral (
         select id, created_at from payment_order
          where payer_iban = a.iban${where.map((w) => ` and ${w}`).join('')}
          order by created_at desc, id desc limit ?
       ) p
      order by p.created_at desc, p.id desc limit ?`,
    [...filter.accounts, ...params, filter.limit, filter.limit],
  );
  return rows.map((r) => r.id);
}
