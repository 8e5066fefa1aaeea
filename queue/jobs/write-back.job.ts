import { createHash } from 'node:crypto';
import { dirname, resolve } from 'node:path';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { CP1251_LOSS, encodeOnecText, lostInCp1251, renderOnecStatement, type StatementOwner } from '../../adapters/erp/onec-exchange/onec-statement.writer';
import { renderOnecStatusBody, renderOnecStatusHeader, toStatusReportEntry, type MismatchedLine, type StatusReportEntry } from '../../adapters/erp/onec-exchange/onec-status.writer';
import { ONEC_SOURCE } from '../../adapters/erp/onec-exchange/onec-exchange.types';
import type { FieldError } from '../../connector/orders/payment-order';
import { ORDER_STATES, type OrderState } from '../../connector/orders/order-state';
import { ConnectorError } from '../../connector/shared/errors';
import { kzCalendarFromConfig } from '../../connector/calendar/kz-business-calendar';
import { scheduledRanges, statementAccounts } from '../../connector/statements/statement.schedule';
import { loadStoredStatement } from '../../connector/statements/statement.repository';
import { isoDateOf } from '../../connector/statements/statement.store';
import type { StatementData } from '../../connector/statements/statement.model';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import type { QueueSet } from '../queue.factory';
import { testPausePoint } from '../test-hooks';
import { perContext } from '../stage-batcher';
import { writeFileAtomic } from '../../connector/shared/atomic-file';
import { openIncident, resolveIncidentsByKey } from '../../connector/incidents/incident.service';
import { waitAndRetry } from './pipeline.helpers';
import { takeAdvisoryLockWaiting } from '../../connector/persistence/database';

/**
 * Stage 7 (issue 15): statements and statuses back to the ERP. For 1C that is two files in
 * `onec.inboxDir`: `kl_to_1c.txt` (the statement 1C imports, INTERFACES.md) and
 * `kl_to_1c_status.txt` (the status of each exported document, R-21/R-23). Each is written
 * exactly once per change: the SHA-256 of what would be written (without its creation time) is
 * kept in `writeback_mark`, and an unchanged file is not written again. Files appear atomically
 * (temp file in the same folder, fsync, rename): 1C never reads half a file.
 */
export const STATEMENT_FILE = 'kl_to_1c.txt';
export const STATUS_FILE = 'kl_to_1c_status.txt';
const STATEMENT_TARGET = 'onec.statement';
const STATUS_TARGET = 'onec.status';
/**
 * How long a write-back waits for its file's lock: the holder renders and writes the file inside its
 * transaction (a statement of thousands of lines, an fsync on a slow share), longer than a row lock is
 * ever held (database.lockTimeoutMs). A holder that hangs is ended by the server's idle bound.
 */
const TARGET_LOCK_WAIT_MS = 120_000;

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

export const writeBackJob = defineJob({
  name: 'erp.writeback',
  queue: 'writeback',
  payload: z.object({ from: isoDate.optional(), to: isoDate.optional(), at: z.number().int().min(0).optional() }),
  // Each trigger gets its own id (`at`): one already running must not swallow a later change.
  jobId: (p) => `writeback-${p.from ?? 'any'}-${p.to ?? 'any'}-${p.at ?? 0}`,
});

/** Asks for a write-back after a change (a fetched statement, an order status). Cheap when nothing changed. */
export async function enqueueWriteBack(queues: QueueSet, trigger: { from?: string; to?: string } = {}): Promise<void> {
  // Coalesced: every change within the same 2-second window shares one job (same id), which runs
  // at the end of the window, so a burst of status changes rewrites the 1C files once.
  const at = Math.ceil((Date.now() + 1) / WRITEBACK_WINDOW_MS) * WRITEBACK_WINDOW_MS;
  await queues.add(writeBackJob, { ...trigger, at }, { delay: Math.max(0, at - Date.now()) });
}

