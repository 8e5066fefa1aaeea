import type { EntityManager } from '@mikro-orm/postgresql';
import { ConnectorError } from '../shared/errors';
import { canTransition, type OrderState, sourcesOf } from './order-state';

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

/** Columns a transition may set together with the state (whitelist: nothing else is writable here). */
const PATCHABLE = {
  errors: 'errors',
  warnings: 'warnings',
  lastError: 'last_error',
  failedFrom: 'failed_from',
  heldFrom: 'held_from',
  submitAttempts: 'submit_attempts',
  bankReference: 'bank_reference',
  bankStatus: 'bank_status',
  bankReasonCode: 'bank_reason_code',
  bankReasonText: 'bank_reason_text',
} as const;
export type TransitionPatch = Partial<Record<keyof typeof PATCHABLE, unknown>>;

const JSON_COLUMNS = new Set(['errors', 'warnings']);

export interface TransitionOptions {
  actor: string;
  reason?: string;
  details?: unknown;
  /** Only from this state (a stage claiming its own input). Default: any state allowed to reach `to`. */
  from?: OrderState | readonly OrderState[];
  /** Optimistic lock: only when the row still has this version. */
  expectVersion?: number;
  patch?: TransitionPatch;
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
 * LESSONS.md 10) and records the OrderEvent in the same transaction.
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
  const wanted = options.from === undefined ? sourcesOf(to) : ([] as OrderState[]).concat(options.from);
  const allowed = wanted.filter((from) => canTransition(from, to));
  const now = options.now ?? new Date();
  return em.transactional(async (tx) => {
    // Parameters in the order their placeholders appear in the statement text.
    const setClauses = ['state = ?', 'version = p.version + 1', 'updated_at = ?', 'state_changed_at = ?'];
    const setParams: unknown[] = [to, now, now];
    for (const [key, value] of Object.entries(options.patch ?? {})) {
      const column = PATCHABLE[key as keyof typeof PATCHABLE];
      if (!column) throw new Error(`transitionOrder: ${key} is not patchable`);
      setClauses.push(`${column} = ?`);
      setParams.push(JSON_COLUMNS.has(column) && value !== null && value !== undefined ? JSON.stringify(value) : value ?? null);
    }
    let rows: Array<{ from_state: OrderState; version: number }> = [];
    if (allowed.length > 0) {
      const versionClause = options.expectVersion === undefined ? '' : ' and prev.version = ?';
      const versionParams = options.expectVersion === undefined ? [] : [options.expectVersion];
      rows = await tx.execute(
        `with prev as (select id, state, version from payment_order where id = ? for update)
         update payment_order p set ${setClauses.join(', ')}
         from prev where p.id = prev.id and prev.state in (${allowed.map(() => '?').join(', ')})${versionClause}
         returning prev.state as from_state, p.version`,
        [orderId, ...setParams, ...allowed, ...versionParams],
      );
    }
    if (rows.length === 1) {
      const from = rows[0].from_state;
      await tx.execute(
        'insert into order_event (order_id, from_state, to_state, actor, reason, details, at) values (?, ?, ?, ?, ?, ?, ?)',
        [orderId, from, to, options.actor, options.reason ?? null, options.details === undefined ? null : JSON.stringify(options.details), now],
      );
      return { changed: true, from, to, version: Number(rows[0].version) };
    }
    const current = await tx.execute<Array<{ state: OrderState; version: number }>>(
      'select state, version from payment_order where id = ?',
      [orderId],
    );
    if (current.length === 0) throw new OrderNotFoundError(orderId);
    const state = current[0].state;
    if (state === to) return { changed: false, from: state, to, version: Number(current[0].version) };
    throw new IllegalTransitionError(orderId, state, to);
  });
}

/** States a stage job works on; when its retries run out the order becomes `failed` from there. */
const RETRYABLE_FROM: readonly OrderState[] = ['received', 'validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'];

/**
 * Dead letter (issue: "an order that exhausts retries becomes failed, visible with its last
 * error"): the order goes to `failed` remembering the stage, so `connector orders retry` sends it
 * on from there (from `submitting`: lookup before any resend). No-op when it already moved on.
 */
export async function markOrderFailed(em: EntityManager, orderId: string, error: string, actor = 'worker'): Promise<boolean> {
  const rows = await em.execute<Array<{ state: OrderState }>>('select state from payment_order where id = ?', [orderId]);
  const from = rows[0]?.state;
  if (!from || !RETRYABLE_FROM.includes(from)) return false;
  try {
    const result = await transitionOrder(em, orderId, 'failed', { actor, from, reason: error.slice(0, 500), patch: { failedFrom: from, lastError: error.slice(0, 2000) } });
    return result.changed;
  } catch (err) {
    if (err instanceof IllegalTransitionError) return false; // it moved on meanwhile
    throw err;
  }
}
