import type { FieldError } from '../orders/payment-order';
import { ConnectorError } from '../shared/errors';

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

/**
 * A requisite given outside an order (a user's IIN, an account granted to a user or an API key)
 * that breaks a rule: refused as invalid input (exit 1, HTTP 422), naming the field and the rule,
 * the same rule `connector validate` applies. `details` carries them for API clients.
 */
export function requisiteRefusal(code: string, field: string, value: string, failure: RuleFailure): ConnectorError {
  return new ConnectorError(code, `${field} "${value}" breaks ${failure.code}: ${failure.messageEn} (${failure.message})`, 1, {
    field,
    value,
    rule: failure.code,
    message: failure.message,
    messageEn: failure.messageEn,
  });
}
