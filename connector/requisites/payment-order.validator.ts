import type { ConnectorConfig } from '../../config/config.schema';
import type { FieldError, PaymentOrderInput } from '../orders/payment-order';
import { MoneyError, parseAmount } from '../shared/money';
import { defaultBankDirectory, TREASURY_BIC, TREASURY_IBAN_CODE, type BankDirectory } from './bank-directory';
import { checkBicFormat } from './bic.validator';
import { checkIbanFormat, checkIbanMatchesBic, ibanBankCode } from './iban.validator';
import { checkIinBin } from './iin-bin.validator';
import { checkKbe, residencyOf } from './kbe.validator';
import { checkKnpFormat, findKnp, isBudgetKnp, isContributionKnp } from './knp.validator';
import { toFieldError, type RuleFailure } from './requisite-rule';

export type RequisitesConfig = ConnectorConfig['requisites'];

export const DEFAULT_REQUISITES: RequisitesConfig = {
  unknownKnp: 'warning',
  unknownBic: 'error',
  minAmount: '0.01',
  currencies: ['KZT'],
  purposeMaxLength: 420,
  futureDateToleranceDays: 1,
  staleAfterDays: 10,
  utcOffsetMinutes: 300,
};

export interface ValidatePaymentOrderOptions {
  now: Date;
  /**
   * `order` judges what an ERP asks us to pay: a breach is an error.
   * `statement` reads a document the bank already executed: it is a fact, so every breach is a warning.
   */
  mode?: 'order' | 'statement';
  rules?: Partial<RequisitesConfig>;
  directory?: BankDirectory;
}

export interface ValidationResult {
  errors: FieldError[];
  warnings: FieldError[];
}

/** The fields a validator reads: the normalised order, every field possibly empty. */
export type ValidatableOrder = Pick<PaymentOrderInput, 'number' | 'date' | 'amount' | 'currency' | 'payer' | 'beneficiary' | 'knp' | 'purpose'> &
  Partial<Pick<PaymentOrderInput, 'kbk' | 'valueDate'>>;

const GCVP_BIC = 'GCVPKZ2A';

/**
 * Limits the bank's contract puts on the requisites of a submitted document
 * (adapters/bank/business-api/openapi.yaml, `PaymentRequisites` and `Party`). An order over one of
 * them would be signed and sent, then refused by the bank as a malformed request (400
 * INVALID_REQUEST) on every attempt: it is invalid here, where the 1C user can still fix it.
 * Lengths are counted in UTF-16 units (`String.length`), never fewer than the contract's characters.
 */
export const CONTRACT_LIMITS = Object.freeze({ numberMaxLength: 64, nameMaxLength: 500, purposeMaxLength: 2000 });
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

/**
 * How many calendar days ahead of today (Kazakhstan time) a value date may lie. Neither the bank
 * contract nor config sets a bound, and without one "2099-12-31" was valid: an order signed now
 * and held for the bank for decades, or a typo in the year paid on a date no one meant. A month
 * covers every planned payment we know of (rent, salaries, tax on its due date); a later one is
 * made nearer its date.
 */
export const VALUE_DATE_MAX_AHEAD_DAYS = 30;

