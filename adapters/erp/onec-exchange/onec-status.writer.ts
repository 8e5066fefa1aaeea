import { isoToOnecDate, onecValue } from './onec-statement.writer';
import { refusalReason, type RefusalFields } from '../../../connector/orders/order.mapper';
import type { PaymentOrder } from '../../../connector/persistence/entities';
import { failedAfterSendBegan } from '../../../connector/orders/order-state';
import { formatAmount } from '../../../connector/shared/money';
import { isoDateOf } from '../../../connector/statements/statement.store';

/**
 * The status report for documents 1C exported (R-21: the status of each document reaches the
 * ERP; R-23: a refusal reaches it in words a person understands). Same grammar as the exchange
 * file (so a 1C processing, or our reader, can load it), and readable as it is: one section per
 * document with its number, date, amount, beneficiary, the status in Russian and, for a refusal,
 * the reason. See README.md in this folder.
 */
export type ReportedState =
  | 'received'
  | 'validated'
  | 'invalid'
  | 'awaiting_signatures'
  | 'signed'
  | 'submitting'
  | 'submitted'
  | 'executed'
  | 'rejected'
  | 'deemed_executed'
  | 'held'
  | 'failed';

/** What a 1C user reads for each order state (INTERFACES.md "orders list" states). */
export const STATE_RU: Record<ReportedState, string> = {
  received: 'Получен коннектором',
  validated: 'Проверен, готовится к подписи',
  invalid: 'Не принят: ошибки в реквизитах',
  awaiting_signatures: 'Ожидает подписи (ЭЦП)',
  signed: 'Подписан, готовится к отправке в банк',
  submitting: 'Отправляется в банк',
  submitted: 'Принят банком, в обработке',
  executed: 'Исполнен банком',
  rejected: 'Отклонён банком',
  deemed_executed: 'Считается исполненным (нет отказа банка в течение операционного дня)',
  held: 'Задержан: работа с банком приостановлена (блокировка)',
  failed: 'Техническая ошибка: обратитесь к администратору',
};

/**
 * What a 1C user reads for an order that failed while being sent or tracked: the bank may hold it,
 * even have paid it, so it must not be paid again another way (the administrator finds out with
 * `connector orders show` and `orders retry`, which looks it up before any resend).
 */
export const FAILED_AFTER_SENDING_RU = 'Техническая ошибка после отправки в банк: платёж мог быть принят или исполнен банком, не создавайте его повторно; обратитесь к администратору';


export interface StatusReportEntry {
  number: string;
  /** ISO date of the document. */
  date: string;
  /** The account it pays from: with number and date, what tells 1C's documents apart. */
  payerIban?: string;
  amount: string;
  currency?: string;
  beneficiaryName?: string;
  state: ReportedState;
  /** Why it was refused (bank's reason, or the field errors of an invalid order), in Russian. */
  reason?: string;
  /** The bank's reason code, when refused by the bank. */
  reasonCode?: string;
  /** When the state was reached. */
  at: Date;
  /** `failed` while being sent or tracked (`failed_from` submitting or submitted): the bank may hold it. */
  failedAfterSending?: boolean;
  bankReference?: string;
  erpDocumentId?: string;
  /**
   * R-27: what a 1C user must read beside the status when the statement shows the bank executed the
   * document otherwise than signed (the state stays as it was: reconciliation moves nothing on a
   * mismatch, so the status alone may read "executed" or "deemed executed").
   */
  executionMismatch?: string;
}

/** A booked debit naming the order with other requisites than signed (reconciliation's `mismatch`). */
export interface MismatchedLine {
  bookingDate: string;
  /** Integer tiyn, as text. */
  amountTiyn: string;
  currency: string;
  counterpartyIban: string;
}

/** The warning added to the status text of an order the bank executed otherwise than signed. */
export function executionMismatchRu(lines: readonly MismatchedLine[]): string {
  const shown = lines.map((l) => `${l.bookingDate} списано ${formatAmount(Number(l.amountTiyn))} ${l.currency || 'KZT'}${l.counterpartyIban ? ` на счёт ${l.counterpartyIban}` : ''}`);
  return (
    `ВНИМАНИЕ: по выписке банк исполнил документ не так, как он подписан (${shown.join('; ')}). ` +
    'Не считайте платёж исполненным верно и не создавайте его повторно; обратитесь к администратору: банк уведомляется в течение 3 операционных дней (п. 6.1.16)'
  );
}

export interface StatusReportOptions {
  encoding: 'windows' | 'utf8';
  createdAt: Date;
  utcOffsetMinutes?: number;
}

