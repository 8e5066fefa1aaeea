import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import type IORedis from 'ioredis';
import { z } from 'zod';
import { readOnecExchangeFile } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import type { OnecIssue } from '../../adapters/erp/onec-exchange/onec-exchange.types';
import {
  archiveOutboxFile,
  listOutbox,
  moveToError,
  readiness,
  renderOutboxReport,
  sha256File,
  type OutboxFile,
} from '../../adapters/erp/onec-exchange/onec-outbox.folder';
import { intakeOrders, type IntakeConflict, type IntakeItem } from '../../connector/intake/order-intake';
import { bullmqIntakePort } from '../bullmq-intake.port';
import { defineJob, type JobHandler } from '../job-definition';
import type { JobContext } from '../job-context';

export const scanOnecOutboxJob = defineJob({
  name: 'onec.outbox.scan',
  queue: 'intake',
  payload: z.object({}).passthrough(),
  jobId: () => 'onec-outbox-scan',
});

/** The intake source of 1C files (the natural key is payer account, number and date, whatever the source: a document dropped twice, in any file, is one order). */
export const ONEC_SOURCE = 'onec';
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

/**
 * One scan of the 1C outbox (`onec.outboxDir`): each ready file (stable size, ends with
 * `КонецФайла`) is read with the streaming reader; its readable payment orders go to the
 * domain's intake in batches (natural key: the same file or document dropped twice makes no
 * second order); the file moves to `archive/` with its sha256, or, when anything in it could not
 * be read, to `error/` with a report beside (the good documents still went through).
 *
 * Single watcher: a Redis lock (`<prefix>:onec:outbox:lock`, SET NX PX, renewed while the scan
 * runs, released by compare-and-delete) keeps two connectors sharing Redis off the same folder.
 */
export async function scanOnecOutbox(context: JobContext, redis: IORedis, options: { lockMs?: number } = {}): Promise<OutboxFileResult[] | 'locked'> {
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
    for (const file of await listOutbox(dir)) results.push(await processFile(context, dir, file));
    return results;
  } finally {
    clearInterval(timer);
    await redis.eval(release, 1, key, me).catch(() => undefined);
  }
}