const WRITEBACK_WINDOW_MS = 2_000;

export type Encoding = 'windows' | 'utf8';

/**
 * Writes a file unless the same content was already written to the same path (the mark's hash).
 * The advisory lock serialises concurrent write-backs of one target across workers.
 */
export async function writeOnce(
  em: EntityManager,
  target: string,
  path: string,
  render: (createdAt: Date) => Buffer,
  options: { now: Date; onlyIfChanged: boolean; contentHash?: string },
): Promise<{ path: string; written: boolean; hash: string }> {
  // The creation time is part of the file, not of the change: hash a rendering at a fixed time,
  // unless the caller hashed what the file is made of itself (then it renders only to write).
  const hash = options.contentHash ?? createHash('sha256').update(render(new Date(0))).digest('hex');
  return em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, TARGET_LOCK_WAIT_MS, 'hashtext(?)', [`writeback:${target}`]);
    const mark = await tx.execute<Array<{ content_hash: string; path: string | null }>>('select content_hash, path from writeback_mark where target = ?', [target]);
    if (options.onlyIfChanged && mark[0]?.content_hash === hash && mark[0].path === path) return { path, written: false, hash };
    try {
      await writeFileAtomic(path, render(options.now));
    } catch (err) {
      throw folderError(path, err);
    }
    await tx.execute(
      `insert into writeback_mark (target, content_hash, path, written_at) values (?, ?, ?, ?)
       on conflict (target) do update set content_hash = excluded.content_hash, path = excluded.path, written_at = excluded.written_at, writes = writeback_mark.writes + 1`,
      [target, hash, path, options.now],
    );
    return { path, written: true, hash };
  });
}

/** The code of a file for 1C that could not be written into its folder (onec.inboxDir). */
export const ONEC_FOLDER_UNWRITABLE = 'ONEC_FOLDER_UNWRITABLE';

/** A file-system error of a write into the 1C folder, as ONEC_FOLDER_UNWRITABLE naming the folder and the errno; anything else as it is. */
function folderError(path: string, err: unknown): unknown {
  // Not `instanceof Error`: node's fs errors come from another realm under a VM (jest), and fail it.
  const code = typeof err === 'object' && err !== null ? (err as NodeJS.ErrnoException).code : undefined;
  if (typeof code !== 'string' || !/^E[A-Z]+$/.test(code)) return err;
  const folder = dirname(path);
  return new ConnectorError(ONEC_FOLDER_UNWRITABLE, `cannot write ${path} for 1C (${code}): ${folderTrouble(code, folder).cause}`, 1, { folder, code });
}

/**
 * What a file-system error of a write into the 1C folder says is wrong, and what the admin does about
 * it. A full disk or one remounted read-only (a share whose server ran out of space or failed) was
 * told as a folder missing or without rights, and the admin sent to create a folder that was there.
 */
function folderTrouble(code: string, folder: string): { cause: string; remedy: string } {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return { cause: `the disk of onec.inboxDir ${folder} is full (or the disk quota of the user running the worker is used up)`, remedy: 'free space on that disk' };
    case 'EROFS':
      return { cause: `onec.inboxDir ${folder} is on a file system mounted read-only`, remedy: 'mount it read-write again (a share: check its server)' };
    case 'EIO':
      return { cause: `the disk of onec.inboxDir ${folder} fails to write (an I/O error)`, remedy: "check that disk (the system log) or the share's server" };
    default:
      return { cause: `onec.inboxDir ${folder} is missing where it cannot be created, or not writable by the user running the worker`, remedy: "create the folder or let the worker's user write there" };
  }
}

/**
 * Failed writes in a row into the 1C folder, in this worker process, after which a person is told by
 * an incident (the job is retried with backoff meanwhile: 3 are about 6 s with the default
 * queue.backoffMs). Until then a failure is a log line: a write racing an operator's move of the
 * folder heals at the next try.
 */
