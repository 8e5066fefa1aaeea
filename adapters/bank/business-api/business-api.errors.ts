import { errorBodySchema } from './business-api.schemas';

/**
 * The client's error taxonomy (INTERFACES.md "Error codes of the bank client"). Callers branch on
 * `code` only: TRANSIENT / RATE_LIMITED / MAINTENANCE are retried later (R-24), AUTH and
 * CREDENTIALS_REVOKED stop work (R-2, R-31), REJECTED is final with the bank's reason (R-23),
 * OUTCOME_UNKNOWN is resolved by a lookup by external id, never by a resend.
 * CREDENTIALS_UNAVAILABLE is ours, not the bank's: the credentials provider could not give the
 * Client ID / Secret (e.g. the vault's master key cannot open the secret), nothing was sent, and
 * nothing changes until an operator fixes the configuration.
 */
export type BankErrorCode =
  | 'TRANSIENT'
  | 'RATE_LIMITED'
  | 'MAINTENANCE'
  | 'AUTH'
  | 'CREDENTIALS_REVOKED'
  | 'CREDENTIALS_UNAVAILABLE'
  | 'REJECTED'
  | 'NOT_FOUND'
  | 'OUTCOME_UNKNOWN'
  | 'CONTRACT_VIOLATION';

export class BankError extends Error {
  constructor(
    readonly code: BankErrorCode,
    message: string,
    readonly details: {
      httpStatus?: number;
      /** The bank's own code (e.g. INSUFFICIENT_FUNDS), verbatim. */
      bankCode?: string;
      /** REJECTED: the bank's reason code (R-23). */
      reasonCode?: string;
      /** REJECTED: Russian text a 1C user understands (R-23). */
      reasonText?: string;
      /** REJECTED by a code this release does not know (a submit's 422): the caller decides whether it may be taken as a refusal. */
      unknownCode?: boolean;
      /** RATE_LIMITED / MAINTENANCE: how long to wait, from Retry-After (R-24). */
      retryAfterMs?: number;
      field?: string;
      /** CREDENTIALS_UNAVAILABLE: the credentials provider's own code (e.g. MASTER_KEY_MISSING). */
      providerCode?: string;
      /** The call the bank answered (an HTTP status belongs to it: a 400 to /oauth/token is not the submit's). */
      operation?: BankOperation;
    } = {},
  ) {
    super(message);
    this.name = 'BankError';
  }
  get reasonCode(): string | undefined {
    return this.details.reasonCode;
  }
  get retryAfterMs(): number | undefined {
    return this.details.retryAfterMs;
  }
  /** Worth trying again later with the same request (for submit: only after a lookup). */
  get retryable(): boolean {
    return this.code === 'TRANSIENT' || this.code === 'RATE_LIMITED' || this.code === 'MAINTENANCE';
  }
}

/**
 * R-23 refusal reasons in words a person understands (written back to the ERP). Unknown codes
 * fall back to the bank's own message.
 */
export const REASON_TEXT_RU: Readonly<Record<string, string>> = {
  INSUFFICIENT_FUNDS: 'Недостаточно средств на счёте для оплаты платежа и комиссии банка',
  MALFORMED_DOCUMENT: 'Платёжный документ оформлен неверно и не может быть принят банком',
  REQUISITES_INVALID: 'Неверные реквизиты платёжного документа',
  DOCUMENT_MISMATCH: 'Данные запроса не совпадают с подписанным документом',
  SIGNATURE_INVALID: 'Электронная цифровая подпись документа недействительна',
  CERTIFICATE_INVALID: 'Сертификат ЭЦП недействителен, отозван или выдан не доверенным УЦ',
  SIGNER_NOT_AUTHORISED: 'Подписавший не является уполномоченным лицом плательщика',
  ACCOUNT_SUSPENDED: 'Операции по счёту плательщика приостановлены',
  ACCOUNT_ARRESTED: 'На счёт плательщика наложен арест или имеются требования, исполняемые в приоритетном порядке',
  ACCOUNT_NOT_FOUND: 'Счёт плательщика не найден в банке',
  AUTHENTICATION_IMPOSSIBLE: 'Банк не смог идентифицировать или аутентифицировать клиента',
  CREDENTIALS_COMPROMISED: 'Учётные данные клиента скомпрометированы; банк отказал в исполнении',
  AML_REFUSAL: 'Отказ банка в рамках законодательства о противодействии легализации доходов (ПОД/ФТ)',
  DUPLICATE_DOCUMENT: 'Документ с таким номером и датой по этому счёту уже принят банком',
  EXTERNAL_ID_CONFLICT: 'Под этим идентификатором банк уже принял другой документ',
};

export function reasonTextRu(code: string, bankMessage?: string): string {
  return REASON_TEXT_RU[code] ?? (bankMessage ? `Банк отказал: ${bankMessage}` : `Банк отказал (код ${code})`);
}

/** Bank codes that are a definite refusal of this document (final), when the submit gets them. */
const REFUSAL_CODES = new Set(Object.keys(REASON_TEXT_RU));