function local(at: Date, offset: number): { date: string; time: string } {
  const iso = new Date(at.getTime() + offset * 60_000).toISOString();
  return { date: isoToOnecDate(iso.slice(0, 10)), time: iso.slice(11, 19) };
}


/** The header of a status report: everything that depends on when it was made, not on its documents. */
export function renderOnecStatusHeader(options: StatusReportOptions): string {
  const created = local(options.createdAt, options.utcOffsetMinutes ?? 300);
  return [
    '1CClientBankExchange',
    'ВерсияФормата=1.03',
    `Кодировка=${options.encoding === 'windows' ? 'Windows' : 'UTF8'}`,
    'Отправитель=Bank connector',
    'Получатель=1С:Предприятие',
    `ДатаСоздания=${created.date}`,
    `ВремяСоздания=${created.time}`,
    'Документ=Статус документа',
    '',
  ].join('\r\n');
}

/** The end of a status report, after the last document's section. */
export const ONEC_STATUS_END = 'КонецФайла\r\n';

/**
 * The documents' sections and the end of the file. Kept apart from the header so that a caller
 * that must know whether the report changed (the write-back job) renders the documents once.
 */
export function renderOnecStatusBody(entries: readonly StatusReportEntry[], utcOffsetMinutes = 300): string {
  return renderOnecStatusSections(entries, utcOffsetMinutes) + ONEC_STATUS_END;
}

/** The documents' sections alone: a report written a page at a time is header, sections..., `ONEC_STATUS_END`. */
export function renderOnecStatusSections(entries: readonly StatusReportEntry[], utcOffsetMinutes = 300): string {
  if (entries.length === 0) return '';
  const out: string[] = [];
  const kv = (k: string, v: string | undefined): void => {
    out.push(`${k}=${onecValue(v)}`);
  };
  for (const e of entries) {
    const at = local(e.at, utcOffsetMinutes);
    out.push('СекцияДокумент=Статус документа');
    kv('НомерДокумента', e.number);
    kv('ДатаДокумента', isoToOnecDate(e.date));
    if (e.payerIban !== undefined) kv('ПлательщикИИК', e.payerIban);
    kv('Сумма', e.amount);
    kv('Валюта', e.currency ?? 'KZT');
    if (e.beneficiaryName !== undefined) kv('ПолучательНаименование', e.beneficiaryName);
    const status = e.state === 'failed' && e.failedAfterSending ? FAILED_AFTER_SENDING_RU : STATE_RU[e.state];
    kv('Статус', e.executionMismatch ? `${status}. ${e.executionMismatch}` : status);
    kv('КодСтатуса', e.state);
    kv('ДатаСтатуса', at.date);
    kv('ВремяСтатуса', at.time);
    if (e.reason !== undefined) kv('ПричинаОтказа', e.reason);
    if (e.reasonCode !== undefined) kv('КодПричиныОтказа', e.reasonCode);
    if (e.bankReference !== undefined) kv('СсылкаБанка', e.bankReference);
    if (e.erpDocumentId !== undefined) kv('ИдентификаторДокумента', e.erpDocumentId);
    out.push('КонецДокумента');
  }
  return `${out.join('\r\n')}\r\n`;
}

/** What a status report entry is made of: a stored order's own fields (the entity, or a row read for the report). */
export type StatusFields = RefusalFields &
  Pick<PaymentOrder, 'number' | 'payerIban' | 'currency' | 'beneficiaryName' | 'stateChangedAt' | 'bankReference' | 'erpDocumentId' | 'failedFrom'> & {
    docDate: string | Date;
    amountTiyn: number | string;
    /** Sends begun (counted before each send): 0 means nothing of it left. */
    submitAttempts: number | string;
    /** Booked debits naming it with other requisites than signed (R-27); none when absent. */
    mismatchedLines?: readonly MismatchedLine[] | null;
  };

/** One order's entry in the report (the write-back job and `connector onec statuses` both make them here). */
export function toStatusReportEntry(o: StatusFields): StatusReportEntry {
  return {
    number: o.number,
    date: isoDateOf(o.docDate),
    payerIban: o.payerIban,
    amount: formatAmount(Number(o.amountTiyn)),
    currency: o.currency,
    beneficiaryName: o.beneficiaryName,
    state: o.state,
    at: new Date(o.stateChangedAt),
    ...(o.state === 'failed' && failedAfterSendBegan(o) ? { failedAfterSending: true } : {}),
    ...(o.bankReference ? { bankReference: o.bankReference } : {}),
    ...(o.erpDocumentId ? { erpDocumentId: o.erpDocumentId } : {}),
    ...(o.mismatchedLines?.length ? { executionMismatch: executionMismatchRu(o.mismatchedLines) } : {}),
    ...refusalReason(o),
  };
}
