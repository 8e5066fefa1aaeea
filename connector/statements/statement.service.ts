import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { formatAmount } from '../shared/money';
import { checkBalance, checkContinuity, checkRestatement, type StatementBalances } from './statement.checks';
import type { StatementData } from './statement.model';
import { previousStatement, storeLines, storeStatement, storedStatement, type ChangedLine, type ConflictingLine, type LineFacts, type WithdrawnLine } from './statement.store';
import { checkExecutedInStatement, raiseOnce, reconcileAccount } from './reconciliation';
import { withAdvisoryMutex } from '../persistence/database';
import { kzToday } from './statement.schedule';
import type { ListedAccount } from './unfollowed-accounts';

/**
 * Stage 5 + 6 for one account and date range: fetch (by range, never a "new only" cursor,
 * LESSONS.md 8), check, store, chain to the previous statement, reconcile. The bank is a port so
 * the domain imports no adapter; the queue wires the Business API client in.
 */
export interface StatementSource {
  getStatement(account: string, from: string, to: string): Promise<StatementData>;
  /** The accounts the bank lists for the Client ID (the Business API client has it; a test's source may not). */
  listAccounts?(opts?: { signal?: AbortSignal; timeoutMs?: number }): Promise<ListedAccount[]>;
}

export interface StatementServiceDeps {
  em: EntityManager;
  source: StatementSource;
  calendar: KzBusinessCalendar;
  now: Date;
  logger?: Logger;
  actor?: string;
}

export interface FetchReconcileResult {
  account: string;
  from: string;
  to: string;
  kind: StatementData['kind'];
  /** Lines stored for the first time (the hole fetched before this statement included). */
  stored: number;
  /** Lines already stored: a re-fetch stores nothing twice. */
  duplicates: number;
  /** Lines matched (to an order, as a fee, a tax or a credit) in this run. */
  matched: number;
  /** Orders moved to `executed` in this run. */
  executed: number;
  /** Incidents opened in this run (ids). */
  incidents: string[];
  balanced: boolean;
  continuity: 'first' | 'continuous' | 'repaired' | 'gap';
}

const MAX_HOLE_DEPTH = 2;
/** A reconciliation of months of lines takes a while; the fetch waiting for it has nothing better to do (as the store's lock). */
const RECONCILE_LOCK_WAIT_MS = 300_000;

/** Alerts go to the log at error level with a stable event name (the operators' alerting reads it). */
function alert(logger: Logger | undefined, event: string, details: Record<string, unknown>): void {
  logger?.error({ event, alert: true, ...details }, event);
}

