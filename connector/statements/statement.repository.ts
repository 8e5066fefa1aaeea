import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder, Statement, StatementLine } from '../persistence/entities';
import { defaultBankDirectory } from '../requisites/bank-directory';
import { ibanBankCode } from '../requisites/iban.validator';
import { ConnectorError } from '../shared/errors';
import type { StatementData, StatementLineData } from './statement.model';

/** The holder of the statement's account: written on our side of every 1C document. */
export interface AccountHolder {
  name: string;
  iinBin: string;
  bic: string;
  code?: string;
}

export interface StoredStatement {
  statement: StatementData;
  holder: AccountHolder;
  warnings: string[];
}

const DAY = 86_400_000;
const addDays = (iso: string, days: number): string => new Date(Date.parse(`${iso}T00:00:00Z`) + days * DAY).toISOString().slice(0, 10);

/**
 * The statement of one account over [from, to] from the stored `Statement`/`StatementLine` rows
 * (the pipeline fills them from the bank): booked lines only, opening balance from the stored
 * statement that covers `from` (plus the booked lines of that statement before `from`), closing
 * = opening + lines. A stored statement that ends on `to` and disagrees is reported as a warning
 * (LESSONS.md 6: opening + booked lines = closing); so is a day with no stored statement.
 */
export async function loadStoredStatement(em: EntityManager, account: string, from: string, to: string): Promise<StoredStatement> {
  const warnings: string[] = [];
  const statements = await em.find(Statement, { account, periodFrom: { $lte: to }, periodTo: { $gte: from } }, { orderBy: { periodFrom: 'asc', fetchedAt: 'desc' } });
  const opening = statements.find((s) => s.periodFrom <= from && s.periodTo >= from && s.kind === 'booked') ?? statements.find((s) => s.periodFrom <= from && s.periodTo >= from);
  if (!opening) {
    throw new ConnectorError('NO_STATEMENT', `no stored statement of ${account} covers ${from}: fetch the bank statement for that day first`, 1);
  }
  const rows = await em.find(
    StatementLine,
    { account, status: 'booked', bookingDate: { $gte: opening.periodFrom < from ? opening.periodFrom : from, $lte: to } },
    { orderBy: { bookingDate: 'asc', bankLineId: 'asc' } },
  );
  let openingBalance = Number(opening.openingBalance);
  const lines: StatementLineData[] = [];
  for (const row of rows) {
    const amount = Number(row.amountTiyn);
    if (row.bookingDate < from) {
      openingBalance += row.direction === 'credit' ? amount : -amount;
      continue;
    }
    const line: StatementLineData = {
      bankLineId: row.bankLineId,
      bookingDate: row.bookingDate,
      valueDate: row.valueDate,
      direction: row.direction,
      amount,
      currency: row.currency,
      status: row.status,
      kind: row.kind,
      counterparty: { name: row.counterpartyName, iinBin: row.counterpartyIinBin, iban: row.counterpartyIban, bic: row.counterpartyBic },
      purpose: row.purpose,
    };
    if (row.knp) line.knp = row.knp;
    if (row.documentNumber) line.documentNumber = row.documentNumber;
    if (row.documentDate) line.documentDate = row.documentDate;
    if (row.bankReference) line.bankReference = row.bankReference;
    if (row.externalId) line.externalId = row.externalId;
    lines.push(line);
  }
  let closingBalance = openingBalance;
  for (const l of lines) closingBalance += l.direction === 'credit' ? l.amount : -l.amount;
  const closing = statements.find((s) => s.periodTo === to && s.kind === 'booked');
  if (closing && Number(closing.closingBalance) !== closingBalance) {
    warnings.push(`the bank's statement ending ${to} closes at ${closing.closingBalance} tiyn but its lines give ${closingBalance}: the statement is not balanced`);
  }
  for (let day = from; day <= to; day = addDays(day, 1)) {
    if (!statements.some((s) => s.periodFrom <= day && s.periodTo >= day)) warnings.push(`no stored statement covers ${day}: its lines may be missing`);
  }
  const statement: StatementData = {
    account,
    currency: opening.currency,
    periodFrom: from,
    periodTo: to,
    kind: 'booked',
    openingBalance,
    closingBalance,
    lines,
    source: 'onec',
  };
  return { statement, holder: await accountHolder(em, account, warnings), warnings };
}

/** Name and BIN from the latest order paid from the account; BIC from the IIK's bank code. */
async function accountHolder(em: EntityManager, account: string, warnings: string[]): Promise<AccountHolder> {
  const banks = /^KZ\d{2}\d{3}/.test(account) ? defaultBankDirectory.findByIbanCode(ibanBankCode(account)) : [];
  const bic = banks.find((b) => b.active !== false)?.bic ?? banks[0]?.bic ?? '';
  if (!bic) warnings.push(`the bank of ${account} is not in the bank directory: the holder's BIC is left empty`);
  const order = await em.findOne(PaymentOrder, { payerIban: account }, { orderBy: { createdAt: 'desc' } });
  if (!order) {
    warnings.push(`no order was ever paid from ${account}: the holder's name and BIN are left empty`);
    return { name: '', iinBin: '', bic };
  }
  return { name: order.payerName, iinBin: order.payerIinBin, bic, code: order.payerKod || undefined };
}