function isCalendarDate(iso: string): boolean {
  const m = ISO_DATE.exec(iso);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/** The calendar date at `now` in the configured zone (Kazakhstan, UTC+5), shifted by `days`. */
export function localDate(now: Date, utcOffsetMinutes: number, days = 0): string {
  return new Date(now.getTime() + utcOffsetMinutes * 60_000 + days * 86_400_000).toISOString().slice(0, 10);
}

/** Control characters other than tab and line feed (a carriage return included), and non-characters and lone surrogates: none has a place in the signed XML. */
// eslint-disable-next-line no-control-regex
const UNSIGNABLE_CHAR = /[\u0000-\u0008\u000B-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * What a document number may not hold although the signed XML could carry it: tab, line feed,
 * C1 controls, format characters (\p{Cf}: zero-width space and joiners, BOM, soft hyphen, bidi
 * controls) and spaces other than U+0020. None is visible to the 1C user or the signers, so "Z1"
 * and "Z1\u200b" would be two documents that look like one: two orders, both payable.
 */
const NUMBER_FORBIDDEN_CHAR = /[\t\n\u0080-\u009F\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000\p{Cf}]/u;

/** Bidi controls (embeddings, overrides, isolates, and the LRM/RLM/ALM marks): "A\u202eB" shows reversed to the signers, who sign what they did not read. */
const BIDI_CONTROL_CHAR = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/;

/**
 * A "?" touching a Cyrillic letter: where a code page without the Kazakh letters put one. cp1251
 * (1C's `Кодировка=Windows`) and cp866 (`DOS`) hold І/і only: 1C writes ә ғ қ ң ө ұ ү һ as "?", so
 * «Әлем-Құрылыс» arrives as «?лем-??рылыс» and was signed and paid to that name. No name or
 * purpose has a question mark inside or at the edge of a Cyrillic word.
 */
const LOST_LETTER = /[\u0400-\u04FF]\?|\?[\u0400-\u04FF]/;

/** `U+XXXX` of the character at `at`. */
function codePointName(value: string, at: number): string {
  return `U+${value.codePointAt(at)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

function ruDate(iso: string): string {
  const m = ISO_DATE.exec(iso);
  return m ? `${m[3]}.${m[2]}.${m[1]}` : iso;
}

/**
 * Judges one order against the Kazakhstan requisite rules. Pure: the time comes from
 * `options.now`. Every failure names the order field, a stable code, Russian for the 1C user and
 * English for logs.
 */
export function validatePaymentOrder(order: ValidatableOrder, options: ValidatePaymentOrderOptions): ValidationResult {
  const rules: RequisitesConfig = { ...DEFAULT_REQUISITES, ...options.rules };
  const directory = options.directory ?? defaultBankDirectory;
  const errors: FieldError[] = [];
  const warnings: FieldError[] = [];
  const statement = options.mode === 'statement';
  const error = (field: string, failure: RuleFailure): void => {
    (statement ? warnings : errors).push(toFieldError(field, failure));
  };
  const warning = (field: string, failure: RuleFailure): void => {
    warnings.push(toFieldError(field, failure));
  };
  const f = (code: string, message: string, messageEn: string): RuleFailure => ({ code, message, messageEn });
  const required = (field: string, value: string | undefined, ru: string): boolean => {
    if (value !== undefined && value.trim() !== '') return true;
    error(field, f('REQUIRED', `Не заполнено поле «${ru}»`, `${field} is required`));
    return false;
  };
  // A code a statement document lacks (КБе/КОд, КНП, КБК) is not a breach of the document: the bank
  // executed the operation and did not give the code (its statement need not carry a stranger's
  // КОд). Told as that, once per code, never as a field to fill in; an order must have them all.
  const coded = (field: string, value: string | undefined, ru: string, label: string, en: string): boolean => {
    if (!statement) return required(field, value, label);
    if (value !== undefined && value.trim() !== '') return true;
    warning(field, f('NOT_IN_STATEMENT', `В выписке не указан ${ru} (банк его не сообщил); операция уже исполнена, документ принят без него`, `${en} is not in the statement (the bank did not give it); the operation is executed, the document is read without it`));
    return false;
  };

  if (required('number', order.number, 'Номер документа') && order.number.length > CONTRACT_LIMITS.numberMaxLength) {
    error(
      'number',
      f('NUMBER_TOO_LONG', `Номер документа длиннее ${CONTRACT_LIMITS.numberMaxLength} знаков (${order.number.length}); сократите номер`, `number is ${order.number.length} characters, limit ${CONTRACT_LIMITS.numberMaxLength}`),
    );
  }

  // Dates: the document date may not run ahead of today beyond a tolerance, nor lie more than
  // `staleAfterDays` back (a payment order is valid that many days from its date: an older one is
  // refused whatever its value date, which used to let any old document through with a warning);
  // the value date (default: the document date) may not lie in the past (the bank cannot execute
  // yesterday) nor more than VALUE_DATE_MAX_AHEAD_DAYS ahead.
  const today = localDate(options.now, rules.utcOffsetMinutes);
  if (required('date', order.date, 'Дата документа')) {
    if (!isCalendarDate(order.date)) {
      error('date', f('DATE_INVALID', `Дата документа «${order.date}» не является датой`, `date "${order.date}" is not a calendar date`));
    } else if (statement) {
      // A statement line is dated when the bank executed it: its age says nothing.
    } else if (order.date > localDate(options.now, rules.utcOffsetMinutes, rules.futureDateToleranceDays)) {
      error(
        'date',
        f('DATE_IN_FUTURE', `Дата документа ${ruDate(order.date)} позже сегодняшней (${ruDate(today)}); исправьте дату`, `date ${order.date} is in the future (today ${today})`),
      );
    } else if (order.date < localDate(options.now, rules.utcOffsetMinutes, -rules.staleAfterDays)) {
      error(
        'date',
        f(
          'DATE_STALE',
          `Документ датирован ${ruDate(order.date)}: платёжное поручение действительно ${rules.staleAfterDays} дней со дня выписки (сегодня ${ruDate(today)}); оформите новый документ с текущей датой`,
          `date ${order.date} is older than ${rules.staleAfterDays} days (today ${today}): a payment order is valid ${rules.staleAfterDays} days from its date`,
        ),
      );
    }
  }
  const valueDate = order.valueDate ?? order.date;
  const valueField = order.valueDate !== undefined ? 'valueDate' : 'date';
  if (order.valueDate !== undefined && !isCalendarDate(order.valueDate)) {
    error('valueDate', f('DATE_INVALID', `Дата валютирования «${order.valueDate}» не является датой`, `valueDate "${order.valueDate}" is not a calendar date`));
  } else if (!statement && valueDate && isCalendarDate(valueDate) && valueDate < today) {
    error(
      valueField,
      f('VALUE_DATE_PAST', `Дата валютирования ${ruDate(valueDate)} уже прошла (сегодня ${ruDate(today)}); укажите сегодняшнюю или более позднюю дату`, `value date ${valueDate} is in the past (today ${today})`),
    );
  } else if (!statement && valueDate && isCalendarDate(valueDate) && valueDate > localDate(options.now, rules.utcOffsetMinutes, VALUE_DATE_MAX_AHEAD_DAYS)) {
    const latest = localDate(options.now, rules.utcOffsetMinutes, VALUE_DATE_MAX_AHEAD_DAYS);
    error(
      valueField,
      f(
        'VALUE_DATE_TOO_FAR',
        `Дата валютирования ${ruDate(valueDate)} позже ${ruDate(latest)}: не более ${VALUE_DATE_MAX_AHEAD_DAYS} дней от сегодняшней (${ruDate(today)}); проверьте год или оформите платёж ближе к сроку`,
        `value date ${valueDate} is more than ${VALUE_DATE_MAX_AHEAD_DAYS} days ahead (today ${today}, latest ${latest})`,
      ),
    );
  }

  checkAmount(order.amount, rules, error);

  if (!rules.currencies.includes(order.currency ?? 'KZT')) {
    error(
      'currency',
      f('CURRENCY_NOT_ALLOWED', `Валюта ${order.currency} не допускается: платёжное поручение внутри Казахстана — в ${rules.currencies.join(', ')}`, `currency ${order.currency} is not allowed (${rules.currencies.join(', ')})`),
    );
  }

  const parties = [
    { key: 'payer', ru: 'Плательщик', party: order.payer, code: order.payer?.kod, codeField: 'payer.kod', codeLabel: 'КОд' as const },
    { key: 'beneficiary', ru: 'Получатель', party: order.beneficiary, code: order.beneficiary?.kbe, codeField: 'beneficiary.kbe', codeLabel: 'КБе' as const },
  ];
  for (const { key, ru, party, code, codeField, codeLabel } of parties) {
    if (required(`${key}.name`, party?.name, `${ru}: наименование`) && party.name.length > CONTRACT_LIMITS.nameMaxLength) {
      error(
        `${key}.name`,
        f('NAME_TOO_LONG', `${ru}: наименование длиннее ${CONTRACT_LIMITS.nameMaxLength} знаков (${party.name.length}); сократите текст`, `${key}.name is ${party.name.length} characters, limit ${CONTRACT_LIMITS.nameMaxLength}`),
      );
    }
    if (required(`${key}.iinBin`, party?.iinBin, `${ru}: ИИН/БИН`)) {
      const r = checkIinBin(party.iinBin);
      if (!r.ok) error(`${key}.iinBin`, r);
    }
    let ibanOk = false;
    if (required(`${key}.iban`, party?.iban, `${ru}: ИИК`)) {
      const r = checkIbanFormat(party.iban);
      if (!r.ok) error(`${key}.iban`, r);
      else ibanOk = true;
    }
    if (required(`${key}.bic`, party?.bic, `${ru}: БИК банка`)) {
      const r = checkBicFormat(party.bic);
      const bank = r.ok ? directory.findByBic(party.bic) : undefined;
      if (!r.ok) error(`${key}.bic`, r);
      else if (!bank) {
        const unknown = f('BIC_UNKNOWN', `БИК ${party.bic} не найден в справочнике банков Казахстана; проверьте БИК`, `BIC ${party.bic} is not in the bank directory`);
        if (rules.unknownBic === 'error') error(`${key}.bic`, unknown);
        else warning(`${key}.bic`, unknown);
      } else {
        // A bank closed or merged into another (its licence revoked, its accounts moved) stays in
        // the directory so old statements read; an order to it would go out signed and come back
        // refused by the interbank system. Judged like an unknown BIC; a statement line is history.
        if (bank.active === false && !statement) {
          const closed = f(
            'BIC_INACTIVE',
            `БИК ${party.bic} (${bank.name}): банк закрыт или присоединён к другому банку, платежи на его счета не проходят; уточните у получателя действующие ИИК и БИК`,
            `BIC ${party.bic} (${bank.name}) is a bank closed or merged into another: payments to its accounts do not go through`,
          );
          if (rules.unknownBic === 'error') error(`${key}.bic`, closed);
          else warning(`${key}.bic`, closed);
        }
        if (ibanOk) {
          const m = checkIbanMatchesBic(party.iban, party.bic, directory);
          if (!m.ok) error(`${key}.iban`, m);
        }
      }
    }
    if (coded(codeField, code, `${codeLabel} ${key === 'payer' ? 'плательщика' : 'получателя'}`, `${ru}: ${codeLabel}`, `the ${key}'s ${codeLabel === 'КОд' ? 'KOd' : 'KBe'}`)) {
      const r = checkKbe(code as string, codeLabel);
      if (!r.ok) error(codeField, r);
      else if (party?.iinBin && checkIinBin(party.iinBin).ok) {
        // IIN digit 5 is a day's tens digit (0-3); BIN digit 5 is the entity type (4-6).
        const isBin = party.iinBin.charCodeAt(4) >= 52;
        const sector = (code as string)[1];
        if (isBin === (sector === '9')) {
          warning(
            codeField,
            f('KBE_SECTOR_MISMATCH', `${codeLabel} ${code}: сектор ${sector} не соответствует ${isBin ? 'БИН организации' : 'ИИН физического лица (ожидается сектор 9)'}`, `${codeLabel} ${code}: sector does not match the ${isBin ? 'BIN' : 'IIN'}`),
          );
        } else if (isBin && party.iinBin[4] === '5' && residencyOf(code as string) === 'resident') {
          warning(codeField, f('KBE_RESIDENCY_MISMATCH', `${codeLabel} ${code}: БИН ${party.iinBin} — нерезидент, а код указывает резидента`, `${codeLabel} ${code}: BIN is a non-resident's`));
        }
      }
    }
  }

  // КНП and the budget rules: a payment to the Treasury or with a 9xx КНП needs a КБК.
  let knpOk = false;
  if (coded('knp', order.knp, 'КНП', 'КНП', 'the KNP')) {
    const r = checkKnpFormat(order.knp);
    if (!r.ok) error('knp', r);
    else {
      knpOk = true;
      if (!findKnp(order.knp)) {
        const unknown = f('KNP_UNKNOWN', `КНП ${order.knp} нет в справочнике коннектора; проверьте код по классификатору НБРК`, `KNP ${order.knp} is not in the connector's KNP list`);
        if (rules.unknownKnp === 'error') error('knp', unknown);
        else warning('knp', unknown);
      }
    }
  }
  const bic = order.beneficiary?.bic ?? '';
  const iban = order.beneficiary?.iban ?? '';
  const toTreasury = bic === TREASURY_BIC || (iban.length === 20 && ibanBankCode(iban) === TREASURY_IBAN_CODE);
  const budget = toTreasury || (knpOk && isBudgetKnp(order.knp));
  // A КБК, whenever one is given, is signed into the document: judged on every payment, not only
  // on budget ones (a malformed one failed the XML freeze at signing instead of coming back here).
  const kbkGiven = order.kbk !== undefined && order.kbk.trim() !== '';
  if (kbkGiven && !/^\d{6}$/.test(order.kbk as string)) {
    error('kbk', f('KBK_FORMAT', `КБК «${order.kbk}» должен состоять из 6 цифр`, `KBK "${order.kbk}" must be 6 digits`));
  }
  if (budget) {
    if (!kbkGiven) {
      if (statement) coded('kbk', order.kbk, 'КБК платежа в бюджет', 'КБК', 'the KBK of this budget payment');
      else error('kbk', f('KBK_REQUIRED', 'Платёж в бюджет: укажите КБК (код бюджетной классификации, 6 цифр)', 'budget payment without a KBK'));
    }
    // The Treasury's accounts are the budget's, credited to a state revenue body or institution,
    // which has a BIN: a budget payment to the Treasury under a person's IIN cannot be credited.
    const beneficiaryId = order.beneficiary?.iinBin ?? '';
    if (toTreasury && checkIinBin(beneficiaryId).ok && beneficiaryId.charCodeAt(4) < 52) {
      error(
        'beneficiary.iinBin',
        f(
          'BUDGET_BENEFICIARY_NOT_BIN',
          `Платёж в бюджет через Казначейство: получатель — орган государственных доходов (или иное госучреждение), указывается его БИН, а ${beneficiaryId} — ИИН физического лица; укажите БИН получателя`,
          `a budget payment to the Treasury must name the state body's BIN as the beneficiary; ${beneficiaryId} is an individual's IIN`,
        ),
      );
    }
    if (knpOk && isBudgetKnp(order.knp) && !toTreasury) {
      warning('beneficiary.bic', f('BUDGET_NOT_TREASURY', `КНП ${order.knp} — платёж в бюджет, но получатель не Казначейство (БИК ${TREASURY_BIC})`, `budget KNP ${order.knp} but the beneficiary is not the Treasury`));
    }
  } else if (kbkGiven && knpOk) {
    // A КБК names a budget revenue: on a payment that is not to the budget (neither a 9xx КНП nor
    // the Treasury) it is a mistake in the document, and the bank would get it signed. (With a
    // КНП that could not be read, whether it is a budget payment is unknown: that error is told.)
    error(
      'kbk',
      f(
        'KBK_NOT_BUDGET',
        `КБК ${order.kbk} указан в платеже не в бюджет (КНП ${order.knp || '—'}, получатель не Казначейство): КБК указывается только для платежей в бюджет; уберите КБК или исправьте КНП`,
        `KBK ${order.kbk} on a payment that is not to the budget (KNP ${order.knp || 'none'}, beneficiary not the Treasury): a KBK is given on budget payments only`,
      ),
    );
  }
  if (knpOk && isContributionKnp(order.knp) && bic !== GCVP_BIC) {
    warning(
      'beneficiary.bic',
      f('KNP_BENEFICIARY_MISMATCH', `КНП ${order.knp} — пенсионные/социальные взносы, их получатель Госкорпорация «Правительство для граждан» (БИК ${GCVP_BIC})`, `contribution KNP ${order.knp} but the beneficiary bank is not ${GCVP_BIC}`),
    );
  }

  // The configured limit (config caps it at the contract's), and never beyond the contract's.
  const purposeMax = Math.min(rules.purposeMaxLength, CONTRACT_LIMITS.purposeMaxLength);
  if (required('purpose', order.purpose, 'Назначение платежа') && order.purpose.length > purposeMax) {
    error(
      'purpose',
      f('PURPOSE_TOO_LONG', `Назначение платежа длиннее ${purposeMax} знаков (${order.purpose.length}); сократите текст`, `purpose is ${order.purpose.length} characters, limit ${purposeMax}`),
    );
  }
  // The signed document is XML: it cannot carry control characters, and a carriage return would
  // read back as \n (adapters/bank/business-api/payment-order.document.ts refuses both). Judged
  // here, such an order ends invalid naming the field instead of failing at signing.
  const texts: ReadonlyArray<readonly [string, string | undefined, string]> = [
    ['number', order.number, 'Номер документа'],
    ['payer.name', order.payer?.name, 'Наименование плательщика'],
    ['beneficiary.name', order.beneficiary?.name, 'Наименование получателя'],
    ['purpose', order.purpose, 'Назначение платежа'],
  ];
  for (const [field, value, ru] of texts) {
    const at = value === undefined ? -1 : value.search(UNSIGNABLE_CHAR);
    if (at < 0) continue;
    const code = codePointName(value!, at);
    error(
      field,
      f('TEXT_CONTROL_CHAR', `${ru}: недопустимый символ ${code} в позиции ${at + 1}; уберите его (перенос строки допускается только как \\n)`, `${field} holds the character ${code} at position ${at + 1}, which the signed document cannot carry; remove it (line breaks as \\n only)`),
    );
  }
  // Letters lost to a code page: the bank would get "?" for them in a signed document. A statement
  // line is the bank's own text, read as it is.
  for (const [field, value, ru] of texts) {
    if (statement || field === 'number' || value === undefined) continue;
    const m = LOST_LETTER.exec(value);
    if (!m) continue;
    const at = m.index + m[0].indexOf('?');
    error(
      field,
      f(
        'TEXT_LOST_LETTERS',
        `${ru}: знак «?» в позиции ${at + 1} на месте буквы — казахские буквы (ә, ғ, қ, ң, ө, ұ, ү, һ) потеряны при перекодировке (в кодировках Windows/cp1251 и DOS/cp866 их нет); выгрузите документ из 1С в кодировке UTF-8 или исправьте текст`,
        `${field} holds "?" beside a letter at position ${at + 1}: Kazakh letters (ә ғ қ ң ө ұ ү һ) were lost to a code page that cannot hold them (cp1251, cp866); export the document in UTF-8 or correct the text`,
      ),
    );
  }
  // The number is the document's key (with payer account and date): an invisible or look-alike
  // character in it makes a second document of the same one. Intake trims it; what is left inside
  // is refused, naming the character (a carriage return and C0 controls are TEXT_CONTROL_CHAR above).
  const numberAt = order.number === undefined ? -1 : order.number.search(NUMBER_FORBIDDEN_CHAR);
  if (numberAt >= 0) {
    const code = codePointName(order.number, numberAt);
    error(
      'number',
      f(
        'NUMBER_CHAR',
        `Номер документа: недопустимый символ ${code} в позиции ${numberAt + 1} (табуляция, перенос строки, невидимый символ или неразрывный пробел); оставьте в номере только видимые знаки`,
        `number holds the character ${code} at position ${numberAt + 1}: a document number may not hold tab, line breaks, format characters (\\p{Cf}) or non-ASCII spaces`,
      ),
    );
  }
  for (const [field, value, ru] of texts) {
    if (field === 'number' || value === undefined) continue;
    const at = value.search(BIDI_CONTROL_CHAR);
    if (at < 0) continue;
    const code = codePointName(value, at);
    error(
      field,
      f('TEXT_BIDI_CHAR', `${ru}: символ управления направлением текста ${code} в позиции ${at + 1}; он меняет порядок знаков на экране подписанта — уберите его`, `${field} holds the bidi control ${code} at position ${at + 1}, which reorders the text the signers see; remove it`),
    );
  }
  if (order.payer?.iban && order.payer.iban === order.beneficiary?.iban) {
    warning('beneficiary.iban', f('SAME_ACCOUNT', 'Счёт получателя совпадает со счётом плательщика', 'beneficiary account equals the payer account'));
  }
  return { errors, warnings };
}