export async function fetchAndReconcileStatement(deps: StatementServiceDeps, account: string, from: string, to: string): Promise<FetchReconcileResult> {
  const incidents: string[] = [];
  let stored = 0;
  let duplicates = 0;
  const changed: ChangedLine[] = [];
  const withdrawn: WithdrawnLine[] = [];
  const conflicts: Array<{ conflict: ConflictingLine; period: Pick<StatementData, 'periodFrom' | 'periodTo'> }> = [];
  /** Earlier periods stored on the way (a hole fetched, a gap's previous period fetched again): their lines are reconciled too. */
  const earlier: Array<Pick<StatementData, 'periodFrom' | 'periodTo' | 'kind' | 'lines'>> = [];

  // 1. Fetch, checked: opening + booked lines = closing, or an incident (LESSONS.md 6).
  const { statement, balance } = await fetchChecked(deps, account, from, to, incidents);

  // 2. Chain to what is stored before it; fetch a hole first (no gaps).
  const continuity = await ensureContinuity(deps, statement, incidents, 0, (r) => {
    stored += r.stored;
    duplicates += r.duplicates;
    changed.push(...r.changed);
    withdrawn.push(...r.withdrawn);
    conflicts.push(...r.conflicts.map((conflict) => ({ conflict, period: r.period })));
    earlier.push(r.period);
  });

  // 3. Store (after the chain check, which reads the previous state of this period too).
  await reportRestatement(deps, incidents, await storedStatement(deps.em, account, statement.periodFrom, statement.periodTo), statement);
  const result = await storeStatement(deps.em, statement, { now: deps.now });
  stored += result.stored;
  duplicates += result.duplicates;
  changed.push(...result.changed);
  withdrawn.push(...result.withdrawn);
  conflicts.push(...result.conflicts.map((conflict) => ({ conflict, period: statement })));
  for (const { conflict, period } of conflicts) await reportConflictingLine(deps, incidents, account, period, conflict);
  for (const line of changed) await reportRestatedLine(deps, incidents, account, { changed: line });
  for (const line of withdrawn) await reportRestatedLine(deps, incidents, account, { withdrawn: line });

  // 4 and 5 one fetch of the account at a time, in every process and host: two fetches at once (today's
  // and the closed day's) would each read the other's lines as not yet matched, and could both take
  // one order's two debits as its payment (the second debit, unexplained, would open no incident).
  const rec = { matched: 0, executed: 0, incidents: [] as string[] };
  await withAdvisoryMutex(deps.em, RECONCILE_LOCK_WAIT_MS, 'hashtext(?)', [`reconcile:${account}`], async () => {
    // 4. Reconcile what is stored for the period (also lines stored by earlier fetches), after the
    // earlier periods this fetch stored lines of (else a debit found only in a hole would never be judged).
    for (const period of [...earlier.sort((a, b) => (a.periodFrom < b.periodFrom ? -1 : 1)), statement]) {
      const { from: since, to: until } = reconcileRange(period);
      const r = await reconcileAccount(deps.em, account, since, until, { calendar: deps.calendar, now: deps.now, actor: 'reconciliation' });
      rec.matched += r.matched;
      rec.executed += r.executed;
      rec.incidents.push(...r.incidents);
    }
    incidents.push(...rec.incidents);
    if (rec.incidents.length) alert(deps.logger, 'statement.reconciliation.incident', { account, from, to, incidentIds: rec.incidents });
    // 5. A closed period: every order executed in it must be in it.
    for (const period of earlier.filter((p) => p.kind === 'booked')) {
      const missing = await checkExecutedInStatement(deps.em, account, period.periodFrom, period.periodTo, { calendar: deps.calendar, now: deps.now, actor: 'reconciliation' });
      incidents.push(...missing);
      if (missing.length) alert(deps.logger, 'statement.executed_missing', { account, from: period.periodFrom, to: period.periodTo, incidentIds: missing });
    }
    if (statement.kind === 'booked') {
      const missing = await checkExecutedInStatement(deps.em, account, statement.periodFrom, statement.periodTo, { calendar: deps.calendar, now: deps.now, actor: 'reconciliation' });
      incidents.push(...missing);
      if (missing.length) alert(deps.logger, 'statement.executed_missing', { account, from, to, incidentIds: missing });
    }
  });
  deps.logger?.info({ event: 'statement.fetched', account, from, to, kind: statement.kind, stored, duplicates, matched: rec.matched, executed: rec.executed, incidents: incidents.length });
  return {
    account,
    from,
    to,
    kind: statement.kind,
    stored,
    duplicates,
    matched: rec.matched,
    executed: rec.executed,
    incidents,
    balanced: balance.ok,
    continuity,
  };
}

/**
 * The days whose lines a fetched statement brings: its period, widened to the booking dates of its
 * booked lines. A bank may date a line outside the period it sends it in (a UTC date for a line
 * booked just after midnight in Almaty, a back-dated correction); the statement balances with it,
 * so it moved money in this statement, and reconciled only by its period it was never judged (an
 * unauthorised debit without an incident, R-29; our order's debit never confirming it).
 */
function reconcileRange(period: Pick<StatementData, 'periodFrom' | 'periodTo'> & { lines?: StatementData['lines'] }): { from: string; to: string } {
  let from = period.periodFrom;
  let to = period.periodTo;
  for (const line of period.lines ?? []) {
    if (line.status !== 'booked') continue;
    if (line.bookingDate < from) from = line.bookingDate;
    if (line.bookingDate > to) to = line.bookingDate;
  }
  return { from, to };
}

/**
 * One period from the bank, checked: an unbalanced answer is fetched once more before it is called
 * broken (LESSONS.md 6), then a `statement_unbalanced` incident and an alert. Every statement the
 * service stores comes through here: the period asked for, and a hole fetched to close the chain.
 */
