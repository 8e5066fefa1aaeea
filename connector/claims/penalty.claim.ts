import type { EntityManager } from '@mikro-orm/postgresql';
import type { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { epochDayOfIso } from '../calendar/kz-calendar-data';
import { executionDayOf } from '../orders/execution-day';
import { ConnectorError } from '../shared/errors';
import { formatAmount } from '../shared/money';
import { isoDateOf } from '../statements/statement.store';
import { kzToday } from '../statements/statement.schedule';
import { isUuid } from '../shared/uuid';

/**
 * R-28 (terms 7.4): for an instruction the bank did not execute in time while the funds were
 * sufficient, the bank owes 0.01 % of the amount per day of delay, on the client's written claim.
 * This works out the claim for one order from what the connector recorded, and drafts it; a
 * person checks and sends it. Days of delay: calendar days from the operational day the order was
 * due to be executed to the day the debit was booked (or today, while it is still not executed).
 * Due: the operational day the bank received it (R-20: it executes within that day), or its value
 * date when later (execution-day.ts): days the bank held an order dated ahead were no delay, and
 * no penalty is owed for them. Funds: the opening balance of the due day's booked statement, when
 * one is stored (the day the funds had to be there). Money is integer tiyn throughout; the penalty
 * rounds half up.
 */
export const PENALTY_PER_DAY_BASIS_POINTS = 1n; // 0.01 % = 1 / 10,000

export interface PenaltyClaim {
  orderId: string;
  number: string;
  docDate: string;
  account: string;
  amount: string;
  /** Of the amount, the penalty and the balance (the account's currency: a payment in dollars is owed its penalty in dollars). */
  currency: string;
  bankReference: string | null;
  state: string;
  /** The operational day the bank received it. */
  receivedDay: string;
  /** The operational day it was due to be executed: receivedDay, or its value date when later; the delay counts from it. */
  dueDay: string;
  /** The booking date of its debit, or null while not executed. */
  executedDay: string | null;
  delayDays: number;
  penalty: string;
  penaltyTiyn: number;
  /** Opening balance of the due day (booked statement), or null when none is stored. Named for the usual case, the due day being the receipt day. */
  fundsAtReceipt: { openingBalance: string; sufficient: boolean } | null;
  claimable: boolean;
  /** Why it is not (yet) claimable, or what a person must still check. */
  notes: string[];
  draft: string;
}

/** amount x days x 0.01 %, in tiyn, rounded half up (BigInt: amount x days can pass 2^53). */
export function penaltyTiyn(amountTiyn: number, delayDays: number): number {
  if (delayDays <= 0) return 0;
  const raw = BigInt(amountTiyn) * BigInt(delayDays) * PENALTY_PER_DAY_BASIS_POINTS;
  return Number((raw + 5_000n) / 10_000n);
}

export async function penaltyClaim(em: EntityManager, orderId: string, calendar: KzBusinessCalendar, now: Date): Promise<PenaltyClaim> {
  if (!isUuid(orderId)) throw new ConnectorError('NOT_FOUND', `no order ${orderId}`);
  const [order] = await em.execute<
    Array<{ id: string; number: string; doc_date: string | Date; value_date: string | Date; payer_iban: string; amount_tiyn: string; currency: string; bank_reference: string | null; state: string; beneficiary_name: string }>
  >(
    'select id, number, doc_date, value_date, payer_iban, amount_tiyn, currency, bank_reference, state, beneficiary_name from payment_order where id = ?',
    [orderId],
  );
  if (!order) throw new ConnectorError('NOT_FOUND', `no order ${orderId}`);
  const [received] = await em.execute<Array<{ at: Date | null }>>("select min(at) as at from order_event where order_id = ? and to_state = 'submitted'", [orderId]);
  if (!received?.at || !['submitted', 'executed', 'deemed_executed'].includes(order.state)) {
    throw new ConnectorError('NOT_CLAIMABLE', `order ${order.number} is ${order.state}: a penalty is owed only for an order the bank received and did not execute in time`);
  }
  // The bank's own time of receipt, kept at submission: an order whose send timed out is recorded
  // `submitted` only when a later lookup finds it, maybe after the cut-off or days on, while the bank
  // had it before. Taken when it lies between our claim for submission and our record (a bank clock
  // off by hours would move the day either way); else the record's own time.
  const [bank] = await em.execute<Array<{ at: Date | null; claimed: Date | null }>>(
    `select (select min((details->>'receivedAt')::timestamptz) from audit_event where action = 'order.submitted' and subject = ? and details->>'receivedAt' is not null) as at,
            (select min(at) from order_event where order_id = ? and to_state = 'submitting') as claimed`,
    [orderId, orderId],
  );
  const recordedAt = new Date(received.at);
  const bankAt = bank?.at ? new Date(bank.at) : null;
  const receivedAt = bankAt && bank.claimed && bankAt.getTime() >= new Date(bank.claimed).getTime() && bankAt.getTime() <= recordedAt.getTime() ? bankAt : recordedAt;
  const receivedDay = calendar.operationalDayOf(receivedAt);
  const valueDate = isoDateOf(order.value_date);
  const dueDay = executionDayOf(calendar, receivedDay, valueDate);
  const heldToValueDate = dueDay !== receivedDay;
  // The order's booked debits, read once: its own (whatever kind the bank gave it: a budget payment
  // may come as `tax`, a conversion as `other`; reconciliation matches those to the order too) says
  // when it was executed; its fee, which reconciliation links to the order as well and may be booked
  // on another day, says what the funds had to cover besides the amount (R-23).
  const [debits] = await em.execute<Array<{ booking_date: string | Date | null; fee_tiyn: string | null }>>(
    `select min(booking_date) filter (where kind <> 'fee') as booking_date, sum(amount_tiyn) filter (where kind = 'fee') as fee_tiyn
       from statement_line where order_id = ? and direction = 'debit' and status = 'booked'`,
    [orderId],
  );
  const executedDay = debits?.booking_date ? isoDateOf(debits.booking_date) : null;
  const notes: string[] = [];
  if (!executedDay && order.state !== 'submitted') notes.push(`the order is ${order.state} but no booked debit of it is in a stored statement: the delay is counted to today; fetch the statements first`);
  const until = executedDay ?? kzToday(now);
  const delayDays = Math.max(0, epochDayOfIso(until) - epochDayOfIso(dueDay));
  const amountTiyn = Number(order.amount_tiyn);
  const [statement] = await em.execute<Array<{ opening_balance: string }>>(
    "select opening_balance from statement where account = ? and kind = 'booked' and period_from = ? order by fetched_at desc limit 1",
    [order.payer_iban, dueDay],
  );
  // R-23: the funds must cover the payment and the bank's fee for it; the fee is known once the
  // bank has booked it, else the amount alone.
  const feeTiyn = Number(debits?.fee_tiyn ?? 0);
  const fundsAtReceipt = statement ? { openingBalance: formatAmount(Number(statement.opening_balance)), sufficient: Number(statement.opening_balance) >= amountTiyn + feeTiyn } : null;
  if (delayDays === 0) {
    // Until today counts as no delay too: still on the day it was received, or executed by then.
    const day = heldToValueDate ? `the operational day of its value date ${valueDate} (${dueDay})` : `the day the bank received it (${receivedDay})`;
    notes.push(
      executedDay || order.state !== 'submitted'
        ? `executed ${heldToValueDate ? 'by' : 'on'} ${day}: no delay, nothing to claim`
        : `not executed yet, but ${heldToValueDate ? `not due before ${day}` : `still within the operational day the bank received it (${receivedDay})`}: no delay so far`,
    );
  }
  if (fundsAtReceipt && !fundsAtReceipt.sufficient) {
    notes.push(`the opening balance of ${dueDay} (${fundsAtReceipt.openingBalance} ${order.currency}) did not cover the amount (${formatAmount(amountTiyn)} ${order.currency})${feeTiyn > 0 ? ` and the bank's fee (${formatAmount(feeTiyn)} ${order.currency})` : ''}: terms 7.4 owe a penalty only while the funds were sufficient`);
  }
  if (!fundsAtReceipt) notes.push(`no booked statement of ${order.payer_iban} for ${dueDay} is stored: check that the funds were sufficient before sending the claim`);
  const penalty = penaltyTiyn(amountTiyn, delayDays);
  const claimable = delayDays > 0 && fundsAtReceipt?.sufficient !== false;
  const docDate = isoDateOf(order.doc_date);
  const currency = order.currency;
  const draft = [
    'В АО «Alatau City Bank»',
    `Претензия о взыскании неустойки за неисполнение платёжного поручения в срок (п. 7.4)`,
    `Платёжное поручение № ${order.number} от ${docDate} на сумму ${formatAmount(amountTiyn)} ${currency} со счёта ${order.payer_iban}` +
      `${order.bank_reference ? ` (референс банка ${order.bank_reference})` : ''} в пользу «${order.beneficiary_name}» получено банком в операционный день ${receivedDay}` +
      `${heldToValueDate ? ` с датой валютирования ${valueDate} (подлежало исполнению ${dueDay})` : ''}` +
      `${executedDay ? ` и исполнено ${executedDay}` : ' и на дату претензии не исполнено'}; просрочка ${delayDays} дн.`,
    fundsAtReceipt ? `Остаток на счёте на начало ${dueDay}: ${fundsAtReceipt.openingBalance} ${currency}.` : `Остаток на счёте на начало ${dueDay}: (указать по выписке).`,
    `Просим уплатить неустойку 0,01 % от суммы за каждый день просрочки: ${formatAmount(amountTiyn)} × 0,01 % × ${delayDays} = ${formatAmount(penalty)} ${currency}.`,
  ].join('\n');
  return {
    orderId,
    number: order.number,
    docDate,
    account: order.payer_iban,
    amount: formatAmount(amountTiyn),
    currency,
    bankReference: order.bank_reference,
    state: order.state,
    receivedDay,
    dueDay,
    executedDay,
    delayDays,
    penalty: formatAmount(penalty),
    penaltyTiyn: penalty,
    fundsAtReceipt,
    claimable,
    notes,
    draft,
  };
}
