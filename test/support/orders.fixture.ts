import type { NormalisedOrder } from '../../connector/orders/payment-order';

/** A valid order (real check digits) with overridable fields. */
export function sampleOrder(overrides: Partial<NormalisedOrder> = {}): NormalisedOrder {
  // Today in Kazakhstan (UTC+5): the requisite rules refuse stale or future-dated documents.
  const today = new Date(Date.now() + 5 * 3600_000).toISOString().slice(0, 10);
  return {
    number: '17',
    date: today,
    valueDate: today,
    amount: '150000.00',
    currency: 'KZT',
    payer: { name: 'ТОО "Пример Плательщик"', iinBin: '200540000019', iban: 'KZ69998CTA0000000101', bic: 'TSESKZKA', kod: '17' },
    beneficiary: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17' },
    knp: '710',
    purpose: 'Оплата по счету №12 за товары',
    ...overrides,
  };
}

/**
 * One payment order as 1C writes it into an exchange file (the lines from СекцияДокумент to
 * КонецДокумента), dated 25.11.2026 between the sample payer and beneficiary; `extra` lines go
 * before КонецДокумента.
 */
export function onecOrderLines(number: string, options: { amount?: string; extra?: string[] } = {}): string[] {
  return [
    'СекцияДокумент=Платежное поручение',
    `НомерДокумента=${number}`,
    'ДатаДокумента=25.11.2026',
    `Сумма=${options.amount ?? '1500.00'}`,
    'ПлательщикНаименование=ТОО "Пример Плательщик"',
    'ПлательщикБИН_ИИН=200540000019',
    'ПлательщикКБЕ=17',
    'ПлательщикИИК=KZ69998CTA0000000101',
    'ПлательщикБанкБИК=TSESKZKA',
    'ПолучательНаименование=ТОО "Пример Получатель"',
    'ПолучательБИН_ИИН=190840000015',
    'ПолучательКБЕ=17',
    'ПолучательИИК=KZ78722S000000067890',
    'ПолучательБанкБИК=CASPKZKA',
    'НазначениеПлатежа=Оплата по счету',
    'КодНазначенияПлатежа=710',
    ...(options.extra ?? []),
    'КонецДокумента',
  ];
}
