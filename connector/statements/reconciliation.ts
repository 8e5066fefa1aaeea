import type { EntityManager } from '@mikro-orm/postgresql';
import type { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { epochDayOfIso } from '../calendar/kz-calendar-data';
import { kzInstantOfLocalMs } from '../calendar/kz-time';
import { openIncident, type OpenIncidentInput } from '../incidents/incident.service';
import { IllegalTransitionError, transitionOrder } from '../orders/order-state.machine';
import { failedAfterSendBegan, type OrderState } from '../orders/order-state';
import { formatAmount } from '../shared/money';
import { isoDateOf } from './statement.store';
import type { LineDirection, LineKind, LineStatus } from './statement.model';

/**
 * Reconciliation (issue 15 stage 6): statement lines against our orders.
 *
 * Matching order, each a pass over all lines of the run before the next: the bank's reference of
 * our document or our external id echoed on the line first; otherwise document number + date +
 * amount + counterparty account (the requisites 1C's own statement import matches by); otherwise
 * number + date alone when they name one order only (executed with another amount or
 * beneficiary). Then:
 * - a debit that is one of our orders confirms it: `submitted`/`deemed_executed` -> `executed`
 *   (LESSONS.md 4: confirmed by a line naming our document, amount included), and so does one of an
 *   order that failed after it was sent (`failed` from `submitted`, or from `submitting` after a
 *   counted send attempt): the money left, and an order the ERP shows as failed invites paying it
 *   again;
 * - a failed order that never reached the bank explains no debit, as a `signed` one does not: a
 *   debit under its reference or its requisites is unexplained (R-29: paid by hand, or sent by
 *   someone else with our credentials), linked to the order so that `orders retry` refuses to pay it
 *   a second time;
 * - a line naming our document with another amount or beneficiary (account, IIN/BIN) or KNP is an
 *   erroneous execution (R-27): incident with a draft notice and the 3-operational-day deadline;
 *   the order is not marked executed;
 * - fee lines are expected (R-25): linked to their payment when the bank names it, else matched
 *   as fees; tax lines are expected too; credits are incoming money, never an alarm, but a credit
 *   naming one of our orders that reached the bank (its reference or external id) is that payment
 *   coming back (the beneficiary's bank returned it): an incident says so, since the ERP shows the
 *   order paid; the order keeps its state and the line is not linked to it (1C would take the
 *   return for its own payment order, found by the order's number and date);
 * - any other debit is unexplained: a possible unauthorised payment (R-29), critical incident,
 *   the bank to be told within 1 business day; one naming an order another line already paid is
 *   said to be that order executed twice, its draft notice asking for the second debit back.
 * The decision is a pure function (decideLines); applying it is idempotent: each line records
 * what it was matched as, a transition that already happened changes nothing, and an incident is
 * raised once per line (an erroneous execution and an unexplained debit) or per order (one missing
 * from a closed statement), by its dedupe key, open or resolved.
 */

export interface LineForMatch {
  id: string;
  bankLineId: string;
  direction: LineDirection;
  amount: number;
  /** Of the amount; compared with the order's when both are known. */
  currency?: string;
  status: LineStatus;
  kind: LineKind;
  bookingDate: string;
  counterpartyName: string;
  counterpartyIban: string;
  /** The beneficiary's IIN/BIN as the bank executed it; empty or absent when the bank omits it. */
  counterpartyIinBin?: string | null;
  purpose: string;
  /** The purpose-of-payment code as executed; absent when the bank omits it. */
  knp?: string | null;
  documentNumber?: string | null;
  documentDate?: string | null;
  bankReference?: string | null;
  externalId?: string | null;
}

export interface OrderForMatch {
  id: string;
  state: OrderState;
  number: string;
  docDate: string;
  amountTiyn: number;
  currency?: string;
  beneficiaryIban: string;
  beneficiaryName: string;
  beneficiaryIinBin: string;
  knp: string;
  externalId: string;
  bankReference?: string | null;
  /** `failed`: the state it failed in. */
  failedFrom?: OrderState | null;
  /** Sends to the bank begun (counted before each send, submit-order.job.ts): 0 means none ever left. */
  submitAttempts: number;
}

export interface Difference {
  field: 'amount' | 'currency' | 'beneficiaryIban' | 'beneficiaryIinBin' | 'knp' | 'state';
  signed: string;
  executed: string;
}

export type LineDecision =
  | { kind: 'order'; lineId: string; orderId: string; how: 'reference' | 'requisites'; execute: boolean }
  | { kind: 'mismatch'; lineId: string; orderId: string; differences: Difference[] }
  | { kind: 'fee'; lineId: string; orderId: string | null }
  | { kind: 'tax'; lineId: string }
  /** `returnedOrderId`: the order of ours the credit names (its reference or external id): the payment came back. */
  | { kind: 'credit'; lineId: string; returnedOrderId?: string }
  /**
   * `unsentOrderId`: the failed order, never sent, whose reference or requisites the debit carries.
   * `repeatsOrderId`: the order of ours the debit names (its reference, or all its requisites) that
   * another line already paid: the bank executed it a second time, or someone paid it again.
   */
  | { kind: 'unexplained'; lineId: string; unsentOrderId?: string; repeatsOrderId?: string };

/** Orders the bank may have executed: everything from the first send on. */
export const MATCHABLE_STATES: readonly OrderState[] = ['submitting', 'submitted', 'deemed_executed', 'executed', 'rejected', 'failed'];
/** A statement line confirms execution of orders in these states (order-state.ts)... */
const CONFIRMABLE: readonly OrderState[] = ['submitted', 'deemed_executed', 'failed'];

/** ...a failed one only when it may have reached the bank (order-state.ts, failedAfterSendBegan). */
function mayHaveReachedBank(order: OrderForMatch): boolean {
  return order.state !== 'failed' || failedAfterSendBegan(order);
}

function confirmable(order: OrderForMatch): boolean {
  return CONFIRMABLE.includes(order.state) && mayHaveReachedBank(order);
}

function byReference(line: LineForMatch, orders: readonly OrderForMatch[]): OrderForMatch | undefined {
  return orders.find(
    (o) => (line.externalId && line.externalId === o.externalId) || (line.bankReference && o.bankReference && line.bankReference === o.bankReference),
  );
}

function byRequisites(line: LineForMatch, orders: readonly OrderForMatch[], taken: ReadonlySet<string>): OrderForMatch | undefined {
  if (!line.documentNumber || !line.documentDate) return undefined;
  return orders.find(
    (o) =>
      !taken.has(o.id) &&
      o.number === line.documentNumber &&
      o.docDate === line.documentDate &&
      o.amountTiyn === line.amount &&
      o.beneficiaryIban === line.counterpartyIban,
  );
}

/**
 * The one order a line names by number and date when amount or beneficiary differ: the bank
 * executed our document otherwise than it was signed (R-27). Twins of one number and date that
 * the line cannot tell apart are not guessed between.
 */
function byDocument(line: LineForMatch, orders: readonly OrderForMatch[], taken: ReadonlySet<string>): OrderForMatch | undefined {
  if (!line.documentNumber || !line.documentDate) return undefined;
  const named = orders.filter((o) => o.number === line.documentNumber && o.docDate === line.documentDate);
  return named.length === 1 && !taken.has(named[0].id) ? named[0] : undefined;
}

const IIN_BIN = /^\d{12}$/;

/** A KNP as its 3-digit code ("10" and "010" are one code); other text as it is, trimmed. */
function knpCode(knp: string | null | undefined): string {
  const text = knp?.trim() ?? '';
  return /^\d{1,3}$/.test(text) ? text.padStart(3, '0') : text;
}

function differencesOf(line: LineForMatch, order: OrderForMatch): Difference[] {
  const out: Difference[] = [];
  if (line.amount !== order.amountTiyn) out.push({ field: 'amount', signed: formatAmount(order.amountTiyn), executed: formatAmount(line.amount) });
  // The same figure in another currency is another amount.
  if (line.currency && order.currency && line.currency !== order.currency) out.push({ field: 'currency', signed: order.currency, executed: line.currency });
  if (line.counterpartyIban && line.counterpartyIban !== order.beneficiaryIban) {
    out.push({ field: 'beneficiaryIban', signed: order.beneficiaryIban, executed: line.counterpartyIban });
  }
  // Every budget payment goes to the one Treasury account (KZ24070105KSN0000000): the beneficiary's
  // BIN (which tax office) and the KNP (which tax) say where the money went, so the account agreeing
  // proves nothing. Compared only when the line carries them: banks omit them, and an omission is
  // no evidence of a wrong payment. Text, never numbers: an IIN may start with 0. Only 12-digit
  // IIN/BINs are compared (a camt.053 `Othr/Id` may carry a customer number instead), and a KNP
  // written without its leading zeros ("10" for "010") is the same code.
  const executedIinBin = line.counterpartyIinBin?.trim();
  const signedIinBin = order.beneficiaryIinBin.trim();
  if (executedIinBin && IIN_BIN.test(executedIinBin) && IIN_BIN.test(signedIinBin) && executedIinBin !== signedIinBin) {
    out.push({ field: 'beneficiaryIinBin', signed: signedIinBin, executed: executedIinBin });
  }
  const executedKnp = knpCode(line.knp);
  if (executedKnp && executedKnp !== knpCode(order.knp)) out.push({ field: 'knp', signed: order.knp.trim(), executed: line.knp?.trim() ?? '' });
  // The bank refused it, yet the money left: as erroneous as a wrong amount.
  if (order.state === 'rejected') out.push({ field: 'state', signed: 'rejected by the bank', executed: 'debited' });
  return out;
}

/** A line matched to an order: confirmed when it is what was signed, a mismatch otherwise (R-27). */
function matchDecision(line: LineForMatch, order: OrderForMatch, how: 'reference' | 'requisites'): LineDecision {
  const differences = differencesOf(line, order);
  return differences.length
    ? { kind: 'mismatch', lineId: line.id, orderId: order.id, differences }
    : { kind: 'order', lineId: line.id, orderId: order.id, how, execute: confirmable(order) };
}

/**
 * Decides what each booked line is. Pending lines are not decided (they have not moved money).
 * `paidElsewhere`: orders a line outside `lines` (an earlier day's statement) was already matched
 * to; a second debit naming one of them is not that payment again.
 */
export function decideLines(lines: readonly LineForMatch[], allOrders: readonly OrderForMatch[], paidElsewhere: ReadonlySet<string> = new Set()): LineDecision[] {
  const taken = new Set<string>(paidElsewhere);
  // A failed order that never reached the bank is no candidate, as a `signed` one is none: a debit
  // of it did not come from us. Linked, though, when the line carries its reference or all its
  // requisites (what `orders retry` reads as "already paid": someone paid it by hand).
  const orders = allOrders.filter(mayHaveReachedBank);
  const unsent = allOrders.filter((o) => !mayHaveReachedBank(o));
  const booked = lines.filter((l) => l.status === 'booked');
  const paymentLines = booked.filter((l) => l.direction === 'debit' && l.kind !== 'fee');
  // Three passes over all lines of the run, strongest evidence first, so a weaker match on an
  // earlier line never takes the order a later line names more exactly: a stranger's debit that
  // only shares our number and date would otherwise become "our order executed otherwise" and
  // leave our own exact payment unexplained, the order never confirmed.
  // 1. The bank's reference of our document or our external id echoed on the line.
  // 2. Number + date + amount + counterparty account (what 1C's own statement import matches by).
  // 3. Number + date alone, for what is left: our document executed otherwise (R-27).
  const matched = new Map<string, { order: OrderForMatch; how: 'reference' | 'requisites' }>();
  const passes: Array<[(line: LineForMatch) => OrderForMatch | undefined, 'reference' | 'requisites']> = [
    [(line) => byReference(line, orders), 'reference'],
    [(line) => byRequisites(line, orders, taken), 'requisites'],
    [(line) => byDocument(line, orders, taken), 'requisites'],
  ];
  for (const [find, how] of passes) {
    for (const line of paymentLines) {
      if (matched.has(line.id)) continue;
      const order = find(line);
      if (order && !taken.has(order.id)) {
        matched.set(line.id, { order, how });
        taken.add(order.id);
      }
    }
  }
  return booked.map((line): LineDecision => {
    // R-25: expected. Linked to the payment it was charged for when the bank names it.
    if (line.kind === 'fee') return { kind: 'fee', lineId: line.id, orderId: byReference(line, allOrders)?.id ?? null };
    if (line.direction === 'credit') {
      const returned = byReference(line, orders);
      return returned ? { kind: 'credit', lineId: line.id, returnedOrderId: returned.id } : { kind: 'credit', lineId: line.id };
    }
    const match = matched.get(line.id);
    if (match) return matchDecision(line, match.order, match.how);
    const named = line.kind === 'tax' ? undefined : (byReference(line, unsent) ?? byRequisites(line, unsent, new Set()));
    if (named) return { kind: 'unexplained', lineId: line.id, unsentOrderId: named.id };
    // Our order, signed once, already paid by another line: a second debit of it is no "debit nobody
    // ordered" (the notice must not tell the bank we never signed it), but the same money gone twice.
    // A tax line too: our budget payment debited again under its reference or all its requisites is
    // no withholding of the bank's.
    const repeated = byReference(line, orders) ?? byRequisites(line, orders, new Set());
    if (repeated && taken.has(repeated.id)) return { kind: 'unexplained', lineId: line.id, repeatsOrderId: repeated.id };
    // Tax lines the bank books itself (withholdings, budget debits by collection order) are expected.
    if (line.kind === 'tax') return { kind: 'tax', lineId: line.id };
    return { kind: 'unexplained', lineId: line.id };
  });
}

// ---- R-27's deadline ---------------------------------------------------------------------------

/** When the client must tell the bank of an erroneous or unauthorised payment (terms 6.1.16). */
export interface PaymentNoticeTerm {
  /** The sooner of the notice duty's own deadline and `limit`. */
  deadline: Date;
  /** End of the last day of the 3 years from the day the payment was executed (Kazakhstan time). */
  limit: Date;
  /** `limit` has passed: a notice now is late under 6.1.16, and 8.2.2 repays the loss only on one in time. */
  lapsed: boolean;
}

/**
 * R-27 (terms 6.1.16): an erroneous execution, or an unauthorised payment, is notified within 3
 * operational days of its discovery, "but no later than 3 years from the day" it was executed. A
 * deadline counted from discovery alone ran past that limit for a payment found late (a first fetch
 * of months of history, a period the bank restated): the incident then promised days the terms do
 * not give. A period in years ends on the same date of its last year (the Civil Code of Kazakhstan,
 * art. 178); 29 February, absent in that year, on the 28th (the earlier day: fail closed).
 * `dueDays`: the duty's own term from `now` (3 operational days for R-27, 1 business day for R-29).
 */
export function paymentNoticeTerm(calendar: KzBusinessCalendar, now: Date, executedOn: string, dueDays: number): PaymentNoticeTerm {
  const [y, m, d] = executedOn.split('-');
  const anniversary = m === '02' && d === '29' ? `${Number(y) + 3}-02-28` : `${Number(y) + 3}-${m}-${d}`;
  const limit = new Date(kzInstantOfLocalMs(epochDayOfIso(anniversary) + 1, 0));
  const due = calendar.noticeDeadlineOrSooner(now, dueDays);
  return { deadline: due < limit ? due : limit, limit, lapsed: now >= limit };
}

/** The notice's sentence on the 3-year limit of 6.1.16 (and that it passed, when it did). */
function limitSentence(executedOn: string, term: PaymentNoticeTerm): string {
  return term.lapsed
    ? `Срок 3 года с даты исполнения (${executedOn}), установленный п. 6.1.16, истёк ${term.limit.toISOString()}: уведомление направляется по истечении срока.`
    : `Не позднее 3 лет с даты исполнения (${executedOn}): до ${term.limit.toISOString()} (п. 6.1.16).`;
}

// ---- drafts of notices to the bank (the operator sends them; we never send on our own) --------

const BANK_PHONES = '+7 7172 770 622, +7 800 080 0711, 7711';

/**
 * An amount with its currency, as every notice and incident names it: a figure alone leaves the bank
 * (and the operator) to guess tenge, dollars or euros on a multi-currency account. Every stored line
 * and order has a currency; tenge only for a caller that gives none, as the bank checklist does.
 */
export function amountWithCurrency(tiyn: number, currency: string | null | undefined): string {
  return `${formatAmount(tiyn)} ${currency || 'KZT'}`;
}

export function draftUnauthorisedDebitNotice(input: { account: string; line: LineForMatch; deadline: Date; term?: PaymentNoticeTerm }): string {
  const l = input.line;
  return [
    'В АО «Alatau City Bank»',
    `Уведомление о несанкционированном списании по счёту ${input.account}`,
    `${l.bookingDate} со счёта списано ${amountWithCurrency(l.amount, l.currency)} (операция банка ${l.bankLineId}) в пользу «${l.counterpartyName || 'не указан'}»` +
      `${l.counterpartyIban ? `, счёт ${l.counterpartyIban}` : ''}, назначение: «${l.purpose}».`,
    'Платёжный документ на эту сумму нами не формировался и не подписывался.',
    'Просим приостановить доступ к системе «Business API» по нашим учётным данным, провести проверку и вернуть средства.',
    `Срок уведомления (п. 4.3, 6.1.12): незамедлительно, не позднее ${input.deadline.toISOString()}. Телефоны банка: ${BANK_PHONES}.`,
    ...(input.term?.lapsed ? [limitSentence(l.bookingDate, input.term)] : []),
  ].join('\n');
}

/** R-27 (6.1.16, 8.2): our order executed a second time; `first` is the debit that paid it, when known. */
export function draftRepeatedExecutionNotice(input: {
  account: string;
  order: OrderForMatch;
  line: LineForMatch;
  first: { bankLineId: string; bookingDate: string } | null;
  deadline: Date;
  term?: PaymentNoticeTerm;
}): string {
  const { order: o, line: l } = input;
  return [
    'В АО «Alatau City Bank»',
    `Уведомление о повторном исполнении платёжного поручения № ${o.number} от ${o.docDate} по счёту ${input.account} (п. 6.1.16)`,
    `Платёжное поручение на сумму ${amountWithCurrency(o.amountTiyn, o.currency)} в пользу «${o.beneficiaryName}», счёт ${o.beneficiaryIban}, подписано и направлено нами один раз` +
      (input.first ? ` и исполнено ${input.first.bookingDate} (операция банка ${input.first.bankLineId}).` : ' и уже исполнено.'),
    `${l.bookingDate} со счёта повторно списано ${amountWithCurrency(l.amount, l.currency)} (операция банка ${l.bankLineId})` +
      `${l.counterpartyIban ? ` на счёт ${l.counterpartyIban}` : ''}, назначение: «${l.purpose}».`,
    'Просим проверить операцию и вернуть ошибочно списанные средства (п. 8.2).',
    `Срок уведомления: незамедлительно, не позднее ${input.deadline.toISOString()}. Телефоны банка: ${BANK_PHONES}.`,
    ...(input.term?.lapsed ? [limitSentence(l.bookingDate, input.term)] : []),
  ].join('\n');
}

export function draftErroneousExecutionNotice(input: { order: OrderForMatch; line: LineForMatch; differences: Difference[]; deadline: Date; term?: PaymentNoticeTerm }): string {
  const o = input.order;
  // An amount difference is two figures (differencesOf): each in its currency, the executed one in the line's.
  const shown = (d: Difference) =>
    d.field === 'amount' ? `подписано ${d.signed} ${o.currency || 'KZT'}, исполнено ${d.executed} ${input.line.currency || o.currency || 'KZT'}` : `подписано ${d.signed}, исполнено ${d.executed}`;
  return [
    'В АО «Alatau City Bank»',
    `Уведомление об ошибочном исполнении платёжного поручения № ${o.number} от ${o.docDate} (п. 6.1.16)`,
    `Подписанные реквизиты: сумма ${amountWithCurrency(o.amountTiyn, o.currency)}, получатель «${o.beneficiaryName}», ИИН/БИН ${o.beneficiaryIinBin}, счёт ${o.beneficiaryIban}, КНП ${o.knp}.`,
    `Исполнено (операция банка ${input.line.bankLineId}, ${input.line.bookingDate}): ` +
      input.differences.map((d) => `${d.field}: ${shown(d)}`).join('; ') +
      '.',
    'Просим исправить ошибку и запросить возврат средств у банка получателя (п. 8.2).',
    `Срок уведомления: в течение 3 операционных дней с момента обнаружения, не позднее ${input.deadline.toISOString()}.`,
    ...(input.term ? [limitSentence(input.line.bookingDate, input.term)] : []),
  ].join('\n');
}

// ---- applying decisions -------------------------------------------------------------------

export interface ReconcileOptions {
  calendar: KzBusinessCalendar;
  now: Date;
  actor?: string;
}

export interface ReconcileResult {
  /** Lines whose match changed in this run (order, fee, tax, credit). */
  matched: number;
  /** Orders moved to `executed` in this run. */
  executed: number;
  fees: number;
  /** Incidents opened in this run (ids). */
  incidents: string[];
}

/**
 * Opens an incident once per dedupe key, whatever its status: a resolved "unexplained debit" must
 * not come back with every later fetch of the same statement.
 */
export async function raiseOnce(em: EntityManager, input: OpenIncidentInput & { dedupeKey: string }): Promise<{ id: string; created: boolean }> {
  const existing = await em.fork().execute<Array<{ id: string }>>('select id from incident where dedupe_key = ? order by opened_at limit 1', [input.dedupeKey]);
  if (existing[0]) return { id: existing[0].id, created: false };
  try {
    const { incident, created } = await openIncident(em.fork(), input);
    return { id: incident.id, created };
  } catch (err) {
    // A concurrent run inserted it first (unique index on open dedupe keys).
    const again = await em.fork().execute<Array<{ id: string }>>('select id from incident where dedupe_key = ? limit 1', [input.dedupeKey]);
    if (again[0]) return { id: again[0].id, created: false };
    throw err;
  }
}

interface LineRow {
  id: string;
  bank_line_id: string;
  direction: LineDirection;
  amount_tiyn: string | number;
  currency: string;
  status: LineStatus;
  kind: LineKind;
  booking_date: string | Date;
  counterparty_name: string;
  counterparty_iban: string;
  counterparty_iin_bin: string;
  purpose: string;
  knp: string | null;
  document_number: string | null;
  document_date: string | Date | null;
  bank_reference: string | null;
  external_id: string | null;
  order_id: string | null;
  match_kind: string | null;
}

interface OrderRow {
  id: string;
  state: OrderState;
  number: string;
  doc_date: string | Date;
  amount_tiyn: string | number;
  currency: string;
  beneficiary_iban: string;
  beneficiary_name: string;
  beneficiary_iin_bin: string;
  knp: string;
  external_id: string;
  bank_reference: string | null;
  failed_from: OrderState | null;
  submit_attempts: number;
}

function orderOf(r: OrderRow): OrderForMatch {
  return {
    id: r.id,
    state: r.state,
    number: r.number,
    docDate: isoDateOf(r.doc_date),
    amountTiyn: Number(r.amount_tiyn),
    currency: r.currency,
    beneficiaryIban: r.beneficiary_iban,
    beneficiaryName: r.beneficiary_name,
    beneficiaryIinBin: r.beneficiary_iin_bin,
    knp: r.knp,
    externalId: r.external_id,
    bankReference: r.bank_reference,
    failedFrom: r.failed_from,
    submitAttempts: Number(r.submit_attempts ?? 0),
  };
}

function lineOf(r: LineRow): LineForMatch {
  return {
    id: r.id,
    bankLineId: r.bank_line_id,
    direction: r.direction,
    amount: Number(r.amount_tiyn),
    currency: r.currency,
    status: r.status,
    kind: r.kind,
    bookingDate: isoDateOf(r.booking_date),
    counterpartyName: r.counterparty_name,
    counterpartyIban: r.counterparty_iban,
    counterpartyIinBin: r.counterparty_iin_bin,
    purpose: r.purpose,
    knp: r.knp,
    documentNumber: r.document_number,
    documentDate: r.document_date === null ? null : isoDateOf(r.document_date),
    bankReference: r.bank_reference,
    externalId: r.external_id,
  };
}

/** What an incident about one of our orders and one statement line says of both. */
function orderLineEvidence(account: string, order: OrderForMatch, line: LineForMatch) {
  return { account, orderId: order.id, number: order.number, date: order.docDate, bankLineId: line.bankLineId, bookingDate: line.bookingDate };
}

/** The booked line, other than `exceptLineId`, that paid the order (matched as it, or as it executed otherwise); the earliest. */
async function firstPaymentOf(em: EntityManager, account: string, orderId: string, exceptLineId: string): Promise<{ bankLineId: string; bookingDate: string } | null> {
  const rows = await em.execute<Array<{ bank_line_id: string; booking_date: string | Date }>>(
    `select bank_line_id, booking_date from statement_line
      where account = ? and order_id = ? and id <> ? and status = 'booked' and match_kind in ('order', 'mismatch')
      order by booking_date, bank_line_id limit 1`,
    [account, orderId, exceptLineId],
  );
  return rows[0] ? { bankLineId: rows[0].bank_line_id, bookingDate: isoDateOf(rows[0].booking_date) } : null;
}

/** Reconciles the booked lines of `account` booked in [from, to] against its orders. */
export async function reconcileAccount(em: EntityManager, account: string, from: string, to: string, options: ReconcileOptions): Promise<ReconcileResult> {
  const actor = options.actor ?? 'reconciliation';
  const lineRows = await em.execute<LineRow[]>(
    `select * from statement_line where account = ? and status = 'booked' and booking_date between ? and ? order by booking_date, created_at, bank_line_id`,
    [account, from, to],
  );
  const lines = lineRows.map(lineOf);
  const refs = [...new Set(lines.flatMap((l) => [l.externalId, l.bankReference]).filter((v): v is string => Boolean(v)))];
  // A line names its order by requisites with its document's number and date together (byRequisites):
  // only those pairs are looked up, not every order of any year that shares a number.
  const pairs = [...new Map(lines.filter((l) => l.documentNumber && l.documentDate).map((l) => [`${l.documentNumber}\n${l.documentDate}`, [l.documentNumber, l.documentDate]])).values()];
  let orders: OrderForMatch[] = [];
  if (refs.length || pairs.length) {
    const clauses: string[] = [];
    const params: unknown[] = [account, ...MATCHABLE_STATES];
    if (refs.length) {
      clauses.push(`external_id in (${refs.map(() => '?').join(', ')})`, `bank_reference in (${refs.map(() => '?').join(', ')})`);
      params.push(...refs, ...refs);
    }
    if (pairs.length) {
      clauses.push(`(number, doc_date) in (${pairs.map(() => '(?, ?::date)').join(', ')})`);
      params.push(...pairs.flat());
    }
    const rows = await em.execute<OrderRow[]>(
      `select id, state, number, doc_date, amount_tiyn, currency, beneficiary_iban, beneficiary_name, beneficiary_iin_bin, knp, external_id, bank_reference, failed_from, submit_attempts
         from payment_order where payer_iban = ? and state in (${MATCHABLE_STATES.map(() => '?').join(', ')}) and (${clauses.join(' or ')})
        order by created_at`,
      params,
    );
    orders = rows.map(orderOf);
  }
  // One payment is one debit: orders a booked line of another period already paid stay taken. Only
  // a line matched as the order itself: a mismatch (another amount or beneficiary under our number
  // and date) may be someone else's debit, and our own payment booked later is then still ours,
  // not an unexplained debit (the mismatch has its incident already).
  const paidElsewhere = new Set<string>();
  if (orders.length) {
    const taken = await em.execute<Array<{ order_id: string }>>(
      `select distinct order_id from statement_line
        where account = ? and order_id in (${orders.map(() => '?').join(', ')}) and status = 'booked' and match_kind = 'order'
          and not (booking_date between ? and ?)`,
      [account, ...orders.map((o) => o.id), from, to],
    );
    for (const r of taken) paidElsewhere.add(r.order_id);
  }
  const ordersById = new Map(orders.map((o) => [o.id, o]));
  const linesById = new Map(lines.map((l) => [l.id, l]));
  const rowsById = new Map(lineRows.map((r) => [r.id, r]));
  const result: ReconcileResult = { matched: 0, executed: 0, fees: 0, incidents: [] };

  for (const decision of decideLines(lines, orders, paidElsewhere)) {
    const line = linesById.get(decision.lineId)!;
    const row = rowsById.get(decision.lineId)!;
    const orderId = 'orderId' in decision ? decision.orderId : decision.kind === 'unexplained' ? (decision.unsentOrderId ?? null) : null;
    const matchKind = decision.kind;
    if (row.match_kind !== matchKind || row.order_id !== orderId) {
      await em.execute('update statement_line set match_kind = ?, order_id = ?, reconciled_at = ? where id = ?', [matchKind, orderId, options.now, line.id]);
      if (matchKind !== 'unexplained' && matchKind !== 'mismatch') result.matched += 1;
      if (matchKind === 'fee') result.fees += 1;
    }
    if (decision.kind === 'order' && decision.execute) {
      try {
        const t = await transitionOrder(em, decision.orderId, 'executed', {
          actor,
          from: CONFIRMABLE,
          reason: `statement line ${line.bankLineId} of ${line.bookingDate} confirms the debit`,
          details: { bankLineId: line.bankLineId, bookingDate: line.bookingDate, amount: formatAmount(line.amount), how: decision.how },
          patch: {
            ...(line.bankReference && !ordersById.get(decision.orderId)?.bankReference ? { bankReference: line.bankReference } : {}),
            ...(ordersById.get(decision.orderId)?.state === 'failed' ? { failedFrom: null } : {}),
          },
          now: options.now,
        });
        if (t.changed) result.executed += 1;
      } catch (err) {
        // Moved on meanwhile (e.g. a late refusal): the next run judges it again.
        if (!(err instanceof IllegalTransitionError)) throw err;
      }
    } else if (decision.kind === 'mismatch') {
      const order = ordersById.get(decision.orderId)!;
      // R-27: 3 operational days from discovery, within 3 years of the execution.
      const term = paymentNoticeTerm(options.calendar, options.now, line.bookingDate, 3);
      const deadline = term.deadline;
      const raised = await raiseOnce(em, {
        kind: 'execution_mismatch',
        severity: 'high',
        title:
          `Order ${order.number} of ${order.docDate} was executed differently from what was signed (${decision.differences.map((d) => d.field).join(', ')})` +
          (term.lapsed ? `; the 3 years to notify the bank (terms 6.1.16) ended ${term.limit.toISOString()}` : ''),
        // Per line, not per order: a second wrong debit under the same number and date (days later,
        // to another account) is money gone again and must be raised, even after the first one's
        // incident was dealt with. The same line judged again by a re-fetch still finds its own.
        dedupeKey: `execution_mismatch:${order.id}:${line.bankLineId}`,
        deadlineAt: deadline,
        actor,
        now: options.now,
        evidence: {
          ...orderLineEvidence(account, order, line),
          differences: decision.differences,
          noticeLimit: term.limit.toISOString(),
          // R-27: notify the bank within 3 operational days of discovery, and within 3 years of the execution.
          draftNotice: draftErroneousExecutionNotice({ order, line, differences: decision.differences, deadline, term }),
        },
      });
      if (raised.created) result.incidents.push(raised.id);
      // The order keeps its state (it may read "deemed executed"): an ERP reading it over the API
      // learns of the mismatch from its last error (the 1C status report says it from the lines).
      // Added once per line, after what was there (a failure's own error stays).
      const said =
        `execution_mismatch: statement line ${line.bankLineId} of ${line.bookingDate} executed it otherwise than signed (` +
        decision.differences.map((d) => `${d.field} ${d.signed} -> ${d.executed}`).join('; ') +
        `); incident ${raised.id}`;
      await em.execute(
        `update payment_order set last_error = left(case when last_error is null or last_error = '' then ? else last_error || E'\n' || ? end, 2000)
          where id = ? and position(? in coalesce(last_error, '')) = 0`,
        [said, said, order.id, `statement line ${line.bankLineId} of`],
      );
    } else if (decision.kind === 'credit' && decision.returnedOrderId) {
      const order = ordersById.get(decision.returnedOrderId)!;
      const raised = await raiseOnce(em, {
        kind: 'payment_returned',
        severity: 'high',
        title: `Credit of ${amountWithCurrency(line.amount, line.currency)} to ${account} on ${line.bookingDate} names order ${order.number} of ${order.docDate}: the payment came back; the ERP shows the order ${order.state === 'executed' ? 'executed' : `as ${order.state}`}`,
        dedupeKey: `payment_returned:${account}:${line.bankLineId}`,
        actor,
        now: options.now,
        evidence: {
          ...orderLineEvidence(account, order, line),
          orderAmount: formatAmount(order.amountTiyn),
          orderCurrency: order.currency ?? null,
          amount: formatAmount(line.amount),
          currency: line.currency ?? null,
          counterparty: { name: line.counterpartyName, iban: line.counterpartyIban },
          purpose: line.purpose,
          hint: "the beneficiary was not paid: check the beneficiary's requisites with the bank's reason in the line's purpose, and tell the ERP's user; a new payment is a new order",
        },
      });
      if (raised.created) result.incidents.push(raised.id);
    } else if (decision.kind === 'unexplained') {
      // R-29: a debit nobody ordered is a possible unauthorised payment; the bank must be told at once, within
      // 1 business day, and (6.1.16, an unauthorised payment) within 3 years of the debit.
      const term = paymentNoticeTerm(options.calendar, options.now, line.bookingDate, 1);
      const deadline = term.deadline;
      const unsent = decision.unsentOrderId ? ordersById.get(decision.unsentOrderId) : undefined;
      const repeats = decision.repeatsOrderId ? ordersById.get(decision.repeatsOrderId) : undefined;
      // The debit that paid it first: of this run, else of an earlier one (paidElsewhere).
      const firstLine = repeats ? await firstPaymentOf(em, account, repeats.id, line.id) : null;
      const raised = await raiseOnce(em, {
        kind: 'unexplained_debit',
        severity: 'critical',
        title: unsent
          ? `Debit of ${amountWithCurrency(line.amount, line.currency)} from ${account} on ${line.bookingDate} names order ${unsent.number} of ${unsent.docDate}, which failed before it was ever sent: paid by hand, or a possible unauthorised payment`
          : repeats
            ? `Debit of ${amountWithCurrency(line.amount, line.currency)} from ${account} on ${line.bookingDate} names order ${repeats.number} of ${repeats.docDate}, already debited${firstLine ? ` by line ${firstLine.bankLineId} of ${firstLine.bookingDate}` : ''}: executed twice, or a possible unauthorised payment`
            : `Debit of ${amountWithCurrency(line.amount, line.currency)} from ${account} on ${line.bookingDate} matches no order: possible unauthorised payment`,
        dedupeKey: `unexplained_debit:${account}:${line.bankLineId}`,
        deadlineAt: deadline,
        actor,
        now: options.now,
        evidence: {
          account,
          bankLineId: line.bankLineId,
          amount: formatAmount(line.amount),
          currency: line.currency ?? null,
          bookingDate: line.bookingDate,
          counterparty: { name: line.counterpartyName, iban: line.counterpartyIban },
          purpose: line.purpose,
          ...(unsent
            ? {
                unsentOrder: { orderId: unsent.id, number: unsent.number, date: unsent.docDate, failedFrom: unsent.failedFrom ?? null, submitAttempts: unsent.submitAttempts },
                hint: `we never sent this order; if a person paid it by hand, record that with connector orders settle ${unsent.id} --as executed --reason TEXT (orders retry refuses it: it is paid)`,
              }
            : {}),
          ...(repeats
            ? {
                repeatedOrder: { orderId: repeats.id, number: repeats.number, date: repeats.docDate, firstLine },
                hint: 'our order was signed once and is paid already: ask the bank to return the second debit (terms 8.2); do not pay the order again',
              }
            : {}),
          noticeLimit: term.limit.toISOString(),
          draftNotice: repeats
            ? draftRepeatedExecutionNotice({ account, order: repeats, line, first: firstLine, deadline, term })
            : draftUnauthorisedDebitNotice({ account, line, deadline, term }),
        },
      });
      if (raised.created) result.incidents.push(raised.id);
    }
  }
  return result;
}

/**
 * After a closed day: every order the bank reported executed during [from, to], or that was
 * deemed executed then (R-22: no notice of non-execution), must have its debit line in the
 * statement (R-27: check every executed document). One incident per order.
 */
export async function checkExecutedInStatement(em: EntityManager, account: string, from: string, to: string, options: ReconcileOptions): Promise<string[]> {
  const actor = options.actor ?? 'reconciliation';
  // Kazakhstan is UTC+5 since 2024-03-01 (connector/calendar/kz-time.ts).
  const start = new Date(`${from}T00:00:00+05:00`);
  const end = new Date(Date.parse(`${to}T00:00:00+05:00`) + 86_400_000);
  const missing = await em.execute<OrderRow[]>(
    `select o.id, o.state, o.number, o.doc_date, o.amount_tiyn, o.currency, o.beneficiary_iban, o.beneficiary_name, o.beneficiary_iin_bin, o.knp, o.external_id, o.bank_reference
       from payment_order o
      where o.payer_iban = ? and o.state in ('executed', 'deemed_executed') and o.state_changed_at >= ? and o.state_changed_at < ?
        and not exists (select 1 from statement_line l where l.order_id = o.id and l.status = 'booked' and l.match_kind in ('order', 'mismatch'))
      order by o.state_changed_at`,
    [account, start, end],
  );
  const opened: string[] = [];
  for (const row of missing) {
    const order = orderOf(row);
    const raised = await raiseOnce(em, {
      kind: 'executed_missing_from_statement',
      severity: 'high',
      title: `Order ${order.number} of ${order.docDate} is ${row.state === 'deemed_executed' ? 'deemed executed (no notice of non-execution, R-22)' : "executed per the bank's status"} but missing from the closed statement of ${account} for ${from}..${to}`,
      dedupeKey: `executed_missing_from_statement:${order.id}`,
      deadlineAt: options.calendar.noticeDeadlineOrSooner(options.now, 3),
      actor,
      now: options.now,
      evidence: {
        account,
        orderId: order.id,
        number: order.number,
        date: order.docDate,
        amount: formatAmount(order.amountTiyn),
        currency: order.currency ?? null,
        externalId: order.externalId,
        bankReference: order.bankReference ?? null,
        statement: { from, to },
      },
    });
    if (raised.created) opened.push(raised.id);
  }
  return opened;
}
