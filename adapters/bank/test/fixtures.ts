import type { NormalisedOrder } from '../../../connector/orders/payment-order';

/**
 * Requisites that pass the KZ rules (BIN checksum, IBAN mod-97 with the bank code of the BIC):
 * computed, not invented, by the helpers below so a test can make as many as it needs.
 */
export function binChecksumDigit(first11: string): number | null {
  const d = first11.split('').map(Number);
  const w1 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const w2 = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];
  let c = d.reduce((s, x, i) => s + x * w1[i], 0) % 11;
  if (c === 10) c = d.reduce((s, x, i) => s + x * w2[i], 0) % 11;
  return c === 10 ? null : c;
}

/** A valid 12-digit BIN/IIN starting with `prefix11` (11 digits), or the next valid one. */
export function makeIinBin(prefix11: string): string {
  let n = BigInt(prefix11);
  for (;;) {
    const p = n.toString().padStart(11, '0');
    const c = binChecksumDigit(p);
    if (c !== null) return `${p}${c}`;
    n += 1n;
  }
}

export function makeIban(bankCode: string, account13: string): string {
  const bban = `${bankCode}${account13}`.toUpperCase();
  const rearranged = `${bban}KZ00`.replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  let mod = 0;
  for (const ch of rearranged) mod = (mod * 10 + Number(ch)) % 97;
  return `KZ${String(98 - mod).padStart(2, '0')}${bban}`;
}

export const PAYER_BIN = makeIinBin('04054000000');
export const PAYER_IBAN = makeIban('998', 'CTB0000000001');
export const BENEFICIARY_BIN = makeIinBin('95044000000');
export const BENEFICIARY_IBAN = makeIban('826', '0000000000042');

export function sampleOrder(overrides: Partial<NormalisedOrder> = {}): NormalisedOrder {
  return {
    number: '101',
    date: '2026-11-25',
    amount: '7745.70',
    currency: 'KZT',
    payer: { name: 'ТОО "Ромашка" & <Партнёры>', iinBin: PAYER_BIN, iban: PAYER_IBAN, bic: 'TSESKZKA', kod: '17' },
    beneficiary: { name: 'ТОО Поставщик', iinBin: BENEFICIARY_BIN, iban: BENEFICIARY_IBAN, bic: 'ALMNKZKA', kbe: '17' },
    knp: '710',
    purpose: 'Оплата по счёту №5 от 20.11.2026, в т.ч. НДС 12%',
    ...overrides,
  };
}
