import type { FieldError } from './payment-order';

/**
 * The order as it was when one of its events was written (`order_event.order_snapshot`): what the
 * status webhook tells the ERP of that event. Read from `payment_order` at the event's time, the
 * webhook showed the order as it is at delivery: an `invalid` event sent after the ERP corrected
 * the document carried the corrected amount and no errors.
 */
export interface OrderEventSnapshot {
  amountTiyn: number;
  number: string;
  /** Document date, YYYY-MM-DD. */
  date: string;
  erpDocumentId: string | null;
  source: string;
  externalId: string;
  errors: FieldError[] | null;
}

/**
 * The SQL expression of the snapshot of the `payment_order` row `alias` (a jsonb object with the
 * keys of OrderEventSnapshot). Every statement that inserts into `order_event` stores it from the
 * row it has just written (an UPDATE's RETURNING gives the new values), inside that statement: no
 * query more per order, and what is stored is what was committed with the transition.
 */
export function orderSnapshotSql(alias: string): string {
  if (!/^[a-z_][a-z0-9_]*$/i.test(alias)) throw new Error(`orderSnapshotSql: ${alias} is not a table alias`);
  const a = alias;
  return `jsonb_build_object('amountTiyn', ${a}.amount_tiyn, 'number', ${a}.number, 'date', to_char(${a}.doc_date, 'YYYY-MM-DD'), 'erpDocumentId', ${a}.erp_document_id, 'source', ${a}.source, 'externalId', ${a}.external_id, 'errors', ${a}.errors)`;
}
