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
