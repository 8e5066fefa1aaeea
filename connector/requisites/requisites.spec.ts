import fc from 'fast-check';
import { checkBic } from './bic.validator';
import { checkIban, checkIbanMatchesBic, ibanMod97 } from './iban.validator';
import { checkBin, checkIin, checkIinBin, iinBinCheckDigit } from './iin-bin.validator';
import { checkKbe } from './kbe.validator';
import { checkKnp, isBudgetKnp } from './knp.validator';
import { CONTRACT_LIMITS, VALUE_DATE_MAX_AHEAD_DAYS, validatePaymentOrder, type ValidatableOrder } from './payment-order.validator';

describe('IIN/BIN check digit (two passes)', () => {
  // Real numbers: Halyk Bank and Kaspi Bank BINs, IINs/BINs from a Kaspi statement, and the KZ samples.
  it.each([
    ['940140000385', 'Halyk Bank BIN'],
    ['971240001315', 'Kaspi Bank BIN'],
    ['910308400020', 'IIN on a Kaspi statement line'],
    ['181140004063', 'BIN of an ОСИ on a Kaspi statement line'],
    ['200540000019', 'sample payer BIN'],
    ['850315300019', 'sample IIN'],
    ['100000554338', 'first pass gives 10: second pass decides'],
  ])('%s (%s) is valid', (value) => {
    expect(checkIinBin(value)).toEqual({ ok: true });
  });

  it.each([
    ['940140000386', 'IIN_BIN_CHECKSUM', 'last digit changed'],
    ['941040000385', 'IIN_BIN_CHECKSUM', 'two digits swapped'],
    ['123456789011', 'IIN_BIN_CHECKSUM', 'NCA test-certificate IIN'],
    ['100001900560', 'IIN_BIN_CHECKSUM', 'both passes give 10: no valid number has this prefix'],
    ['94014000038', 'IIN_BIN_FORMAT', '11 digits'],
    ['9401400003850', 'IIN_BIN_FORMAT', '13 digits'],
    ['94014000038A', 'IIN_BIN_FORMAT', 'a letter'],
    ['', 'IIN_BIN_FORMAT', 'empty'],
    ['000000000000', 'IIN_BIN_FORMAT', 'all zeros'],
  ])('%s fails with %s (%s)', (value, code) => {
    expect(checkIinBin(value)).toMatchObject({ ok: false, code });
  });

  it('returns null for a prefix whose both passes give 10', () => {
    expect(iinBinCheckDigit('10000190056')).toBeNull();
  });

  it('tells an IIN from a BIN by structure', () => {
    expect(checkIin('850315300019').ok).toBe(true);
    expect(checkIin('940140000385')).toMatchObject({ ok: false, code: 'IIN_STRUCTURE' });
    expect(checkBin('940140000385').ok).toBe(true);
    expect(checkBin('850315300019')).toMatchObject({ ok: false, code: 'BIN_STRUCTURE' });
  });
});

describe('IIK (KZ IBAN)', () => {
  it.each(['KZ22722C000024901213', 'KZ79722S000001674774', 'KZ24070105KSN0000000', 'KZ35601A000000012345', 'KZ288562203000011111'])(
    '%s is valid',
    (iban) => {
      expect(checkIban(iban)).toEqual({ ok: true });
      expect(ibanMod97(iban)).toBe(1);
    },
  );

  it.each([
    ['KZ23722C000024901213', 'IBAN_CHECKSUM'],
    ['KZ22722C000024901231', 'IBAN_CHECKSUM'],
    ['KZ22722C00002490121', 'IBAN_FORMAT'],
    ['RU22722C000024901213', 'IBAN_FORMAT'],
    ['kz22722c000024901213', 'IBAN_FORMAT'],
    ['KZ22ABC000024901213X', 'IBAN_FORMAT'],
    ['40702810000000074935', 'IBAN_FORMAT'],
  ])('%s fails with %s', (iban, code) => {
    expect(checkIban(iban)).toMatchObject({ ok: false, code });
  });

  it('knows which bank code belongs to which BIC', () => {
    expect(checkIbanMatchesBic('KZ22722C000024901213', 'CASPKZKA').ok).toBe(true);
    expect(checkIbanMatchesBic('KZ22722C000024901213', 'HSBKKZKX')).toMatchObject({ ok: false, code: 'IBAN_BIC_MISMATCH' });
    // Jusan is Alatau City Bank now: same BIC, bank code 998.
    expect(checkBic('TSESKZKA').ok).toBe(true);
  });
});