function checkAmount(amount: string | undefined, rules: RequisitesConfig, error: (field: string, failure: RuleFailure) => void): void {
  const text = (amount ?? '').trim();
  if (text === '') {
    error('amount', { code: 'REQUIRED', message: 'Не заполнено поле «Сумма»', messageEn: 'amount is required' });
    return;
  }
  if (/^-/.test(text)) {
    error('amount', { code: 'AMOUNT_NOT_POSITIVE', message: `Сумма ${text} должна быть больше нуля`, messageEn: `amount ${text} must be positive` });
    return;
  }
  if (/^\d+[.,]\d{3,}$/.test(text)) {
    error('amount', { code: 'AMOUNT_DECIMALS', message: `Сумма ${text}: не более 2 знаков после точки (тиыны)`, messageEn: `amount ${text} has more than 2 decimals` });
    return;
  }
  let tiyn: number;
  try {
    tiyn = parseAmount(text);
  } catch (err) {
    if (!(err instanceof MoneyError)) throw err;
    if (err.rule === 'too_large') {
      // The size limit, not the form (a 20-digit or a 9999999999999999.99 amount is well written).
      error('amount', { code: 'AMOUNT_TOO_LARGE', message: err.messageRu, messageEn: err.message });
    } else {
      error('amount', { code: 'AMOUNT_FORMAT', message: `Сумма «${text}» записана неверно: нужны цифры и не более 2 знаков после точки, например 7745.70`, messageEn: `amount "${text}" is not a decimal with at most 2 places` });
    }
    return;
  }
  if (tiyn <= 0) {
    error('amount', { code: 'AMOUNT_NOT_POSITIVE', message: `Сумма ${text} должна быть больше нуля`, messageEn: `amount ${text} must be positive` });
  } else if (tiyn < parseAmount(rules.minAmount)) {
    error('amount', { code: 'AMOUNT_TOO_SMALL', message: `Сумма ${text} меньше допустимой (${rules.minAmount})`, messageEn: `amount ${text} is below the minimum ${rules.minAmount}` });
  } else if (rules.maxAmount !== undefined && tiyn > parseAmount(rules.maxAmount)) {
    error('amount', { code: 'AMOUNT_TOO_LARGE', message: `Сумма ${text} больше допустимой для одного платежа (${rules.maxAmount})`, messageEn: `amount ${text} exceeds the limit ${rules.maxAmount}` });
  }
}

/**
 * The Kazakhstan requisite rules as the domain's `OrderValidator` port
 * (connector/orders/order-validation.ts): what the validate stage and the HTTP intake apply.
 */
export function kzOrderValidator(rules: Partial<RequisitesConfig> = {}): (order: ValidatableOrder, context: { now: Date }) => ValidationResult {
  return (order, context) => validatePaymentOrder(order, { now: context.now, rules, mode: 'order' });
}
