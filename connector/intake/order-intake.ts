import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { formatAmount, parseAmount, MoneyError } from '../shared/money';
import { normaliseDocumentNumber, type FieldError, type NormalisedOrder } from '../orders/payment-order';
import { WITHDRAWABLE_STATES, type OrderState } from '../orders/order-state';
import { validateStoredOrder, type OrderValidator } from '../orders/order-validation';
import { orderSnapshotSql } from '../orders/order-event.snapshot';
import { isLockdownRecorded } from '../lockdown/lockdown.flag';
import { holdPendingOrders } from '../lockdown/lockdown.service';
import type { Logger } from '../logging/logger';

/** Where intake hands orders on; queue/ implements it (DESIGN.md dependency rules: a port). */
export interface IntakeQueuePort {
  enqueueValidate(orderIds: string[]): Promise<void>;
  /** Orders validated inline go on to the signing stage. */
  enqueueValidated?(orderIds: string[]): Promise<void>;
}

export interface IntakeItem {
  order: NormalisedOrder;
  /** The document as the ERP sent it (1C text, JSON), kept for the archive (R-26). */
  rawDocument?: string;
}

export interface IntakeResult {
  orderId: string;
  externalId: string;
  created: boolean;
  state: OrderState;
  /** An `invalid` order replaced by the same document sent again corrected; it is validated again. */
  corrected?: boolean;
  /**
   * The document's key (payer account, number, date) is taken by an order with other requisites:
   * nothing was stored or changed (LESSONS.md 2: a different body under the same key is a conflict,
   * not a silent success). The ERP must give a changed document a new number.
   */
  conflict?: IntakeConflict;
  /**
   * Stored, but whether a lockdown is in force could not be read after the commit (PostgreSQL
   * failed or timed out there): the order is left `received`, unjudged, for the validate job, which
   * holds it under a lockdown. Its caller must not be told "error" for an order that was taken in.
   */
  lockdownUnchecked?: true;
}

export interface IntakeConflict {
  /** The stored order's state. */
  state: OrderState;
  differences: IntakeDifference[];
  /**
   * Set when the conflict is the ERP's document id: an order of that id on that account lives
   * under another number or date (the differences name them). Not set: the same number and date
   * came with other requisites.
   */
  erpDocumentId?: string;
  /**
   * Set when a document without an ERP id (a 1C file) came again under another date of the same
   * year, with the same amount to the same account, while its first order lives: the same document
   * re-dated (the difference names the date), see `liveRedatedDocuments`.
   */
  redated?: true;
}

/**
 * What the ERP is told to do when it sent a changed document under a number already taken
 * (DOCUMENT_CONFLICT): the first order stands and would be paid, so a corrected copy under a new
 * number alone is a second payment. Not yet at the bank: withdrawn first. At the bank: recalled there.
 */
export function conflictAdvice(state: OrderState, orderId: string): { en: string; ru: string } {
  if (state === 'invalid') {
    return { en: 'the order taken is invalid and is not replaced by this one: send a changed document under a new number', ru: 'принятый документ недействителен и этим не заменяется: изменённый документ выгрузите под новым номером' };
  }
  if (WITHDRAWABLE_STATES.includes(state) && state !== 'failed') {
    return {
      en: `the order taken stands and will be paid: to change it, have an operator withdraw it first (connector orders withdraw ${orderId} --reason TEXT), then send the corrected document again`,
      ru: `принятый документ остаётся в силе и будет оплачен: чтобы изменить его, попросите администратора сначала отозвать его (connector orders withdraw ${orderId}), затем выгрузите исправленный документ снова`,
    };
  }
  return {
    en: `the order taken may be at the bank (${state}): ask the bank to recall it before sending a changed document under a new number`,
    ru: `принятый документ мог уже поступить в банк (${state}): прежде чем выгрузить изменённый документ под новым номером, отзовите его через банк`,
  };
}


export interface IntakeDifference {
  /** The field in the normalised order shape (INTERFACES.md), e.g. `amount`, `beneficiary.iban`. */
  field: string;
  stored: string | null;
  received: string | null;
}

/** The differences of a conflict in words, for the ERP's answer (`en`) and the 1C user's report (`ru`). */
export function describeDifferences(conflict: IntakeConflict, lang: 'ru' | 'en'): string {
  const [was, now, none] = lang === 'ru' ? ['было', 'стало', '—'] : ['stored', 'received', 'none'];
  return conflict.differences.map((d) => `${d.field}: ${was} ${d.stored ?? none}, ${now} ${d.received ?? none}`).join('; ');
}

