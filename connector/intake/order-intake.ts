import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { parseAmount, MoneyError } from '../shared/money';
import type { FieldError, NormalisedOrder } from '../orders/payment-order';
import type { OrderState } from '../orders/order-state';
import { validateStoredOrder, type OrderValidator } from '../orders/order-validation';
import { isLockdownRecorded } from '../lockdown/lockdown.flag';
import { holdPendingOrders } from '../lockdown/lockdown.service';

/** Where intake hands orders on; queue/ implements it (DESIGN.md dependency rules: a port). */
export interface IntakeQueuePort {
  enqueueValidate(orderIds: string[]): Promise<void>;
  /** Orders validated inline go on to the signing stage. */
  enqueueValidated?(orderIds: string[]): Promise<void>;
}

export interface IntakeItem {
  order: NormalisedOrder;
  /** The document as the ERP sent it (1C text, JSON), kept for the archive. */
  rawDocument?: string;
}

export interface IntakeResult {
  orderId: string;
  externalId: string;
  created: boolean;
  state: OrderState;
}

function isRealDate(iso: string): boolean {
  const d = new Date(`${iso}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === iso;
}

/**
 * Persists orders idempotently on the natural key (source + number + date + payer account):
 * the same document delivered twice is one order (the database decides, not a job id,
 * LESSONS.md 11). New orders start `received` and are handed to the validate stage.
 * An amount or date that cannot even be stored is recorded as a pre-validation error, so the
 * order is still visible and ends `invalid` with the reason, never silently dropped.
 */
export async function intakeOrders(
  em: EntityManager,
  source: string,
  items: IntakeItem[],
  queue: IntakeQueuePort,
  options: {
    actor: string;
    now?: Date;
    /** Judge requisites at once (the HTTP API answers with the verdict); the validate job then finds nothing to do. */
    validateInline?: OrderValidator;
  },
): Promise<IntakeResult[]> {
  const now = options.now ?? new Date();
  const results: IntakeResult[] = [];
  const toEnqueue: string[] = [];
  await em.transactional(async (tx) => {
    for (const { order, rawDocument } of items) {
      const errors: FieldError[] = [];
      let amountTiyn = 0;
      try {
        amountTiyn = parseAmount(order.amount);
      } catch (err) {
        if (!(err instanceof MoneyError)) throw err;
        errors.push({ field: 'amount', code: 'AMOUNT_FORMAT', message: `Сумма "${order.amount}" записана неверно: нужны цифры и не более 2 знаков после точки`, messageEn: err.message });
      }
      let docDate = order.date;
      if (!isRealDate(docDate)) {
        errors.push({ field: 'date', code: 'DATE_INVALID', message: `Дата документа "${order.date}" не существует`, messageEn: `document date ${order.date} does not exist` });
        docDate = '1970-01-01';
      }
      let valueDate = order.valueDate ?? docDate;
      if (!isRealDate(valueDate)) {
        errors.push({ field: 'valueDate', code: 'DATE_INVALID', message: `Дата валютирования "${valueDate}" не существует`, messageEn: `value date ${valueDate} does not exist` });
        valueDate = docDate;
      }
      const id = randomUUID();
      const externalId = id.replace(/-/g, '');
      const inserted = await tx.execute<Array<{ id: string }>>(
        `insert into payment_order (id, source, erp_document_id, number, doc_date, value_date, amount_tiyn, currency,
           payer_name, payer_iin_bin, payer_iban, payer_bic, payer_kod,
           beneficiary_name, beneficiary_iin_bin, beneficiary_iban, beneficiary_bic, beneficiary_kbe,
           knp, kbk, purpose, state, version, external_id, errors, submit_attempts, raw_document,
           created_at, updated_at, state_changed_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'received', 1, ?, ?, 0, ?, ?, ?, ?)
         on conflict on constraint payment_order_natural_key do nothing
         returning id`,
        [
          id, source, order.erpDocumentId ?? null, order.number, docDate, valueDate, amountTiyn, order.currency,
          order.payer.name, order.payer.iinBin, order.payer.iban, order.payer.bic, order.payer.kod,
          order.beneficiary.name, order.beneficiary.iinBin, order.beneficiary.iban, order.beneficiary.bic, order.beneficiary.kbe,
          order.knp, order.kbk ?? null, order.purpose, externalId, errors.length ? JSON.stringify(errors) : null,
          rawDocument ?? null, now, now, now,
        ],
      );
      if (inserted.length === 1) {
        await tx.execute(
          'insert into order_event (order_id, from_state, to_state, actor, reason, at) values (?, null, ?, ?, ?, ?)',
          [id, 'received', options.actor, `intake from ${source}`, now],
        );
        results.push({ orderId: id, externalId, created: true, state: 'received' });
        toEnqueue.push(id);
      } else {
        const existing = await tx.execute<Array<{ id: string; external_id: string; state: OrderState }>>(
          'select id, external_id, state from payment_order where source = ? and number = ? and doc_date = ? and payer_iban = ?',
          [source, order.number, docDate, order.payer.iban],
        );
        results.push({ orderId: existing[0].id, externalId: existing[0].external_id, created: false, state: existing[0].state });
      }
    }
  });
  // Issue 16: under lockdown intake stays open (nothing an ERP sends is lost) but new orders wait
  // as `held`; they are validated when an admin resolves the lockdown.
  if (toEnqueue.length && (await isLockdownRecorded(em))) {
    const held = new Set(await holdPendingOrders(em, options.actor, 'lockdown in force: held on arrival', now, toEnqueue));
    for (const result of results) if (held.has(result.orderId)) result.state = 'held';
    return results;
  }
  // After commit: a job must never point at a row that a rolled-back transaction never wrote.
  // If this enqueue is lost (crash, Redis down), the sweeper finds the order in `received`.
  if (options.validateInline) {
    const pending: string[] = [];
    const validated: string[] = [];
    for (const result of results) {
      if (!result.created) continue;
      try {
        const verdict = await validateStoredOrder(em, result.orderId, options.validateInline, { actor: options.actor, now });
        result.state = verdict.state as OrderState;
        if (verdict.state === 'received') pending.push(result.orderId);
        if (verdict.state === 'validated') validated.push(result.orderId);
      } catch {
        // Still `received`: the validate job takes it (and the sweeper, should that enqueue be lost).
        pending.push(result.orderId);
      }
    }
    toEnqueue.splice(0, toEnqueue.length, ...pending);
    if (validated.length && queue.enqueueValidated) await queue.enqueueValidated(validated);
  }
  if (toEnqueue.length) await queue.enqueueValidate(toEnqueue);
  return results;
}
