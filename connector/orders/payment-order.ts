import { z } from 'zod';

/**
 * The normalised payment order: one shape for every ERP (INTERFACES.md, "1C files").
 * Amount is a decimal string at this edge ("7745.70"); inside the domain it becomes tiyn.
 * Requisite rules (IIN/BIN checksum, IBAN, KNP, ...) are judged by the validator, not here:
 * this schema only says "this is an order at all". Unknown fields are refused (strict), at every
 * level: a misspelt optional field (`valuedate`, `erpDocumentID`) would otherwise vanish and the
 * order be made with the default in its place.
 */
export const partySchema = z.object({
  name: z.string().max(500),
  iinBin: z.string().max(32),
  iban: z.string().max(64),
  bic: z.string().max(32),
}).strict();

/**
 * `raw`, the document's keys as 1C wrote them (`onec parse --json` prints them; INTERFACES.md lists
 * it in the normalised shape the HTTP API takes), is kept with the order's raw document for the
 * archive, so it is bounded like every other field: it was an unbounded map, and one value
 * of 15 MB was stored as the order's raw document. A 1C payment order has some 60 keys with short
 * names; no value of one is longer than its longest field, the purpose.
 */
export const RAW_MAX_KEYS = 200;
export const RAW_KEY_MAX_CHARS = 128;
export const RAW_VALUE_MAX_CHARS = 2000;

const rawSchema = z
  .record(
    z.string().max(RAW_KEY_MAX_CHARS, `a key of raw has at most ${RAW_KEY_MAX_CHARS} characters`),
    z.string().max(RAW_VALUE_MAX_CHARS, `a value of raw has at most ${RAW_VALUE_MAX_CHARS} characters (as many as purpose)`),
  )
  .refine((raw) => Object.keys(raw).length <= RAW_MAX_KEYS, { message: `raw has at most ${RAW_MAX_KEYS} keys` });

export const paymentOrderSchema = z.object({
  number: z.string().min(1).max(64),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected an ISO date YYYY-MM-DD'),
  // Money is never a float: a JSON number may already be a binary approximation of the amount
  // (the ERP's encoder parsed and printed it), so it is refused naming the rule, never converted.
  amount: z
    .string({ errorMap: (issue, ctx) => ({ message: issue.code === 'invalid_type' && issue.received === 'number' ? 'expected a decimal string like "12.50", not a number: money is never a float' : ctx.defaultError }) })
    .max(32),
  currency: z.string().max(8).default('KZT'),
  payer: partySchema.extend({ kod: z.string().max(8) }).strict(),
  beneficiary: partySchema.extend({ kbe: z.string().max(8) }).strict(),
  knp: z.string().max(8),
  purpose: z.string().max(2000),
  kbk: z.string().max(16).optional(),
  valueDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'expected an ISO date YYYY-MM-DD').optional(),
  erpDocumentId: z.string().max(128).optional(),
  direction: z.enum(['out', 'in']).optional(),
  raw: rawSchema.optional(),
}).strict();

/**
 * The document number as the natural key (payer account, number, date) holds it: surrounding
 * whitespace removed (JavaScript's `trim`: tab, line breaks, no-break and other Unicode spaces, a
 * BOM) and NFC. The 1C reader trims every value and an ERP's JSON may not: "17", "17 " and " 17"
 * were three orders of one document, over HTTP or once through each channel. Characters inside
 * the number that no one sees (zero-width, bidi controls) are not removed here but refused by the
 * validator (NUMBER_CHAR): guessing them away could merge two documents that really differ.
 */
export function normaliseDocumentNumber(number: string): string {
  return number.trim().normalize('NFC');
}

/**
 * The source of orders a person enters through the console with their session (the natural key's
 * ERP source): not an ERP's order, so no standing mandate signs it (config `signing.mandates`).
 */
export const CONSOLE_SOURCE = 'console';

export type PaymentOrderInput = z.input<typeof paymentOrderSchema>;
export type NormalisedOrder = z.output<typeof paymentOrderSchema>;

/** A requisite-rule failure on one field of an order. `message` is Russian for the 1C user. */
export interface FieldError {
  field: string;
  code: string;
  message: string;
  /** The same in English, for logs. */
  messageEn?: string;
}