export const ONEC_WRITE_FAILURES_BEFORE_INCIDENT = 3;

const folderIncidentKey = (folder: string) => `onec_folder_unwritable:${folder}`;

/** A failed write into the 1C folder: counted; from the ONEC_WRITE_FAILURES_BEFORE_INCIDENT-th in a row, one open incident for the folder. */
async function folderWriteFailed(context: JobContext, err: ConnectorError): Promise<void> {
  const { folder, code } = err.details as { folder: string; code: string };
  const failures = perContext(context, 'writeback.folderFailures', () => ({ inARow: 0 }));
  failures.inARow += 1;
  context.logger.warn({ event: 'erp.writeback.folder_unwritable', folder, code, failuresInARow: failures.inARow });
  if (failures.inARow < ONEC_WRITE_FAILURES_BEFORE_INCIDENT) return;
  const { incident, created } = await openIncident(context.orm.em.fork(), {
    kind: 'onec_folder_unwritable',
    severity: 'high',
    title: `The connector cannot write its files for 1C into ${folder} (${code}, ${failures.inARow} tries in a row): 1C gets no statement and no status until it can; ${folderTrouble(code, folder).cause}: ${folderTrouble(code, folder).remedy} (connector doctor: onec-inbox)`,
    evidence: { folder, code, failuresInARow: failures.inARow },
    dedupeKey: folderIncidentKey(folder),
    actor: 'worker',
    now: context.clock.now(),
    // Every retry finds it again while it lasts: one incident, not one timeline entry each.
    onRepeat: 'ignore',
  });
  if (created) context.logger.error({ event: 'erp.writeback.folder_incident', alert: true, folder, code, incidentId: incident.id }, 'erp.writeback.folder_incident');
}

/** A file written into the 1C folder: the count starts again, and the folder's open incident (any process's) is closed with a note. */
async function folderWriteSucceeded(context: JobContext, folder: string): Promise<void> {
  perContext(context, 'writeback.folderFailures', () => ({ inARow: 0 })).inARow = 0;
  const resolved = await resolveIncidentsByKey(context.orm.em.fork(), folderIncidentKey(folder), { actor: 'worker', note: `a file for 1C was written into ${folder} again`, now: context.clock.now() });
  for (const id of resolved) context.logger.info({ event: 'erp.writeback.folder_recovered', folder, incidentId: id }, 'erp.writeback.folder_recovered');
}

/**
 * Runs `work` in a transaction holding the target's lock (the one `writeOnce` takes; it is taken
 * again there, which PostgreSQL allows). What a file is made of is read in `work`, under the lock:
 * two write-backs that overlap (each 2-second window has its own job, and the queue runs several
 * at once) then write in the order they read, and older statuses or statement lines read by the
 * first are never written over newer ones the second wrote meanwhile.
 */
async function underTargetLock<T>(em: EntityManager, target: string, work: (tx: EntityManager) => Promise<T>): Promise<T> {
  return em.transactional(async (tx) => {
    await takeAdvisoryLockWaiting(tx, TARGET_LOCK_WAIT_MS, 'hashtext(?)', [`writeback:${target}`]);
    return work(tx);
  });
}

/**
 * Several accounts in one exchange file: 1C's format allows several `РасчСчет` header keys and
 * `СекцияРасчСчет` blocks (each followed here by that account's documents). The header of the
 * first rendering is kept, its `РасчСчет` line repeated for every account.
 */
export function mergeStatementTexts(texts: readonly string[], accounts: readonly string[]): string {
  if (texts.length === 1) return texts[0];
  const split = texts.map((t) => t.replace(/\r\n$/, '').split('\r\n'));
  const first = split[0];
  const sectionAt = first.indexOf('СекцияРасчСчет');
  const header = first.slice(0, sectionAt).flatMap((line) => (line.startsWith('РасчСчет=') ? accounts.map((a) => `РасчСчет=${a}`) : [line]));
  const bodies = split.flatMap((lines) => lines.slice(lines.indexOf('СекцияРасчСчет'), lines.lastIndexOf('КонецФайла')));
  return `${[...header, ...bodies, 'КонецФайла'].join('\r\n')}\r\n`;
}

