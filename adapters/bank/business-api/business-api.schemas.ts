import { z } from 'zod';

/**
 * zod mirrors of the response schemas in openapi.yaml. Every response the client receives is
 * checked against one of these; a mismatch is CONTRACT_VIOLATION. Objects are `passthrough`-free
 * but not strict: unknown fields are tolerated and dropped.
 */
const amount = z.string().regex(/^\d{1,16}\.\d{2}$/);
const signedAmount = z.string().regex(/^-?\d{1,16}\.\d{2}$/);
const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/);

export const errorBodySchema = z.object({ code: z.string().min(1), message: z.string(), field: z.string().optional() });
export type BankErrorBody = z.infer<typeof errorBodySchema>;

export const tokenSchema = z.object({
  access_token: z.string().min(16),
  token_type: z.string().refine((t) => t.toLowerCase() === 'bearer', 'expected a Bearer token'),
  // A lifetime the contract would give as a positive integer, as some token servers do give it: 0, a
  // fraction, a string of digits. Refused, no call went through (and a submit ended `failed` with
  // nothing sent); the client floors a lifetime too short to use (business-api.client.ts).
  expires_in: z.union([z.number(), z.string().regex(/^\d{1,10}(\.\d+)?$/).transform(Number)]).pipe(z.number().finite().nonnegative()),
});

/** Known statuses; any other string is kept verbatim and treated as non-final. */
export const KNOWN_STATUSES = ['accepted', 'in_processing', 'executed', 'rejected'] as const;
export type KnownStatus = (typeof KNOWN_STATUSES)[number];
export const FINAL_STATUSES: ReadonlySet<string> = new Set(['executed', 'rejected']);

export const paymentStatusSchema = z.object({
  documentId: z.string().min(1),
  externalId: z.string().min(1),
  status: z.string().min(1),
  reasonCode: z.string().optional(),
  reasonText: z.string().optional(),
  updatedAt: z.string().datetime({ offset: true }),
  operationalDay: isoDate.optional(),
  bankReference: z.string().optional(),
  fee: amount.optional(),
});

export const paymentDocumentSchema = paymentStatusSchema.extend({
  receivedAt: z.string().datetime({ offset: true }),
  document: z.object({ payerAccount: z.string(), number: z.string(), date: isoDate, amount, currency: z.string() }),
});

export const accountSchema = z.object({
  iban: z.string(),
  currency: z.string(),
  name: z.string().optional(),
  balance: signedAmount,
  available: signedAmount,
  status: z.string(),
});
export const accountsSchema = z.object({ accounts: z.array(accountSchema) });

const LINE_KINDS = ['payment', 'fee', 'tax', 'other'] as const;

export const counterpartySchema = z.object({ name: z.string(), iinBin: z.string(), iban: z.string(), bic: z.string() });
export const statementLineSchema = z.object({
  lineId: z.string().min(1),
  bookingDate: isoDate,
  valueDate: isoDate,
  direction: z.enum(['debit', 'credit']),
  amount,
  currency: z.string(),
  // `booked` or `pending`; a status this contract does not name yet ("reversed", say) is read as
  // pending by the mapper (kept apart, out of the balance check), not as a broken statement: that
  // stopped the account's statements and reconciliation altogether. If such a line did
  // move money, the booked lines no longer add up and the statement's balance check says so.
  status: z.string().min(1),
  // A kind this contract does not name yet (a conversion, say) is `other`, not a broken statement:
  // refusing the whole statement would leave the account's debits unseen, while an `other`
  // debit no order explains is an unexplained debit, which a person looks at.
  kind: z.string().transform((kind): (typeof LINE_KINDS)[number] => ((LINE_KINDS as readonly string[]).includes(kind) ? (kind as (typeof LINE_KINDS)[number]) : 'other')),
  counterparty: counterpartySchema,
  purpose: z.string(),
  knp: z.string().optional(),
  documentNumber: z.string().optional(),
  documentDate: isoDate.optional(),
  bankReference: z.string().optional(),
  externalId: z.string().optional(),
});
export const statementSchema = z.object({
  account: z.string(),
  currency: z.string(),
  from: isoDate,
  to: isoDate,
  kind: z.enum(['booked', 'intraday']).optional(),
  openingBalance: signedAmount,
  closingBalance: signedAmount,
  lines: z.array(statementLineSchema),
});

export type BankPaymentStatus = z.infer<typeof paymentStatusSchema>;
export type BankPaymentDocument = z.infer<typeof paymentDocumentSchema>;
export type BankAccount = z.infer<typeof accountSchema>;
export type BankStatement = z.infer<typeof statementSchema>;
export type BankStatementLine = z.infer<typeof statementLineSchema>;
