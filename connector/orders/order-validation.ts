import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder } from '../persistence/entities';
import { toNormalisedOrder } from './order.mapper';
import type { FieldError, NormalisedOrder } from './payment-order';
import { IllegalTransitionError, transitionOrders } from './order-state.machine';
import type { OrderState } from './order-state';

export interface ValidationOutcome {
  errors: FieldError[];
  warnings: FieldError[];
}

/** The requisite rules, a port: the KZ validator implements it; the domain only applies its verdict. */
export type OrderValidator = (order: NormalisedOrder, context: { now: Date }) => ValidationOutcome;

/** Checks that hold for every ERP before the KZ requisite rules: currency and a positive amount. */
export const basicOrderValidator: OrderValidator = (order) => {
  const errors: FieldError[] = [];
  if (order.currency !== 'KZT') {
    errors.push({ field: 'currency', code: 'CURRENCY_NOT_KZT', message: 'Валюта внутреннего платежа должна быть KZT', messageEn: 'domestic payments must be in KZT' });
  }
  if (/^0+(\.0+)?$/.test(order.amount)) {
    errors.push({ field: 'amount', code: 'AMOUNT_NOT_POSITIVE', message: 'Сумма должна быть больше нуля', messageEn: 'amount must be positive' });
  }
  return { errors, warnings: [] };
};

/**
 * Pre-validation codes intake records when a value cannot even be stored (order-intake.ts): the
 * column then holds a placeholder (amount 0, document date 1970-01-01, value date = document date).
 */
const PLACEHOLDER_CODES = new Set(['AMOUNT_FORMAT', 'DATE_INVALID']);

/**
 * The fields of `order` that hold such a placeholder. The validator's findings on them judge the
 * placeholder, not what the ERP wrote ("-5.00" would also read "amount 0.00 must be positive"): the
 * intake error is the one true reason. The value date defaults to the document date, so a
 * placeholder document date is the value date's placeholder too when the two are equal.
 */
function placeholderFields(order: PaymentOrder): Set<string> {
  const fields = new Set((order.errors ?? []).filter((e) => PLACEHOLDER_CODES.has(e.code)).map((e) => e.field));
  if (fields.has('date') && String(order.valueDate) === String(order.docDate)) fields.add('valueDate');
  return fields;
}

/**
 * The validate stage: an order in `received` becomes `validated` or `invalid` (with field-level
 * reasons). Safe to run twice: the second run finds the order past `received` and does nothing.
 * A verdict is applied only to the version of the order it judged: one that moved on meanwhile
 * (judged by another run, corrected by the ERP) is answered with its current state, unchanged.
 */
export async function validateStoredOrder(
  em: EntityManager,
  orderId: string,
  validator: OrderValidator,
  options: { actor: string; now?: Date },
): Promise<{ state: string; changed: boolean }> {
  const [outcome] = await validateStoredOrders(em, [orderId], validator, options);
  if (outcome instanceof Error) throw outcome;
  return outcome;
}

/**
 * `validateStoredOrder` for many orders: one load, then one conditional UPDATE per verdict and
 * reason (all the valid ones together), each order with its own errors and warnings. One outcome
 * per id, in order.
 */
export async function validateStoredOrders(
  em: EntityManager,
  orderIds: readonly string[],
  validator: OrderValidator,
  options: { actor: string; now?: Date },
): Promise<Array<{ state: string; changed: boolean } | Error>> {
  const now = options.now ?? new Date();
  const orders = await em.fork().find(PaymentOrder, { id: { $in: [...orderIds] } }, { disableIdentityMap: true });
  const byId = new Map(orders.map((o) => [o.id, o]));
  const outcomes = new Map<string, { state: string; changed: boolean } | Error>();
  const groups = new Map<string, { to: OrderState; reason: string | undefined; version: number; perOrder: Map<string, { errors: FieldError[]; warnings: FieldError[] }> }>();
  for (const id of orderIds) {
    const order = byId.get(id);
    if (!order) outcomes.set(id, { state: 'missing', changed: false });
    else if (order.state !== 'received') outcomes.set(id, { state: order.state, changed: false });
    else {
      let outcome: ValidationOutcome;
      try {
        outcome = validator(toNormalisedOrder(order), { now });
      } catch (err) {
        outcomes.set(id, err as Error);
        continue;
      }
      const placeholders = placeholderFields(order);
      const judged = (found: FieldError[]) => found.filter((e) => !placeholders.has(e.field));
      const errors = [...(order.errors ?? []), ...judged(outcome.errors)];
      const to: OrderState = errors.length > 0 ? 'invalid' : 'validated';
      const reason = to === 'invalid' ? errors.map((e) => `${e.field}: ${e.messageEn ?? e.message}`).join('; ') : undefined;
      // Grouped by the version judged too: each transition is conditional on it (below).
      const key = `${to}\u0000${reason ?? ''}\u0000${order.version}`;
      if (!groups.has(key)) groups.set(key, { to, reason, version: order.version, perOrder: new Map() });
      groups.get(key)?.perOrder.set(id, { errors, warnings: [...(order.warnings ?? []), ...judged(outcome.warnings)] });
    }
  }
  // Only the version judged: a duplicate validate job that loaded version N, applying its verdict
  // after the ERP's correction made the order N+1 (`received` again, another body), would have
  // marked the corrected order with the old body's verdict. Such an order moved on: no verdict,
  // no error; the run that loads the new version judges it.
  const movedOn: string[] = [];
  for (const { to, reason, version, perOrder } of groups.values()) {
    for (const r of await transitionOrders(em, [...perOrder.keys()], to, { actor: options.actor, from: 'received', expectVersion: version, reason, perOrder, now })) {
      if ('error' in r && r.error instanceof IllegalTransitionError) movedOn.push(r.orderId);
      else outcomes.set(r.orderId, 'error' in r ? r.error : { state: r.to, changed: r.changed });
    }
  }
  if (movedOn.length > 0) {
    const current = await em.fork().execute<Array<{ id: string; state: string }>>(`select id, state from payment_order where id in (${movedOn.map(() => '?').join(', ')})`, movedOn);
    for (const { id, state } of current) outcomes.set(id, { state, changed: false });
    for (const id of movedOn) if (!outcomes.has(id)) outcomes.set(id, { state: 'missing', changed: false });
  }
  return orderIds.map((id) => outcomes.get(id) as { state: string; changed: boolean } | Error);
}