/** Refusals of the client itself (R-31: identification, authentication, compromise), whatever call gets them. */
const ACCESS_REFUSALS = new Set(['AUTHENTICATION_IMPOSSIBLE', 'CREDENTIALS_COMPROMISED']);

export type BankOperation = 'token' | 'submit' | 'lookup' | 'status' | 'accounts' | 'statement';

/** What parseBankError needs of an HTTP answer or a transport failure; axios errors are adapted by `fromAxiosError`. */
export interface BankFailure {
  operation: BankOperation;
  /** Absent when no HTTP answer arrived. */
  status?: number;
  headers?: Record<string, unknown>;
  body?: unknown;
  /** Node/axios error code for transport failures (ECONNREFUSED, ECONNABORTED, ETIMEDOUT, ERR_CANCELED...). */
  transportCode?: string;
  /** Whether the request bytes may have left this process (false only when the connection was never made). */
  requestSent?: boolean;
  now?: Date;
}

/** Transport codes that mean the connection was never established: nothing reached the bank. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/** Retry-After as seconds or an HTTP date (RFC 9110 10.2.3) -> ms; undefined when absent or unreadable. */
export function parseRetryAfter(value: unknown, now: Date = new Date()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (typeof raw === 'number' && Number.isFinite(raw) && raw >= 0) return Math.round(raw * 1000);
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const text = raw.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now.getTime());
}