/**
 * The stored statements of `accounts` for [from, to] with their holders (accounts with nothing
 * stored are left out); an account in `fromOf` starts on its own day instead, earliest first.
 */
export async function storedStatements(
  em: EntityManager,
  accounts: readonly string[],
  from: string,
  to: string,
  fromOf: ReadonlyMap<string, string> = new Map(),
): Promise<Array<{ statement: StatementData; owner: StatementOwner }>> {
  const out: Array<{ statement: StatementData; owner: StatementOwner }> = [];
  for (const account of accounts) {
    try {
      const stored = await loadStoredStatement(em, account, fromOf.get(account) ?? from, to, { erpSource: ONEC_SOURCE });
      out.push({ statement: stored.statement, owner: stored.holder });
    } catch (err) {
      if (!(err instanceof ConnectorError && err.code === 'NO_STATEMENT')) throw err;
    }
  }
  // The file's header names the period of its first account: the one that starts first.
  return out.sort((a, b) => a.statement.periodFrom.localeCompare(b.statement.periodFrom));
}

/**
 * Per account, the first day of the closed statements fetched late (on or after the second day
 * after their period: a hole filled after an outage, a period fetched again) since the start of
 * `from`, the previous business day, when they begin before it. The write-back's canonical range
 * starts at `from`: without this, the days of such a statement would never reach 1C. They stay in
 * the file as long as a day fetched on time does: the day of the fetch and the next business day.
 */
async function lateStatementStarts(em: EntityManager, accounts: readonly string[], from: string, utcOffsetMinutes: number): Promise<Map<string, string>> {
  if (accounts.length === 0) return new Map();
  const rows = await em.execute<Array<{ account: string; day: string }>>(
    `select account, min(period_from)::text as day from statement
      where account in (${accounts.map(() => '?').join(', ')}) and kind = 'booked' and period_from < ?::date
        and fetched_at >= ((?::date)::timestamp - make_interval(mins => ?)) at time zone 'UTC'
        and fetched_at >= ((period_to + 2)::timestamp - make_interval(mins => ?)) at time zone 'UTC'
      group by account`,
    [...accounts, from, from, utcOffsetMinutes, utcOffsetMinutes],
  );
  return new Map(rows.map((r) => [r.account, r.day]));
}

/** Renders the 1C statement file of the stored statements of `accounts` for [from, to]. */
export async function renderStatementFile(
  em: EntityManager,
  accounts: readonly string[],
  from: string,
  to: string,
  encoding: Encoding,
  fromOf?: ReadonlyMap<string, string>,
): Promise<{ render: (createdAt: Date) => Buffer; statements: StatementData[]; contentHash: string; lost: string[] }> {
  const stored = await storedStatements(em, accounts, from, to, fromOf);
  if (stored.length === 0) {
    throw new ConnectorError('NO_STATEMENT', `no stored statement covering ${from} for ${accounts.join(', ') || 'any account'}: the worker fetches statements every pipeline.statementsEveryMs for the accounts in pipeline.accounts, or else for those with orders on their way or final in the last 3 days; wait for its next run (logs: statement.fetched)`);
  }
  const text = (createdAt: Date): string =>
    mergeStatementTexts(
      stored.map((s) => renderOnecStatement(s.statement, { encoding, owner: s.owner, createdAt })),
      stored.map((s) => s.statement.account),
    );
  // The creation time is part of the file, not of the change (writeOnce): the hash is of a rendering at a fixed time.
  const fixed = text(new Date(0));
  return {
    render: (createdAt) => encodeOnecText(text(createdAt), encoding),
    statements: stored.map((s) => s.statement),
    contentHash: createHash('sha256').update(encodeOnecText(fixed, encoding)).digest('hex'),
    lost: encoding === 'windows' ? lostInCp1251(fixed) : [],
  };
}

