import { parseAmount } from '../shared/money';
import type { ConnectorConfig } from '../../config/config.schema';

export type SignLevel = 'first' | 'second';

/** The currency every amount of the policy is in: rules, signers' limits (authority.ts) and mandates. */
export const POLICY_CURRENCY = 'KZT';

/**
 * The amount the signing policy, the signers' limits and the mandates judge an order by, in tiyn.
 * They are amounts in tenge; an order in another currency (`requisites.currencies`) has no tenge
 * value here (the bank converts at its own rate, R-22), so it is judged above every threshold and
 * limit: the account's largest-amount rule applies, a signer with a limit may not sign it and no
 * mandate covers it. Fail closed: 999,999 dollars is not an order under a 1,000,000 tenge threshold.
 * Infinity, not the largest amount: a limit or a mandate written as the largest amount
 * (90071992547409.91, MAX_AMOUNT, what "no practical limit" looks like) would cover it otherwise.
 */
export function policyAmountTiyn(order: { amountTiyn: number; currency: string }): number {
  return order.currency === POLICY_CURRENCY ? order.amountTiyn : Number.POSITIVE_INFINITY;
}

/**
 * How many signatures an order needs (config `signing.rules`): for the order's account (or "*"),
 * the rule with the highest `fromAmount` not above the amount. Who may give each is the users'
 * authority (connector/users/authority.ts), asked separately.
 */
export function requiredLevels(rules: ConnectorConfig['signing']['rules'], account: string, amountTiyn: number): SignLevel[] {
  const applicable = rules
    .filter((r) => (r.account === account || r.account === '*') && parseAmount(r.fromAmount) <= amountTiyn)
    // An account's own rules win over "*"; among them the highest threshold reached.
    .sort((a, b) => Number(b.account !== '*') - Number(a.account !== '*') || parseAmount(b.fromAmount) - parseAmount(a.fromAmount));
  const signatures = applicable[0]?.signatures ?? 1;
  return signatures === 2 ? ['first', 'second'] : ['first'];
}

/** Logins whose standing mandate covers this account and amount (config `signing.mandates`). */
export function mandatedLogins(mandates: ConnectorConfig['signing']['mandates'], account: string, amountTiyn: number): string[] {
  return mandates.filter((m) => (m.account === account || m.account === '*') && amountTiyn <= parseAmount(m.upTo)).map((m) => m.login);
}
