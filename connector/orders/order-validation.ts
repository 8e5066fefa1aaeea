import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder } from '../persistence/entities';
import { toNormalisedOrder } from './order.mapper';
import type { FieldError, NormalisedOrder } from './payment-order';
import { transitionOrder } from './order-state.machine';

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
 * The validate stage: an order in `received` becomes `validated` or `invalid` (with field-level
 * reasons). Safe to run twice: the second run finds the order past `received` and does nothing.
 */
export async function validateStoredOrder(
  em: EntityManager,
  orderId: string,
  validator: OrderValidator,
  options: { actor: string; now?: Date },
): Promise<{ state: string; changed: boolean }> {
  const order = await em.fork().findOne(PaymentOrder, { id: orderId });
  if (!order) return { state: 'missing', changed: false };
  if (order.state !== 'received') return { state: order.state, changed: false };
  const now = options.now ?? new Date();
  const outcome = validator(toNormalisedOrder(order), { now });
  const errors = [...(order.errors ?? []), ...outcome.errors];
  const to = errors.length > 0 ? 'invalid' : 'validated';
  const result = await transitionOrder(em, orderId, to, {
    actor: options.actor,
    from: 'received',
    reason: to === 'invalid' ? errors.map((e) => `${e.field}: ${e.messageEn ?? e.message}`).join('; ') : undefined,
    patch: { errors, warnings: [...(order.warnings ?? []), ...outcome.warnings] },
    now,
  });
  return { state: result.to, changed: result.changed };
}
