import { parseStringPromise, processors } from 'xml2js';
import { isoOfEpochDay } from '../../../connector/calendar/kz-calendar-data';
import { kzLocalDayOf } from '../../../connector/calendar/kz-time';
import { parseAmount } from '../../../connector/shared/money';
import type { LineDirection, LineKind, LineStatus, StatementData, StatementLineData } from '../../../connector/statements/statement.model';

/**
 * ISO 20022 camt.053 (BankToCustomerStatement) -> the domain's statement model. Banks and files
 * use it beside the contract's JSON (DESIGN.md "The signed document"). Reads versions .001.02
 * to .001.08 (Sts as text or <Cd>, BIC or BICFI), namespace prefixes ignored.
 *
 * Mapping: Ntry/AcctSvcrRef -> bankLineId (else NtryRef); CdtDbtInd -> direction; Sts BOOK/PDNG ->
 * booked/pending; BkTxCd sub-family CHRG/COMM/FEES -> fee line, TAXE -> tax; the
 * counterparty is the creditor of a debit and the debtor of a credit; TxDtls/Refs/EndToEndId ->
 * externalId, InstrId -> documentNumber, TxDtls/Refs/AcctSvcrRef -> bankReference;
 * Purp/Prtry (or Cd) of three digits -> KNP; RmtInf/Ustrd -> purpose. Balances OPBD, else PRCD,
 * else OPAV -> opening, CLBD -> closing (DBIT means negative). An entry with several TxDtls (a
 * batch) is one line per transaction (batchLines).
 */
export class Camt053Error extends Error {
  readonly code = 'CAMT053_INVALID';
}

type Node = Record<string, unknown>;

function kids(node: unknown, name: string): Node[] {
  if (!node || typeof node !== 'object') return [];
  const v = (node as Node)[name];
  return Array.isArray(v) ? (v as Node[]) : [];
}

function at(node: unknown, ...path: string[]): Node | undefined {
  let cur: unknown = node;
  for (const p of path) {
    cur = kids(cur, p)[0];
    if (cur === undefined) return undefined;
  }
  return cur as Node;
}

function text(node: unknown, ...path: string[]): string | undefined {
  const n = path.length ? at(node, ...path) : node;
  if (n === undefined || n === null) return undefined;
  if (typeof n === 'string') return n.trim();
  const t = (n as Node)._;
  return typeof t === 'string' ? t.trim() : undefined;
}

function attr(node: unknown, name: string): string | undefined {
  const a = (node as Node | undefined)?.$ as Record<string, string> | undefined;
  return a?.[name];
}

function amountOf(node: Node | undefined, where: string): number {
  const raw = text(node);
  if (!raw) throw new Camt053Error(`${where}: missing amount`);
  try {
    return parseAmount(raw);
  } catch {
    throw new Camt053Error(`${where}: "${raw}" is not an amount with at most two decimals`);
  }
}

/**
 * The Kazakhstan date of an ISODate or ISODateTime: statement days are the bank's (Almaty) days, so
 * an instant with a zone (`Z`, `+06:00`) is read on Kazakhstan time; a wall-clock time without one
 * is the bank's own.
 */
function kzDate(value: string): string {
  if (!/(?:Z|[+-]\d{2}:?\d{2})$/i.test(value) || value.length <= 10) return value.slice(0, 10);
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value.slice(0, 10) : isoOfEpochDay(kzLocalDayOf(ms).epochDay);
}

function dateOf(node: unknown, ...path: string[]): string | undefined {
  const base = at(node, ...path);
  const d = text(base, 'Dt') ?? text(base, 'DtTm');
  return d ? kzDate(d) : undefined;
}

function party(tx: Node | undefined, role: 'Dbtr' | 'Cdtr'): { name: string; iinBin: string; iban: string; bic: string } {
  const p = at(tx, 'RltdPties', role);
  // camt.053.001.08 wraps the party in <Pty>.
  const who = at(p, 'Pty') ?? p;
  const idNode = at(who, 'Id', 'OrgId', 'Othr') ?? at(who, 'Id', 'PrvtId', 'Othr');
  const agent = at(tx, 'RltdAgts', `${role}Agt`, 'FinInstnId');
  return {
    name: text(who, 'Nm') ?? '',
    iinBin: text(idNode, 'Id') ?? '',
    iban: text(tx, 'RltdPties', `${role}Acct`, 'Id', 'IBAN') ?? text(tx, 'RltdPties', `${role}Acct`, 'Id', 'Othr', 'Id') ?? '',
    bic: text(agent, 'BICFI') ?? text(agent, 'BIC') ?? '',
  };
}