async function fetchChecked(deps: StatementServiceDeps, account: string, from: string, to: string, incidents: string[]): Promise<{ statement: StatementData; balance: ReturnType<typeof checkBalance> }> {
  const actor = deps.actor ?? 'statements';
  let statement = await deps.source.getStatement(account, from, to);
  let balance = checkBalance(statement);
  if (!balance.ok) {
    deps.logger?.warn({ event: 'statement.unbalanced.refetch', account, from, to, difference: balance.difference });
    statement = await deps.source.getStatement(account, from, to);
    balance = checkBalance(statement);
  }
  // A range that reaches today (Kazakhstan) is still open whatever the answer says: the contract's
  // `kind` is optional and read as `booked` when left out, which made every later line of today a
  // restatement of a "closed" day (statement_gap) and checked today for executed orders.
  if (statement.kind === 'booked' && statement.periodTo >= kzToday(deps.now)) statement = { ...statement, kind: 'intraday' };
  if (!balance.ok) {
    const raised = await raiseOnce(deps.em, {
      kind: 'statement_unbalanced',
      severity: 'high',
      title: `Statement of ${account} for ${from}..${to} does not balance: opening + booked lines = ${formatAmount(balance.expectedClosing)}, closing ${formatAmount(statement.closingBalance)}`,
      dedupeKey: `statement_unbalanced:${account}:${from}:${to}`,
      actor,
      now: deps.now,
      evidence: { account, from, to, opening: statement.openingBalance, closing: statement.closingBalance, expectedClosing: balance.expectedClosing, difference: balance.difference },
    });
    if (raised.created) incidents.push(raised.id);
    alert(deps.logger, 'statement.unbalanced', { account, from, to, difference: balance.difference, incidentId: raised.id });
  }
  return { statement, balance };
}

/**
 * The closing of the previous stored statement must be this statement's opening.
 * - Days never fetched in between (a hole): fetch them as their own statement, store it, and chain
 *   through it.
 * - A gap: re-fetch the previous period once. When the bank's previous statement still opens
 *   where we stored it and now closes where this one opens, we had missed lines: they are stored
 *   now (idempotently) and the chain holds. Otherwise an incident `statement_gap` and an alert.
 */
async function ensureContinuity(
  deps: StatementServiceDeps,
  next: StatementData,
  incidents: string[],
  depth: number,
  count: (r: { stored: number; duplicates: number; changed: ChangedLine[]; withdrawn: WithdrawnLine[]; conflicts: ConflictingLine[]; period: Pick<StatementData, 'periodFrom' | 'periodTo' | 'kind' | 'lines'> }) => void,
): Promise<FetchReconcileResult['continuity']> {
  const account = next.account;
  const previous = await previousStatement(deps.em, account, next.periodFrom);
  const verdict = checkContinuity(previous, next);
  if (verdict.status === 'first' || verdict.status === 'continuous') return verdict.status;
  if (verdict.status === 'hole') {
    // Holes in holes: the bank keeps answering for later days than asked. Said, not left silent.
    if (depth >= MAX_HOLE_DEPTH) return reportGap(deps, incidents, previous, next, null);
    deps.logger?.info({ event: 'statement.hole.fetch', account, from: verdict.missingFrom, to: verdict.missingTo });
    // Checked like any statement: a hole that does not balance is missing lines too.
    const { statement: hole } = await fetchChecked(deps, account, verdict.missingFrom, verdict.missingTo, incidents);
    const status = await ensureContinuity(deps, hole, incidents, depth + 1, count);
    const r = await storeStatement(deps.em, hole, { now: deps.now });
    count({ ...r, period: hole });
    if (status === 'gap') return 'gap';
    const after = checkContinuity(await previousStatement(deps.em, account, next.periodFrom), next);
    if (after.status === 'continuous') return status === 'repaired' ? 'repaired' : 'continuous';
    return reportGap(deps, incidents, await previousStatement(deps.em, account, next.periodFrom), next, null);
  }
  // A gap between adjacent periods: re-fetch the previous one once.
  const prev = previous as StatementBalances;
  deps.logger?.warn({ event: 'statement.gap.refetch', account, previous: prev, nextOpening: next.openingBalance });
  const again = await deps.source.getStatement(account, prev.periodFrom, prev.periodTo);
  // Whatever it says, its lines are facts: store them (idempotent), keep the stored balances as evidence.
  count({ ...(await storeLines(deps.em, again, { statementId: null, now: deps.now })), period: again });
  if (checkBalance(again).ok && again.openingBalance === prev.openingBalance && again.closingBalance === next.openingBalance) {
    // The chain holds again, but a closed day that closes elsewhere now was rewritten after we
    // passed it to the ERP: said as when that day itself is fetched again (whichever runs first).
    await reportRestatement(deps, incidents, prev, again);
    await storeStatement(deps.em, again, { now: deps.now });
    deps.logger?.warn({ event: 'statement.gap.repaired', account, from: prev.periodFrom, to: prev.periodTo });
    return 'repaired';
  }
  return reportGap(deps, incidents, prev, next, again);
}

/**
 * A period fetched again that the bank changed after it was closed (checkRestatement): one
 * `statement_gap` incident per new version of it, and an alert.
 */