function header(headers: Record<string, unknown> | undefined, name: string): unknown {
  if (!headers) return undefined;
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

/**
 * Pure: maps one failed bank call to a BankError. The operation matters: a 5xx or a lost
 * connection is TRANSIENT for a read, but OUTCOME_UNKNOWN for a submit (the bank may have
 * registered the document before failing), except where the contract says the request was not
 * processed (429, 503 MAINTENANCE/SERVICE_UNAVAILABLE, 401).
 * Messages never include request bodies, headers or tokens (R-4).
 */
export function parseBankError(failure: BankFailure): BankError {
  const { operation, status } = failure;
  const submit = operation === 'submit';
  if (status === undefined) {
    const code = failure.transportCode ?? 'UNKNOWN';
    const sent = failure.requestSent ?? !NOT_SENT.has(code);
    if (submit && sent) {
      return new BankError('OUTCOME_UNKNOWN', `the submit may have reached the bank but no answer came (${code}); look the document up by its external id before anything else`);
    }
    return new BankError('TRANSIENT', `the bank could not be reached (${code})`);
  }
  const parsed = errorBodySchema.safeParse(failure.body);
  const bankCode = parsed.success ? parsed.data.code : undefined;
  const bankMessage = parsed.success ? parsed.data.message.slice(0, 500) : undefined;
  const field = parsed.success ? parsed.data.field : undefined;
  const base = { httpStatus: status, bankCode, field, operation };
  const retryAfterMs = parseRetryAfter(header(failure.headers, 'retry-after'), failure.now);
  const says = bankMessage ? `: ${bankMessage}` : '';

  if (status === 429) return new BankError('RATE_LIMITED', `the bank limits the request rate${retryAfterMs !== undefined ? `; retry after ${Math.ceil(retryAfterMs / 1000)} s` : ''}`, { ...base, retryAfterMs });
  if (status === 503) {
    return new BankError(
      'MAINTENANCE',
      `the bank is not serving requests (${bankCode ?? 'HTTP 503'})${says}; the request was not processed`,
      { ...base, retryAfterMs },
    );
  }
  if (bankCode === 'CREDENTIALS_REVOKED') {
    // R-2/R-31: stop and tell the admin exactly what to do.
    return new BankError(
      'CREDENTIALS_REVOKED',
      'the bank reports the Client ID / Client Secret pair as blocked or revoked: stop sending, regenerate the pair in the bank\'s business cabinet and store it with `connector credentials rotate --secret-stdin`',
      base,
    );
  }
  if (status === 401) {
    const what = operation === 'token' ? 'the bank refused the Client ID / Client Secret' : 'the bank refused the access token';
    // R-2: a pair unused for 90 days may be blocked, and a bank may say so with a plain 401.
    return new BankError(
      'AUTH',
      `${what} (${bankCode ?? 'HTTP 401'}); check bank.clientId and the Client Secret; if both are right, the bank may have blocked the pair (after 90 days without use, say): regenerate it in Internet-banking and store it with \`connector credentials rotate --secret-stdin\``,
      base,
    );
  }
  if (status === 404) {
    // "Not found" is the bank's word, in its own error body (the contract's NotFound). A 404 without it
    // (a gateway's page, an empty body: a route missing during a deploy) is something in the way: read
    // as NOT_FOUND, the lookup that must precede a resend sent an order the bank may hold again.
    if (!parsed.success && !submit) return new BankError('TRANSIENT', `the ${operation} was answered HTTP 404 without the bank's error body: a proxy or gateway in the way, not the bank saying it does not have it`, base);
    return new BankError('NOT_FOUND', `not found at the bank (${bankCode ?? 'HTTP 404'})${says}`, base);
  }
  if (bankCode && REFUSAL_CODES.has(bankCode) && (status === 409 || status === 422 || status === 403 || status === 400)) {
    const reasonText = reasonTextRu(bankCode, bankMessage);
    // Only the submit's answer refuses a document. The same code on the token, a lookup or a poll
    // refuses our access, not an order: read as REJECTED it finished as `rejected` an order the bank
    // may hold (a lookup after an unknown outcome), and the ERP would have it paid again.
    if (submit) return new BankError('REJECTED', `the bank refused the document: ${bankCode}${says}`, { ...base, reasonCode: bankCode, reasonText });
    if (status === 403 || ACCESS_REFUSALS.has(bankCode)) {
      return new BankError('AUTH', `the bank refused the ${operation} call: ${bankCode}${says}`, { ...base, reasonCode: bankCode, reasonText });
    }
  }
  if (submit && status === 422 && bankCode) {
    // The contract's 422 on a submit is a refusal of the document (R-23), whatever its code: the
    // bank answered, so nothing of this request was registered (an earlier send under the same
    // external id would have been answered as accepted). A code this release does not know yet is
    // still a refusal, in the bank's own words. Read as a broken contract it was sent again and
    // again, then ended "failed" with 1C told the payment might have been made and must not be
    // created again: a tax or salary payment nobody made. The submit stage takes it as a refusal
    // only at an order's first send (`unknownCode`): after an earlier send whose outcome is unknown,
    // a bank that answers outside its contract may still hold that one.
    return new BankError('REJECTED', `the bank refused the document with a code this release does not know: ${bankCode}${says}`, {
      ...base,
      reasonCode: bankCode,
      reasonText: reasonTextRu(bankCode, bankMessage),
      unknownCode: true,
    });
  }
  if (status === 403) return new BankError('AUTH', `the bank forbids this call (${bankCode ?? 'HTTP 403'})${says}`, base);
  if (status >= 500) {
    if (submit) return new BankError('OUTCOME_UNKNOWN', `the bank failed while taking the submit (HTTP ${status}); look the document up by its external id before anything else`, base);
    return new BankError('TRANSIENT', `the bank failed (HTTP ${status}, ${bankCode ?? 'no code'})`, base);
  }
  if (status === 400 || status === 422 || status === 409) {
    // Our request broke the contract (or the contract moved, R-3): never retried as is.
    return new BankError('CONTRACT_VIOLATION', `the bank did not accept the request's form (HTTP ${status}, ${bankCode ?? 'no code'})${says}`, { ...base, reasonCode: bankCode });
  }
  if (status >= 300 && status < 400) {
    // Not followed (maxRedirects 0: a signed order or the Client Secret is never sent on to where an
    // answer points). Where it pointed tells the operator a moved endpoint (the bank's own host: a
    // new bank.url) from a captive portal or proxy in the way (another host).
    const target = redirectTarget(header(failure.headers, 'location'));
    return new BankError(
      'CONTRACT_VIOLATION',
      `the ${operation} was answered HTTP ${status}, a redirect ${target ? `to ${target}` : 'without a Location'}; not followed: the bank's own host on another path is a moved endpoint (check bank.url / CONNECTOR_BANK_URL), another host is a proxy or captive portal in the way`,
      base,
    );
  }
  return new BankError('CONTRACT_VIOLATION', `unexpected answer from the bank: HTTP ${status}`, base);
}

/**
 * A redirect's Location as scheme://host/path, for a message: never its userinfo, query or
 * fragment (a proxy's login page may carry a session token or our own request back in them).
 * A relative one is said to be on the same host. Undefined when there is none.
 */
export function redirectTarget(location: unknown): string | undefined {
  const raw = Array.isArray(location) ? location[0] : location;
  if (typeof raw !== 'string' || raw.trim() === '') return undefined;
  const SAME = 'same-host.invalid';
  let url: URL;
  try {
    url = new URL(raw.trim(), `http://${SAME}`);
  } catch {
    return 'an unreadable address';
  }
  // Percent-encoded by URL already (no control characters); bounded, as any text from outside.
  // A scheme-relative one (`//host/path`) keeps the bank's scheme, which is not known here.
  const scheme = /^\s*\/\//.test(raw) ? '' : url.protocol;
  const shown = url.host === SAME ? `${url.pathname} on the same host` : `${scheme}//${url.host}${url.pathname}`;
  return shown.length > 200 ? `${shown.slice(0, 200)}...` : shown;
}

/** Adapts an axios error (or anything thrown by a call) to the pure parser's input. */
export function failureFromAxios(operation: BankOperation, err: unknown): BankFailure {
  const e = err as {
    response?: { status: number; headers?: Record<string, unknown>; data?: unknown };
    code?: string;
    name?: string;
  };
  if (e && e.response) return { operation, status: e.response.status, headers: e.response.headers, body: e.response.data };
  const transportCode = e?.code ?? (e?.name === 'CanceledError' || e?.name === 'AbortError' ? 'ERR_CANCELED' : 'UNKNOWN');
  return { operation, transportCode };
}
