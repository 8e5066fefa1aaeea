/**
 * Money is exact: amounts are integers of tiyn (1 tenge = 100 tiyn) inside the connector and
 * decimal strings ("7745.70") at the edges. Never a float.
 */
export class MoneyError extends Error {
  readonly code = 'INVALID_AMOUNT';
}

/** Largest amount we accept, in tiyn: keeps every sum a safe JS integer (9e15 / 100 tenge). */
export const MAX_TIYN = Number.MAX_SAFE_INTEGER;

const DECIMAL = /^(\d{1,16})(?:[.,](\d{1,2}))?$/;

/** "7745.7" -> 774570. Accepts a dot (1C writes a dot) or a comma; at most 2 decimals; no sign, no exponent. */
export function parseAmount(text: string): number {
  const trimmed = text.trim();
  const match = DECIMAL.exec(trimmed);
  if (!match) {
    throw new MoneyError(`"${text}" is not an amount: expected digits with at most 2 decimals, e.g. 7745.70`);
  }
  const whole = Number(match[1]);
  const frac = Number((match[2] ?? '').padEnd(2, '0'));
  const tiyn = whole * 100 + frac;
  if (!Number.isSafeInteger(tiyn)) throw new MoneyError(`"${text}" is too large`);
  return tiyn;
}

/** 774570 -> "7745.70"; negative amounts keep their sign. */
export function formatAmount(tiyn: number): string {
  if (!Number.isSafeInteger(tiyn)) throw new MoneyError(`${tiyn} is not a whole number of tiyn`);
  const sign = tiyn < 0 ? '-' : '';
  const abs = Math.abs(tiyn);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Sum of tiyn amounts that refuses to leave the safe-integer range. */
export function sumTiyn(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) {
    total += v;
    if (!Number.isSafeInteger(total)) throw new MoneyError('sum exceeds the safe integer range');
  }
  return total;
}
