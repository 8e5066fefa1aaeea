import type { NormalisedOrder } from '../../../connector/orders/payment-order';
import { makeIban, makeIinBin } from '../sandbox/sandbox.requisites';
import { DEMO } from '../sandbox/sandbox.config';
import { BankError } from '../business-api/business-api.errors';

export { makeIban, makeIinBin };

/** Requisites that pass the KZ rules: the sandbox's demo payer (TSESKZKA) paying a supplier at another (open) bank, Bank CenterCredit. */
export const PAYER_BIN = DEMO.payerBin;
export const PAYER_IBAN = DEMO.payerIban;
export const BENEFICIARY_BIN = makeIinBin('95044000000');
export const BENEFICIARY_IBAN = makeIban('856', '0000000000042');

export function sampleOrder(overrides: Partial<NormalisedOrder> = {}): NormalisedOrder {
  return {
    number: '101',
    date: '2026-11-25',
    amount: '7745.70',
    currency: 'KZT',
    payer: { name: 'ТОО "Ромашка" & <Партнёры>', iinBin: PAYER_BIN, iban: PAYER_IBAN, bic: 'TSESKZKA', kod: '17' },
    beneficiary: { name: 'ТОО Поставщик', iinBin: BENEFICIARY_BIN, iban: BENEFICIARY_IBAN, bic: 'KCJBKZKX', kbe: '17' },
    knp: '710',
    purpose: 'Оплата по счёту №5 от 20.11.2026, в т.ч. НДС 12%',
    ...overrides,
  };
}

/** The BankError a call fails with; a call that succeeds, or fails otherwise, fails the test. */
export async function caught(p: Promise<unknown>): Promise<BankError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BankError) return err;
    throw err;
  }
  throw new Error('expected a BankError');
}
