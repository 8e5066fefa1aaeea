import type { EntityManager } from '@mikro-orm/postgresql';
import { ConnectorError } from '../shared/errors';
import { canTransition, type OrderState, sourcesOf } from './order-state';
import { auditOfChangedOrders } from '../audit/audit.log';
import { orderSnapshotSql } from './order-event.snapshot';

export class IllegalTransitionError extends ConnectorError {
  constructor(orderId: string, from: OrderState, to: OrderState) {
    super('ILLEGAL_TRANSITION', `order ${orderId}: ${from} -> ${to} is not an allowed transition`);
  }
}

export class OrderNotFoundError extends ConnectorError {
  constructor(orderId: string) {
    super('ORDER_NOT_FOUND', `order ${orderId} does not exist`);
  }
}

/** Columns a transition may set together with the state (whitelist: nothing else is writable here), with their types. */
const PATCHABLE = {
  errors: ['errors', 'jsonb'],
  warnings: ['warnings', 'jsonb'],
  lastError: ['last_error', 'text'],
  failedFrom: ['failed_from', 'text'],
  heldFrom: ['held_from', 'text'],
  submitAttempts: ['submit_attempts', 'integer'],
  bankReference: ['bank_reference', 'text'],
  bankStatus: ['bank_status', 'text'],
  bankReasonCode: ['bank_reason_code', 'text'],
  bankReasonText: ['bank_reason_text', 'text'],
  sendLeaseUntil: ['send_lease_until', 'timestamptz'],
} as const;
export type TransitionPatch = Partial<Record<keyof typeof PATCHABLE, unknown>>;

/** The keys of `perOrder`: the same for every order given, none also in `patch` (it would set a column twice). */
function perOrderKeysOf(ids: readonly string[], options: TransitionOptions): string[] {
  if (!options.perOrder?.size) return [];
  const keys = Object.keys(options.perOrder.values().next().value as TransitionPatch).sort();
  for (const id of ids) {
    const entry = options.perOrder.get(id);
    if (!entry) throw new Error(`transitionOrders: no per-order values for order ${id}`);
    if (Object.keys(entry).sort().join() !== keys.join()) throw new Error(`transitionOrders: order ${id} has other per-order keys than ${keys.join(', ')}`);
  }
  const both = keys.filter((key) => key in (options.patch ?? {}));
  if (both.length) throw new Error(`transitionOrders: ${both.join(', ')} given both in patch and per order`);
  return keys;
}

function patchColumn(key: string): readonly [string, string] {
  const entry = PATCHABLE[key as keyof typeof PATCHABLE];
  if (!entry) throw new Error(`transitionOrder: ${key} is not patchable`);
  return entry;
}

export interface TransitionOptions {
  actor: string;
  reason?: string;
  details?: unknown;
  /** Only from this state (a stage claiming its own input). Default: any state allowed to reach `to`. */
  from?: OrderState | readonly OrderState[];
  /** Optimistic lock: only when the row still has this version. */
  expectVersion?: number;
  /**
   * Not while a sender holds the order's send lease (its send may be at the bank), judged on the
   * row as this statement locks it (a lease taken while the caller decided is seen): `true`, any
   * sender; an owner token, any sender but that one (the caller's own lease).
   */
  unlessSendLeased?: true | string;
  patch?: TransitionPatch;
  /** Values that differ per order (transitionOrders), e.g. each order's bank reference; every entry has the same keys. */
  perOrder?: ReadonlyMap<string, TransitionPatch>;
  /**
   * An audit record for each order that moves (actor and time of the transition, the order as
   * subject), appended by the same statement (`audit_append`): the transition and its record
   * commit together, without a transaction of several round trips.
   */
  audit?: { action: string; details: (orderId: string) => Record<string, unknown> };
  now?: Date;
}

export interface TransitionResult {
  changed: boolean;
  from: OrderState;
  to: OrderState;
  version: number;
}

/**
 * Applies one state transition as ONE conditional UPDATE (the real guard against double effects,
 * LESSONS.md 10) and records the OrderEvent in the same statement (one round trip, atomic).
 * - allowed and current: changed=true;
 * - the order is already in `to`: a repeated transition, changed=false (no-op, no event);
 * - anything else: IllegalTransitionError (or OrderNotFoundError).
 */
