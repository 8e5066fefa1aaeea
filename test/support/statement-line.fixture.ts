import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { StatementLine } from '../../connector/persistence/entities';

/**
 * A booked statement line, persisted on the next flush: by default a payment to the beneficiary
 * of `sampleOrder()` (the same requisites), naming its document by number and date.
 */
export function sampleStatementLine(
  em: EntityManager,
  line: Pick<StatementLine, 'account' | 'bankLineId' | 'bookingDate' | 'direction' | 'amountTiyn'> & Partial<StatementLine>,
): StatementLine {
  return em.create(StatementLine, {
    id: randomUUID(),
    valueDate: line.bookingDate,
    currency: 'KZT',
    status: 'booked',
    kind: 'payment',
    isFee: false,
    counterpartyName: 'ТОО "Пример Получатель"',
    counterpartyIinBin: '190840000015',
    counterpartyIban: 'KZ78722S000000067890',
    counterpartyBic: 'CASPKZKA',
    purpose: `Оплата ${line.bankLineId}`,
    knp: '710',
    documentNumber: line.bankLineId.replace('BL-', ''),
    documentDate: line.bookingDate,
    createdAt: new Date(),
    ...line,
  });
}
