import type { FieldError } from '../orders/payment-order';

/**
 * The verdict of one requisite rule on one value. `message` is Russian for the 1C user who must
 * fix the document (R-19: tell the ERP exactly what is wrong); `messageEn` goes to logs.
 */
export interface RuleFailure {
  code: string;
  message: string;
  messageEn: string;
}

export type RuleResult = { ok: true } | ({ ok: false } & RuleFailure);

export const PASS: RuleResult = Object.freeze({ ok: true }) as RuleResult;

export function fail(code: string, message: string, messageEn: string): RuleResult {
  return { ok: false, code, message, messageEn };
}

/** Binds a failed rule to the field of the order it judged. */
export function toFieldError(field: string, result: RuleFailure): FieldError {
  return { field, code: result.code, message: result.message, messageEn: result.messageEn };
}