/**
 * The 1C files of the job are cp1251 (`onec.encoding: windows`, what 1C reads by default), which has
 * no Kazakh letters: a counterparty's name or a purpose written with them reaches 1C with the
 * nearest Russian letters (Қ as К) instead, and any other character cp1251 lacks as "?". Said once per process and hour in the log, and by one incident while it lasts, with the
 * knob that keeps them (`onec.encoding: utf8`, `Кодировка=UTF8`, which 1C reads as well).
 */
async function textLost(context: Pick<JobContext, 'config' | 'orm' | 'clock' | 'logger'>, file: string, lost: readonly string[]): Promise<void> {
  if (lost.length === 0) return;
  const now = context.clock.now();
  const warned = perContext(context, `writeback.textLost:${file}`, () => ({ at: 0 }));
  if (now.getTime() - warned.at < 3_600_000) return;
  warned.at = now.getTime();
  const hint = 'set onec.encoding: utf8 in the config (the file then says Кодировка=UTF8) to keep them';
  context.logger.warn({ event: 'erp.writeback.text_lost', file, characters: lost.join(' '), hint });
  await openIncident(context.orm.em.fork(), {
    kind: 'onec_text_lost',
    severity: 'medium',
    title: `${file} is written in cp1251, which cannot hold ${lost.join(' ')}: ${CP1251_LOSS}; ${hint}`,
    evidence: { file, characters: lost },
    dedupeKey: `onec_text_lost:${file}`,
    onRepeat: 'ignore',
    actor: 'worker',
    now,
  });
}

function inboxPath(context: Pick<JobContext, 'config'>, file: string): string {
  return resolve(process.cwd(), context.config.onec.inboxDir, file);
}

/**
 * Writes `kl_to_1c.txt` into `onec.inboxDir` from the stored statement(s) of `account` for
 * [from, to] (the demo calls it directly; the write-back job with `onlyIfChanged`). Returns the
 * absolute path.
 */
export async function writeStatementFile(
  context: Pick<JobContext, 'config' | 'orm' | 'clock'>,
  account: string | readonly string[],
  from: string,
  to: string,
  options: { onlyIfChanged?: boolean; encoding?: Encoding } = {},
): Promise<string> {
  const accounts = typeof account === 'string' ? [account] : account;
  const path = inboxPath(context, STATEMENT_FILE);
  await underTargetLock(context.orm.em.fork(), STATEMENT_TARGET, async (em) => {
    const { render, contentHash } = await renderStatementFile(em, accounts, from, to, options.encoding ?? context.config.onec.encoding);
    await writeOnce(em, STATEMENT_TARGET, path, render, { now: context.clock.now(), onlyIfChanged: options.onlyIfChanged ?? false, contentHash });
  });
  return path;
}

/**
 * The most documents one status report holds. 1C re-reads the whole file on every import; past
 * this, the oldest are left out (the newest are what a user is waiting for) and the job warns,
 * naming `pipeline.statusReportDays` as the knob.
 */
export const STATUS_REPORT_MAX = 20_000;

/**
 * The status report entries: the orders 1C exported (source `onec`, as `connector onec statuses`)
 * whose document date, or whose last status change, is on or after `since` (the last
 * `pipeline.statusReportDays`), oldest first (by document date, then as taken in); when there are
 * more than `max`, the newest `max`, and how many older ones were left out. A document dated
 * earlier whose status changed lately is in it too: refused at intake for its old date, or
 * executed after days of waiting for signatures, its news used never to reach 1C. Orders another
 * ERP or a person sent are not 1C's documents: 1C finds its own by number and date, and would read
 * their status as that of its document.
 */
