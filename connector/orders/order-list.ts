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
 * /api/v1/orders`. Keyset paging on the `payment_order_created_idx` index: a page costs the same on
 * the first day and after years of history.
 */
export async function orderIdsPage(em: EntityManager, filter: OrderListFilter): Promise<string[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.accounts !== 'all') {
    if (filter.accounts.length === 0) return [];
    where.push(`payer_iban in (${filter.accounts.map(() => '?').join(', ')})`);
    params.push(...filter.accounts);
  }
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
  const rows = await em.execute<Array<{ id: string }>>(
    `select id from payment_order ${where.length ? `where ${where.join(' and ')}` : ''} order by created_at desc, id desc limit ?`,
    [...params, filter.limit],
  );
  return rows.map((r) => r.id);
}
