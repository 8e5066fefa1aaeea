/**
 * Money is exact: amounts are integers of tiyn (1 tenge = 100 tiyn) inside the connector and
 * decimal strings ("7745.70") at the edges. Never a float.
 *
 * A refused amount says which rule it broke: its form (`format`), its size (`too_large`, over
 * MAX_AMOUNT), or, for sums and conversions inside the connector, the safe-integer range (`range`);
 * `message` is English (logs), `messageRu` the same for the 1C user.
 */
export class MoneyError extends Error {
  readonly code = 'INVALID_AMOUNT';
  constructor(
    readonly rule: 'format' | 'too_large' | 'range',
    message: string,
    readonly messageRu: string,
  ) {
    super(message);
  }
}

/** Largest amount we accept, in tiyn: keeps every sum a safe JS integer (9e15 / 100 tenge). */
export const MAX_TIYN = Number.MAX_SAFE_INTEGER;
/** MAX_TIYN as people write it: "90071992547409.91". */
export const MAX_AMOUNT = '90071992547409.91';

const DECIMAL = /^(\d+)(?:[.,](\d{1,2}))?$/;

function tooLarge(text: string): MoneyError {
  return new MoneyError('too_large', `amount "${text}" exceeds the largest amount ${MAX_AMOUNT}`, `Сумма «${text}» больше наибольшей допустимой (${MAX_AMOUNT})`);
}

/** "7745.7" -> 774570. Accepts a dot (1C writes a dot) or a comma; at most 2 decimals; no sign, no exponent. */
export function parseAmount(text: string): number {
  const trimmed = text.trim();
  const match = DECIMAL.exec(trimmed);
  // At most 16 digits before the point, leading zeros included (as the bank's Amount pattern);
  // more of them is a size problem, unless only leading zeros make them more.
  if (!match || (match[1].length > 16 && match[1].replace(/^0+/, '').length <= 16)) {
    throw new MoneyError(
      'format',
      `"${text}" is not an amount: expected digits with at most 2 decimals, e.g. 7745.70`,
      `Сумма «${text}» записана неверно: нужны цифры и не более 2 знаков после точки, например 7745.70`,
    );
  }
  if (match[1].length > 16) throw tooLarge(text);
  const whole = Number(match[1]);
  const frac = Number((match[2] ?? '').padEnd(2, '0'));
  const tiyn = whole * 100 + frac;
  if (!Number.isSafeInteger(tiyn)) throw tooLarge(text);
  return tiyn;
}

/** 774570 -> "7745.70"; negative amounts keep their sign. */
export function formatAmount(tiyn: number): string {
  if (!Number.isSafeInteger(tiyn)) throw new MoneyError('range', `${tiyn} is not a whole number of tiyn`, `${tiyn} — не целое число тиынов`);
  const sign = tiyn < 0 ? '-' : '';
  const abs = Math.abs(tiyn);
  return `${sign}${Math.floor(abs / 100)}.${String(abs % 100).padStart(2, '0')}`;
}

/** Sum of tiyn amounts that refuses to leave the safe-integer range. */
export function sumTiyn(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) {
    total += v;
    if (!Number.isSafeInteger(total)) throw new MoneyError('range', 'sum exceeds the safe integer range', `сумма больше наибольшей допустимой (${MAX_AMOUNT})`);
  }
  return total;
}
