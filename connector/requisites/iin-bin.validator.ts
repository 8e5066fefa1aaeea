import { fail, PASS, type RuleResult } from './requisite-rule';

/**
 * IIN (individuals) and BIN (legal entities) of Kazakhstan: 12 digits, the 12th a check digit
 * computed in two passes (ONEC-KZ.md "Reference data"): digits 1..11 times weights 1..11, mod 11;
 * when that is 10, weights 3,4,5,6,7,8,9,10,11,1,2, mod 11; when still 10 the number cannot exist.
 */
const FIRST_PASS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const SECOND_PASS = [3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2];

/** The check digit of the first 11 digits, or null when no check digit exists for them. */
export function iinBinCheckDigit(first11: string): number | null {
  let sum = 0;
  for (let i = 0; i < 11; i += 1) sum += (first11.charCodeAt(i) - 48) * FIRST_PASS[i];
  let check = sum % 11;
  if (check !== 10) return check;
  sum = 0;
  for (let i = 0; i < 11; i += 1) sum += (first11.charCodeAt(i) - 48) * SECOND_PASS[i];
  check = sum % 11;
  return check === 10 ? null : check;
}

/** 12 digits with a valid check digit; says nothing about whether it is an IIN or a BIN. */
export function checkIinBin(value: string): RuleResult {
  if (!/^\d{12}$/.test(value)) {
    return fail(
      'IIN_BIN_FORMAT',
      `ИИН/БИН «${value}» должен состоять ровно из 12 цифр`,
      `IIN/BIN "${value}" must be exactly 12 digits`,
    );
  }
  if (/^0+$/.test(value)) {
    return fail('IIN_BIN_FORMAT', 'ИИН/БИН не может состоять из одних нулей', 'IIN/BIN cannot be all zeros');
  }
  const expected = iinBinCheckDigit(value.slice(0, 11));
  if (expected === null || expected !== value.charCodeAt(11) - 48) {
    return fail(
      'IIN_BIN_CHECKSUM',
      `ИИН/БИН ${value}: неверное контрольное число (12-я цифра); проверьте номер по документам`,
      `IIN/BIN ${value}: check digit (12th) does not match`,
    );
  }
  return PASS;
}

function validMonth(mm: string): boolean {
  const m = Number(mm);
  return m >= 1 && m <= 12;
}

/**
 * IIN of a person: checksum, and the structure YYMMDD + a century/sex digit (1..6; 0 is found
 * on IINs issued to some foreigners, so it is accepted).
 */
export function checkIin(value: string): RuleResult {
  const base = checkIinBin(value);
  if (!base.ok) return base;
  const day = Number(value.slice(4, 6));
  const centurySex = value.charCodeAt(6) - 48;
  if (!validMonth(value.slice(2, 4)) || day < 1 || day > 31 || centurySex > 6) {
    return fail(
      'IIN_STRUCTURE',
      `ИИН ${value}: первые 7 цифр должны быть датой рождения ГГММДД и признаком века/пола (0-6); похоже, это не ИИН`,
      `IIN ${value}: digits 1-7 must be a birth date YYMMDD and a century/sex digit 0-6`,
    );
  }
  return PASS;
}

/**
 * BIN of an organisation: checksum, and YYMM of registration + the type digit (4 resident legal
 * entity, 5 non-resident legal entity, 6 joint individual entrepreneurship) + the attribute digit
 * (0 head office, 1 branch, 2 representative office, 3 peasant farm).
 */
export function checkBin(value: string): RuleResult {
  const base = checkIinBin(value);
  if (!base.ok) return base;
  const type = value.charCodeAt(4) - 48;
  const attribute = value.charCodeAt(5) - 48;
  if (!validMonth(value.slice(2, 4)) || type < 4 || type > 6 || attribute > 3) {
    return fail(
      'BIN_STRUCTURE',
      `БИН ${value}: цифры 1-4 должны быть ГГММ регистрации, 5-я — тип (4, 5 или 6), 6-я — признак (0-3); похоже, это не БИН`,
      `BIN ${value}: digits 1-4 must be YYMM, digit 5 the entity type (4-6), digit 6 the attribute (0-3)`,
    );
  }
  return PASS;
}
