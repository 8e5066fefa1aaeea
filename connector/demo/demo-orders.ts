import type { NormalisedOrder } from '../orders/payment-order';

/**
 * The demo company: a TOO with accounts at Alatau City Bank (bank code 998, BIC TSESKZKA),
 * paying suppliers, a tax and salaries. Every requisite has a valid check digit; one order is
 * deliberately invalid (amount zero) so the demo shows a refusal with its reason.
 */
export const DEMO_PAYER = { name: 'ТОО "Демо Коннектор"', iinBin: '200540000019', bic: 'TSESKZKA', kod: '17' };
export const DEMO_ACCOUNTS = ['KZ69998CTA0000000101', 'KZ58998CTA0000000202'];

export function demoOrders(runId: string, date: string): NormalisedOrder[] {
  const base = {
    date,
    valueDate: date,
    currency: 'KZT',
  };
  const payer = (iban: string) => ({ ...DEMO_PAYER, iban });
  return [
    {
      ...base,
      number: `${runId}-1`,
      amount: '150000.00',
      payer: payer(DEMO_ACCOUNTS[0]),
      beneficiary: { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17' },
      knp: '710',
      purpose: 'Оплата по счету №12 за товары, в т.ч. НДС',
      erpDocumentId: `demo-${runId}-1`,
    },
    {
      ...base,
      number: `${runId}-2`,
      amount: '48250.50',
      payer: payer(DEMO_ACCOUNTS[1]),
      beneficiary: { name: 'ТОО "Поставщик Услуг"', iinBin: '231040000455', iban: 'KZ35601A000000012345', bic: 'HSBKKZKX', kbe: '17' },
      knp: '859',
      purpose: 'Оплата за услуги связи за октябрь',
      erpDocumentId: `demo-${runId}-2`,
    },
    {
      ...base,
      number: `${runId}-3`,
      amount: '0.00',
      payer: payer(DEMO_ACCOUNTS[0]),
      beneficiary: { name: 'ИП Иванов', iinBin: '880712300141', iban: 'KZ988560000000123456', bic: 'KCJBKZKX', kbe: '19' },
      knp: '859',
      purpose: 'Оплата без суммы (ошибка ввода в 1С)',
      erpDocumentId: `demo-${runId}-3`,
    },
  ];
}
