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
export type RefusalFields = Pick<PaymentOrder, 'state' | 'errors' | 'bankStatus' | 'bankReasonCode' | 'bankReasonText'>;

/**
 * Why an order did not go through, in words the ERP's user reads: the bank's reason for a
 * rejection, the field errors of an invalid order, what a technical failure means for them.
 * Nothing for an order still on its way or executed. The 1C status report (the write-back job and
 * `connector onec statuses`) says exactly this.
 */
export function refusalReason(order: RefusalFields): { reason?: string; reasonCode?: string } {
  if (order.state === 'rejected') {
    const reason = order.bankReasonText ?? order.bankStatus ?? 'Отклонён банком без объяснения причины';
    return order.bankReasonCode ? { reason, reasonCode: order.bankReasonCode } : { reason };
  }
  if (order.state === 'invalid') {
    const errors = order.errors ?? [];
    const reason = errors.map((e) => `${e.field}: ${e.message}`).join('; ') || 'Ошибки в реквизитах';
    const codes = [...new Set(errors.map((e) => e.code))].join(',');
    return codes ? { reason, reasonCode: codes } : { reason };
  }
  if (order.state === 'failed') return { reason: 'Техническая ошибка при отправке; администратор коннектора повторит отправку' };
  return {};
}