/** Orders per insert statement at intake (a 1C file can hold thousands). */
const INTAKE_CHUNK = 1000;

const naturalKey = (o: { number: string; doc_date: string; payer_iban: string }) => `${o.number}\u0000${o.doc_date}\u0000${o.payer_iban}`;

type IntakeRow = Record<string, unknown> & { id: string; number: string; doc_date: string; payer_iban: string; external_id: string };

interface StoredTwin {
  id: string;
  external_id: string;
  state: OrderState;
  number: string;
  doc_date: string;
  payer_iban: string;
  erp_document_id: string | null;
  [column: string]: unknown;
}

/** The stored requisites a document sent again must match (column, field of the normalised shape). */
const COMPARED: ReadonlyArray<readonly [string, string]> = [
  ['amount_tiyn', 'amount'],
  ['currency', 'currency'],
  ['value_date', 'valueDate'],
  ['payer_name', 'payer.name'],
  ['payer_iin_bin', 'payer.iinBin'],
  ['payer_bic', 'payer.bic'],
  ['payer_kod', 'payer.kod'],
  ['beneficiary_name', 'beneficiary.name'],
  ['beneficiary_iin_bin', 'beneficiary.iinBin'],
  ['beneficiary_iban', 'beneficiary.iban'],
  ['beneficiary_bic', 'beneficiary.bic'],
  ['beneficiary_kbe', 'beneficiary.kbe'],
  ['knp', 'knp'],
  ['kbk', 'kbk'],
  ['purpose', 'purpose'],
];

function comparable(column: string, value: unknown): string | null {
  if (value === null || value === undefined) return null;
  return column === 'amount_tiyn' ? formatAmount(Number(value)) : String(value);
}

/** The stored orders holding these document keys (the first of any older twins, natural_key_seq 0). */
function readTwins(tx: EntityManager, keys: Array<{ number: string; doc_date: string; payer_iban: string }>): Promise<StoredTwin[]> {
  return tx.execute<StoredTwin[]>(
    `select o.id, o.external_id, o.state, o.number, to_char(o.doc_date, 'YYYY-MM-DD') as doc_date, o.payer_iban, o.errors, o.erp_document_id,
            ${COMPARED.map(([column]) => (column === 'value_date' ? "to_char(o.value_date, 'YYYY-MM-DD') as value_date" : column === 'amount_tiyn' ? 'o.amount_tiyn::text as amount_tiyn' : `o.${column}`)).join(', ')}
       from payment_order o join jsonb_to_recordset(?::jsonb) as k(number text, doc_date date, payer_iban text)
         on o.payer_iban = k.payer_iban and o.number = k.number and o.doc_date = k.doc_date and o.natural_key_seq = 0`,
    [JSON.stringify(keys)],
  );
}

/** States in which an order of an ERP document is not its last word: the ERP may send the document again, renumbered. */
const ERP_DOCUMENT_REPLACEABLE: readonly OrderState[] = ['invalid', 'rejected'];

interface ErpDocumentHolder {
  orderId: string;
  externalId: string;
  state: OrderState;
  number: string;
  doc_date: string;
}

const erpDocumentKey = (payerIban: string, erpDocumentId: string) => JSON.stringify([payerIban, erpDocumentId]);

/**
 * One ERP document, one live order. The natural key alone let a document the ERP renumbered or
 * re-dated (1C renumbers on a copy; an ERP may re-date a re-export) in as a second order beside the
 * first, and both were paid. So an order whose `erpDocumentId` is held, on that payer account, by
 * an order of another number or date that is not `invalid` or `rejected` is a DOCUMENT_CONFLICT,
 * and nothing is stored. Called under `lockAccounts`: two deliveries at once cannot both pass.
 * Returns the live holder of each key (the caller adds the rows it takes).
 */
