import type { EntityManager } from '@mikro-orm/postgresql';
import { PaymentOrder, Statement, StatementLine } from '../persistence/entities';
import { defaultBankDirectory } from '../requisites/bank-directory';
import { ibanBankCode } from '../requisites/iban.validator';
import { ConnectorError } from '../shared/errors';
import { MAX_AMOUNT, MoneyError } from '../shared/money';
import type { StatementData, StatementLineData } from './statement.model';

/** An exact balance as the statement model's number; one past the safe-integer range is refused, never rounded. */
function balanceOf(tiyn: bigint, what: string): number {
  const limit = BigInt(Number.MAX_SAFE_INTEGER);
  if (tiyn > limit || tiyn < -limit) {
    throw new MoneyError('range', `${what} is ${tiyn} tiyn, beyond the largest amount ${MAX_AMOUNT}: it cannot be written exactly`, `Остаток по счёту больше наибольшей допустимой суммы (${MAX_AMOUNT})`);
  }
  return Number(tiyn);
}

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
 * = opening + lines; a line dated before `from` that a statement starting in the range brought is
 * one of its lines (statements in the range hold it in their closing, not their opening). A stored statement that ends on `to` and disagrees is reported as a warning
 * (LESSONS.md 6: opening + booked lines = closing); so is a day with no stored statement.
 * `erpSource`: the intake source of the ERP the statement is written for (the 1C outbox's); its
 * orders' lines carry the orders' numbers (addOrderCodes).
 */
export async function loadStoredStatement(em: EntityManager, account: string, from: string, to: string, options: { erpSource: string }): Promise<StoredStatement> {
  const warnings: string[] = [];
  const statements = await em.find(Statement, { account, periodFrom: { $lte: to }, periodTo: { $gte: from } }, { orderBy: { periodFrom: 'asc', fetchedAt: 'desc' } });
  const opening = statements.find((s) => s.periodFrom <= from && s.periodTo >= from && s.kind === 'booked') ?? statements.find((s) => s.periodFrom <= from && s.periodTo >= from);
  if (!opening) {
    throw new ConnectorError('NO_STATEMENT', `no stored statement of ${account} covers ${from}: the worker fetches statements every pipeline.statementsEveryMs (today's, and the closed previous business days each morning) for the accounts in pipeline.accounts, or else for those with orders on their way or final in the last 3 days; add ${account} to pipeline.accounts, or wait for the next run (logs: statement.fetched)`, 1);
  }
  // A line the bank dates before the statement it sends it in (a back-dated correction, a UTC date
  // for a line booked just after midnight in Almaty) moved money in that statement: it is in its
  // closing, not in its opening. So a line first stored with a statement that starts in the range is
  // one of the range's lines whatever its date; by its date alone it never reached 1C, and the file's
  // closing was not the bank's.
  const inRange = statements.filter((s) => s.periodFrom >= from).map((s) => s.id);
  const rows = await em.find(
    StatementLine,
    {
      account,
      status: 'booked',
      $or: [{ bookingDate: { $gte: opening.periodFrom < from ? opening.periodFrom : from, $lte: to } }, ...(inRange.length ? [{ bookingDate: { $lt: from }, statementId: { $in: inRange } }] : [])],
    },
    { orderBy: { bookingDate: 'asc', bankLineId: 'asc' } },
  );
  const sentInRange = new Set(inRange);
  // Sums in BigInt (money.ts: each amount is a safe integer, a sum of them need not be): a float sum
  // past 2^53 rounds, and 1C would get a balance off by a few tiyn with no word of it.
  let openingTiyn = BigInt(opening.openingBalance);
  const lines: StatementLineData[] = [];
  for (const row of rows) {
    const amount = Number(row.amountTiyn);
    if (row.bookingDate < from && !(row.statementId && sentInRange.has(row.statementId))) {
      openingTiyn += row.direction === 'credit' ? BigInt(amount) : -BigInt(amount);
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
  // From the earliest line's date: a back-dated one of our orders gets the order's number too.
  await addOrderCodes(em, account, lines, lines.reduce((day, l) => (l.bookingDate < day ? l.bookingDate : day), from), to, options.erpSource);
  let closingTiyn = openingTiyn;
  for (const l of lines) closingTiyn += l.direction === 'credit' ? BigInt(l.amount) : -BigInt(l.amount);
  const closing = statements.find((s) => s.periodTo === to && s.kind === 'booked');
  if (closing && BigInt(closing.closingBalance) !== closingTiyn) {
    warnings.push(`the bank's statement ending ${to} closes at ${closing.closingBalance} tiyn but its lines give ${closingTiyn}: the statement is not balanced`);
  }
  const openingBalance = balanceOf(openingTiyn, `the opening balance of ${account} on ${from}`);
  const closingBalance = balanceOf(closingTiyn, `the closing balance of ${account} on ${to}`);
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

/**
 * What a debit line of one of our orders takes from the order (`order_id`, set by reconciliation):
 * - the number and date 1C finds its own payment order by. A line reconciliation matched to an
 *   order of the ERP the file is for (`match_kind` order, `erpSource`) carries the order's, whatever the bank
 *   wrote there (its own number, a camt.053 InstrId) and whatever account it shows (camt.053 may
 *   give none); any other linked line only when it lacks them (both are optional in the bank's
 *   answer; camt.053 has no document date). Under the bank's number, line id or booking date 1C
 *   would create a second outgoing payment and leave its own order unpaid. An order of another ERP
 *   keeps the bank's number: 1C has no such order, and another of its own may bear that number. A
 *   mismatch too: executed otherwise than signed, it is not that order's payment to 1C. The
 *   write-back waits for reconciliation before it writes a debit, so its number does not change
 *   between two files.
 * - the codes the bank's statement does not carry (its contract has no КБе/КОд or КБК on a line):
 *   the beneficiary's КБе, the КБК, the КНП when the bank gave none. Only when the line's
 *   counterparty is that order's beneficiary: a fee line names the payment it was charged for, but
 *   its counterparty is the bank, and a line executed to another account (a mismatch) is not that
 *   beneficiary either.
 */
async function addOrderCodes(em: EntityManager, account: string, lines: StatementLineData[], from: string, to: string, erpSource: string): Promise<void> {
  const rows = await em.execute<
    Array<{ bank_line_id: string; match_kind: string | null; source: string; beneficiary_iban: string; beneficiary_kbe: string; knp: string; kbk: string | null; number: string; doc_date: string }>
  >(
    `select l.bank_line_id, l.match_kind, o.source, o.beneficiary_iban, o.beneficiary_kbe, o.knp, o.kbk, o.number, to_char(o.doc_date, 'YYYY-MM-DD') as doc_date
       from statement_line l join payment_order o on o.id = l.order_id and o.payer_iban = l.account
      where l.account = ? and l.status = 'booked' and l.booking_date between ? and ? and l.direction = 'debit' and l.kind <> 'fee'`,
    [account, from, to],
  );
  if (rows.length === 0) return;
  const byLineId = new Map(lines.map((l) => [l.bankLineId, l]));
  for (const order of rows) {
    const line = byLineId.get(order.bank_line_id);
    if (!line) continue;
    if (order.match_kind === 'order' && order.source === erpSource) {
      line.documentNumber = order.number;
      line.documentDate = order.doc_date;
    }
    if (order.beneficiary_iban !== line.counterparty.iban) continue;
    line.documentNumber ??= order.number;
    line.documentDate ??= order.doc_date;
    if (order.beneficiary_kbe) line.counterparty.code = order.beneficiary_kbe;
    if (order.kbk) line.kbk = order.kbk;
    if (!line.knp && order.knp) line.knp = order.knp;
  }
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
