import { randomUUID } from 'node:crypto';
import { join, resolve } from 'node:path';
import type IORedis from 'ioredis';
import { z } from 'zod';
import { unsupportedKindIssue } from '../../adapters/erp/onec-exchange/onec-document.judge';
import { readOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import { ONEC_SOURCE, type OnecDocument, type OnecIssue } from '../../adapters/erp/onec-exchange/onec-exchange.types';
import {
  archiveOutboxFile,
  claimOutboxFile,
  listClaimed,
  listOutbox,
  moveToError,
  OutboxReading,
  readiness,
  renderOutboxReport,
  type OutboxFile,
} from '../../adapters/erp/onec-exchange/onec-outbox.folder';
import { conflictAdvice, describeDifferences, intakeOrders, type IntakeConflict, type IntakeItem } from '../../connector/intake/order-intake';
import { CONTRACT_LIMITS } from '../../connector/requisites/payment-order.validator';
import { partySchema } from '../../connector/orders/payment-order';
import { bullmqIntakePort } from '../bullmq-intake.port';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';
import { perContext } from '../stage-batcher';
import { openIncident, resolveIncidentsByKey } from '../../connector/incidents/incident.service';

export const scanOnecOutboxJob = defineJob({
  name: 'onec.outbox.scan',
  queue: 'intake',
  payload: z.object({}).passthrough(),
  jobId: () => 'onec-outbox-scan',
});

const BATCH = 500;

export interface OutboxFileResult {
  file: string;
  outcome: 'archived' | 'error' | 'waiting';
  movedTo?: string;
  sha256?: string;
  documents: number;
  taken: number;
  created: number;
  refused: number;
}

/** Test seam: runs once per file after its first bytes are read (to change the file mid-read deterministically). */
export type WhileReading = (file: { outboxPath: string; claimedPath: string }) => Promise<void> | void;

/**
 * One scan of the 1C outbox (`onec.outboxDir`): each ready file (stable size, ends with
 * `КонецФайла`) is claimed into `processing/` and read from there with the streaming reader; its
 * readable payment orders go to the domain's intake in batches (natural key: the same file or
 * document dropped twice makes no second order); the file moves to `archive/` with its sha256,
 * or, when anything in it could not be read, to `error/` with a report beside (the good
 * documents still went through). A file that changed while it was read stays in `processing/`
 * and is taken again, first, by the next scan, as is one a killed scan left there.
 *
 * Single watcher: a Redis lock (`<prefix>:onec:outbox:lock`, SET NX PX, renewed while the scan
 * runs, released by compare-and-delete) keeps two connectors sharing Redis off the same folder.
 */
export async function scanOnecOutbox(context: JobContext, redis: IORedis, options: { lockMs?: number; whileReading?: WhileReading } = {}): Promise<OutboxFileResult[] | 'locked'> {
  const lockMs = options.lockMs ?? 60_000;
  const key = `${context.config.redis.prefix}:onec:outbox:lock`;
  const me = `${process.pid}-${randomUUID()}`;
  if ((await redis.set(key, me, 'PX', lockMs, 'NX')) !== 'OK') return 'locked';
  const renew = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;
  const release = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;
  const timer = setInterval(() => void redis.eval(renew, 1, key, me, String(lockMs)).catch(() => undefined), Math.max(1000, Math.floor(lockMs / 3)));
  try {
    const dir = resolve(context.config.onec.outboxDir);
    const results: OutboxFileResult[] = [];
    // One file that cannot be taken in (PostgreSQL refusing what it holds, say) stays where it is
    // for the next scan, named in the log and in the job's error: it must not keep every later
    // export of 1C from being read, as it did when its error ended the scan at the first file.
    const failed: string[] = [];
    const each = async (file: OutboxFile, claimed: boolean) => {
      try {
        const result = await processFile(context, dir, file, claimed, options.whileReading);
        results.push(result);
        if (result.outcome !== 'waiting') await outboxFileDone(context, file.name);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        context.logger.error({ event: 'onec.outbox.file_failed', file: file.name, claimed, err: message }, 'a 1C outbox file could not be taken in; it waits for the next scan');
        failed.push(`${file.name}: ${message}`);
        results.push({ file: file.name, outcome: 'waiting', documents: 0, taken: 0, created: 0, refused: 0 });
        await outboxFileFailed(context, dir, file.name, message).catch((e: Error) => context.logger.error({ event: 'onec.outbox.incident_error', err: e.message }));
      }
    };
    // Left by an earlier scan (killed, or the file changed while read): older than anything new in the outbox.
    for (const file of await listClaimed(dir)) await each(file, true);
    for (const file of await listOutbox(dir)) await each(file, false);
    if (failed.length) throw new Error(`${failed.length} 1C outbox file(s) could not be taken in and wait for the next scan (the others were): ${failed.join('; ')}`);
    return results;
  } finally {
    clearInterval(timer);
    await redis.eval(release, 1, key, me).catch(() => undefined);
  }
}

/**
 * Scans in a row a file failed in (in this worker process), after which a person is told by an
 * incident: a file that fails at every scan (its move to archive/ or error/ refused by a full or
 * read-only disk, a document PostgreSQL refuses) stays in processing/ and is read again each time,
 * and a log line at each scan was all there was. Until then a failure is a log line: PostgreSQL
 * restarting heals by the next scan.
 */
export const OUTBOX_FAILURES_BEFORE_INCIDENT = 3;

const outboxIncidentKey = (file: string) => `onec_outbox_stuck:${file}`;

async function outboxFileFailed(context: JobContext, dir: string, file: string, message: string): Promise<void> {
  const failures = perContext(context, 'onec.outbox.failures', () => new Map<string, number>());
  const inARow = (failures.get(file) ?? 0) + 1;
  failures.set(file, inARow);
  if (inARow < OUTBOX_FAILURES_BEFORE_INCIDENT) return;
  const { incident, created } = await openIncident(context.orm.em.fork(), {
    kind: 'onec_outbox_stuck',
    severity: 'high',
    title: `The 1C export ${file} in ${dir} failed ${inARow} scans in a row and is read again at each (what it held already taken in is not taken twice; the rest waits): ${message.slice(0, 300)} (log: onec.outbox.file_failed)`,
    evidence: { file, folder: dir, inARow, error: message.slice(0, 300) },
    dedupeKey: outboxIncidentKey(file),
    actor: 'worker',
    now: context.clock.now(),
    // Every later scan finds it again while it lasts: one incident, not one timeline entry each.
    onRepeat: 'ignore',
  });
  if (created) context.logger.error({ event: 'onec.outbox.file_stuck', alert: true, file, incidentId: incident.id }, 'onec.outbox.file_stuck');
}

/** A file archived or moved to error/: its count starts again, and its open incident (any process's) is closed with a note. */
async function outboxFileDone(context: JobContext, file: string): Promise<void> {
  perContext(context, 'onec.outbox.failures', () => new Map<string, number>()).delete(file);
  await resolveIncidentsByKey(context.orm.em.fork(), outboxIncidentKey(file), { actor: 'worker', note: `the 1C export ${file} was taken in and moved on`, now: context.clock.now() });
}

async function processFile(context: JobContext, dir: string, file: OutboxFile, claimed: boolean, whileReading?: WhileReading): Promise<OutboxFileResult> {
  const stableMs = context.config.onec.stableMs;
  // A file without КонецФайла that has not changed for this long will never be finished.
  const incompleteAfterMs = Math.max(10 * 60_000, 30 * stableMs);
  // Against the machine's time, which wrote the file's mtime, not the connector's clock: a clock
  // started in the past (CONNECTOR_FAKE_NOW) judged every file "changed a moment ago" for good, and
  // one started ahead judged a file 1C was writing stable at once.
  const ready = await readiness(file, Date.now(), stableMs, incompleteAfterMs);
  const base: OutboxFileResult = { file: file.name, outcome: 'waiting', documents: 0, taken: 0, created: 0, refused: 0 };
  if (ready === 'writing') return base;
  // Claimed before reading: 1C's next export to the same name is then a new file (the next scan's).
  const own = claimed ? file : await claimOutboxFile(dir, file);
  if (own === undefined) return base;
  const reading = await OutboxReading.open(own, file);
  try {
    return await readClaimed(context, dir, reading, ready === 'incomplete' ? incompleteAfterMs : undefined, base, whileReading);
  } finally {
    await reading.close();
  }
}

/** Reads a claimed file, takes its documents in and moves it; `incompleteAfterMs` set: it never got its КонецФайла. */
async function readClaimed(context: JobContext, dir: string, reading: OutboxReading, incompleteAfterMs: number | undefined, base: OutboxFileResult, whileReading?: WhileReading): Promise<OutboxFileResult> {
  const file = reading.file;
  const log = context.logger.child({ file: file.name, claimedPath: file.path });
  const now = context.clock.now();
  // Never archived, never reported: it waits in processing/ until it is stable again (the next scan judges it afresh).
  const changed = (result: OutboxFileResult = base): OutboxFileResult => {
    log.warn({ event: 'onec.outbox.changed', documents: result.documents, created: result.created });
    return { ...result, outcome: 'waiting' };
  };
  // Written to between the readiness check and the claim: not the file that was judged ready.
  if (!reading.asJudged) return changed();
  if (incompleteAfterMs !== undefined) {
    const sha256 = await reading.sha256();
    const report = renderOutboxReport({ file: file.name, sha256, at: now, reason: `файл не завершён строкой КонецФайла и не менялся ${Math.round(incompleteAfterMs / 60000)} мин (the file never got its КонецФайла)`, fileIssues: [], documents: [] });
    const movedTo = await moveToError(dir, reading, report);
    if (movedTo === undefined) return changed();
    log.warn({ event: 'onec.outbox.incomplete', movedTo });
    return { ...base, outcome: 'error', movedTo, sha256 };
  }

  const port = bullmqIntakePort(context.queues);
  const documents: { line: number; number: string; taken: boolean; issues: OnecIssue[] }[] = [];
  let fileIssues: OnecIssue[] = [];
  let exchange = true;
  let batch: IntakeItem[] = [];
  /** documents[] index of each batch item. */
  let batchDocs: number[] = [];
  let created = 0;
  let hooked = whileReading === undefined;
  // A batch goes in only while the file is as it was opened: its documents are then bytes of the
  // file that is hashed and archived, never a mix of an old and a new export.
  const flush = async (): Promise<boolean> => {
    if (batch.length === 0) return true;
    if (!(await reading.unchanged())) return false;
    const results = await intakeOrders(context.orm.em.fork(), ONEC_SOURCE, batch, port, { actor: 'onec-outbox', now: context.clock.now(), logger: log, numberedWithinYear: true });
    created += results.filter((r) => r.created || r.corrected).length;
    results.forEach((result, i) => {
      if (!result.conflict) return;
      // The document's number and date are taken by an order with other requisites: nothing changed.
      const doc = documents[batchDocs[i]];
      doc.taken = false;
      doc.issues.push(conflictIssue(doc.line, doc.number, result.conflict, result.orderId));
    });
    batch = [];
    batchDocs = [];
    return true;
  };
  const progress = (): OutboxFileResult => ({ ...base, documents: documents.length, taken: documents.filter((d) => d.taken).length, created });
  for await (const event of readOnecExchange(reading.chunks(), { fileName: file.path })) {
    if (!hooked) {
      hooked = true;
      await whileReading?.({ outboxPath: join(dir, file.name), claimedPath: file.path });
    }
    if (event.type === 'document') {
      const doc = event.document;
      const issues = [...doc.errors];
      if (doc.statement) {
        issues.push({ line: doc.line, field: 'СекцияДокумент', code: 'NOT_A_PAYMENT_ORDER', message: `Документ «${doc.kind}» — строка выписки, а не платёжное поручение; в банк не отправляется`, messageEn: `a "${doc.kind}" is a statement line, not a payment order` });
      } else {
        // A payment request, a cash cheque, ... read as a payment order would pay what 1C never ordered paid.
        const kindIssue = unsupportedKindIssue(doc);
        if (kindIssue) issues.push(kindIssue);
      }
      if (issues.length === 0) issues.push(...overlongKeyIssues(doc));
      const taken = issues.length === 0;
      documents.push({ line: doc.line, number: doc.order.number, taken, issues });
      if (taken) {
        // Requisite rules are judged by the validate stage; intake keeps the original text.
        batch.push({ order: { ...doc.order, raw: undefined }, rawDocument: doc.text });
        batchDocs.push(documents.length - 1);
        if (batch.length >= BATCH && !(await flush())) return changed(progress());
      }
    } else if (event.type === 'end') {
      exchange = event.file.exchange;
      fileIssues = [...event.file.errors, ...event.file.warnings.filter((w) => w.code !== 'ENCODING_MISMATCH' && w.code !== 'LINE_ENCODING')];
    }
  }
  if (!(await flush())) return changed(progress());
  const sha256 = await reading.sha256();
  const taken = documents.filter((d) => d.taken).length;
  const result = { ...base, sha256, documents: documents.length, taken, created, refused: documents.length - taken };
  const broken = !exchange || taken < documents.length || fileIssues.some((i) => isFileError(i));
  if (!broken) {
    const movedTo = await archiveOutboxFile(dir, reading);
    if (movedTo === undefined) return changed(result);
    log.info({ event: 'onec.outbox.archived', movedTo, documents: documents.length, created });
    return { ...result, outcome: 'archived', movedTo };
  }
  const reason = !exchange ? 'это не файл обмена 1С (1CClientBankExchange) / not a 1C exchange file' : brokenReason(documents.length - taken, fileIssues);
  const movedTo = await moveToError(dir, reading, renderOutboxReport({ file: file.name, sha256, at: now, reason, fileIssues, documents }));
  if (movedTo === undefined) return changed(result);
  log.warn({ event: 'onec.outbox.error', movedTo, documents: documents.length, taken, created });
  return { ...result, outcome: 'error', movedTo };
}

/**
 * The natural key's text fields (document number, payer IIK) longer than an order can have: the
 * bank contract's 64 characters for a number (CONTRACT_LIMITS), the 64 of the order schema for an
 * account (what the HTTP intake refuses). PostgreSQL cannot index a long one (about 2.7 KB), so one
 * such document, a damaged line or text pasted into the number, failed the insert of its whole batch:
 * no document of the file went in and the file waited in processing/ for ever, failing every scan.
 * Refused here by line, as the validator would refuse it (NUMBER_TOO_LONG), the others go in.
 */
function overlongKeyIssues(doc: OnecDocument): OnecIssue[] {
  const issues: OnecIssue[] = [];
  const check = (field: 'number' | 'payer.iban', value: string, max: number, code: string, ru: string) => {
    if (value.length <= max) return;
    const source = doc.sources[field];
    const line = source?.line ?? doc.line;
    const issue: OnecIssue = {
      line,
      field,
      code,
      message: `Строка ${line}: ${ru} длиннее ${max} знаков (${value.length}); документ не принят`,
      messageEn: `line ${line}: ${field} is ${value.length} characters, limit ${max}`,
    };
    if (source) issue.key = source.key;
    issues.push(issue);
  };
  check('number', doc.order.number, CONTRACT_LIMITS.numberMaxLength, 'NUMBER_TOO_LONG', 'номер документа');
  check('payer.iban', doc.order.payer.iban, PAYER_IBAN_MAX_LENGTH, 'IBAN_TOO_LONG', 'ИИК плательщика');
  return issues;
}

/** The order schema's bound of an account (what the HTTP intake refuses beyond). */
const PAYER_IBAN_MAX_LENGTH = partySchema.shape.iban.maxLength ?? 64;

function conflictIssue(line: number, number: string, conflict: IntakeConflict, orderId: string): OnecIssue {
  const advice = conflictAdvice(conflict.state, orderId);
  const ru = describeDifferences(conflict, 'ru');
  const en = describeDifferences(conflict, 'en');
  if (conflict.redated) {
    const stored = conflict.differences[0]?.stored;
    return {
      line,
      field: 'date',
      code: 'DOCUMENT_CONFLICT',
      message: `Строка ${line}: документ №${number} этого счёта на ту же сумму тому же получателю уже принят (${conflict.state}) с датой ${stored}; копия с другой датой — тот же документ, она не принята (повторный платёж выгрузите под новым номером): ${advice.ru}`,
      messageEn: `line ${line}: document ${number} of this account, of the same amount to the same beneficiary, is already taken (${conflict.state}) dated ${stored}; a copy under another date is the same document and was not taken (a payment made again takes a new number): ${advice.en}`,
    };
  }
  return {
    line,
    field: conflict.differences.map((d) => d.field).join(', '),
    code: 'DOCUMENT_CONFLICT',
    message: `Строка ${line}: документ №${number} с этой датой и счётом уже принят (${conflict.state}) с другими реквизитами (${ru}); ничего не изменено: ${advice.ru}`,
    messageEn: `line ${line}: document ${number} of this date and account is already taken (${conflict.state}) with other requisites (${en}); nothing was changed: ${advice.en}`,
  };
}

/**
 * File-level issues that make a file broken (a missing `КонецФайла` was already waited for): it
 * goes to error/ with its report, its good documents taken in.
 * CONTENT_AFTER_END: lines after `КонецФайла` (not blank lines or padding, the reader skips those)
 * are never read; typically a second export appended to the first, whose documents would
 * otherwise be dropped without a word.
 */
function isFileError(issue: OnecIssue): boolean {
  return issue.code === 'NOT_EXCHANGE_FILE' || issue.code === 'LINE_TOO_LONG' || issue.code === 'MALFORMED_LINE' || issue.code === 'CONTENT_AFTER_END' || isOutsideDocument(issue);
}

/**
 * Document lines outside any document, or a КонецДокумента without its start: the mark of a
 * СекцияДокумент line that lost a byte. That document was not read at all; archived as good, the
 * file dropped the order without a word.
 */
function isOutsideDocument(issue: OnecIssue): boolean {
  return issue.code === 'STRAY_END' || issue.code === 'LINE_OUTSIDE_SECTION';
}

/** The report's `Причина`: what was not read and, for content after the end, what to do. */
function brokenReason(refused: number, fileIssues: OnecIssue[]): string {
  const reasons: string[] = [];
  if (refused > 0) reasons.push(`не все документы прочитаны / ${refused} document(s) could not be read`);
  const afterEnd = fileIssues.find((i) => i.code === 'CONTENT_AFTER_END');
  if (afterEnd !== undefined) {
    reasons.push(
      `после строки КонецФайла, со строки ${afterEnd.line}, файл продолжается (например, в него дописана вторая выгрузка): эти строки не прочитаны, их документы не приняты; ` +
        `выгрузите эти документы из 1С снова отдельным файлом (или удалите из файла всё до строки ${afterEnd.line} и положите его снова) / ` +
        `the file goes on after КонецФайла from line ${afterEnd.line} (e.g. a second export appended): those lines were not read and their documents not taken; ` +
        `export them from 1C again as a file of their own (or delete everything before line ${afterEnd.line} and drop the file again)`,
    );
  }
  const outside = fileIssues.find(isOutsideDocument);
  if (outside !== undefined) {
    reasons.push(
      `со строки ${outside.line} строки документа стоят вне раздела СекцияДокумент (вероятно, повреждена строка начала документа): этот документ не прочитан и не принят; выгрузите его из 1С снова / ` +
        `from line ${outside.line} document lines stand outside any СекцияДокумент (its first line is probably damaged): that document was not read nor taken; export it from 1C again`,
    );
  }
  if (reasons.length === 0) reasons.push('файл прочитан не полностью / the file could not be read in full');
  return reasons.join('; ');
}

export const handleScanOnecOutbox: JobHandler<typeof scanOnecOutboxJob.payload> = async (_payload, context, job) => {
  const log = context.logger.child({ jobId: job.id });
  const redis = context.queues.connection;
  const results = await scanOnecOutbox(context, redis);
  if (results === 'locked') log.debug({ event: 'onec.outbox.locked' });
  else if (results.some((r) => r.outcome !== 'waiting')) log.info({ event: 'onec.outbox.scanned', files: results.length });
  return results === 'locked' ? { locked: true } : { files: results.map((r) => ({ file: r.file, outcome: r.outcome, created: r.created })) };
};
