import iconv from 'iconv-lite';
import type { NormalisedOrder } from '../orders/payment-order';
import { DEMO } from '../../adapters/bank/sandbox/sandbox.config';
import { makeIinBin } from '../../adapters/bank/sandbox/sandbox.requisites';

/**
 * The demo company (the test PKI's "demo company", BIN 050640872810) with accounts at Alatau City
 * Bank (bank code 998, BIC TSESKZKA) pays a supplier inside the bank, a supplier at Kaspi, a large
 * invoice that needs two signatures, a tax to the Treasury, one payment from an account without
 * funds (the bank refuses it) and one order with a broken IBAN (refused before signing).
 */
export interface DemoDocument {
  number: string;
  amount: string;
  payerIban: string;
  beneficiary: { name: string; iinBin: string; iban: string; bic: string; kbe: string; bank: string };
  knp: string;
  kbk?: string;
  purpose: string;
  expect: 'executed' | 'rejected' | 'invalid';
}

export const DEMO_PAYER = { name: 'ТОО "ДЕМО КОМПАНИЯ"', iinBin: DEMO.payerBin, bic: 'TSESKZKA', kod: '17' };

export function demoDocuments(run: string): DemoDocument[] {
  const kaspi = { name: 'ТОО "Пример Получатель"', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA', kbe: '17', bank: 'АО "Kaspi Bank"' };
  const internal = { name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, iban: DEMO.internalBeneficiaryIban, bic: 'TSESKZKA', kbe: '17', bank: 'АО "Alatau City Bank"' };
  const treasury = { name: 'РГУ "УГД по Есильскому району"', iinBin: makeIinBin('12094000000'), iban: 'KZ24070105KSN0000000', bic: 'KKMFKZ2A', kbe: '11', bank: 'РГУ "Комитет казначейства МФ РК"' };
  return [
    { number: `${run}1`, amount: '150000.00', payerIban: DEMO.payerIban, beneficiary: kaspi, knp: '710', purpose: 'Оплата по счету №12 за товары, в т.ч. НДС 12%', expect: 'executed' },
    { number: `${run}2`, amount: '48250.50', payerIban: DEMO.payerIban, beneficiary: internal, knp: '859', purpose: 'Оплата за услуги связи за ноябрь', expect: 'executed' },
    { number: `${run}3`, amount: '2500000.00', payerIban: DEMO.payerIban, beneficiary: kaspi, knp: '710', purpose: 'Оплата по договору поставки №7 (две подписи)', expect: 'executed' },
    { number: `${run}4`, amount: '320000.00', payerIban: DEMO.payerIban, beneficiary: treasury, knp: '911', kbk: '101202', purpose: 'Корпоративный подоходный налог, авансовый платёж', expect: 'executed' },
    { number: `${run}5`, amount: '5000.00', payerIban: DEMO.poorIban, beneficiary: kaspi, knp: '710', purpose: 'Оплата со счёта без средств', expect: 'rejected' },
    { number: `${run}6`, amount: '777.00', payerIban: 'KZ00998CTB0000000001', beneficiary: kaspi, knp: '710', purpose: 'Ошибка в ИИК плательщика', expect: 'invalid' },
  ];
}

function onecDate(iso: string): string {
  const [y, m, d] = iso.split('-');
  return `${d}.${m}.${y}`;
}

/** The file 1C:Бухгалтерия для Казахстана writes for the bank: 1CClientBankExchange, cp1251, CRLF. */
export function demoOnecExport(docs: DemoDocument[], date: string): Buffer {
  const lines = ['1CClientBankExchange', 'ВерсияФормата=1.02', 'Кодировка=Windows', 'Отправитель=Бухгалтерия для Казахстана, редакция 3.0', 'Получатель=', `ДатаСоздания=${onecDate(date)}`, 'ВремяСоздания=09:00:00', `ДатаНачала=${onecDate(date)}`, `ДатаКонца=${onecDate(date)}`];
  for (const iban of [...new Set(docs.map((d) => d.payerIban))]) lines.push(`РасчСчет=${iban}`);
  for (const d of docs) {
    lines.push(
      'СекцияДокумент=Платежное поручение',
      `НомерДокумента=${d.number}`,
      `ДатаДокумента=${onecDate(date)}`,
      `Сумма=${d.amount}`,
      'Валюта=KZT',
      `ПлательщикНаименование=${DEMO_PAYER.name}`,
      `ПлательщикБИН_ИИН=${DEMO_PAYER.iinBin}`,
      `ПлательщикКБЕ=${DEMO_PAYER.kod}`,
      `ПлательщикИИК=${d.payerIban}`,
      'ПлательщикБанкНаименование=АО "Alatau City Bank"',
      `ПлательщикБанкБИК=${DEMO_PAYER.bic}`,
      `ПолучательНаименование=${d.beneficiary.name}`,
      `ПолучательБИН_ИИН=${d.beneficiary.iinBin}`,
      `ПолучательКБЕ=${d.beneficiary.kbe}`,
      `ПолучательИИК=${d.beneficiary.iban}`,
      `ПолучательБанкНаименование=${d.beneficiary.bank}`,
      `ПолучательБанкБИК=${d.beneficiary.bic}`,
      `НазначениеПлатежа=${d.purpose}`,
      `КодНазначенияПлатежа=${d.knp}`,
      ...(d.kbk ? [`КБК=${d.kbk}`] : []),
      `ДатаВалютирования=${onecDate(date)}`,
      'КонецДокумента',
    );
  }
  lines.push('КонецФайла');
  return iconv.encode(`${lines.join('\r\n')}\r\n`, 'cp1251');
}

/** The demo company's accounts at the sandbox bank. */
export const DEMO_ACCOUNTS = [DEMO.payerIban, DEMO.poorIban];

/** The demo documents of the company's own accounts as JSON orders (an ERP on the HTTP API). */
export function demoOrders(run: string, date: string): NormalisedOrder[] {
  return demoDocuments(run)
    .filter((d) => DEMO_ACCOUNTS.includes(d.payerIban))
    .map((d) => ({ ...demoOrder(d, date), erpDocumentId: `demo-${d.number}` }));
}

/** A demo document in the normalised shape (for the HTTP API and tests). */
export function demoOrder(doc: DemoDocument, date: string): NormalisedOrder {
  return {
    number: doc.number,
    date,
    valueDate: date,
    amount: doc.amount,
    currency: 'KZT',
    payer: { ...DEMO_PAYER, iban: doc.payerIban },
    beneficiary: { name: doc.beneficiary.name, iinBin: doc.beneficiary.iinBin, iban: doc.beneficiary.iban, bic: doc.beneficiary.bic, kbe: doc.beneficiary.kbe },
    knp: doc.knp,
    purpose: doc.purpose,
    ...(doc.kbk ? { kbk: doc.kbk } : {}),
  };
}
