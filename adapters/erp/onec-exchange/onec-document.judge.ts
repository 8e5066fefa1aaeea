import type { FieldError } from '../../../connector/orders/payment-order';
import { validatePaymentOrder, type RequisitesConfig } from '../../../connector/requisites/payment-order.validator';
import { isPaymentOrderKind } from './onec-exchange.reader';
import type { OnecDocument, OnecIssue, OnecOrder } from './onec-exchange.types';

/**
 * The verdict on one document of a 1C file (INTERFACES.md "1C files"): a payment order exported
 * by an ERP is `ok` when it was read and every requisite rule passed; a document inside a bank
 * statement is a fact the bank executed, so it is `ok` when it was read and rule breaches are
 * warnings only.
 */
export interface JudgedOnecDocument {
  line: number;
  kind: string;
  ok: boolean;
  order: OnecOrder;
  errors: OnecIssue[];
  warnings: OnecIssue[];
}

export interface JudgeOptions {
  now: Date;
  rules?: Partial<RequisitesConfig>;
}

/**
 * A document an ERP exported that is not a payment order (`Платежное требование`, `Денежный чек`,
 * a bare `СекцияДокумент` whose header names no one kind): never sent as one. Undefined for a
 * payment order and for a statement line (the bank's fact, of whatever kind).
 */
export function unsupportedKindIssue(doc: OnecDocument): OnecIssue | undefined {
  if (doc.statement || isPaymentOrderKind(doc.kind)) return undefined;
  const issue: OnecIssue = {
    line: doc.line,
    field: 'СекцияДокумент',
    code: 'UNSUPPORTED_KIND',
    message: doc.kind
      ? `Строка ${doc.line}: документ вида «${doc.kind}» не платёжное поручение; коннектор отправляет в банк только платёжные поручения, документ не принят`
      : `Строка ${doc.line}: у СекцияДокумент не указан вид документа; неясно, платёжное ли это поручение, документ не принят — выгрузите его из 1С снова`,
    messageEn: doc.kind ? `line ${doc.line}: a "${doc.kind}" is not a payment order; only payment orders go to the bank` : `line ${doc.line}: СекцияДокумент names no kind; it is not known to be a payment order`,
    key: 'СекцияДокумент',
  };
  if (doc.file !== undefined) issue.file = doc.file;
  return issue;
}

export function judgeOnecDocument(doc: OnecDocument, options: JudgeOptions): JudgedOnecDocument {
  const errors = [...doc.errors];
  const kindIssue = unsupportedKindIssue(doc);
  if (kindIssue) errors.push(kindIssue);
  const warnings = [...doc.warnings];
  const located = (e: FieldError): OnecIssue => {
    const source = doc.sources[e.field];
    const issue: OnecIssue = { line: source?.line ?? doc.line, field: e.field, code: e.code, message: e.message, messageEn: e.messageEn ?? e.message };
    if (source) issue.key = source.key;
    if (doc.file !== undefined) issue.file = doc.file;
    return issue;
  };
  const result = validatePaymentOrder(doc.order, { now: options.now, rules: options.rules, mode: doc.statement ? 'statement' : 'order' });
  // A field the reader could not read already has its error; the rule would only repeat it.
  const structural = new Set(doc.errors.map((e) => e.field));
  for (const e of result.errors) if (!structural.has(e.field)) errors.push(located(e));
  for (const w of result.warnings) if (!structural.has(w.field)) warnings.push(located(w));
  return { line: doc.line, kind: doc.kind, ok: errors.length === 0, order: doc.order, errors, warnings };
}
