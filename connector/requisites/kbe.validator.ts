import { fail, PASS, type RuleResult } from './requisite-rule';

/**
 * КБе (beneficiary) and КОд (payer) codes: residency digit (1 resident, 2 non-resident) and
 * economic-sector digit 1..9 (1 government ... 7 private non-financial, 8 non-profit,
 * 9 individuals). ONEC-KZ.md "Reference data".
 */
export function checkKbe(value: string, label: 'КБе' | 'КОд' = 'КБе'): RuleResult {
  if (!/^[12][1-9]$/.test(value)) {
    return fail(
      label === 'КБе' ? 'KBE_FORMAT' : 'KOD_FORMAT',
      `${label} «${value}» должен состоять из 2 цифр: признак резидентства (1 — резидент, 2 — нерезидент) и сектор экономики (1-9), например 17`,
      `${label === 'КБе' ? 'KBe' : 'KOd'} "${value}" must be 2 digits: residency (1/2) + economic sector (1-9)`,
    );
  }
  return PASS;
}

export function residencyOf(code: string): 'resident' | 'non-resident' {
  return code[0] === '1' ? 'resident' : 'non-resident';
}