export async function transitionOrder(
  em: EntityManager,
  orderId: string,
  to: OrderState,
  options: TransitionOptions,
): Promise<TransitionResult> {
  const [outcome] = await transitionOrders(em, [orderId], to, options);
  if ('error' in outcome) throw outcome.error;
  return outcome;
}

export type BulkTransitionOutcome = (TransitionResult & { orderId: string }) | { orderId: string; error: IllegalTransitionError | OrderNotFoundError };

/**
 * The same transition (same target, sources, reason and patch) for many orders in one statement:
 * each row is locked (in id order, so two batches never deadlock), moved only when its state
 * allows it, and gets its OrderEvent. One outcome per id, in the order given; an order that may
 * not move gets its error instead of failing the others (a batch stage handles them one by one).
 */
export async function transitionOrders(
  em: EntityManager,
  orderIds: readonly string[],
  to: OrderState,
  options: TransitionOptions,
): Promise<BulkTransitionOutcome[]> {
  if (orderIds.length === 0) return [];
  const wanted = options.from === undefined ? sourcesOf(to) : ([] as OrderState[]).concat(options.from);
  const allowed = wanted.filter((from) => canTransition(from, to));
  const now = options.now ?? new Date();
  const ids = [...new Set(orderIds)];
  const idList = ids.map(() => '?').join(', ');
  let rows: Array<{ id: string; cur_state: OrderState; cur_version: number; from_state: OrderState | null; new_version: number | null }>;
  if (allowed.length === 0) {
    rows = (await em.execute<Array<{ id: string; state: OrderState; version: number }>>(`select id, state, version from payment_order where id in (${idList})`, ids)).map((r) => ({
      id: r.id,
      cur_state: r.state,
      cur_version: r.version,
      from_state: null,
      new_version: null,
    }));
  } else {
    const setClauses = ['state = ?', 'version = p.version + 1', 'updated_at = ?', 'state_changed_at = ?'];
    const setParams: unknown[] = [to, now, now];
    for (const [key, value] of Object.entries(options.patch ?? {})) {
      const [column, type] = patchColumn(key);
      setClauses.push(`${column} = ?`);
      setParams.push(type === 'jsonb' && value !== null && value !== undefined ? JSON.stringify(value) : value ?? null);
    }
    // Per-order values arrive as one JSON recordset joined on the id.
    let perOrderFrom = '';
    const perOrderParams: unknown[] = [];
    const perOrderKeys = perOrderKeysOf(ids, options);
    if (perOrderKeys.length > 0) {
      const columns = perOrderKeys.map(patchColumn);
      for (const [column] of columns) setClauses.push(`${column} = v.${column}`);
      perOrderFrom = ` join jsonb_to_recordset(?::jsonb) as v(id uuid, ${columns.map(([column, type]) => `${column} ${type}`).join(', ')}) on v.id = prev.id`;
      const rowOf = (id: string, values: TransitionPatch) => Object.fromEntries([['id', id], ...perOrderKeys.map((key, i) => [columns[i][0], values[key as keyof TransitionPatch] ?? null])]);
      perOrderParams.push(JSON.stringify(ids.map((id) => rowOf(id, options.perOrder?.get(id) as TransitionPatch))));
    }
    const versionClause = options.expectVersion === undefined ? '' : ' and prev.version = ?';
    const versionParams = options.expectVersion === undefined ? [] : [options.expectVersion];
    const leaseFree = 'not coalesce(p.send_lease_until > now(), false)';
    const leaseClause =
      options.unlessSendLeased === undefined ? '' : options.unlessSendLeased === true ? ` and ${leaseFree}` : ` and (p.send_lease_owner = ?::uuid or ${leaseFree})`;
    const leaseParams = typeof options.unlessSendLeased === 'string' ? [options.unlessSendLeased] : [];
    // The audit records of every order, in the order given; only those of the orders that moved are appended.
    let auditCte = '';
    let auditJoin = '';
    const auditParams: unknown[] = [];
    if (options.audit) {
      const { action, details } = options.audit;
      const audit = auditOfChangedOrders(
        ids.map((id) => ({ order: id, input: { actor: options.actor, action, subject: id, details: details(id), at: now } })),
        'select id from upd',
      );
      auditCte = `,
       ${audit.cte}`;
      auditJoin = ' left join aud on true';
      auditParams.push(audit.param);
    }
    // Data-modifying CTEs share one snapshot: `prev` is the row as locked, before the update. The
    // event keeps the order as this update left it (RETURNING gives the new row): what its webhook tells.
    rows = await em.execute(
      `with prev as (select id, state, version from payment_order where id in (${idList}) order by id for update),
       upd as (
         update payment_order p set ${setClauses.join(', ')}
         from prev${perOrderFrom} where p.id = prev.id and prev.state in (${allowed.map(() => '?').join(', ')})${versionClause}${leaseClause}
         returning p.id, prev.state as from_state, p.version, ${orderSnapshotSql('p')} as order_snapshot),
       ev as (
         insert into order_event (order_id, from_state, to_state, actor, reason, details, order_snapshot, at)
         select upd.id, upd.from_state, ?::text, ?::text, ?::text, ?::jsonb, upd.order_snapshot, ?::timestamptz from upd)${auditCte}
       select prev.id, prev.state as cur_state, prev.version as cur_version, upd.from_state, upd.version as new_version${auditJoin ? ', aud.appended' : ''}
       from prev left join upd on upd.id = prev.id${auditJoin}`,
      [
        ...ids,
        ...setParams,
        ...perOrderParams,
        ...allowed,
        ...versionParams,
        ...leaseParams,
        to,
        options.actor,
        options.reason ?? null,
        options.details === undefined ? null : JSON.stringify(options.details),
        now,
        ...auditParams,
      ],
    );
  }
  const byId = new Map(rows.map((r) => [r.id, r]));
  return orderIds.map((orderId): BulkTransitionOutcome => {
    const row = byId.get(orderId);
    if (!row) return { orderId, error: new OrderNotFoundError(orderId) };
    if (row.from_state !== null && row.new_version !== null) return { orderId, changed: true, from: row.from_state, to, version: Number(row.new_version) };
    if (row.cur_state === to) return { orderId, changed: false, from: row.cur_state, to, version: Number(row.cur_version) };
    return { orderId, error: new IllegalTransitionError(orderId, row.cur_state, to) };
  });
}

