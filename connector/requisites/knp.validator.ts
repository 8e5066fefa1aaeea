import knpData from './data/knp.json';
import { fail, PASS, type RuleResult } from './requisite-rule';

/**
 * КНП, the purpose-of-payment code (NBRK resolution No. 203 of 2016): 3 digits. No complete
 * machine-readable official list is public; data/knp.json holds the verified codes, so an unknown
 * code is `KNP_UNKNOWN`, which the order validator reports as a warning unless configured as an error.
 */
export interface KnpEntry {
  code: string;
  name: string;
  confidence?: string;
  source?: string;
}

const KNOWN = new Map<string, KnpEntry>((knpData as { codes: KnpEntry[] }).codes.map((e) => [e.code, e]));

export function findKnp(code: string): KnpEntry | undefined {
  return KNOWN.get(code);
}

/** Budget payments (taxes, penalties, fines) are the 9xx group: they need a КБК and go to the Treasury. */
export function isBudgetKnp(code: string): boolean {
  return /^9\d\d$/.test(code);
}

/**
 * Pension, social and medical-insurance contributions (ОПВ 010/019, ОПВР 089/098, СО 012/017,
 * ООСМС/ВОСМС 121-124) are paid to the State Corporation "Government for Citizens" (GCVPKZ2A).
 */
const CONTRIBUTION_KNP = new Set(['010', '019', '089', '098', '012', '017', '121', '122', '123', '124']);
export function isContributionKnp(code: string): boolean {
  return CONTRIBUTION_KNP.has(code);
}

export function checkKnpFormat(value: string): RuleResult {
  if (!/^\d{3}$/.test(value)) {
    return fail(
      'KNP_FORMAT',
      `КНП «${value}» должен состоять из 3 цифр (код назначения платежа), например 710`,
      `KNP "${value}" must be 3 digits`,
    );
  }
  return PASS;
}

/** Format and presence in the data file. */
export function checkKnp(value: string): RuleResult {
  const format = checkKnpFormat(value);
  if (!format.ok) return format;
  if (!KNOWN.has(value)) {
    return fail(
      'KNP_UNKNOWN',
      `КНП ${value} нет в справочнике кодов назначения платежа коннектора; проверьте код по классификатору НБРК`,
      `KNP ${value} is not in the connector's KNP list`,
    );
  }
  return PASS;
}
