import type { NormalisedOrder } from '../../../connector/orders/payment-order';
import type { OnecEncoding } from './onec-line.decoder';

/**
 * One problem found in a 1C exchange file: where (file, line, the 1C key or the order field),
 * which rule (`code`), and what to do, in Russian for the 1C user and English for logs.
 */
export interface OnecIssue {
  file?: string;
  line: number;
  /** The order field (`amount`, `payer.iinBin`) or, for a structural problem, the 1C key or marker. */
  field: string;
  /** The 1C key the value came from, when there is one (`ПлательщикБИН_ИИН`). */
  key?: string;
  code: string;
  message: string;
  messageEn: string;
}

export interface OnecHeader {
  line: number;
  formatVersion?: string;
  /** `Кодировка=` as written: a hint only, the bytes decide. */
  declaredEncoding?: string;
  sender?: string;
  recipient?: string;
  createdDate?: string;
  createdTime?: string;
  dateFrom?: string;
  dateTo?: string;
  /** `РасчСчет=` lines (repeatable). */
  accounts: string[];
  /** `Документ=` lines (repeatable): the kinds the file announces. */
  documentKinds: string[];
  /** Every header key as written (first occurrence), unknown ones included. */
  raw: Record<string, string>;
}

/** A `СекцияРасчСчет` ... `КонецРасчСчет` block: the balances of one account over a period. */
export interface OnecBalance {
  line: number;
  endLine: number;
  closed: boolean;
  account: string;
  dateFrom?: string;
  dateTo?: string;
  /** Decimal strings, normalised to 2 places (`"1000000.00"`). */
  opening?: string;
  totalIn?: string;
  totalOut?: string;
  closing?: string;
  raw: Record<string, string>;
  errors: OnecIssue[];
}

/** The order as read from a document; `raw` holds every key of the document as written. */
export type OnecOrder = NormalisedOrder & { raw: Record<string, string> };

export interface OnecDocument {
  /** The file it was read from, when the reader was told. */
  file?: string;
  /** Line of `СекцияДокумент`. */
  line: number;
  /** Line of `КонецДокумента` (or of the last line read, when the document was not closed). */
  endLine: number;
  /** The `СекцияДокумент=` value as written (quotes removed). */
  kind: string;
  /** A document inside a bank statement (a fact the bank executed) rather than an order to execute. */
  statement: boolean;
  /** The field set: Kazakhstan (БИН_ИИН, ИИК, КБЕ, КНП) or Russian (ИНН, КПП, Счет). */
  variant: 'kz' | 'ru';
  /** `КонецДокумента` was seen. */
  closed: boolean;
  /** The original text of the document, from `СекцияДокумент` to `КонецДокумента`, for the archive. */
  text: string;
  order: OnecOrder;
  /** For each order field, the 1C key and line it came from (so a rule failure can point at the line). */
  sources: Record<string, { key: string; line: number }>;
  /** Statement dates: `ДатаОперации`, `ДатаСписано`, `ДатаПоступило` (ISO). */
  operationDate?: string;
  debitedDate?: string;
  creditedDate?: string;
  /** Structural problems: the document could not be read faithfully. */
  errors: OnecIssue[];
  warnings: OnecIssue[];
}

export interface OnecFileSummary {
  file?: string;
  /** The first non-empty line is `1CClientBankExchange`. */
  exchange: boolean;
  encoding: OnecEncoding;
  declaredEncoding?: string;
  /** `КонецФайла` was seen (a file still being written by 1C lacks it). */
  complete: boolean;
  lines: number;
  bytes: number;
  documents: number;
  balances: number;
  errors: OnecIssue[];
  warnings: OnecIssue[];
}

export type OnecEvent =
  | { type: 'header'; header: OnecHeader }
  | { type: 'balance'; balance: OnecBalance }
  | { type: 'document'; document: OnecDocument }
  | { type: 'end'; file: OnecFileSummary; header: OnecHeader };

/** The intake source of orders 1C exported through the outbox: its status report holds only these (the natural key is payer account, number and date, whatever the source: a document dropped twice, in any file, is one order). */
export const ONEC_SOURCE = 'onec';