/** States a stage job works on; when its retries run out the order becomes `failed` from there. */
const RETRYABLE_FROM: readonly OrderState[] = ['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'];

/**
 * The states each stage's job works on (queue/jobs). A job that gives up fails the order only
 * while the order is still in its stage: a sign job that stalled out after the order was signed
 * must not fail an order that the submit stage already holds.
 */
const STAGE_STATES: Readonly<Record<string, readonly OrderState[]>> = {
  'order.validate': ['received'],
  'order.sign': ['validated', 'awaiting_signatures'],
  'order.submit': ['signed', 'submitting'],
  'order.track': ['submitted'],
};

/**
 * Dead letter (issue: "an order that exhausts retries becomes failed, visible with its last
 * error"): the order goes to `failed` remembering the stage, so `connector orders retry` sends it
 * on from there (from `submitting`: lookup before any resend). No-op when it already moved on
 * (past the stage of `job`, when given).
 */
export async function markOrderFailed(em: EntityManager, orderId: string, error: string, actor = 'worker', job?: string): Promise<boolean> {
  const rows = await em.execute<Array<{ state: OrderState }>>('select state from payment_order where id = ?', [orderId]);
  const from = rows[0]?.state;
  const failable = (job && STAGE_STATES[job]) || RETRYABLE_FROM;
  if (!from || !failable.includes(from)) return false;
  // A sender holds the order's send lease: its job gave up (stalled out while its process was
  // busy), the send did not, and the bank's answer to it decides. Failed now, the bank's acceptance
  // would find the order failed and its reference would be lost. Once the lease lapses with no
  // answer recorded, the sweeper queues the order again (lookup first). Judged on the row the
  // transition locks (unlessSendLeased): a sender may take the lease after the look above.
  try {
    const result = await transitionOrder(em, orderId, 'failed', {
      actor,
      from,
      reason: error.slice(0, 500),
      patch: { failedFrom: from, lastError: error.slice(0, 2000) },
      ...(from === 'submitting' ? { unlessSendLeased: true as const } : {}),
    });
    return result.changed;
  } catch (err) {
    if (err instanceof IllegalTransitionError) return false; // it moved on meanwhile
    throw err;
  }
}