async function reportRestatement(deps: StatementServiceDeps, incidents: string[], before: StatementBalances | null, fetched: StatementData): Promise<void> {
  const restatement = checkRestatement(before, fetched);
  if (restatement.status !== 'restated') return;
  const { account, periodFrom: from, periodTo: to } = fetched;
  const raised = await raiseOnce(deps.em, {
    kind: 'statement_gap',
    severity: 'high',
    title: `The bank's statement of ${account} for ${from}..${to} changed after it was closed (opening ${restatement.openingDifference}, closing ${restatement.closingDifference} tiyn)`,
    dedupeKey: `statement_restated:${account}:${from}:${to}:${fetched.openingBalance}:${fetched.closingBalance}`,
    actor: deps.actor ?? 'statements',
    now: deps.now,
    evidence: { account, from, to, stored: before, fetched: { opening: fetched.openingBalance, closing: fetched.closingBalance } },
  });
  if (raised.created) incidents.push(raised.id);
  alert(deps.logger, 'statement.restated', { account, from, to, incidentId: raised.id });
}

const money = (m: { direction: string; amount: number; currency: string }) => ({ direction: m.direction, amount: formatAmount(m.amount), currency: m.currency });
const shown = (m: ReturnType<typeof money>) => `${m.direction} ${m.amount} ${m.currency}`;

/** The facts other than money that differ between a stored line and its new version, in words. */
function otherDifferences(stored: LineFacts, fetched: LineFacts): string[] {
  const out: string[] = [];
  if (stored.status !== fetched.status) out.push(`${fetched.status} again`);
  if (stored.counterpartyIban !== fetched.counterpartyIban) out.push(`counterparty account ${stored.counterpartyIban || 'none'} -> ${fetched.counterpartyIban || 'none'}`);
  if (stored.externalId !== fetched.externalId) out.push(`external id ${stored.externalId ?? 'none'} -> ${fetched.externalId ?? 'none'}`);
  if (stored.bankReference !== fetched.bankReference) out.push(`bank reference ${stored.bankReference ?? 'none'} -> ${fetched.bankReference ?? 'none'}`);
  if (stored.bookingDate !== fetched.bookingDate) out.push(`booked on ${stored.bookingDate} -> ${fetched.bookingDate}`);
  return out;
}

/**
 * A booked line we stored and passed to the ERP that the bank restated: sent again under its id
 * as another payment (`changed`: another amount, direction, currency, counterparty account, external
 * id, bank reference or booking day, or pending again), or left out of a statement of its day (`withdrawn`:
 * reversed, or booked again under another id). The stored line is kept as the evidence; one high
 * incident per restatement and an alert.
 */
async function reportRestatedLine(deps: StatementServiceDeps, incidents: string[], account: string, restated: { changed: ChangedLine } | { withdrawn: WithdrawnLine }): Promise<void> {
  const line = 'changed' in restated ? restated.changed : restated.withdrawn;
  const changed = 'changed' in restated ? restated.changed : null;
  const withdrawn = 'withdrawn' in restated ? restated.withdrawn : null;
  const others = changed ? otherDifferences(changed.stored, changed.fetched) : [];
  const incident = changed
    ? {
          event: 'statement.line_changed',
          title: `The bank changed booked line ${line.bankLineId} of ${account} (${line.bookingDate}): stored ${shown(money(changed.stored))}, now ${shown(money(changed.fetched))}${others.length ? `; ${others.join('; ')}` : ''}`,
          // The money of the new version, as before; what else differs only when it does, so a
          // restatement of money alone raised before keeps its key.
          dedupeKey:
            `statement_line_changed:${account}:${line.bankLineId}:${changed.fetched.direction}:${changed.fetched.amount}:${changed.fetched.currency}` +
            (others.length ? `:${changed.fetched.status}:${changed.fetched.counterpartyIban}:${changed.fetched.externalId ?? ''}:${changed.fetched.bankReference ?? ''}` : '') +
            // Only when the day moved, so that keys raised before booking days were compared stay as they were.
            (changed.stored.bookingDate !== changed.fetched.bookingDate ? `:${changed.fetched.bookingDate}` : ''),
          evidence: {
            bookingDate: line.bookingDate,
            stored: money(changed.stored),
            fetched: money(changed.fetched),
            ...(others.length ? { otherDifferences: others, storedFacts: changed.stored, fetchedFacts: changed.fetched } : {}),
            hint: 'the stored line is kept; ask the bank which booking is true',
          },
        }
      : {
          event: 'statement.line_withdrawn',
          title: `The bank's statement of ${account} for ${line.bookingDate} no longer shows booked line ${line.bankLineId} (${shown(money(withdrawn as WithdrawnLine))})`,
          dedupeKey: `statement_line_withdrawn:${account}:${line.bankLineId}`,
          evidence: { stored: { ...money(withdrawn as WithdrawnLine), bookingDate: line.bookingDate }, hint: 'the stored line is kept (1C has it); ask the bank whether the operation was reversed or booked again under another id' },
        };
  const raised = await raiseOnce(deps.em, {
    kind: 'statement_gap',
    severity: 'high',
    title: incident.title,
    dedupeKey: incident.dedupeKey,
    actor: deps.actor ?? 'statements',
    now: deps.now,
    evidence: { account, bankLineId: line.bankLineId, ...incident.evidence },
  });
  if (raised.created) incidents.push(raised.id);
  alert(deps.logger, incident.event, { account, bankLineId: line.bankLineId, incidentId: raised.id });
}