async function liveErpDocuments(tx: EntityManager, rows: IntakeRow[]): Promise<Map<string, ErpDocumentHolder[]>> {
  const keys = [...new Set(rows.filter((r) => r.erp_document_id != null).map((r) => erpDocumentKey(r.payer_iban, r.erp_document_id as string)))].sort();
  const holders = new Map<string, ErpDocumentHolder[]>();
  if (keys.length === 0) return holders;
  const found = await tx.execute<Array<{ id: string; external_id: string; state: OrderState; number: string; doc_date: string; payer_iban: string; erp_document_id: string }>>(
    `select o.id, o.external_id, o.state, o.number, to_char(o.doc_date, 'YYYY-MM-DD') as doc_date, o.payer_iban, o.erp_document_id
       from payment_order o
      where o.erp_document_id in (select jsonb_array_elements_text(?::jsonb))
        and o.state not in (select jsonb_array_elements_text(?::jsonb))
      order by o.created_at, o.id`,
    [JSON.stringify([...new Set(rows.map((r) => r.erp_document_id).filter((v): v is string => v != null))]), JSON.stringify(ERP_DOCUMENT_REPLACEABLE)],
  );
  for (const o of found) {
    const key = erpDocumentKey(o.payer_iban, o.erp_document_id);
    // Oldest first. Two live orders of one id (taken before this rule) are each their own document's.
    if (keys.includes(key)) holders.set(key, [...(holders.get(key) ?? []), { orderId: o.id, externalId: o.external_id, state: o.state, number: o.number, doc_date: o.doc_date }]);
  }
  return holders;
}

/** The conflict of a row whose ERP document id a live order holds under another number or date; undefined when it is that order's document or no one's. */
function erpDocumentConflict(holders: Map<string, ErpDocumentHolder[]>, row: IntakeRow): IntakeResult | undefined {
  if (row.erp_document_id == null) return undefined;
  const live = holders.get(erpDocumentKey(row.payer_iban, row.erp_document_id as string)) ?? [];
  if (live.length === 0 || live.some((h) => h.number === row.number && h.doc_date === row.doc_date)) return undefined;
  const holder = live[0];
  const differences: IntakeDifference[] = [];
  if (holder.number !== row.number) differences.push({ field: 'number', stored: holder.number, received: row.number });
  if (holder.doc_date !== row.doc_date) differences.push({ field: 'date', stored: holder.doc_date, received: row.doc_date });
  return { orderId: holder.orderId, externalId: holder.externalId, created: false, state: holder.state, conflict: { state: holder.state, differences, erpDocumentId: row.erp_document_id as string } };
}

interface RedatedHolder {
  orderId: string;
  externalId: string;
  state: OrderState;
  doc_date: string;
  amount_tiyn: string;
  beneficiary_iban: string;
}

/** A document's number within its year on its payer account: the identity 1C keeps (see below). */
const documentYearKey = (row: { payer_iban: string; number: string; doc_date: string }) => JSON.stringify([row.payer_iban, row.number, row.doc_date.slice(0, 4)]);

/**
 * One 1C document, one live order, also when it comes back re-dated (for a source that numbers
 * within the year: the 1C outbox, `numberedWithinYear`). A 1C file carries no id of
 * the document, so the natural key (account, number, date) was its only identity: the same payment
 * order exported again after someone changed its date in 1C (a re-export the next morning, a date
 * corrected by hand) came in as a second order beside the first, and both were paid. 1C numbers a
 * payment order uniquely within its year per organisation; so a document without an ERP id whose
 * number a live order (not `invalid` or `rejected`, as for the ERP id) already holds on that account
 * in the same year, under another date, with the same amount to the same beneficiary account, is a
 * DOCUMENT_CONFLICT naming the date, and nothing is stored. A payment meant to be made again takes
 * a new number; one whose first order ended `invalid` (withdrawn, stale) or `rejected` comes in.
 * Called under `lockAccounts`, as the ERP id's rule. Rows that carry
 * an ERP id are judged by it alone; rows already in error (an unreadable amount or date) by nothing.
 */
async function liveRedatedDocuments(tx: EntityManager, rows: IntakeRow[], byYear: boolean): Promise<Map<string, RedatedHolder[]>> {
  const keys = [...new Set(rows.filter((r) => judgedByYear(r, byYear)).map(documentYearKey))].sort();
  const holders = new Map<string, RedatedHolder[]>();
  if (keys.length === 0) return holders;
  const found = await tx.execute<Array<RedatedHolder & { payer_iban: string; number: string }>>(
    `select o.id as "orderId", o.external_id as "externalId", o.state, o.payer_iban, o.number, to_char(o.doc_date, 'YYYY-MM-DD') as doc_date,
            o.amount_tiyn::text as amount_tiyn, o.beneficiary_iban
       from payment_order o
       join (select distinct k->>0 as payer_iban, k->>1 as number, (k->>2)::int as year from jsonb_array_elements(?::jsonb) as k) k
         on o.payer_iban = k.payer_iban and o.number = k.number and o.doc_date >= make_date(k.year, 1, 1) and o.doc_date < make_date(k.year + 1, 1, 1)
      where o.state not in (select jsonb_array_elements_text(?::jsonb))
      order by o.created_at, o.id`,
    [JSON.stringify(keys.map((k) => JSON.parse(k) as unknown)), JSON.stringify(ERP_DOCUMENT_REPLACEABLE)],
  );
  for (const { payer_iban, number, ...holder } of found) {
    const key = documentYearKey({ payer_iban, number, doc_date: holder.doc_date });
    holders.set(key, [...(holders.get(key) ?? []), holder]);
  }
  return holders;
}

