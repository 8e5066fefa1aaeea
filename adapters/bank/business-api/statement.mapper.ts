import { parseAmount } from '../../../connector/shared/money';
import type { StatementData, StatementLineData } from '../../../connector/statements/statement.model';
import type { BankStatement } from './business-api.schemas';

/** "-12.50" -> -1250; parseAmount takes no sign, balances may be negative (overdraft). */
export function parseSignedAmount(text: string): number {
  return text.startsWith('-') ? -parseAmount(text.slice(1)) : parseAmount(text);
}

/**
 * A line status the contract names, in any case (`BOOKED` is `booked`: read as pending, every line
 * of a bank that capitalises would escape reconciliation); undefined for one it does not name,
 * which the mapper keeps apart as pending.
 */
export function lineStatusOf(raw: string): 'booked' | 'pending' | undefined {
  const status = raw.trim().toLowerCase();
  return status === 'booked' || status === 'pending' ? status : undefined;
}

/**
 * The contract's statement JSON -> the domain's statement model (connector/statements). Fee lines
 * stay lines of kind `fee` (R-25, LESSONS.md 7); pending lines keep status `pending` so that the
 * balance check counts booked lines only (LESSONS.md 6). A status the contract does not name is
 * pending too (business-api.schemas.ts), like camt.053's statuses other than BOOK.
 */
export function mapBankStatement(s: BankStatement): StatementData {
  const lines: StatementLineData[] = s.lines.map((l) => {
    const line: StatementLineData = {
      bankLineId: l.lineId,
      bookingDate: l.bookingDate,
      valueDate: l.valueDate,
      direction: l.direction,
      amount: parseAmount(l.amount),
      currency: l.currency,
      status: lineStatusOf(l.status) ?? 'pending',
      kind: l.kind,
      counterparty: { ...l.counterparty },
      purpose: l.purpose,
    };
    if (l.knp) line.knp = l.knp;
    if (l.documentNumber) line.documentNumber = l.documentNumber;
    if (l.documentDate) line.documentDate = l.documentDate;
    if (l.bankReference) line.bankReference = l.bankReference;
    if (l.externalId) line.externalId = l.externalId;
    return line;
  });
  return {
    account: s.account,
    currency: s.currency,
    periodFrom: s.from,
    periodTo: s.to,
    kind: s.kind ?? 'booked',
    openingBalance: parseSignedAmount(s.openingBalance),
    closingBalance: parseSignedAmount(s.closingBalance),
    lines,
    source: 'bank-json',
  };
}