export async function statusReportEntries(em: EntityManager, since: string, max = STATUS_REPORT_MAX): Promise<{ entries: StatusReportEntry[]; leftOut: number }> {
  // Two index lookups (doc_date; state, state_changed_at), not one condition with "or" over years of orders.
  const inWindow = `select id from payment_order where doc_date >= ? and source = ?
     union
     select id from payment_order where state in (${ORDER_STATES.map(() => '?').join(', ')}) and state_changed_at >= ? and source = ?`;
  const changedSince = new Date(`${since}T00:00:00Z`);
  const params = [since, ONEC_SOURCE, ...ORDER_STATES, changedSince, ONEC_SOURCE];
  const rows = await em.execute<StatusRow[]>(
    `select ${STATUS_REPORT_COLUMNS} from payment_order where id in (${inWindow}) order by doc_date desc, created_at desc, id desc limit ?`,
    [...params, max],
  );
  rows.reverse();
  const leftOut = rows.length < max ? 0 : Number((await em.execute<Array<{ n: string }>>(`select count(*) as n from (${inWindow}) w`, params))[0].n) - rows.length;
  return { entries: rows.map(statusEntryOfRow), leftOut };
}

/** What a status report entry is read from (`StatusFields`), and the order's id for paging. */
const STATUS_REPORT_COLUMNS =
  'id, number, doc_date, payer_iban, amount_tiyn, currency, beneficiary_name, state, failed_from, submit_attempts, errors, bank_reason_code, bank_reason_text, bank_reference, erp_document_id, state_changed_at, ' +
  // booked debits naming the order with other requisites than signed (reconciliation links
  // them as `mismatch`, leaving the order's state as it was): without them the ERP reads
  // "executed" or "deemed executed" of a payment the bank made otherwise.
  `(select json_agg(json_build_object('bookingDate', to_char(l.booking_date, 'YYYY-MM-DD'), 'amountTiyn', l.amount_tiyn::text, 'currency', l.currency, 'counterpartyIban', l.counterparty_iban)
            order by l.booking_date, l.bank_line_id)
      from statement_line l where l.order_id = payment_order.id and l.match_kind = 'mismatch' and l.status = 'booked') as mismatched_lines`;
type StatusRow = Record<string, unknown> & { id: string; number: string; doc_date: string | Date };

function statusEntryOfRow(r: StatusRow): StatusReportEntry {
  return toStatusReportEntry({
    number: r.number,
    docDate: r.doc_date,
    payerIban: r.payer_iban as string,
    amountTiyn: r.amount_tiyn as string,
    currency: r.currency as string,
    beneficiaryName: r.beneficiary_name as string,
    state: r.state as OrderState,
    errors: typeof r.errors === 'string' ? (JSON.parse(r.errors) as FieldError[]) : (r.errors as FieldError[] | null),
    bankReasonCode: r.bank_reason_code as string | null,
    bankReasonText: r.bank_reason_text as string | null,
    bankReference: r.bank_reference as string | null,
    erpDocumentId: r.erp_document_id as string | null,
    failedFrom: r.failed_from as OrderState | null,
    submitAttempts: r.submit_attempts as number,
    stateChangedAt: r.state_changed_at as Date,
    mismatchedLines: (typeof r.mismatched_lines === 'string' ? JSON.parse(r.mismatched_lines) : r.mismatched_lines) as MismatchedLine[] | null,
  });
}

/**
 * Every order of one intake source (whose state changed at or after `since`, when given), oldest
 * document first (by document date, number, id), `pageSize` at a time: `connector onec statuses`
 * over years of history in constant memory. The keys never change, so no order comes twice.
 */