describe('BIC, KNP, KBe/KOd', () => {
  it.each([
    ['HSBKKZKX', true, undefined],
    ['KKMFKZ2A', true, undefined],
    ['CASPKZKAXXX', true, undefined],
    ['ABCDKZKA', false, 'BIC_UNKNOWN'],
    ['HSBKRUMM', false, 'BIC_NOT_KZ'],
    ['HSBK', false, 'BIC_FORMAT'],
    ['hsbkkzkx', false, 'BIC_FORMAT'],
    ['044525411', false, 'BIC_FORMAT'],
  ])('BIC %s -> %s %s', (bic, ok, code) => {
    const r = checkBic(bic);
    expect(r.ok).toBe(ok);
    if (!ok) expect(r).toMatchObject({ code });
  });

  it.each([
    ['710', true, undefined],
    ['911', true, undefined],
    ['010', true, undefined],
    ['555', false, 'KNP_UNKNOWN'],
    ['71', false, 'KNP_FORMAT'],
    ['7100', false, 'KNP_FORMAT'],
    ['7a0', false, 'KNP_FORMAT'],
  ])('KNP %s -> %s %s', (knp, ok, code) => {
    const r = checkKnp(knp);
    expect(r.ok).toBe(ok);
    if (!ok) expect(r).toMatchObject({ code });
  });

  it('9xx is the budget group', () => {
    expect(isBudgetKnp('911')).toBe(true);
    expect(isBudgetKnp('710')).toBe(false);
  });

  it.each([
    ['17', true],
    ['19', true],
    ['21', true],
    ['11', true],
    ['10', false],
    ['37', false],
    ['1', false],
    ['177', false],
  ])('KBe %s -> %s', (code, ok) => {
    expect(checkKbe(code).ok).toBe(ok);
  });
});

