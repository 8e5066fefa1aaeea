import type { PaymentRequisites } from '../business-api/payment-order.document';

/**
 * INTERIM requisite checks of the sandbox (bank side), until the domain's KZ validators from the
 * ERP issue (`connector/requisites/`, branch `erp`) are merged; then `checkRequisites` delegates to
 * them. Rules: IIN/BIN checksum (two weight passes), KZ IBAN (20 chars, mod-97), bank code of the
 * IBAN vs the BIC where the BIC is known, KNP 3 digits, KOd/KBe 2 digits, amount > 0.
 */
export interface RequisiteProblem {
  field: string;
  message: string;
}

export function iinBinValid(v: string): boolean {
  if (!/^\d{12}$/.test(v)) return false;
  const d = v.split('').map(Number);
  const w1 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const w2 = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];
  let c = w1.reduce((s, w, i) => s + w * d[i], 0) % 11;
  if (c === 10) c = w2.reduce((s, w, i) => s + w * d[i], 0) % 11;
  return c !== 10 && c === d[11];
}

export function kzIbanValid(v: string): boolean {
  if (!/^KZ\d{2}[0-9A-Z]{16}$/.test(v)) return false;
  const rearranged = `${v.slice(4)}${v.slice(0, 4)}`.replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  let mod = 0;
  for (const ch of rearranged) mod = (mod * 10 + Number(ch)) % 97;
  return mod === 1;
}

/** IBAN bank codes of BICs the sandbox knows (formats/refdata/kz_bic_iban_bank_codes.csv subset). */
const BANK_CODE_BY_BIC: Record<string, string> = {
  TSESKZKA: '998',
  ALMNKZKA: '826',
  HSBKKZKX: '601',
  KCJBKZKX: '722',
  CASPKZKA: '722',
  KKMFKZ2A: '070',
  NBRKKZKX: '125',
  GCVPKZ2A: '009',
};

export function checkRequisites(r: PaymentRequisites): RequisiteProblem[] {
  const problems: RequisiteProblem[] = [];
  for (const [side, party] of [['payer', r.payer], ['beneficiary', r.beneficiary]] as const) {
    if (!iinBinValid(party.iinBin)) problems.push({ field: `${side}.iinBin`, message: `${side} IIN/BIN ${party.iinBin} fails the checksum` });
    if (!kzIbanValid(party.iban)) problems.push({ field: `${side}.iban`, message: `${side} IBAN ${party.iban} is not a valid KZ IBAN` });
    if (!/^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$/.test(party.bic)) problems.push({ field: `${side}.bic`, message: `${side} BIC ${party.bic} is malformed` });
    const code = BANK_CODE_BY_BIC[party.bic.slice(0, 8)];
    if (code && kzIbanValid(party.iban) && party.iban.slice(4, 7) !== code) {
      problems.push({ field: `${side}.iban`, message: `${side} IBAN bank code ${party.iban.slice(4, 7)} does not belong to BIC ${party.bic}` });
    }
  }
  if (!/^\d{2}$/.test(r.payer.kod)) problems.push({ field: 'payer.kod', message: 'KOd must be 2 digits' });
  if (!/^\d{2}$/.test(r.beneficiary.kbe)) problems.push({ field: 'beneficiary.kbe', message: 'KBe must be 2 digits' });
  if (!/^\d{3}$/.test(r.knp)) problems.push({ field: 'knp', message: 'KNP must be 3 digits' });
  if (!/^\d{1,16}\.\d{2}$/.test(r.amount) || /^0+\.00$/.test(r.amount)) problems.push({ field: 'amount', message: 'amount must be positive with two decimals' });
  if (r.currency !== 'KZT') problems.push({ field: 'currency', message: 'the sandbox executes KZT payments only' });
  if (r.purpose.trim() === '') problems.push({ field: 'purpose', message: 'purpose of payment is empty' });
  return problems;
}

/** A valid 12-digit IIN/BIN beginning with `prefix11` (11 digits), or the next valid one (demo data, tests). */
export function makeIinBin(prefix11: string): string {
  let n = BigInt(prefix11);
  for (;;) {
    const candidate = n.toString().padStart(11, '0');
    for (let c = 0; c <= 9; c += 1) if (iinBinValid(`${candidate}${c}`)) return `${candidate}${c}`;
    n += 1n;
  }
}

/** A KZ IBAN with the right check digits for a 3-digit bank code and a 13-character account. */
export function makeIban(bankCode: string, account13: string): string {
  const bban = `${bankCode}${account13}`.toUpperCase();
  const rearranged = `${bban}KZ00`.replace(/[A-Z]/g, (ch) => String(ch.charCodeAt(0) - 55));
  let mod = 0;
  for (const ch of rearranged) mod = (mod * 10 + Number(ch)) % 97;
  return `KZ${String(98 - mod).padStart(2, '0')}${bban}`;
}