export async function* statusReportPages(em: EntityManager, filter: { source: string; since?: Date }, pageSize = 5_000): AsyncGenerator<StatusReportEntry[]> {
  let after: [string, string, string] | undefined;
  for (;;) {
    const where = ['source = ?', ...(filter.since ? ['state_changed_at >= ?'] : []), ...(after ? ['(doc_date, number, id) > (?::date, ?, ?::uuid)'] : [])];
    const rows = await em.execute<StatusRow[]>(`select ${STATUS_REPORT_COLUMNS} from payment_order where ${where.join(' and ')} order by doc_date, number, id limit ?`, [
      filter.source,
      ...(filter.since ? [filter.since] : []),
      ...(after ?? []),
      pageSize,
    ]);
    if (rows.length > 0) yield rows.map(statusEntryOfRow);
    if (rows.length < pageSize) return;
    const last = rows[rows.length - 1];
    after = [isoDateOf(last.doc_date), last.number, last.id];
  }
}

/** Writes `kl_to_1c_status.txt` when the statuses changed since the last write. */
export async function writeStatusReport(
  context: Pick<JobContext, 'config' | 'orm' | 'clock' | 'logger'>,
  options: { onlyIfChanged?: boolean; max?: number } = {},
): Promise<{ path: string; written: boolean }> {
  const now = context.clock.now();
  const since = new Date(now.getTime() - context.config.pipeline.statusReportDays * 86_400_000).toISOString().slice(0, 10);
  const max = options.max ?? STATUS_REPORT_MAX;
  return underTargetLock(context.orm.em.fork(), STATUS_TARGET, async (em) => {
    const { entries, leftOut } = await statusReportEntries(em, since, max);
    const warned = perContext(context, 'writeback.statusReportFull', () => ({ at: 0 }));
    // Once an hour per process, not at every write-back (every 2 s while statuses change).
    if (leftOut > 0 && now.getTime() - warned.at >= 3_600_000) {
      warned.at = now.getTime();
      context.logger.warn({
        event: 'erp.writeback.status_report_full',
        kept: entries.length,
        leftOut,
        oldestKept: entries[0]?.date,
        hint: `the status report holds at most ${max} documents, the newest; lower pipeline.statusReportDays (now ${context.config.pipeline.statusReportDays}) so that it covers them all`,
      });
    }
    const encoding = context.config.onec.encoding;
    const utcOffsetMinutes = context.config.requisites.utcOffsetMinutes;
    // The documents are rendered once: the change check hashes them (with what shapes their bytes),
    // and the file is the header of its creation time followed by them.
    const body = renderOnecStatusBody(entries, utcOffsetMinutes);
    const contentHash = createHash('sha256').update(`${encoding}\n${utcOffsetMinutes}\n`).update(body).digest('hex');
    const path = inboxPath(context, STATUS_FILE);
    const { written } = await writeOnce(
      em,
      STATUS_TARGET,
      path,
      (createdAt) => encodeOnecText(renderOnecStatusHeader({ encoding, createdAt, utcOffsetMinutes }) + body, encoding),
      { now, onlyIfChanged: options.onlyIfChanged ?? true, contentHash },
    );
    if (written && encoding === 'windows') await textLost(context, STATUS_FILE, lostInCp1251(body));
    return { path, written };
  });
}

async function defaults(context: JobContext): Promise<{ accounts: string[]; from: string; to: string }> {
  const now = context.clock.now();
  const ranges = scheduledRanges(kzCalendarFromConfig(context.config), now);
  return { accounts: await statementAccounts(context.orm.em.fork(), context.config.pipeline.accounts, now), from: ranges[0].from, to: ranges[ranges.length - 1].to };
}

/**
 * The write-back: the statement file always covers one canonical range (the closed days since
 * the previous business day, through today), whatever fetch triggered it, so the file changes
 * only when the statements do; an account whose closed statement was fetched late starts on that
 * statement's first day (`lateStatementStarts`). Then the status report.
 */
