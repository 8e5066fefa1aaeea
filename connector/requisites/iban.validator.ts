import { defaultBankDirectory, type BankDirectory } from './bank-directory';
import { fail, PASS, type RuleResult } from './requisite-rule';

/**
 * IIK (the Kazakhstan IBAN): `KZ` + 2 check digits + 3-digit bank code + 13 alphanumerics,
 * 20 characters, ISO 13616 mod-97 (ONEC-KZ.md "Reference data").
 */
const KZ_IBAN = /^KZ\d{2}\d{3}[A-Z0-9]{13}$/;

/** An IBAN as compared: a bank or a person may print it in lower case or in groups of four. */
export function compactIban(iban: string): string {
  return iban.replace(/\s+/g, '').toUpperCase();
}

/** ISO 13616: move the first 4 characters to the end, letters to 10..35, the number mod 97 must be 1. */
export function ibanMod97(iban: string): number {
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i += 1) {
    const c = rearranged.charCodeAt(i);
    // digits add one decimal place, letters (A=10..Z=35) two.
    if (c >= 48 && c <= 57) remainder = (remainder * 10 + (c - 48)) % 97;
    else remainder = (remainder * 100 + (c - 55)) % 97;
  }
  return remainder;
}

export function ibanBankCode(iban: string): string {
  return iban.slice(4, 7);
}

/** Format and checksum only. */
export function checkIbanFormat(value: string): RuleResult {
  if (!KZ_IBAN.test(value)) {
    return fail(
      'IBAN_FORMAT',
      `ИИК «${value}» имеет неверный формат: нужно 20 знаков — KZ, 2 контрольные цифры, 3 цифры кода банка и 13 букв/цифр`,
      `IIK "${value}" is malformed: expected KZ + 2 check digits + 3-digit bank code + 13 alphanumerics (20 characters)`,
    );
  }
  if (ibanMod97(value) !== 1) {
    return fail(
      'IBAN_CHECKSUM',
      `ИИК ${value}: неверные контрольные цифры (3-4 знаки); в номере счёта опечатка`,
      `IIK ${value}: mod-97 check failed`,
    );
  }
  return PASS;
}

/** Format, checksum, and a bank code that a bank in the directory holds. */
export function checkIban(value: string, directory: BankDirectory = defaultBankDirectory): RuleResult {
  const format = checkIbanFormat(value);
  if (!format.ok) return format;
  if (directory.findByIbanCode(ibanBankCode(value)).length === 0) {
    return fail(
      'IBAN_BANK_UNKNOWN',
      `ИИК ${value}: код банка ${ibanBankCode(value)} (5-7 знаки) не найден в справочнике банков`,
      `IIK ${value}: bank code ${ibanBankCode(value)} is not in the bank directory`,
    );
  }
  return PASS;
}

/** The bank code inside the IIK must belong to the bank of the BIC (both assumed well-formed). */
export function checkIbanMatchesBic(iban: string, bic: string, directory: BankDirectory = defaultBankDirectory): RuleResult {
  const bank = directory.findByBic(bic);
  if (!bank) return PASS; // an unknown BIC is reported by the BIC rule, not twice
  const code = ibanBankCode(iban);
  if (bank.ibanCode !== code) {
    return fail(
      'IBAN_BIC_MISMATCH',
      `ИИК ${iban} открыт в банке с кодом ${code}, а БИК ${bic} — банк с кодом ${bank.ibanCode} (${bank.name}); счёт и БИК не соответствуют друг другу`,
      `IIK ${iban} has bank code ${code} but BIC ${bic} is bank code ${bank.ibanCode} (${bank.name})`,
    );
  }
  return PASS;
}