function kindOf(entry: Node): LineKind {
  const fmly = at(entry, 'BkTxCd', 'Domn', 'Fmly');
  const sub = text(fmly, 'SubFmlyCd') ?? '';
  if (['CHRG', 'COMM', 'FEES', 'COME'].includes(sub)) return 'fee';
  if (sub === 'TAXE') return 'tax';
  const prtry = (text(entry, 'BkTxCd', 'Prtry', 'Cd') ?? '').toUpperCase();
  if (/FEE|CHRG|COMM/.test(prtry)) return 'fee';
  return 'payment';
}

/** The first of `codes` (in that order of preference, not the file's) that the statement has. */
function balance(stmt: Node, codes: string[]): { amount: number; date?: string } | undefined {
  for (const wanted of codes) {
    const bal = kids(stmt, 'Bal').find((b) => text(b, 'Tp', 'CdOrPrtry', 'Cd') === wanted);
    if (bal) {
      const amount = amountOf(at(bal, 'Amt'), `balance ${wanted}`);
      return { amount: text(bal, 'CdtDbtInd') === 'DBIT' ? -amount : amount, date: dateOf(bal, 'Dt') };
    }
  }
  return undefined;
}

interface EntryLine {
  bankLineId: string;
  bookingDate: string;
  valueDate: string;
  amount: number;
  currency: string;
  status: LineStatus;
  direction: LineDirection;
  kind: LineKind;
}

/** One statement line: the entry's (or the batch transaction's) facts, the party, purpose and references of `tx`. */
function lineOf(entry: Node, tx: Node | undefined, e: EntryLine): StatementLineData {
  const purp = text(tx, 'Purp', 'Prtry') ?? text(tx, 'Purp', 'Cd');
  const knp = purp && /^\d{3}$/.test(purp) ? purp : undefined;
  const line: StatementLineData = {
    bankLineId: e.bankLineId,
    bookingDate: e.bookingDate,
    valueDate: e.valueDate,
    direction: e.direction,
    amount: e.amount,
    currency: e.currency,
    status: e.status,
    kind: e.kind,
    counterparty: party(tx, e.direction === 'debit' ? 'Cdtr' : 'Dbtr'),
    purpose:
      kids(at(tx, 'RmtInf'), 'Ustrd').map((u) => text(u) ?? '').join(' ').trim() || (text(tx, 'AddtlTxInf') ?? '') || (text(entry, 'AddtlNtryInf') ?? ''),
  };
  if (knp) line.knp = knp;
  const refs = at(tx, 'Refs');
  const e2e = text(refs, 'EndToEndId');
  if (e2e && e2e !== 'NOTPROVIDED') line.externalId = e2e;
  const instr = text(refs, 'InstrId');
  if (instr) line.documentNumber = instr;
  const ref = text(refs, 'AcctSvcrRef');
  if (ref) line.bankReference = ref;
  return line;
}

/**
 * A batch entry: the bank books several transactions as one entry (a salary register, several of
 * our payment orders at once), each TxDtls with its own references, party, purpose and amount. Each
 * is a line of its own, or reconciliation could match only the first of our orders and take the
 * others for executed orders missing from the statement, and 1C would get one document for
 * several. Their ids are the entry's with the transaction's place in it (`<entry id>/1`, `/2`, ...):
 * a re-fetch of the same booked entry gives the same ids, so storage stays idempotent (LESSONS.md 5).
 * The transactions must add up to the entry exactly (each one's CdtDbtInd, else the entry's): the
 * entry's amount is what moved the balance, and a batch that does not add up would make the
 * balance check pass on lines that are not the bank's.
 */
function batchLines(entry: Node, txs: Node[], where: string, e: Omit<EntryLine, 'direction' | 'kind'> & { ind: 'CRDT' | 'DBIT' }): StatementLineData[] {
  const signed = (ind: string, tiyn: number): bigint => (ind === 'DBIT' ? -BigInt(tiyn) : BigInt(tiyn));
  let sum = 0n;
  const lines = txs.map((tx, ti) => {
    const w = `${where} TxDtls ${ti + 1}`;
    const amtNode = at(tx, 'AmtDtls', 'TxAmt', 'Amt') ?? at(tx, 'Amt');
    if (!amtNode) throw new Camt053Error(`${w}: a batch entry's transaction needs its amount (AmtDtls/TxAmt/Amt or Amt)`);
    const amount = amountOf(amtNode, w);
    const ccy = attr(amtNode, 'Ccy');
    if (ccy && e.currency && ccy !== e.currency) throw new Camt053Error(`${w}: amount in ${ccy}, but the entry is in ${e.currency}: a batch's transactions must be in the entry's currency`);
    const ind = text(tx, 'CdtDbtInd') ?? e.ind;
    if (ind !== 'CRDT' && ind !== 'DBIT') throw new Camt053Error(`${w}: CdtDbtInd must be CRDT or DBIT`);
    sum += signed(ind, amount);
    const kind = at(tx, 'BkTxCd') ? kindOf(tx) : kindOf(entry);
    return lineOf(entry, tx, { ...e, bankLineId: `${e.bankLineId}/${ti + 1}`, amount, direction: ind === 'DBIT' ? 'debit' : 'credit', kind });
  });
  if (sum !== signed(e.ind, e.amount)) {
    throw new Camt053Error(
      `${where}: its ${txs.length} TxDtls amount to ${formatSigned(sum)}, not the entry's ${formatSigned(signed(e.ind, e.amount))}: a batch entry's transactions must add up to its amount`,
    );
  }
  return lines;
}