/**
 * Serialises, per payer account, the intakes whose rules read the account's live orders before
 * storing (an ERP id, a number within its year): two deliveries at once cannot both pass them.
 * One transaction lock per account, not per document: a delivery of many thousand documents took
 * as many locks and failed with PostgreSQL's "out of shared memory" (its lock table holds about
 * max_locks_per_transaction x max_connections, 6,400 at the defaults, for every session at once).
 */
async function lockAccounts(tx: EntityManager, rows: IntakeRow[], byYear: boolean): Promise<void> {
  const accounts = [...new Set(rows.filter((r) => r.erp_document_id != null || judgedByYear(r, byYear)).map((r) => r.payer_iban))].sort();
  if (accounts.length === 0) return;
  await tx.execute(`select pg_advisory_xact_lock(hashtextextended('intake.account:' || k, 0)) from jsonb_array_elements_text(?::jsonb) as k order by k`, [JSON.stringify(accounts)]);
}

/** Whether a row is judged by its number within the year (a source that numbers so, no ERP id, nothing unreadable). */
function judgedByYear(row: IntakeRow, byYear: boolean): boolean {
  return byYear && row.erp_document_id == null && row.errors == null;
}

/** The conflict of a row that re-dates a live order's document; undefined when it is none's, or that order's own date. */
function redatedConflict(holders: Map<string, RedatedHolder[]>, row: IntakeRow, byYear: boolean): IntakeResult | undefined {
  if (!judgedByYear(row, byYear)) return undefined;
  const live = holders.get(documentYearKey(row)) ?? [];
  // The same date: the natural key's own twin (the same document again, or a conflict of requisites).
  if (live.some((h) => h.doc_date === row.doc_date)) return undefined;
  const holder = live.find((h) => h.amount_tiyn === String(row.amount_tiyn) && h.beneficiary_iban === row.beneficiary_iban);
  if (!holder) return undefined;
  return { orderId: holder.orderId, externalId: holder.externalId, created: false, state: holder.state, conflict: { state: holder.state, differences: [{ field: 'date', stored: holder.doc_date, received: row.doc_date }], redated: true } };
}

/** The field of a difference that no correction may carry: the ERP's id of the document. */
const ERP_DOCUMENT_ID = 'erpDocumentId';

function differencesOf(stored: StoredTwin, row: IntakeRow): IntakeDifference[] {
  const differences: IntakeDifference[] = [];
  // The same document under another ERP id: merged silently, the ERP was answered with the first
  // id (or none), found nothing under the second and never got a status for it. Two ids for one
  // document is a conflict; an id missing on either side says nothing (a 1C file carries none).
  const storedId = stored.erp_document_id ?? null;
  const receivedId = (row.erp_document_id as string | null) ?? null;
  if (storedId !== null && receivedId !== null && storedId !== receivedId) differences.push({ field: ERP_DOCUMENT_ID, stored: storedId, received: receivedId });
  for (const [column, field] of COMPARED) {
    const was = comparable(column, stored[column]);
    const now = comparable(column, row[column]);
    if (was !== now) differences.push({ field, stored: was, received: now });
  }
  // An amount or date that could not be read is stored as 0 / the document date with the reason
  // (which quotes the text as written): the same unreadable text is the same document.
  const storedErrors = (stored.errors as FieldError[] | null) ?? [];
  for (const error of (row.errors as FieldError[] | null) ?? []) {
    if (!storedErrors.some((e) => e.code === error.code && e.message === error.message)) differences.push({ field: error.field, stored: null, received: error.message });
  }
  return differences;
}

/**
 * `invalid -> received` with the corrected requisites, and its event naming what changed. Only an
 * order still `invalid` is replaced (a concurrent delivery may have done it first: then false),
 * and only one that was never signed: an order signed before a lockdown held it, and found
 * invalid after (e.g. its value date passed), keeps its frozen document and signatures, which a
 * correction must not be sent with (then false too: a conflict, a new number needed). A document
 * frozen for signatures that never came (the sign stage freezes it as the order starts to wait, so
 * every withdrawn order has one) goes with the old requisites: no one signed those bytes (R-18), and
 * the sign stage freezes the corrected ones; a signature still on its way over the old bytes is not
 * recorded (`recordSignatures` checks the frozen document's hash).
 * A correction without an ERP id (a 1C file) keeps the stored one: the ERP that sent it still
 * asks for the status under it.
 */
