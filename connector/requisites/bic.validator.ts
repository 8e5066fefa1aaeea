import { defaultBankDirectory, type BankDirectory } from './bank-directory';
import { fail, PASS, type RuleResult } from './requisite-rule';

/** ISO 9362: 4 letters bank, 2 letters country, 2 location, optional 3 branch. KZ banks use 8. */
const BIC_FORMAT = /^[A-Z]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?$/;

export function checkBicFormat(value: string): RuleResult {
  if (!BIC_FORMAT.test(value)) {
    return fail(
      'BIC_FORMAT',
      `БИК «${value}» имеет неверный формат: нужно 8 знаков, например HSBKKZKX (латинские заглавные буквы и цифры)`,
      `BIC "${value}" is malformed: expected 8 (or 11) characters like HSBKKZKX`,
    );
  }
  if (value.slice(4, 6) !== 'KZ') {
    return fail(
      'BIC_NOT_KZ',
      `БИК ${value} не принадлежит банку Казахстана (5-6 знаки должны быть KZ)`,
      `BIC ${value} is not a Kazakhstan bank (characters 5-6 must be KZ)`,
    );
  }
  return PASS;
}

/** Format, Kazakhstan, and a bank in the directory. */
export function checkBic(value: string, directory: BankDirectory = defaultBankDirectory): RuleResult {
  const format = checkBicFormat(value);
  if (!format.ok) return format;
  if (!directory.findByBic(value)) {
    return fail(
      'BIC_UNKNOWN',
      `БИК ${value} не найден в справочнике банков Казахстана; проверьте БИК банка получателя`,
      `BIC ${value} is not in the Kazakhstan bank directory`,
    );
  }
  return PASS;
}
