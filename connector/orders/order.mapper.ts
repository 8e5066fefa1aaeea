import { formatAmount } from '../shared/money';
import type { PaymentOrder } from '../persistence/entities';
import type { NormalisedOrder } from './payment-order';

/** The stored order back in the normalised shape of INTERFACES.md (what validators and the bank document see). */
export function toNormalisedOrder(order: PaymentOrder): NormalisedOrder {
  return {
    number: order.number,
    date: order.docDate,
    amount: formatAmount(order.amountTiyn),
    currency: order.currency,
    payer: { name: order.payerName, iinBin: order.payerIinBin, iban: order.payerIban, bic: order.payerBic, kod: order.payerKod },
    beneficiary: {
      name: order.beneficiaryName,
      iinBin: order.beneficiaryIinBin,
      iban: order.beneficiaryIban,
      bic: order.beneficiaryBic,
      kbe: order.beneficiaryKbe,
    },
    knp: order.knp,
    purpose: order.purpose,
    ...(order.kbk ? { kbk: order.kbk } : {}),
    valueDate: order.valueDate,
    ...(order.erpDocumentId ? { erpDocumentId: order.erpDocumentId } : {}),
  };
}

/** What operators and ERPs see of an order (CLI `orders show --json`, `GET /api/v1/orders/:id`). */
export function orderView(order: PaymentOrder) {
  return {
    id: order.id,
    state: order.state,
    source: order.source,
    externalId: order.externalId,
    erpDocumentId: order.erpDocumentId ?? null,
    order: toNormalisedOrder(order),
    errors: order.errors ?? [],
    warnings: order.warnings ?? [],
    lastError: order.lastError ?? null,
    /** The stage a `failed` order failed in (`submitting` / `submitted`: the bank may hold it; never pay it again another way). */
    failedFrom: order.state === 'failed' ? (order.failedFrom ?? null) : null,
    bank: {
      reference: order.bankReference ?? null,
      status: order.bankStatus ?? null,
      reasonCode: order.bankReasonCode ?? null,
      reasonText: order.bankReasonText ?? null,
    },
    createdAt: order.createdAt.toISOString(),
    updatedAt: order.updatedAt.toISOString(),
    version: order.version,
  };
}

/** The fields an order's refusal is explained from. */
export type RefusalFields = Pick<PaymentOrder, 'state' | 'errors' | 'bankReasonCode' | 'bankReasonText'>;

/** Whose requisite a rule is about, in the words of the payment order (the messages name the requisite, not always the party). */
const PARTY_RU: Record<string, string> = { payer: 'Плательщик: ', beneficiary: 'Получатель: ' };

/**
 * Why an order was refused, in words the ERP's user reads: the bank's own text for a
 * rejection, each broken rule of an invalid order. Nothing for any other state: an order that
 * `failed` is not refused (it may even be at the bank already, when it failed while being sent),
 * and a reason there would invite a second payment; its status says to ask the administrator.
 * The 1C status report (the write-back job and `connector onec statuses`) says exactly this.
 */
export function refusalReason(order: RefusalFields): { reason?: string; reasonCode?: string } {
  if (order.state === 'rejected') {
    const reason = order.bankReasonText ?? 'Отклонён банком без объяснения причины';
    return order.bankReasonCode ? { reason, reasonCode: order.bankReasonCode } : { reason };
  }
  if (order.state === 'invalid') {
    const errors = order.errors ?? [];
    const reason = errors.map((e) => `${PARTY_RU[e.field.split('.')[0]] ?? ''}${e.message}`).join('; ') || 'Ошибки в реквизитах';
    const codes = [...new Set(errors.map((e) => e.code))].join(',');
    return codes ? { reason, reasonCode: codes } : { reason };
  }
  return {};
}