async function replaceInvalid(tx: EntityManager, stored: StoredTwin, row: IntakeRow, differences: IntakeDifference[], actor: string, now: Date): Promise<boolean> {
  const replaced = await tx.execute<Array<{ id: string }>>(
    `with upd as (
       update payment_order set source = ?, erp_document_id = coalesce(?, erp_document_id), ${COMPARED.map(([column]) => `${column} = ?`).join(', ')},
              raw_document = ?, errors = ?::jsonb, warnings = null, last_error = null, state = 'received', version = version + 1,
              updated_at = ?, state_changed_at = ?
        where id = ? and state = 'invalid'
          and not exists (select 1 from order_signature s where s.order_id = payment_order.id)
        returning id, ${orderSnapshotSql('payment_order')} as order_snapshot),
     unfrozen as (delete from order_document d where d.order_id in (select id from upd))
     insert into order_event (order_id, from_state, to_state, actor, reason, details, order_snapshot, at)
     select id, 'invalid', 'received', ?, 'corrected document sent again', ?::jsonb, order_snapshot, ? from upd
     returning order_id as id`,
    [
      row.source, row.erp_document_id, ...COMPARED.map(([column]) => row[column] ?? null),
      row.raw_document, row.errors === null ? null : JSON.stringify(row.errors), now, now, stored.id,
      actor, JSON.stringify({ changed: differences }), now,
    ],
  );
  return replaced.length > 0;
}

/**
 * The orders are committed: a queue that cannot take them (Redis down) must not turn into an
 * error for the ERP, which would send the payment again under a new number. The sweeper finds
 * them in `received`/`validated` and queues them once Redis answers.
 */
async function handOff(orderIds: string[], enqueue: (ids: string[]) => Promise<void>, logger?: Pick<Logger, 'warn'>): Promise<void> {
  try {
    await enqueue(orderIds);
  } catch (err) {
    logger?.warn({ event: 'intake.handoff_failed', orders: orderIds.length, error: err instanceof Error ? err.message : String(err) }, 'orders stored but not queued; the sweeper queues them once Redis answers');
  }
}