async function processFile(context: JobContext, dir: string, file: OutboxFile): Promise<OutboxFileResult> {
  const log = context.logger.child({ file: file.name });
  const now = context.clock.now();
  const stableMs = context.config.onec.stableMs;
  // A file without КонецФайла that has not changed for this long will never be finished.
  const incompleteAfterMs = Math.max(10 * 60_000, 30 * stableMs);
  const ready = await readiness(file, now.getTime(), stableMs, incompleteAfterMs);
  const base: OutboxFileResult = { file: file.name, outcome: 'waiting', documents: 0, taken: 0, created: 0, refused: 0 };
  if (ready === 'writing') return base;
  const sha256 = await sha256File(file.path);
  if (ready === 'incomplete') {
    const report = renderOutboxReport({ file: file.name, sha256, at: now, reason: `файл не завершён строкой КонецФайла и не менялся ${Math.round(incompleteAfterMs / 60000)} мин (the file never got its КонецФайла)`, fileIssues: [], documents: [] });
    const movedTo = await moveToError(dir, file, report);
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
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const results = await intakeOrders(context.orm.em.fork(), ONEC_SOURCE, batch, port, { actor: 'onec-outbox', now: context.clock.now(), logger: log });
    created += results.filter((r) => r.created || r.corrected).length;
    results.forEach((result, i) => {
      if (!result.conflict) return;
      // The document's number and date are taken by an order with other requisites: nothing changed.
      const doc = documents[batchDocs[i]];
      doc.taken = false;
      doc.issues.push(conflictIssue(doc.line, doc.number, result.conflict));
    });
    batch = [];
    batchDocs = [];
  };
  for await (const event of readOnecExchangeFile(file.path)) {
    if (event.type === 'document') {
      const doc = event.document;
      const issues = [...doc.errors];
      if (doc.statement) {
        issues.push({ line: doc.line, field: 'СекцияДокумент', code: 'NOT_A_PAYMENT_ORDER', message: `Документ «${doc.kind}» — строка выписки, а не платёжное поручение; в банк не отправляется`, messageEn: `a "${doc.kind}" is a statement line, not a payment order` });
      }
      const taken = issues.length === 0;
      documents.push({ line: doc.line, number: doc.order.number, taken, issues });
      if (taken) {
        // Requisite rules are judged by the validate stage; intake keeps the original text.
        batch.push({ order: { ...doc.order, raw: undefined }, rawDocument: doc.text });
        batchDocs.push(documents.length - 1);
        if (batch.length >= BATCH) await flush();
      }
    } else if (event.type === 'end') {
      exchange = event.file.exchange;
      fileIssues = [...event.file.errors, ...event.file.warnings.filter((w) => w.code !== 'ENCODING_MISMATCH' && w.code !== 'LINE_ENCODING')];
    }
  }
  await flush();
  const taken = documents.filter((d) => d.taken).length;
  const result = { ...base, sha256, documents: documents.length, taken, created, refused: documents.length - taken };
  const broken = !exchange || taken < documents.length || fileIssues.some((i) => isFileError(i));
  if (!broken) {
    const movedTo = await archiveOutboxFile(dir, file, sha256);
    log.info({ event: 'onec.outbox.archived', movedTo, documents: documents.length, created });
    return { ...result, outcome: 'archived', movedTo };
  }
  const reason = !exchange ? 'это не файл обмена 1С (1CClientBankExchange) / not a 1C exchange file' : `не все документы прочитаны / ${documents.length - taken} document(s) could not be read`;
  const movedTo = await moveToError(dir, file, renderOutboxReport({ file: file.name, sha256, at: now, reason, fileIssues, documents }));
  log.warn({ event: 'onec.outbox.error', movedTo, documents: documents.length, taken, created });
  return { ...result, outcome: 'error', movedTo };
}

function conflictIssue(line: number, number: string, conflict: IntakeConflict): OnecIssue {
  const ru = conflict.differences.map((d) => `${d.field}: было ${d.stored ?? '—'}, стало ${d.received ?? '—'}`).join('; ');
  const en = conflict.differences.map((d) => `${d.field}: stored ${d.stored ?? 'none'}, received ${d.received ?? 'none'}`).join('; ');
  return {
    line,
    field: conflict.differences.map((d) => d.field).join(', '),
    code: 'DOCUMENT_CONFLICT',
    message: `Строка ${line}: документ №${number} с этой датой и счётом уже принят (${conflict.state}) с другими реквизитами (${ru}); ничего не изменено: изменённый документ выгрузите под новым номером`,
    messageEn: `line ${line}: document ${number} of this date and account is already taken (${conflict.state}) with other requisites (${en}); nothing was changed: export a changed document under a new number`,
  };
}

/** File-level issues that make a file broken (a missing `КонецФайла` was already waited for). */
function isFileError(issue: OnecIssue): boolean {
  return issue.code === 'NOT_EXCHANGE_FILE' || issue.code === 'LINE_TOO_LONG' || issue.code === 'MALFORMED_LINE';
}

export const handleScanOnecOutbox: JobHandler<typeof scanOnecOutboxJob.payload> = async (_payload, context, job) => {
  const log = context.logger.child({ jobId: job.id });
  const redis = context.queues.connection;
  const results = await scanOnecOutbox(context, redis);
  if (results === 'locked') log.debug({ event: 'onec.outbox.locked' });
  else if (results.some((r) => r.outcome !== 'waiting')) log.info({ event: 'onec.outbox.scanned', files: results.length });
  return results === 'locked' ? { locked: true } : { files: results.map((r) => ({ file: r.file, outcome: r.outcome, created: r.created })) };
};