/**
 * One answer holding one bank line id several times with different facts: only the first version
 * can be stored (lines are unique per account and bank line id), so the others would never be
 * stored, reconciled nor passed to 1C, although the balance check counted them. One high
 * `statement_gap` incident per set of versions, and an alert. Identical repeats are not reported.
 */
async function reportConflictingLine(deps: StatementServiceDeps, incidents: string[], account: string, period: Pick<StatementData, 'periodFrom' | 'periodTo'>, conflict: ConflictingLine): Promise<void> {
  const { bankLineId, variants } = conflict;
  const versions = variants.map((v) => ({
    ...money(v),
    status: v.status,
    bookingDate: v.bookingDate,
    valueDate: v.valueDate,
    kind: v.kind,
    counterparty: { name: v.counterparty.name, iinBin: v.counterparty.iinBin, iban: v.counterparty.iban, bic: v.counterparty.bic },
    purpose: v.purpose,
    knp: v.knp ?? null,
    documentNumber: v.documentNumber ?? null,
    documentDate: v.documentDate ?? null,
    externalId: v.externalId ?? null,
    bankReference: v.bankReference ?? null,
  }));
  const digest = createHash('sha256').update(JSON.stringify(versions)).digest('hex').slice(0, 16);
  const raised = await raiseOnce(deps.em, {
    kind: 'statement_gap',
    // A debit the stored version is not: money that may have left with nobody reconciling it.
    severity: 'critical',
    title: `The bank's statement of ${account} for ${period.periodFrom}..${period.periodTo} holds line ${bankLineId} ${variants.length} times with different facts (${versions.map(shown).join(', ')}): only the first is stored`,
    dedupeKey: `statement_line_conflict:${account}:${bankLineId}:${digest}`,
    actor: deps.actor ?? 'statements',
    now: deps.now,
    evidence: {
      account,
      bankLineId,
      from: period.periodFrom,
      to: period.periodTo,
      versions,
      /** Which of `versions` is stored (the first the answer held). */
      storedVersion: 0,
      hint: 'only the first version is stored, reconciled and passed to 1C; ask the bank for the operations behind the others and reconcile them by hand',
    },
  });
  if (raised.created) incidents.push(raised.id);
  alert(deps.logger, 'statement.line_conflict', { account, bankLineId, versions: variants.length, incidentId: raised.id });
}

async function reportGap(
  deps: StatementServiceDeps,
  incidents: string[],
  prev: StatementBalances | null,
  next: StatementData,
  refetched: StatementData | null,
): Promise<'gap'> {
  const account = next.account;
  const difference = prev ? next.openingBalance - prev.closingBalance : 0;
  const raised = await raiseOnce(deps.em, {
    kind: 'statement_gap',
    severity: 'high',
    title: `Statements of ${account} do not chain: ${prev ? `closing ${formatAmount(prev.closingBalance)} on ${prev.periodTo}` : 'nothing before'}, opening ${formatAmount(next.openingBalance)} on ${next.periodFrom}`,
    dedupeKey: `statement_gap:${account}:${prev?.periodTo ?? 'none'}:${next.periodFrom}`,
    actor: deps.actor ?? 'statements',
    now: deps.now,
    evidence: {
      account,
      previous: prev,
      next: { periodFrom: next.periodFrom, periodTo: next.periodTo, openingBalance: next.openingBalance },
      difference,
      refetchedPrevious: refetched ? { openingBalance: refetched.openingBalance, closingBalance: refetched.closingBalance, lines: refetched.lines.length } : null,
      hint: 'ask the bank for the missing operations; money moved that no statement line explains',
    },
  });
  if (raised.created) incidents.push(raised.id);
  alert(deps.logger, 'statement.gap', { account, previousTo: prev?.periodTo, nextFrom: next.periodFrom, difference, incidentId: raised.id });
  return 'gap';
}