/** A calendar date PostgreSQL can store: JavaScript's year 0 (1 BC) is not one. */
function isRealDate(iso: string): boolean {
  const d = new Date(`${iso}T00:00:00Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().slice(0, 10) === iso && d.getUTCFullYear() >= 1;
}

/** Characters PostgreSQL's text and jsonb cannot hold: NUL, and UTF-16 surrogates without their pair. */
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
const UNSTORABLE_ONE = new RegExp(UNSTORABLE.source);

/**
 * The order with every unstorable character replaced by U+FFFD, and the fields that held one. One
 * such character used to fail the insert of the whole batch (every order of it refused with a 500,
 * again on every retry): now its order alone is stored, `invalid` with the field named.
 */
function storable<T>(value: T, path: string, found: string[]): T {
  if (typeof value === 'string') {
    if (!UNSTORABLE_ONE.test(value)) return value;
    found.push(path);
    return value.replace(UNSTORABLE, '\uFFFD') as T;
  }
  if (!value || typeof value !== 'object') return value;
  // Copied only where something was replaced: every order of every batch comes through here.
  const before = found.length;
  const entries = Object.entries(value).map(([k, v]) => [k, storable(v, Array.isArray(value) ? `${path}[${k}]` : path ? `${path}.${k}` : k, found)] as const);
  if (found.length === before) return value;
  return (Array.isArray(value) ? entries.map(([, v]) => v) : Object.fromEntries(entries)) as T;
}

/**
 * Persists orders idempotently on the natural key (payer account + number + date, whatever the
 * source: the key the bank tells documents apart by): the same document delivered twice, through
 * any channel or API key, is one order (the database decides, not a job id, LESSONS.md 11). New
 * orders start `received` and are handed to the validate stage. The same key with other
 * requisites is a conflict and changes nothing, except that an `invalid` order is replaced by its
 * corrected version and validated again.
 * An amount or date that cannot even be stored is recorded as a pre-validation error, so the
 * order is still visible and ends `invalid` with the reason, never silently dropped.
 */
export async function intakeOrders(
  em: EntityManager,
  source: string,
  items: IntakeItem[],
  queue: IntakeQueuePort,
  options: {
    actor: string;
    now?: Date;
    /** Judge requisites at once (the HTTP API answers with the verdict); the validate job then finds nothing to do. */
    validateInline?: OrderValidator;
    /**
     * The source numbers its payment orders uniquely within a year per organisation (1C does): a
     * document without an ERP id is then also known by its number within its year, and a copy under
     * another date is the same document (`liveRedatedDocuments`). Not assumed of other ERPs, whose
     * numbers may restart daily or monthly for recurring equal payments.
     */
    numberedWithinYear?: boolean;
    /** Where a failed hand-off to the queue is told (the orders are stored; the sweeper queues them). */
    logger?: Pick<Logger, 'warn'>;
  },
): Promise<IntakeResult[]> {
  const now = options.now ?? new Date();
  const results: IntakeResult[] = [];
  const toEnqueue: string[] = [];
  const rows: IntakeRow[] = items.map((item) => {
    const errors: FieldError[] = [];
    const unstorable: string[] = [];
    const order = storable(item.order, '', unstorable);
    const rawDocument = storable(item.rawDocument, 'rawDocument', unstorable);
    for (const field of new Set(unstorable)) {
      errors.push({
        field,
        code: 'TEXT_CONTROL_CHAR',
        message: `${field}: недопустимый символ (NUL или непарный суррогат UTF-16), заменён на U+FFFD; документ нельзя подписать, исправьте его в учётной системе`,
        messageEn: `${field} holds a character that cannot be stored or signed (NUL or a lone UTF-16 surrogate), replaced by U+FFFD; correct the document in the ERP`,
      });
    }
    let amountTiyn = 0;
    try {
      amountTiyn = parseAmount(order.amount);
    } catch (err) {
      if (!(err instanceof MoneyError)) throw err;
      errors.push({ field: 'amount', code: 'AMOUNT_FORMAT', message: err.messageRu, messageEn: err.message });
    }
    let docDate = order.date;
    if (!isRealDate(docDate)) {
      errors.push({ field: 'date', code: 'DATE_INVALID', message: `Дата документа "${order.date}" не существует`, messageEn: `document date ${order.date} does not exist` });
      docDate = '1970-01-01';
    }
    let valueDate = order.valueDate ?? docDate;
    if (!isRealDate(valueDate)) {
      errors.push({ field: 'valueDate', code: 'DATE_INVALID', message: `Дата валютирования "${valueDate}" не существует`, messageEn: `value date ${valueDate} does not exist` });
      valueDate = docDate;
    }
    const id = randomUUID();
    return {
      // Normalised before the key is looked up: whichever channel brought it, one document is one order.
      id, source, erp_document_id: order.erpDocumentId ?? null, number: normaliseDocumentNumber(order.number), doc_date: docDate, value_date: valueDate, amount_tiyn: amountTiyn,
      currency: order.currency, payer_name: order.payer.name, payer_iin_bin: order.payer.iinBin, payer_iban: order.payer.iban, payer_bic: order.payer.bic,
      payer_kod: order.payer.kod, beneficiary_name: order.beneficiary.name, beneficiary_iin_bin: order.beneficiary.iinBin, beneficiary_iban: order.beneficiary.iban,
      beneficiary_bic: order.beneficiary.bic, beneficiary_kbe: order.beneficiary.kbe, knp: order.knp, kbk: order.kbk ?? null, purpose: order.purpose,
      external_id: id.replace(/-/g, ''), errors: errors.length ? errors : null, raw_document: rawDocument ?? null,
    };
  });
  await em.transactional(async (tx) => {
    const byYear = options.numberedWithinYear === true;
    await lockAccounts(tx, rows, byYear);
    const holders = await liveErpDocuments(tx, rows);
    const yearHolders = await liveRedatedDocuments(tx, rows, byYear);
    // Each row gets exactly one answer, in order: results[i] is rows[i]'s.
    const rowIndex = new Map(rows.map((row, i) => [row.id, i]));
    // Rows held back for their ERP document id, or as a live document re-dated, each with its
    // answer; the first row of a delivery to carry an id no live order holds takes it (a later row
    // of it under another number conflicts), and so does a row's number within its year.
    const heldBack = new Map<string, IntakeResult>();
    for (const row of rows) {
      const conflict = erpDocumentConflict(holders, row) ?? redatedConflict(yearHolders, row, byYear);
      if (conflict) {
        heldBack.set(row.id, conflict);
        continue;
      }
      if (row.erp_document_id != null && !holders.has(erpDocumentKey(row.payer_iban, row.erp_document_id as string))) {
        holders.set(erpDocumentKey(row.payer_iban, row.erp_document_id as string), [{ orderId: row.id, externalId: row.external_id, state: 'received', number: row.number, doc_date: row.doc_date }]);
      }
      if (judgedByYear(row, byYear)) {
        const key = documentYearKey(row);
        yearHolders.set(key, [...(yearHolders.get(key) ?? []), { orderId: row.id, externalId: row.external_id, state: 'received', doc_date: row.doc_date, amount_tiyn: String(row.amount_tiyn), beneficiary_iban: row.beneficiary_iban as string }]);
      }
    }
    for (let start = 0; start < rows.length; start += INTAKE_CHUNK) {
      const chunk = rows.slice(start, start + INTAKE_CHUNK).filter((row) => !heldBack.has(row.id));
      const answers = rows.slice(start, start + INTAKE_CHUNK);
      // One statement per chunk, rows taken in the order given: of two with the same natural key
      // in one delivery the first is kept, as with one insert per order.
      const inserted = chunk.length === 0 ? [] : await tx.execute<Array<{ id: string }>>(
        `insert into payment_order (id, source, erp_document_id, number, doc_date, value_date, amount_tiyn, currency,
           payer_name, payer_iin_bin, payer_iban, payer_bic, payer_kod,
           beneficiary_name, beneficiary_iin_bin, beneficiary_iban, beneficiary_bic, beneficiary_kbe,
           knp, kbk, purpose, state, version, external_id, errors, submit_attempts, raw_document,
           created_at, updated_at, state_changed_at)
         select x.id, x.source, x.erp_document_id, x.number, x.doc_date, x.value_date, x.amount_tiyn, x.currency,
           x.payer_name, x.payer_iin_bin, x.payer_iban, x.payer_bic, x.payer_kod,
           x.beneficiary_name, x.beneficiary_iin_bin, x.beneficiary_iban, x.beneficiary_bic, x.beneficiary_kbe,
           x.knp, x.kbk, x.purpose, 'received', 1, x.external_id, x.errors, 0, x.raw_document, ?, ?, ?
         from rows from (jsonb_to_recordset(?::jsonb) as (id uuid, source text, erp_document_id text, number text, doc_date date, value_date date,
           amount_tiyn bigint, currency text, payer_name text, payer_iin_bin text, payer_iban text, payer_bic text, payer_kod text,
           beneficiary_name text, beneficiary_iin_bin text, beneficiary_iban text, beneficiary_bic text, beneficiary_kbe text,
           knp text, kbk text, purpose text, external_id text, errors jsonb, raw_document text)) with ordinality as x(id, source, erp_document_id, number,
           doc_date, value_date, amount_tiyn, currency, payer_name, payer_iin_bin, payer_iban, payer_bic, payer_kod, beneficiary_name, beneficiary_iin_bin,
           beneficiary_iban, beneficiary_bic, beneficiary_kbe, knp, kbk, purpose, external_id, errors, raw_document, ord)
         order by x.ord
         on conflict on constraint payment_order_natural_key do nothing
         returning id`,
        [now, now, now, JSON.stringify(chunk)],
      );
      const created = new Set(inserted.map((r) => r.id));
      if (created.size > 0) {
        // In the order given (event ids follow it), each with the order as just stored.
        await tx.execute(
          `insert into order_event (order_id, from_state, to_state, actor, reason, order_snapshot, at)
           select o.id, null, 'received', ?, ?, ${orderSnapshotSql('o')}, ?
             from jsonb_array_elements_text(?::jsonb) with ordinality as x(id, ord) join payment_order o on o.id = x.id::uuid
            order by x.ord`,
          [options.actor, `intake from ${source}`, now, JSON.stringify([...created])],
        );
      }
      const repeated = chunk.filter((row) => !created.has(row.id));
      const existing = new Map<string, StoredTwin>();
      if (repeated.length > 0) {
        const found = await readTwins(tx, repeated.map((r) => ({ number: r.number, doc_date: r.doc_date, payer_iban: r.payer_iban })));
        for (const row of found) existing.set(naturalKey(row), row);
      }
      for (const row of answers) {
        const held = heldBack.get(row.id);
        if (held) {
          // Held back against an earlier row of this delivery: answered with the order that row became.
          const earlier = rowIndex.get(held.orderId);
          const holder = earlier === undefined ? held : results[earlier];
          results.push({ ...held, orderId: holder.orderId, externalId: holder.externalId, state: holder.state, conflict: { ...held.conflict!, state: holder.state } });
          continue;
        }
        if (created.has(row.id)) {
          results.push({ orderId: row.id, externalId: row.external_id, created: true, state: 'received' });
          toEnqueue.push(row.id);
          continue;
        }
        let known = existing.get(naturalKey(row));
        if (!known) throw new Error(`intake: order ${row.number} of ${row.doc_date} (${row.payer_iban}) was neither inserted nor found`);
        let differences = differencesOf(known, row);
        // Another ERP id is another document of the ERP's, never a correction of this one.
        if (differences.length > 0 && known.state === 'invalid' && !differences.some((d) => d.field === ERP_DOCUMENT_ID)) {
          if (await replaceInvalid(tx, known, row, differences, options.actor, now)) {
            // Corrected and sent again, as the error report asked: validated again under the same id.
            // What is stored now, for a later row of this delivery with the same key.
            known = { ...known, ...Object.fromEntries(COMPARED.map(([column]) => [column, row[column] ?? null])), erp_document_id: (row.erp_document_id as string | null) ?? known.erp_document_id, errors: row.errors, state: 'received' };
            existing.set(naturalKey(row), known);
            results.push({ orderId: known.id, externalId: known.external_id, created: false, corrected: true, state: 'received' });
            toEnqueue.push(known.id);
            continue;
          }
          // Not replaced: another delivery corrected it first (its UPDATE waited for that one to
          // commit), or it was signed once. Judged against what is stored now, not the stale read.
          known = (await readTwins(tx, [{ number: row.number, doc_date: row.doc_date, payer_iban: row.payer_iban }]))[0] ?? known;
          existing.set(naturalKey(row), known);
          differences = differencesOf(known, row);
        }
        if (differences.length === 0) {
          results.push({ orderId: known.id, externalId: known.external_id, created: false, state: known.state });
        } else {
          results.push({ orderId: known.id, externalId: known.external_id, created: false, state: known.state, conflict: { state: known.state, differences } });
        }
      }
    }
  });
  // Issue 16: under lockdown intake stays open (nothing an ERP sends is lost) but new orders wait
  // as `held`; they are validated when an admin resolves the lockdown.
  // The orders are committed from here on: a failure of this check must not become an error for
  // orders that were taken in (the ERP would be told "not accepted" and might send them again
  // under a new number). Fail closed instead: no inline verdict, the orders stay `received` and go
  // to the validate job, which looks at the lockdown itself and holds them while it is in force.
  let lockdownUnchecked = false;
  try {
    if (toEnqueue.length && (await isLockdownRecorded(em))) {
      const held = await holdPendingOrders(em, options.actor, 'lockdown in force: held on arrival', now, toEnqueue);
      // null: resolved while this waited for the resolve; they are queued as usual.
      if (held) {
        for (const result of results) if (held.includes(result.orderId)) result.state = 'held';
        return results;
      }
    }
  } catch (err) {
    lockdownUnchecked = true;
    options.logger?.warn(
      { event: 'intake.lockdown_check_failed', orders: toEnqueue.length, error: err instanceof Error ? err.message : String(err) },
      'orders stored, but the lockdown flag could not be read after the commit: left received for the validate job, which holds them under a lockdown',
    );
    const pending = new Set(toEnqueue);
    for (const result of results) if (pending.has(result.orderId)) result.lockdownUnchecked = true;
  }
  // After commit: a job must never point at a row that a rolled-back transaction never wrote.
  // If this enqueue is lost (crash, Redis down), the sweeper finds the order in `received`.
  if (options.validateInline && !lockdownUnchecked) {
    const pending: string[] = [];
    const validated: string[] = [];
    for (const result of results) {
      if (!result.created && !result.corrected) continue;
      try {
        const verdict = await validateStoredOrder(em, result.orderId, options.validateInline, { actor: options.actor, now });
        result.state = verdict.state as OrderState;
        if (verdict.state === 'received') pending.push(result.orderId);
        if (verdict.state === 'validated') validated.push(result.orderId);
      } catch {
        // Still `received`: the validate job takes it (and the sweeper, should that enqueue be lost).
        pending.push(result.orderId);
      }
    }
    toEnqueue.splice(0, toEnqueue.length, ...pending);
    if (validated.length && queue.enqueueValidated) await handOff(validated, queue.enqueueValidated.bind(queue), options.logger);
  }
  if (toEnqueue.length) await handOff(toEnqueue, queue.enqueueValidate.bind(queue), options.logger);
  return results;
}