/** Tiyn as a signed decimal ("-1500.00"), exactly. */
function formatSigned(tiyn: bigint): string {
  const abs = tiyn < 0n ? -tiyn : tiyn;
  return `${tiyn < 0n ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
}

export async function readCamt053(xml: string | Buffer): Promise<StatementData[]> {
  let doc: Node;
  try {
    doc = (await parseStringPromise(typeof xml === 'string' ? xml : xml.toString('utf8'), {
      explicitArray: true,
      tagNameProcessors: [processors.stripPrefix],
      attrNameProcessors: [processors.stripPrefix],
    })) as Node;
  } catch (err) {
    throw new Camt053Error(`not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  // The root element is not wrapped in an array by xml2js.
  const root = at(doc?.Document, 'BkToCstmrStmt');
  if (!root) throw new Camt053Error('not a camt.053 document: expected Document/BkToCstmrStmt');
  const statements = kids(root, 'Stmt');
  if (statements.length === 0) throw new Camt053Error('the document holds no Stmt');
  return statements.map((stmt, si) => {
    const where = `Stmt ${si + 1}`;
    const account = text(stmt, 'Acct', 'Id', 'IBAN') ?? text(stmt, 'Acct', 'Id', 'Othr', 'Id');
    if (!account) throw new Camt053Error(`${where}: no account (Acct/Id/IBAN)`);
    const opening = balance(stmt, ['OPBD', 'PRCD', 'OPAV']);
    const closing = balance(stmt, ['CLBD']);
    if (!opening || !closing) throw new Camt053Error(`${where}: an opening (OPBD/PRCD) and a closing (CLBD) balance are required`);
    let currency = text(stmt, 'Acct', 'Ccy');
    const lines: StatementLineData[] = kids(stmt, 'Ntry').flatMap((entry, ei) => {
      const w = `${where} Ntry ${ei + 1}`;
      const amtNode = at(entry, 'Amt');
      const amount = amountOf(amtNode, w);
      const lineCurrency = attr(amtNode, 'Ccy') ?? currency ?? '';
      currency = currency ?? lineCurrency;
      const ind = text(entry, 'CdtDbtInd');
      if (ind !== 'CRDT' && ind !== 'DBIT') throw new Camt053Error(`${w}: CdtDbtInd must be CRDT or DBIT`);
      const sts = text(entry, 'Sts') ?? text(entry, 'Sts', 'Cd');
      const status = sts === 'BOOK' ? 'booked' : 'pending';
      const bankLineId = text(entry, 'AcctSvcrRef') ?? text(entry, 'NtryRef');
      if (!bankLineId) throw new Camt053Error(`${w}: no AcctSvcrRef or NtryRef to identify the line`);
      const bookingDate = dateOf(entry, 'BookgDt') ?? dateOf(entry, 'ValDt');
      if (!bookingDate) throw new Camt053Error(`${w}: no booking date`);
      const entryLine = { bookingDate, valueDate: dateOf(entry, 'ValDt') ?? bookingDate, currency: lineCurrency, status } as const;
      // NtryDtls may repeat (one per batch), each with its TxDtls.
      const txs = kids(entry, 'NtryDtls').flatMap((d) => kids(d, 'TxDtls'));
      if (txs.length <= 1) {
        // One transaction (or none): the entry is the line, under the entry's own id, as always.
        return [lineOf(entry, txs[0], { ...entryLine, bankLineId, amount, direction: ind === 'DBIT' ? 'debit' : 'credit', kind: kindOf(entry) })];
      }
      return batchLines(entry, txs, w, { ...entryLine, bankLineId, amount, ind });
    });
    const from = text(stmt, 'FrToDt', 'FrDtTm');
    const to = text(stmt, 'FrToDt', 'ToDtTm');
    const periodFrom = (from ? kzDate(from) : undefined) ?? opening.date;
    const periodTo = (to ? kzDate(to) : undefined) ?? closing.date;
    if (!periodFrom || !periodTo) throw new Camt053Error(`${where}: no period (FrToDt or balance dates)`);
    return {
      account,
      currency: currency ?? '',
      periodFrom,
      periodTo,
      kind: 'booked',
      openingBalance: opening.amount,
      closingBalance: closing.amount,
      lines,
      source: 'camt053',
    } satisfies StatementData;
  });
}