export const handleWriteBack: JobHandler<typeof writeBackJob.payload> = async (_payload, context, job) => {
  await testPausePoint(context, 'erp.writeback');
  const { accounts, from, to } = await defaults(context);
  let awaiting = 0;
  const writes = async () => {
    const statement = await underTargetLock(context.orm.em.fork(), STATEMENT_TARGET, async (em) => {
      // The late starts first: a closed day fetched late is written from its first day, so its debits are waited for as well.
      const late = await lateStatementStarts(em, accounts, from, context.config.requisites.utcOffsetMinutes);
      awaiting = await linesAwaitingReconciliation(em, accounts, from, context.clock.now(), late);
      if (awaiting > 0) return null;
      const stored = await storedStatements(em, accounts, from, to, late);
      if (!stored.length) return null;
      const { render, contentHash, lost } = await renderStatementFile(em, stored.map((s) => s.statement.account), from, to, context.config.onec.encoding, late);
      const written = await writeOnce(em, STATEMENT_TARGET, inboxPath(context, STATEMENT_FILE), render, { now: context.clock.now(), onlyIfChanged: true, contentHash });
      return { ...written, lost };
    });
    if (statement?.written) await textLost(context, STATEMENT_FILE, statement.lost);
    const status = await writeStatusReport(context, { onlyIfChanged: true });
    return { statement, status };
  };
  let outcome: Awaited<ReturnType<typeof writes>>;
  try {
    outcome = await writes();
  } catch (err) {
    // Retried by BullMQ as before; a folder that stays unwritable is also an incident.
    if (err instanceof ConnectorError && err.code === ONEC_FOLDER_UNWRITABLE) {
      await folderWriteFailed(context, err).catch((e: Error) => context.logger.error({ event: 'erp.writeback.folder_incident_error', err: e.message }));
    }
    throw err;
  }
  const { statement, status } = outcome;
  if (statement?.written || status.written) await folderWriteSucceeded(context, dirname(inboxPath(context, STATUS_FILE)));
  context.logger.info({ event: 'erp.writeback.done', jobId: job.id, statementWritten: statement?.written ?? false, statusWritten: status.written, awaitingReconciliation: awaiting });
  // The statement once reconciliation has been through those lines (it runs right after the store).
  if (awaiting > 0) await waitAndRetry(job, RECONCILIATION_RECHECK_MS, 'statement lines not yet reconciled');
  return { statement: statement?.written ?? false, status: status.written };
};

/**
 * A debit of one of our orders reaches 1C under the order's number and date (statement.repository.ts
 * `addOrderCodes`), found through the order reconciliation links to it, whatever number the bank
 * wrote. Stored and not yet reconciled (the fetch stores, commits, then reconciles), it would go to
 * 1C under the bank's number (or its line id and booking date, when it gave none), and 1C would make
 * a second outgoing payment of it, kept when the next file names the order. So the statement file
 * waits for such lines, up to AWAIT_RECONCILIATION_MS after they were stored: a reconciliation that
 * failed for good must not keep the statement from 1C, which then gets the line as the bank gave it.
 * An account in `fromOf` (a closed day fetched late, lateStatementStarts) is written, so waited for,
 * from its own first day: the hole's lines are stored before the day asked for, and reconciled after it.
 */
const AWAIT_RECONCILIATION_MS = 5 * 60_000;
const RECONCILIATION_RECHECK_MS = 2_000;

async function linesAwaitingReconciliation(em: EntityManager, accounts: readonly string[], from: string, now: Date, fromOf: ReadonlyMap<string, string> = new Map()): Promise<number> {
  if (accounts.length === 0) return 0;
  const [row] = await em.execute<Array<{ n: string }>>(
    `select count(*) as n from statement_line
      where (${accounts.map(() => '(account = ? and booking_date >= ?::date)').join(' or ')}) and status = 'booked' and direction = 'debit' and kind <> 'fee'
        and reconciled_at is null
        and created_at > ?`,
    [...accounts.flatMap((a) => [a, fromOf.get(a) ?? from]), new Date(now.getTime() - AWAIT_RECONCILIATION_MS)],
  );
  return Number(row?.n ?? 0);
}
