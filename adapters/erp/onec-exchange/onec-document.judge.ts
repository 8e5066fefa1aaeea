import type { FieldError } from '../../../connector/orders/payment-order';
import { validatePaymentOrder, type RequisitesConfig } from '../../../connector/requisites/payment-order.validator';
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

export function judgeOnecDocument(doc: OnecDocument, options: JudgeOptions): JudgedOnecDocument {
  const errors = [...doc.errors];
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
