import { parseAmount } from '../../../connector/shared/money';
import type { LineKind, LineStatus, StatementData, StatementKind, StatementLineData } from '../../../connector/statements/statement.model';
import type { ParsedOnecFile } from './onec-exchange.reader';
import type { OnecDocument } from './onec-exchange.types';
import { EXT } from './onec-statement.writer';

/**
 * A 1C statement file (ours or a bank's) mapped into the statement model (source `onec`).
 * Reconciliation works on that model only. Throws nothing: lines that cannot be mapped (no
 * direction, no amount) are returned in `skipped` with their line numbers.
 */
export interface OnecStatementMapping {
  statement: StatementData;
  skipped: { line: number; reason: string }[];
}

const LINE_KINDS: readonly LineKind[] = ['payment', 'fee', 'tax', 'other'];
const STATUSES: readonly LineStatus[] = ['booked', 'pending'];

function lineOf(doc: OnecDocument): StatementLineData | string {
  const o = doc.order;
  if (!o.direction) return 'direction unknown (no СуммаПриход/СуммаРасход, dates or own account)';
  let amount: number;
  try {
    amount = parseAmount(o.amount);
  } catch {
    return `amount "${o.amount}" unreadable`;
  }
  const debit = o.direction === 'out';
  const counter = debit ? o.beneficiary : o.payer;
  const raw = o.raw;
  const bookingDate = doc.operationDate ?? (debit ? doc.debitedDate : doc.creditedDate) ?? o.date;
  const kindRaw = raw[EXT.kind] as LineKind | undefined;
  const statusRaw = raw[EXT.status] as LineStatus | undefined;
  const line: StatementLineData = {
    // A bank's 1C file has no line id: number + date + amount + direction identify the line.
    bankLineId: raw[EXT.bankLineId] || `${o.number}/${o.date}/${o.amount}/${o.direction}`,
    bookingDate,
    valueDate: o.valueDate ?? bookingDate,
    direction: debit ? 'debit' : 'credit',
    amount,
    currency: o.currency,
    status: statusRaw && STATUSES.includes(statusRaw) ? statusRaw : 'booked',
    kind: kindRaw && LINE_KINDS.includes(kindRaw) ? kindRaw : /ордер/i.test(doc.kind) ? 'fee' : 'payment',
    counterparty: { name: counter.name, iinBin: counter.iinBin, iban: counter.iban, bic: counter.bic },
    purpose: o.purpose,
  };
  if (o.knp) line.knp = o.knp;
  // The counterparty's own code: КБе of the beneficiary of a debit, КОд of the payer of a credit.
  const code = debit ? o.beneficiary.kbe : o.payer.kod;
  if (code) line.counterparty.code = code;
  if (o.kbk) line.kbk = o.kbk;
  if (o.number) line.documentNumber = o.number;
  if (o.date) line.documentDate = o.date;
  if (raw[EXT.bankReference]) line.bankReference = raw[EXT.bankReference];
  if (raw[EXT.externalId]) line.externalId = raw[EXT.externalId];
  return line;
}

export function onecToStatement(parsed: ParsedOnecFile): OnecStatementMapping {
  const balance = parsed.balances[0];
  const header = parsed.header;
  const tiyn = (s: string | undefined): number => {
    if (!s) return 0;
    return s.startsWith('-') ? -parseAmount(s.slice(1)) : parseAmount(s);
  };
  const kind = header.raw[EXT.statementKind];
  const statement: StatementData = {
    account: balance?.account || header.accounts[0] || '',
    currency: header.raw[EXT.currency] || parsed.documents[0]?.order.currency || 'KZT',
    periodFrom: balance?.dateFrom ?? header.dateFrom ?? '',
    periodTo: balance?.dateTo ?? header.dateTo ?? '',
    kind: kind === 'intraday' || kind === 'booked' ? (kind as StatementKind) : 'booked',
    openingBalance: tiyn(balance?.opening),
    closingBalance: tiyn(balance?.closing),
    lines: [],
    source: 'onec',
  };
  const skipped: { line: number; reason: string }[] = [];
  for (const doc of parsed.documents) {
    if (doc.errors.length > 0) {
      skipped.push({ line: doc.line, reason: doc.errors.map((e) => e.code).join(', ') });
      continue;
    }
    const line = lineOf(doc);
    if (typeof line === 'string') skipped.push({ line: doc.line, reason: line });
    else statement.lines.push(line);
  }
  return { statement, skipped };
}