describe('validatePaymentOrder', () => {
  const now = new Date('2025-03-05T04:00:00Z'); // 09:00 in Almaty
  const good = (): ValidatableOrder => ({
    number: '17',
    date: '2025-03-05',
    amount: '150000.00',
    currency: 'KZT',
    payer: { name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban: 'KZ35601A000000012345', bic: 'HSBKKZKX', kod: '17' },
    beneficiary: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17' },
    knp: '710',
    purpose: 'Оплата по счету №12 от 01.03.2025 за товары',
  });
  const codes = (o: ValidatableOrder, opts: Partial<Parameters<typeof validatePaymentOrder>[1]> = {}) => {
    const r = validatePaymentOrder(o, { now, ...opts });
    return { errors: r.errors.map((e) => `${e.field}:${e.code}`), warnings: r.warnings.map((e) => `${e.field}:${e.code}`) };
  };

  it('passes a correct order', () => {
    expect(codes(good())).toEqual({ errors: [], warnings: [] });
  });

  it.each<[string, (o: ValidatableOrder) => void, string]>([
    ['payer BIN checksum', (o) => (o.payer.iinBin = '200540000018'), 'payer.iinBin:IIN_BIN_CHECKSUM'],
    ['beneficiary IIK checksum', (o) => (o.beneficiary.iban = 'KZ78722S000000067891'), 'beneficiary.iban:IBAN_CHECKSUM'],
    ['IIK of another bank than the BIC', (o) => (o.beneficiary.bic = 'HSBKKZKX'), 'beneficiary.iban:IBAN_BIC_MISMATCH'],
    ['unknown BIC', (o) => (o.beneficiary.bic = 'ABCDKZKA'), 'beneficiary.bic:BIC_UNKNOWN'],
    ['KBe format', (o) => (o.beneficiary.kbe = '30'), 'beneficiary.kbe:KBE_FORMAT'],
    ['KOd missing', (o) => (o.payer.kod = ''), 'payer.kod:REQUIRED'],
    ['KNP format', (o) => (o.knp = '71'), 'knp:KNP_FORMAT'],
    ['zero amount', (o) => (o.amount = '0.00'), 'amount:AMOUNT_NOT_POSITIVE'],
    ['negative amount', (o) => (o.amount = '-5.00'), 'amount:AMOUNT_NOT_POSITIVE'],
    ['three decimals', (o) => (o.amount = '10.005'), 'amount:AMOUNT_DECIMALS'],
    ['not a number', (o) => (o.amount = '1e5'), 'amount:AMOUNT_FORMAT'],
    ['foreign currency', (o) => (o.currency = 'USD'), 'currency:CURRENCY_NOT_ALLOWED'],
    ['no purpose', (o) => (o.purpose = '  '), 'purpose:REQUIRED'],
    ['purpose too long', (o) => (o.purpose = 'x'.repeat(421)), 'purpose:PURPOSE_TOO_LONG'],
    ['number longer than the bank takes (64)', (o) => (o.number = '1'.repeat(65)), 'number:NUMBER_TOO_LONG'],
    ['payer name longer than the bank takes (500)', (o) => (o.payer.name = 'Т'.repeat(501)), 'payer.name:NAME_TOO_LONG'],
    ['beneficiary name longer than the bank takes (500)', (o) => (o.beneficiary.name = 'Т'.repeat(501)), 'beneficiary.name:NAME_TOO_LONG'],
    ['a Windows line break in the purpose (the signed XML would read it back as \\n)', (o) => (o.purpose = 'Оплата\r\nпо счёту'), 'purpose:TEXT_CONTROL_CHAR'],
    ['a control character in a name', (o) => (o.beneficiary.name = 'ТОО \u0007Бип'), 'beneficiary.name:TEXT_CONTROL_CHAR'],
    ['a tab in the number', (o) => (o.number = '17\u000b'), 'number:TEXT_CONTROL_CHAR'],
    ['date in the future', (o) => (o.date = '2025-03-08'), 'date:DATE_IN_FUTURE'],
    ['value date in the past', (o) => (o.valueDate = '2025-03-04'), 'valueDate:VALUE_DATE_PAST'],
    ['document date yesterday, no value date', (o) => (o.date = '2025-03-04'), 'date:VALUE_DATE_PAST'],
    ['not a calendar date', (o) => (o.date = '2025-02-30'), 'date:DATE_INVALID'],
    ['budget payment without KBK', (o) => Object.assign(o, { knp: '911', beneficiary: { ...o.beneficiary, iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11', iinBin: '081240000013' } }), 'kbk:KBK_REQUIRED'],
    ['KBK malformed', (o) => Object.assign(o, { knp: '911', kbk: '1012', beneficiary: { ...o.beneficiary, iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11', iinBin: '081240000013' } }), 'kbk:KBK_FORMAT'],
  ])('%s', (_name, mutate, expected) => {
    const o = good();
    mutate(o);
    expect(codes(o).errors).toContain(expected);
  });

  it("takes a number, names and purpose right at the bank contract's limits, and never a purpose over the contract's 2000", () => {
    const o = { ...good(), number: `П-${'1'.repeat(62)}`, payer: { ...good().payer, name: 'Ә'.repeat(500) }, beneficiary: { ...good().beneficiary, name: 'Ж'.repeat(500) } };
    expect(o.number).toHaveLength(CONTRACT_LIMITS.numberMaxLength);
    expect(codes(o).errors).toEqual([]);
    expect(codes({ ...good(), purpose: 'x'.repeat(2000) }, { rules: { purposeMaxLength: 5000 } }).errors).toEqual([]);
    expect(codes({ ...good(), purpose: 'x'.repeat(2001) }, { rules: { purposeMaxLength: 5000 } }).errors).toEqual(['purpose:PURPOSE_TOO_LONG']);
  });

  it('takes line feeds and tabs in the purpose, and names the position and code of a character the signed document cannot carry', () => {
    expect(codes({ ...good(), purpose: 'Оплата по счёту\nза ноябрь\tНДС 12%' }).errors).toEqual([]);
    const [failure] = validatePaymentOrder({ ...good(), purpose: 'Оплата\r\n' }, { now }).errors;
    expect(failure).toMatchObject({ field: 'purpose', code: 'TEXT_CONTROL_CHAR', messageEn: expect.stringContaining('U+000D at position 7') });
  });

  it.each<[string, string]>([
    ['a tab inside', 'Z1\tA'],
    ['a line feed', 'Z1\n'],
    ['a zero-width space', 'Z1\u200b'],
    ['a BOM', '\ufeffZ1'],
    ['a word joiner', 'Z\u20601'],
    ['a right-to-left override', 'Z\u202e1'],
    ['a no-break space', 'Z1\u00a0'],
    ['a narrow no-break space', 'Z\u202f1'],
    ['an ideographic space', 'Z\u30001'],
  ])('a document number with %s is NUMBER_CHAR naming the character: no one sees it, so it would be a second document looking like the first', (_name, number) => {
    const [error, ...rest] = validatePaymentOrder({ ...good(), number }, { now }).errors;
    expect(rest).toEqual([]);
    const at = [...number].findIndex((c) => c !== 'Z' && c !== '1' && c !== 'A');
    const code = `U+${number.charCodeAt(at).toString(16).toUpperCase().padStart(4, '0')}`;
    expect(error).toMatchObject({ field: 'number', code: 'NUMBER_CHAR', messageEn: expect.stringContaining(`${code} at position ${at + 1}`) });
    expect(error.message).toContain(`недопустимый символ ${code}`);
  });

  it('a number with an ASCII space inside, dashes or slashes is still a number', () => {
    expect(codes({ ...good(), number: 'ПП 17/2-А' }).errors).toEqual([]);
  });

  it.each<[string, (o: ValidatableOrder) => void]>([
    ['payer.name', (o) => (o.payer.name = 'ТОО \u202eАБВ')],
    ['beneficiary.name', (o) => (o.beneficiary.name = 'A\u202eB')],
    ['beneficiary.name', (o) => (o.beneficiary.name = 'A\u2067B\u2069')],
    ['purpose', (o) => (o.purpose = 'Оплата \u202d12.00\u202c')],
    // The invisible direction marks too: around digits and signs they move them on screen.
    ['purpose', (o) => (o.purpose = 'Оплата 12\u200f-00')],
    ['payer.name', (o) => (o.payer.name = 'ТОО \u200eАльфа')],
    ['beneficiary.name', (o) => (o.beneficiary.name = 'ТОО\u061c Бета')],
  ])('a bidi control in %s is TEXT_BIDI_CHAR: it reorders what the signers read', (field, mutate) => {
    const o = good();
    mutate(o);
    expect(codes(o).errors).toEqual([`${field}:TEXT_BIDI_CHAR`]);
  });

  it.each<[string, (o: ValidatableOrder) => void, number]>([
    ['beneficiary.name', (o) => (o.beneficiary.name = 'ЖШС «?лем-??рылыс»'), 6],
    ['payer.name', (o) => (o.payer.name = 'ТОО "?аза?стан"'), 6],
    ['purpose', (o) => (o.purpose = 'Салы? т?леу, ??С'), 5],
  ])('a Kazakh letter lost to cp1251 as "?" in %s is TEXT_LOST_LETTERS: the bank would get the "?" signed', (field, mutate, position) => {
    const o = good();
    mutate(o);
    const r = validatePaymentOrder(o, { now });
    expect(r.errors.map((e) => `${e.field}:${e.code}`)).toEqual([`${field}:TEXT_LOST_LETTERS`]);
    expect(r.errors[0].message).toContain(`знак «?» в позиции ${position}`);
    // A question mark that touches no letter is text; a statement line is the bank's own text.
    expect(codes({ ...good(), purpose: 'Оплата по счёту № ? от 01.03.2025' }).errors).toEqual([]);
    expect(codes(o, { mode: 'statement' })).toEqual({ errors: [], warnings: [] });
  });

  it('names the 64-character rule of the number the way it names the purpose limit', () => {
    const [error] = validatePaymentOrder({ ...good(), number: '0123456789'.repeat(7) }, { now }).errors;
    expect(error).toEqual({
      field: 'number',
      code: 'NUMBER_TOO_LONG',
      message: 'Номер документа длиннее 64 знаков (70); сократите номер',
      messageEn: 'number is 70 characters, limit 64',
    });
  });

  it.each<[string, string, string[]]>([
    ['a control character, on a non-budget КНП', '\u0001x', ['kbk:KBK_FORMAT', 'kbk:KBK_NOT_BUDGET']],
    ['a well-formed КБК on a non-budget КНП', '105101', ['kbk:KBK_NOT_BUDGET']],
    ['five digits on a non-budget КНП', '10510', ['kbk:KBK_FORMAT', 'kbk:KBK_NOT_BUDGET']],
  ])('a КБК is judged on every payment, not only a budget one: %s', (_name, kbk, expected) => {
    expect(codes({ ...good(), kbk }).errors).toEqual(expected);
    const notBudget = validatePaymentOrder({ ...good(), kbk: '105101' }, { now }).errors[0];
    expect(notBudget).toMatchObject({ field: 'kbk', message: expect.stringContaining('КБК указывается только для платежей в бюджет'), messageEn: expect.stringContaining('KNP 710') });
    // A КБК left empty is no КБК; in a statement the same breach is a warning.
    expect(codes({ ...good(), kbk: '  ' }).errors).toEqual([]);
    expect(codes({ ...good(), kbk }, { mode: 'statement' })).toEqual({ errors: [], warnings: expected });
  });

  it(`a value date more than ${VALUE_DATE_MAX_AHEAD_DAYS} days ahead is VALUE_DATE_TOO_FAR (2099-12-31 was valid); the last day of the bound is taken`, () => {
    expect(codes({ ...good(), valueDate: '2099-12-31' }).errors).toEqual(['valueDate:VALUE_DATE_TOO_FAR']);
    expect(codes({ ...good(), valueDate: '2025-04-05' }).errors).toEqual(['valueDate:VALUE_DATE_TOO_FAR']);
    expect(codes({ ...good(), valueDate: '2025-04-04' }).errors).toEqual([]);
    const [error] = validatePaymentOrder({ ...good(), valueDate: '2099-12-31' }, { now }).errors;
    expect(error.message).toBe('Дата валютирования 31.12.2099 позже 04.04.2025: не более 30 дней от сегодняшней (05.03.2025); проверьте год или оформите платёж ближе к сроку');
    expect(codes({ ...good(), valueDate: '2099-12-31' }, { mode: 'statement' })).toEqual({ errors: [], warnings: [] });
  });

  it('a document older than staleAfterDays is an error in an order, whatever its value date (it passed with a warning); the last valid day is taken', () => {
    expect(codes({ ...good(), date: '2025-02-22', valueDate: '2025-03-05' })).toEqual({ errors: ['date:DATE_STALE'], warnings: [] });
    expect(codes({ ...good(), date: '2020-01-01', valueDate: '2025-03-06' }).errors).toEqual(['date:DATE_STALE']);
    expect(codes({ ...good(), date: '2025-02-23', valueDate: '2025-03-05' })).toEqual({ errors: [], warnings: [] });
    expect(codes({ ...good(), date: '2025-03-01', valueDate: '2025-03-05' }, { rules: { staleAfterDays: 3 } }).errors).toEqual(['date:DATE_STALE']);
    const [error] = validatePaymentOrder({ ...good(), date: '2025-02-22', valueDate: '2025-03-05' }, { now }).errors;
    expect(error.message).toBe('Документ датирован 22.02.2025: платёжное поручение действительно 10 дней со дня выписки (сегодня 05.03.2025); оформите новый документ с текущей датой');
  });

  it('accepts a budget payment with a KBK', () => {
    const o = { ...good(), knp: '911', kbk: '101201', beneficiary: { name: 'УГД', iinBin: '081240000013', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11' } };
    expect(codes(o).errors).toEqual([]);
  });

  it.each<[string, string]>([
    ['KZKOKZKX', 'KZ27926S000000067890'],
    ['ALMNKZKA', 'KZ52826S000000067890'],
  ])('a beneficiary at a bank closed or merged away (%s) is BIC_INACTIVE: the payment would be signed and refused', (bic, iban) => {
    const o = { ...good(), beneficiary: { ...good().beneficiary, bic, iban } };
    expect(codes(o)).toEqual({ errors: ['beneficiary.bic:BIC_INACTIVE'], warnings: [] });
    expect(codes(o, { rules: { unknownBic: 'warning' } })).toEqual({ errors: [], warnings: ['beneficiary.bic:BIC_INACTIVE'] });
    // An old statement line from that bank is history, read without a word.
    expect(codes({ ...o, date: '2017-05-02' }, { mode: 'statement' })).toEqual({ errors: [], warnings: [] });
  });

  it("a budget payment to the Treasury names the state revenue body's BIN: a person's IIN there is BUDGET_BENEFICIARY_NOT_BIN", () => {
    const treasury = { name: 'УГД', iinBin: '081240000013', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11' };
    const o = { ...good(), knp: '911', kbk: '101201', beneficiary: { ...treasury, iinBin: '850315300019', kbe: '19' } };
    expect(codes(o)).toEqual({ errors: ['beneficiary.iinBin:BUDGET_BENEFICIARY_NOT_BIN'], warnings: [] });
    expect(codes({ ...o, beneficiary: treasury }).errors).toEqual([]);
    // Outside the budget a person's IIN is an ordinary beneficiary.
    expect(codes({ ...good(), beneficiary: { ...good().beneficiary, iinBin: '850315300019', kbe: '19' } }).errors).toEqual([]);
  });

  it('an unknown KNP is a warning unless configured as an error', () => {
    const o = { ...good(), knp: '555' };
    expect(codes(o)).toEqual({ errors: [], warnings: ['knp:KNP_UNKNOWN'] });
    expect(codes(o, { rules: { unknownKnp: 'error' } }).errors).toEqual(['knp:KNP_UNKNOWN']);
  });

  it.each(['12345678901234567890', '9999999999999999.99'])('amount %s breaks the size limit, not the form: the message names the largest amount', (amount) => {
    const [error] = validatePaymentOrder({ ...good(), amount }, { now }).errors;
    expect(error).toEqual({
      field: 'amount',
      code: 'AMOUNT_TOO_LARGE',
      message: `Сумма «${amount}» больше наибольшей допустимой (90071992547409.91)`,
      messageEn: `amount "${amount}" exceeds the largest amount 90071992547409.91`,
    });
  });

  it('applies the configured amount limits', () => {
    expect(codes({ ...good(), amount: '150000.00' }, { rules: { maxAmount: '100000.00' } }).errors).toEqual(['amount:AMOUNT_TOO_LARGE']);
    expect(codes({ ...good(), amount: '0.50' }, { rules: { minAmount: '1.00' } }).errors).toEqual(['amount:AMOUNT_TOO_SMALL']);
  });

  it('warns when pension contributions do not go to the State Corporation', () => {
    expect(codes({ ...good(), knp: '010' }).warnings).toContain('beneficiary.bic:KNP_BENEFICIARY_MISMATCH');
  });

  it('statement mode turns every breach into a warning and ignores the age of the line', () => {
    const o = { ...good(), date: '2024-01-01', payer: { ...good().payer, iinBin: '200540000018' } };
    const r = codes(o, { mode: 'statement' });
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual(['payer.iinBin:IIN_BIN_CHECKSUM']);
  });

  it('a code a statement document lacks is a statement of fact, not a field to fill in; an order must still have it', () => {
    const budget = { ...good(), knp: '911', beneficiary: { name: 'УГД', iinBin: '081240000013', iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '' }, payer: { ...good().payer, kod: '' } };
    expect(codes(budget, { mode: 'statement' })).toEqual({ errors: [], warnings: ['payer.kod:NOT_IN_STATEMENT', 'beneficiary.kbe:NOT_IN_STATEMENT', 'kbk:NOT_IN_STATEMENT'] });
    expect(codes({ ...good(), knp: ' ' }, { mode: 'statement' }).warnings).toEqual(['knp:NOT_IN_STATEMENT']);
    const r = validatePaymentOrder(budget, { now, mode: 'statement' });
    expect(r.warnings.map((w) => w.message)).toEqual([
      'В выписке не указан КОд плательщика (банк его не сообщил); операция уже исполнена, документ принят без него',
      'В выписке не указан КБе получателя (банк его не сообщил); операция уже исполнена, документ принят без него',
      'В выписке не указан КБК платежа в бюджет (банк его не сообщил); операция уже исполнена, документ принят без него',
    ]);
    expect(r.warnings[2].messageEn).toBe('the KBK of this budget payment is not in the statement (the bank did not give it); the operation is executed, the document is read without it');
    // A code that is there but wrong is still judged (a warning in a statement).
    expect(codes({ ...good(), beneficiary: { ...good().beneficiary, kbe: '1' } }, { mode: 'statement' }).warnings).toEqual(['beneficiary.kbe:KBE_FORMAT']);
    expect(codes(budget).errors).toEqual(['payer.kod:REQUIRED', 'beneficiary.kbe:REQUIRED', 'kbk:KBK_REQUIRED']);
  });

  it('speaks Russian to the 1C user and English to the logs', () => {
    const r = validatePaymentOrder({ ...good(), payer: { ...good().payer, iinBin: '200540000018' } }, { now });
    expect(r.errors[0].message).toMatch(/ИИН\/БИН 200540000018: неверное контрольное число/);
    expect(r.errors[0].messageEn).toMatch(/check digit/);
  });
});

describe('properties', () => {
  it('IIN/BIN: exactly one 12th digit completes any 11 digits (or none, when both passes give 10)', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\d{11}$/), (first11) => {
        const valid = [...'0123456789'].filter((d) => checkIinBin(first11 + d).ok);
        const expected = iinBinCheckDigit(first11);
        // (all zeros is refused as a format error, whatever its check digit)
        if (/^0+$/.test(first11)) return;
        expect(valid).toEqual(expected === null ? [] : [String(expected)]);
      }),
      { numRuns: 500 },
    );
  });

  // mod-97 catches every change of one digit into another (d x 10^k is never a multiple of the
  // prime 97); a digit swapped for a letter changes the length of the number and can slip through.
  it('IIK: changing any one digit of a valid IIK is always caught', () => {
    const valid = ['KZ22722C000024901213', 'KZ79722S000001674774', 'KZ24070105KSN0000000', 'KZ35601A000000012345'];
    fc.assert(
      fc.property(fc.constantFrom(...valid), fc.integer({ min: 2, max: 19 }), fc.constantFrom(...'0123456789'), (iban, at, ch) => {
        fc.pre(/\d/.test(iban[at]) && iban[at] !== ch);
        const changed = iban.slice(0, at) + ch + iban.slice(at + 1);
        expect(checkIban(changed).ok).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});
