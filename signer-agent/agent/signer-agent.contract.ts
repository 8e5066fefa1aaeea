import { z } from 'zod';

/**
 * The agent's HTTP contract (README.md beside this file), shared by the server and the client.
 * Binary values travel as standard base64 in JSON.
 */
export const USER_ID = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
export const ORDER_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
// Checked in linear time: a regex with a repeated group runs out of stack on a document of a few MB.
const BASE64_CHARS = /^[A-Za-z0-9+/]*={0,2}$/;
const isBase64 = (s: string) => s.length % 4 === 0 && BASE64_CHARS.test(s);

export const userIdSchema = z.string().regex(USER_ID, 'expected 1-128 letters, digits, "_", ".", "@" or "-"');
const digits12 = z.string().regex(/^\d{12}$/, 'expected 12 digits');
/** Non-empty standard base64. */
const base64 = (emptyMessage?: string) => z.string().min(1, emptyMessage).refine(isBase64, 'expected standard base64');

export const enrollBodySchema = z
  .object({
    keystorePath: z.string().min(1).max(4096),
    expectedIin: digits12.nullish(),
  })
  .strict();

export const unlockBodySchema = z.object({ password: z.string().min(1).max(1024) }).strict();

export const signBodySchema = z
  .object({
    orderId: z.string().regex(ORDER_ID, 'expected 1-128 letters, digits, "_", ".", ":" or "-"'),
    document: base64('the document is empty'),
    cosign: base64().nullish(),
    /** Honoured only in test mode (CONNECTOR_TEST_MODE=1); otherwise the signing moment is now. */
    signingTime: z.string().datetime({ offset: true }).nullish(),
    expectedIin: digits12.nullish(),
    expectedBin: digits12.nullish(),
  })
  .strict();

/** Most documents one sign-batch request carries. */
export const MAX_SIGN_BATCH = 64;
/** Most bytes of documents and CMS to cosign that a client packs in one sign-batch request; a larger document travels alone. */
export const SIGN_BATCH_BYTES = 4 * 1024 * 1024;

/** Several documents signed by the same user's key in one request (the pipeline's sign stage); each item is a sign body, checked on its own. */
export const signBatchBodySchema = z.object({ items: z.array(z.unknown()).min(1).max(MAX_SIGN_BATCH) }).strict();

export const lockdownBodySchema = z.object({ reason: z.string().max(500).nullish() }).strict();

export type EnrollRequest = z.infer<typeof enrollBodySchema>;
export type SignRequest = z.infer<typeof signBodySchema>;

export interface KeySessionView {
  algorithm: string;
  subject: string;
  iin: string | null;
  bin: string | null;
  serial: string;
  notBefore: string;
  notAfter: string;
  unlockedAt: string;
  lastUsedAt: string;
  idleExpiresAt: string;
  expiresAt: string;
}

export interface KeyStatusResponse {
  userId: string;
  keystorePath: string;
  expectedIin: string | null;
  enrolledAt: string;
  wrongPasswordCount: number;
  wrongPasswordTotal: number;
  lastWrongPasswordAt: string | null;
  unlocked: boolean;
  session: KeySessionView | null;
}

export interface SignResponse {
  orderId: string;
  userId: string;
  /** Detached CMS SignedData, DER, base64. */
  cms: string;
  algorithm: string;
  serial: string;
  subject: string;
  iin: string | null;
  bin: string | null;
  signingTime: string;
  documentSha256: string;
}

export interface LockResponse {
  userId: string;
  wiped: boolean;
}

export interface LockdownResponse {
  wipedUsers: string[];
  workers: number;
  workersAcknowledged: number;
  /** Measured inside the agent from the start of the lockdown to the wipe being in force. */
  elapsedMs: number;
}

export interface AgentStatusResponse {
  version: string;
  pid: number;
  startedAt: string;
  testMode: boolean;
  workers: number;
  idleTimeoutSeconds: number;
  sessionMaxSeconds: number;
  users: KeyStatusResponse[];
}

/** One item of a sign-batch answer, in the order of the request: the signature, or that item's refusal with the HTTP status a single sign would have had. */
export type SignBatchItem = ({ ok: true } & SignResponse) | { ok: false; orderId: string; status: number; error: AgentErrorBody };

export interface SignBatchResponse {
  results: SignBatchItem[];
}

export interface AgentErrorBody {
  code: string;
  message: string;
  details?: unknown;
}
