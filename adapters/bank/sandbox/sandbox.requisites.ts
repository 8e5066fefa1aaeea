import { ibanMod97 } from '../../../connector/requisites/iban.validator';
import { iinBinCheckDigit } from '../../../connector/requisites/iin-bin.validator';
import { validatePaymentOrder } from '../../../connector/requisites/payment-order.validator';
import type { PaymentRequisites } from '../business-api/payment-order.document';

/**
 * The bank's requisite check of a submitted document (R-19, R-23 "malformed document"): the
 * domain's KZ validators (connector/requisites, the same rules the connector applies before
 * signing), judged as of the bank's day clock. Only errors refuse; warnings (e.g. a KNP missing
 * from the reference list) pass, as a bank would execute them. Generators for demo data below.
 */
export interface RequisiteProblem {
  field: string;
  message: string;
}

export function checkRequisites(r: PaymentRequisites, now: Date): RequisiteProblem[] {
  const { errors } = validatePaymentOrder(r, { now, mode: 'order' });
  return errors.map((e) => ({ field: e.field, message: e.messageEn ?? e.message }));
}

/** A valid 12-digit IIN/BIN beginning with `prefix11` (11 digits), or the next valid one (demo data, tests). */
export function makeIinBin(prefix11: string): string {
  let n = BigInt(prefix11);
  for (;;) {
    const candidate = n.toString().padStart(11, '0');
    const check = iinBinCheckDigit(candidate);
    if (check !== null) return `${candidate}${check}`;
    n += 1n;
  }
}

/** A KZ IBAN with the right check digits for a 3-digit bank code and a 13-character account. */
export function makeIban(bankCode: string, account13: string): string {
  const bban = `${bankCode}${account13}`.toUpperCase();
  const mod = ibanMod97(`KZ00${bban}`);
  return `KZ${String(98 - mod).padStart(2, '0')}${bban}`;
}
