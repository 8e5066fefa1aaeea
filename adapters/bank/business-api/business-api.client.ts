import axios, { type AxiosInstance, type AxiosResponse } from 'axios';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { ZodType, ZodTypeDef } from 'zod';
import type { Logger } from '../../../connector/logging/logger';
import type { StatementData } from '../../../connector/statements/statement.model';
import { BankError, failureFromAxios, parseBankError, type BankFailure, type BankOperation } from './business-api.errors';
import {
  accountsSchema,
  FINAL_STATUSES,
  paymentDocumentSchema,
  paymentStatusSchema,
  statementSchema,
  tokenSchema,
  type BankAccount,
  type BankPaymentDocument,
  type BankPaymentStatus,
} from './business-api.schemas';
import { ConfigCredentialsProvider, type BankCredentials, type CredentialsProvider } from './credentials.provider';
import { PAYMENT_ORDER_FORMAT, type PaymentRequisites } from './payment-order.document';
import { lineStatusOf, mapBankStatement } from './statement.mapper';
import { compactIban } from '../../../connector/requisites/iban.validator';

export interface CallOptions {
  /**
   * Cancels the call (and any wait between retries). Once it has fired no request leaves: a call
   * held up before its request (a token being fetched, a 401's new token) ends TRANSIENT with
   * nothing sent, one cancelled in flight ends as the operation's lost answer (OUTCOME_UNKNOWN for
   * a submit). The submit stage bounds its send by its send lease this way.
   */
  signal?: AbortSignal;
  /** Overrides the per-call timeout. */
  timeoutMs?: number;
  /**
   * Asked before a request is sent again after the bank's 401 (not processed, a new token fetched
   * for it): false sends nothing more and the call ends TRANSIENT, nothing having reached the bank.
   * The repeat is a new request after the caller's last look (the submit stage's lockdown check).
   */
  mayRepeat?: () => Promise<boolean>;
}

export interface SubmitPaymentInput {
  /** Stable, fixed before the first send, reused on every retry (LESSONS.md 1). */
  externalId: string;
  /** The exact signed bytes (payment-order.document.ts), never rebuilt. */
  document: Buffer;
  /** Detached CMS signatures (DER), one per signer, each over exactly `document`. */
  signatures: Buffer[];
  /** The requisites as JSON; must equal what `document` says (the bank checks). */
  requisites: PaymentRequisites;
}

export interface RetryPolicy {
  /** Attempts of a safe call in total (1 = no retry). */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** A Retry-After longer than this is not waited for inside the call: the error goes to the caller. */
  maxRetryAfterMs: number;
}

export interface BusinessApiClientOptions {
  /** The bank's base URL (CONNECTOR_BANK_URL), without the API prefix. */
  baseUrl: string;
  /** Path segment of the API version (bank.apiVersion, R-3). */
  apiVersion: string;
  credentials: CredentialsProvider;
  timeoutMs?: number;
  statementTimeoutMs?: number;
  /** Bounds of an answer's body, in bytes (defaults: MAX_ANSWER_BYTES, MAX_STATEMENT_BYTES). */
  maxAnswerBytes?: number;
  maxStatementBytes?: number;
  retry?: Partial<RetryPolicy>;
  /** Refresh a token this long before it expires (bounded to a fifth of its lifetime). */
  refreshMarginMs?: number;
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  logger?: Logger;
  now?: () => number;
  /** Random in [0,1) for jitter (tests make it deterministic). */
  random?: () => number;
}

/** The shortest a token is kept, whatever its expires_in says. */
const MIN_TOKEN_LIFETIME_MS = 5_000;

/**
 * The largest answer read from the bank, other than a statement: a payment document with its
 * signatures, a status or the account list is kilobytes. Without a bound a broken or hostile
 * endpoint answering without end (a misrouted download, a proxy's error loop) filled the worker's
 * memory and took every job of the process down with it.
 */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;

/**
 * The largest statement answer read. Sized for a year of a busy account, the longest period the
 * connector asks for at once (catching up after an outage, a hole in the chain of days): 500 lines
 * a business day (a retailer's card settlements, a payroll account) is about 183,000 lines a year,
 * and a line of this contract's JSON is about 1 KiB (a purpose and a counterparty's name in
 * Cyrillic, 2 bytes a letter in UTF-8, with the ids and keys): some 180 MiB. 256 MiB leaves room
 * above that while staying well inside what one worker's heap can parse.
 */
export const MAX_STATEMENT_BYTES = 256 * 1024 * 1024;

/**
 * axios gives an answer cut off at `maxContentLength` no code of its own: ERR_BAD_RESPONSE with no
 * response (a stream aborted or broken after the headers carries its response) and its own words.
 */
function answerTooLarge(err: unknown): boolean {
  const e = err as { code?: unknown; response?: unknown; message?: unknown };
  return e?.code === 'ERR_BAD_RESPONSE' && e.response === undefined && typeof e.message === 'string' && /maxContentLength/.test(e.message);
}

const mib = (bytes: number): string => `${Math.round((bytes / (1024 * 1024)) * 100) / 100} MiB`;

const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 4, baseDelayMs: 200, maxDelayMs: 5_000, maxRetryAfterMs: 30_000 };

/**
 * What makes a document the bank returned not the one asked about (its external id, and for a
 * submit the payer account, number, date, amount and currency sent), or null when it is ours.
 */
function documentMismatch(doc: BankPaymentDocument, externalId: string, sent?: PaymentRequisites): string | null {
  if (doc.externalId !== externalId) return `external id ${JSON.stringify(doc.externalId.slice(0, 80))}`;
  if (!sent) return null;
  const differs = (
    [
      ['payer account', doc.document.payerAccount, sent.payer.iban],
      ['number', doc.document.number, sent.number],
      ['date', doc.document.date, sent.date],
      ['amount', doc.document.amount, sent.amount],
      ['currency', doc.document.currency, sent.currency],
    ] as const
  ).filter(([, got, ours]) => got !== ours);
  return differs.length ? differs.map(([what, got]) => `${what} ${JSON.stringify(String(got).slice(0, 80))}`).join(', ') : null;
}

export function isFinalStatus(status: string): boolean {
  return FINAL_STATUSES.has(status);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(new BankError('TRANSIENT', 'the call was cancelled'));
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(new BankError('TRANSIENT', 'the call was cancelled'));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface CachedToken {
  value: string;
  refreshAt: number;
  expiresAt: number;
  /** The credentials provider's version of the pair it was fetched with. */
  version?: string;
}

/**
 * The one HTTP primitive for the bank's Business API (STYLE.md 7; contract: openapi.yaml beside
 * this file). One axios instance; a cached bearer token refreshed before expiry with one refresh
 * in flight; per-call timeouts and AbortSignal; a zod check on every response; retries with
 * jittered backoff only for calls that are safe to repeat (token, lookup, status, accounts,
 * statement). `submit` is never resent by this client: a lost answer is OUTCOME_UNKNOWN and the
 * caller resolves it with `lookup(externalId)`.
 *
 * Secrets: the Client Secret goes only into the token request's Authorization header, the token
 * only into Authorization headers; neither is logged, put into an error or a URL. Errors
 * are always BankError built by parseBankError, never the axios error (whose config holds headers).
 */
export class BusinessApiClient {
  private readonly http: AxiosInstance;
  private readonly retry: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly statementTimeoutMs: number;
  private readonly maxAnswerBytes: number;
  private readonly maxStatementBytes: number;
  private readonly refreshMarginMs: number;
  private readonly now: () => number;
  private readonly random: () => number;
  private token?: CachedToken;
  private tokenInFlight?: Promise<CachedToken>;
  private readonly agents: Array<http.Agent | https.Agent>;
  /** Counts token requests made (diagnostics and tests). */
  tokenRequests = 0;

  constructor(private readonly options: BusinessApiClientOptions) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 15_000;
    this.statementTimeoutMs = options.statementTimeoutMs ?? 120_000;
    this.maxAnswerBytes = options.maxAnswerBytes ?? MAX_ANSWER_BYTES;
    this.maxStatementBytes = options.maxStatementBytes ?? MAX_STATEMENT_BYTES;
    this.refreshMarginMs = options.refreshMarginMs ?? 30_000;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 64,
      ca: options.tls?.ca,
      cert: options.tls?.cert,
      key: options.tls?.key,
      // Never switch verification off "for the bank" (LESSONS.md 16): a private CA goes into `ca`.
      rejectUnauthorized: true,
    });
    this.agents = [httpAgent, httpsAgent];
    const base = options.baseUrl.replace(/\/+$/, '');
    this.http = axios.create({
      baseURL: `${base}/api/${encodeURIComponent(options.apiVersion)}`,
      httpAgent,
      httpsAgent,
      // Status codes are judged here, not by axios, so every answer goes through parseBankError.
      validateStatus: () => true,
      maxRedirects: 0,
      // Every answer is read with a bound (the statement's own, larger, is set on its call).
      maxContentLength: this.maxAnswerBytes,
      proxy: false,
      transitional: { clarifyTimeoutError: true, silentJSONParsing: true, forcedJSONParsing: true },
      headers: { Accept: 'application/json', 'User-Agent': 'bank-connector/0.1' },
    });
  }

  /** Builds a client from the validated config (bank.*); credentials from config/env until the vault exists. */
  static fromConfig(
    bank: {
      url: string;
      apiVersion: string;
      clientId?: string;
      clientSecretFile?: string;
      timeoutMs: number;
      statementTimeoutMs: number;
      caFile?: string;
      clientCertFile?: string;
      clientKeyFile?: string;
    },
    extra: { credentials?: CredentialsProvider; logger?: Logger; env?: NodeJS.ProcessEnv; retry?: Partial<RetryPolicy> } = {},
  ): BusinessApiClient {
    const read = (file?: string) => (file ? readFileSync(file) : undefined);
    return new BusinessApiClient({
      baseUrl: bank.url,
      apiVersion: bank.apiVersion,
      credentials: extra.credentials ?? new ConfigCredentialsProvider({ clientId: bank.clientId, clientSecretFile: bank.clientSecretFile, env: extra.env }),
      timeoutMs: bank.timeoutMs,
      statementTimeoutMs: bank.statementTimeoutMs,
      tls: { ca: read(bank.caFile), cert: read(bank.clientCertFile), key: read(bank.clientKeyFile) },
      logger: extra.logger,
      retry: extra.retry,
    });
  }

  /** Frees keep-alive sockets. */
  close(): void {
    for (const agent of this.agents) agent.destroy();
  }

  /** Drops the cached token (a provider with `version()` has it dropped by itself after a rotation). */
  invalidateToken(): void {
    this.token = undefined;
  }

  // ---- token ----------------------------------------------------------------------------

  private async getToken(): Promise<string> {
    // a token fetched with a pair that was rotated or replaced since is not used again.
    let version: string | undefined;
    try {
      version = await this.options.credentials.version?.();
    } catch (err) {
      throw new BankError('TRANSIENT', `the connector could not read its credentials' version, nothing was sent to the bank: ${(err as Error).message}`);
    }
    const cached = this.token;
    if (cached && cached.version !== version) {
      if (this.token === cached) this.token = undefined;
      this.options.logger?.info({ event: 'bank.token.dropped', reason: 'credentials changed' }, 'the Client ID / Secret changed: the cached bank token is dropped');
    } else if (cached && this.now() < cached.refreshAt) {
      return cached.value;
    }
    let fresh = await this.sharedTokenFetch();
    if (version !== undefined && fresh.version !== version) {
      // A fetch already in flight when the pair changed used the old one: once more, with the new.
      if (this.token === fresh) this.token = undefined;
      fresh = await this.sharedTokenFetch();
    }
    return fresh.value;
  }

  /**
   * One refresh in flight: concurrent callers share it (contract: /oauth/token). It is not bound to
   * the first caller's AbortSignal (that caller leaving must not fail the others); the per-call
   * timeout bounds it.
   */
  private sharedTokenFetch(): Promise<CachedToken> {
    this.tokenInFlight ??= this.fetchToken().finally(() => {
      this.tokenInFlight = undefined;
    });
    return this.tokenInFlight;
  }

  /**
   * The Client ID / Secret from the provider. Its failures are ours, not the bank's (nothing was
   * sent): CREDENTIALS_UNAVAILABLE with the provider's message, never mapped as a transport error
   * (a vault whose master key cannot open the secret used to read "TRANSIENT: the bank could not
   * be reached (MASTER_KEY_MISSING)" and was retried into `failed`).
   */
  private async credentials(): Promise<BankCredentials> {
    try {
      return await this.options.credentials.getCredentials();
    } catch (err) {
      if (err instanceof BankError) throw err;
      const code = (err as { code?: unknown }).code;
      const providerCode = typeof code === 'string' ? code : 'ERROR';
      // A store that did not answer (the vault's database: ECONNREFUSED, a SQLSTATE, a pool
      // timeout) is passing, not a configuration the operator must fix: retried as TRANSIENT.
      if (providerCode === 'CREDENTIALS_REVOKED') {
        // The pair is marked revoked (the bank said so, or a lockdown): it is not sent again.
        throw new BankError('CREDENTIALS_UNAVAILABLE', `the stored Client ID / Client Secret are marked revoked, nothing was sent to the bank: ${(err as Error).message}`, { providerCode });
      }
      if (!/^(MASTER_KEY|VAULT|SECRET_FILE)_/.test(providerCode)) {
        throw new BankError('TRANSIENT', `the connector could not read its Client ID / Client Secret, nothing was sent to the bank (${providerCode}): ${(err as Error).message}`);
      }
      throw new BankError('CREDENTIALS_UNAVAILABLE', `the connector cannot read its own Client ID / Client Secret, nothing was sent to the bank: ${providerCode}: ${(err as Error).message}`, { providerCode });
    }
  }

  private async fetchToken(signal?: AbortSignal): Promise<CachedToken> {
    const { clientId, clientSecret, version } = await this.credentials();
    const token = await this.safeCall('token', signal, async () => {
      this.tokenRequests += 1;
      const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`, 'utf8').toString('base64');
      // The wall clock bounds the whole answer (see `authorised`): a token endpoint dripping its answer
      // would otherwise hold the one shared refresh, and with it every call, for ever.
      const deadline = AbortSignal.timeout(this.timeoutMs);
      try {
        return await this.http.post('/oauth/token', 'grant_type=client_credentials', {
          headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
          timeout: this.timeoutMs,
          signal: signal ? AbortSignal.any([signal, deadline]) : deadline,
        });
      } catch (err) {
        throw this.tooLarge('token', err) ?? parseBankError(this.timedOut(failureFromAxios('token', err), deadline, signal));
      }
    }, [200], tokenSchema);
    const issuedAt = this.now();
    // A token said to expire at once (expires_in 0) is still used for a while: refetched for every call
    // it would double the requests; should the bank no longer take it, its 401 brings a new one.
    const lifetimeMs = Math.max(Math.floor(token.expires_in * 1000), MIN_TOKEN_LIFETIME_MS);
    const margin = Math.min(this.refreshMarginMs, Math.floor(lifetimeMs / 5));
    const cached = { value: token.access_token, refreshAt: issuedAt + lifetimeMs - margin, expiresAt: issuedAt + lifetimeMs, version };
    this.token = cached;
    // Best effort (the provider's own store may be down): the token is good either way.
    void Promise.resolve()
      .then(() => this.options.credentials.onTokenIssued?.(version))
      .catch((err: unknown) => this.options.logger?.warn({ event: 'bank.credentials.use_not_recorded', err: (err as Error).message }, 'the successful use of the Client ID / Secret could not be recorded'));
    return cached;
  }

  // ---- calls ----------------------------------------------------------------------------

  /**
   * POST /payments. Never retried here except after a 401 on the bearer token (the contract says a
   * 401 was not processed). 201 = new document, 200 = this externalId was already accepted (the
   * first document). A lost answer -> OUTCOME_UNKNOWN: call `lookup(externalId)` next.
   */
  async submit(input: SubmitPaymentInput, opts: CallOptions = {}): Promise<BankPaymentDocument & { created: boolean }> {
    if (input.signatures.length === 0) throw new BankError('CONTRACT_VIOLATION', 'a payment document needs at least one signature');
    const body = {
      externalId: input.externalId,
      document: { format: PAYMENT_ORDER_FORMAT, content: input.document.toString('base64') },
      signatures: input.signatures.map((s) => s.toString('base64')),
      requisites: input.requisites,
    };
    const res = await this.authorised('submit', opts, (headers, signal) =>
      this.http.post('/payments', body, { headers, timeout: opts.timeoutMs ?? this.timeoutMs, signal }),
    );
    if (res.status === 200 || res.status === 201) {
      // A success we cannot read is an unknown outcome, not a failure (LESSONS.md 1): the bank
      // may well hold the document. The caller looks it up by externalId.
      const parsed = paymentDocumentSchema.safeParse(res.data);
      if (!parsed.success) {
        throw new BankError('OUTCOME_UNKNOWN', `the bank answered the submit with HTTP ${res.status} but the body does not follow the contract; look the document up by its external id`, { httpStatus: res.status });
      }
      // An answer about another document is not an answer about ours (a bank-side mix-up): its
      // document id must never become our order's reference. What happened to ours is unknown.
      const other = documentMismatch(parsed.data, input.externalId, input.requisites);
      if (other) {
        throw new BankError('OUTCOME_UNKNOWN', `the bank answered the submit with HTTP ${res.status} about another document (${other}); look ours up by its external id`, { httpStatus: res.status });
      }
      return { ...parsed.data, created: res.status === 201 };
    }
    const doc = this.check('submit', res, [200, 201], paymentDocumentSchema);
    return { ...doc, created: false };
  }

  /** GET /payments/by-external-id/{externalId}: NOT_FOUND when the bank never registered it. Safe to repeat. */
  async lookup(externalId: string, opts: CallOptions & { expected?: PaymentRequisites } = {}): Promise<BankPaymentDocument> {
    const found = await this.safeAuthorised('lookup', opts, paymentDocumentSchema, (headers, signal) =>
      this.http.get(`/payments/by-external-id/${encodeURIComponent(externalId)}`, { headers, timeout: opts.timeoutMs ?? this.timeoutMs, signal }),
    );
    // Another document (another external id, or, with `expected`, ours on other requisites: the
    // submit's own check) is neither ours (its id must not become our reference) nor "not found"
    // (that would invite a resend of a document the bank may hold): a contract violation.
    const other = documentMismatch(found, externalId, opts.expected);
    if (other) throw new BankError('CONTRACT_VIOLATION', `the bank answered the lookup of ${externalId} with another document (${other})`, { operation: 'lookup' });
    return found;
  }

  /** GET /payments/{documentId}/status. Unknown statuses come back verbatim (isFinalStatus() says false). */
  async getStatus(documentId: string, opts: CallOptions = {}): Promise<BankPaymentStatus> {
    return this.safeAuthorised('status', opts, paymentStatusSchema, (headers, signal) =>
      this.http.get(`/payments/${encodeURIComponent(documentId)}/status`, { headers, timeout: opts.timeoutMs ?? this.timeoutMs, signal }),
    );
  }

  /** GET /accounts. */
  async listAccounts(opts: CallOptions = {}): Promise<BankAccount[]> {
    const res = await this.safeAuthorised('accounts', opts, accountsSchema, (headers, signal) =>
      this.http.get('/accounts', { headers, timeout: opts.timeoutMs ?? this.timeoutMs, signal }),
    );
    return res.accounts;
  }

  /**
   * GET /accounts/{iban}/statement?from&to, mapped to the domain's statement model. Longer timeout
   * (LESSONS.md 9). The answer must be the statement asked for: another account (an IBAN printed
   * another way is the same account) or another period is a CONTRACT_VIOLATION, nothing of it
   * stored. Stored under another spelling, its lines would escape reconciliation; for other days,
   * the chain of balances would be judged on periods nobody asked for.
   */
  async getStatement(iban: string, from: string, to: string, opts: CallOptions = {}): Promise<StatementData> {
    const res = await this.safeAuthorised('statement', opts, statementSchema, (headers, signal) =>
      this.http.get(`/accounts/${encodeURIComponent(iban)}/statement`, {
        params: { from, to },
        headers,
        timeout: opts.timeoutMs ?? this.statementTimeoutMs,
        maxContentLength: this.maxStatementBytes,
        signal,
      }),
    );
    const other = [
      compactIban(res.account) !== compactIban(iban) ? `account ${JSON.stringify(res.account.slice(0, 40))}` : null,
      res.from !== from || res.to !== to ? `period ${res.from}..${res.to}` : null,
    ].filter((d) => d !== null);
    if (other.length) {
      throw new BankError('CONTRACT_VIOLATION', `the bank's statement answer is about ${other.join(' and ')}, where ${iban} for ${from}..${to} was asked; nothing of it is stored`, { operation: 'statement' });
    }
    const unknown = res.lines.filter((l) => lineStatusOf(l.status) === undefined);
    if (unknown.length) {
      this.options.logger?.warn(
        { event: 'bank.statement.unknown_status', account: iban, from, to, lines: unknown.slice(0, 20).map((l) => ({ lineId: l.lineId.slice(0, 64), status: l.status.slice(0, 40) })) },
        `${unknown.length} statement line(s) of ${iban} carry a status the contract does not name; kept as pending, out of the balance check`,
      );
    }
    return mapBankStatement({ ...res, account: iban });
  }

  // ---- machinery ------------------------------------------------------------------------

  private check<T>(operation: BankOperation, res: AxiosResponse, ok: number[], schema: ZodType<T, ZodTypeDef, unknown>): T {
    if (!ok.includes(res.status)) {
      const err = parseBankError({ operation, status: res.status, headers: res.headers as Record<string, unknown>, body: res.data });
      // Heard, never awaited: a failure to mark the pair (PostgreSQL away) is logged, not an
      // unhandled rejection that ends the process (the pipeline marks it again from this error).
      if (err.code === 'CREDENTIALS_REVOKED') {
        Promise.resolve()
          .then(() => this.options.credentials.onRevoked?.())
          .catch((e: unknown) => this.options.logger?.error({ event: 'bank.credentials.mark_revoked_failed', err: e instanceof Error ? e.message : String(e) }, 'the bank answered CREDENTIALS_REVOKED; marking the pair revoked failed'));
      }
      throw err;
    }
    // A page instead of the API's JSON (a gateway's or a captive portal's HTML with 200): not the
    // bank's answer but something in the way, as during an outage: a read is retried (TRANSIENT),
    // never a broken contract (one incident per tracked order). A submit's success it cannot read
    // never comes here: it is an unknown outcome, looked up (submit above).
    const contentType = String((res.headers as Record<string, unknown> | undefined)?.['content-type'] ?? '');
    if (typeof res.data === 'string' || /text\/html/i.test(contentType)) {
      throw new BankError('TRANSIENT', `the ${operation} was answered by a page that is not the bank's API (HTTP ${res.status}, ${contentType || 'no content type'}): a proxy or gateway in the way`, {
        httpStatus: res.status,
        operation,
      });
    }
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) {
      const where = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
      throw new BankError('CONTRACT_VIOLATION', `the bank's ${operation} answer does not follow the contract (${where})`, { httpStatus: res.status });
    }
    return parsed.data;
  }

  /** One authorised request; after a 401 the token is refreshed once and the request repeated (401 = not processed). */
  private async authorised(
    operation: BankOperation,
    opts: CallOptions,
    send: (headers: Record<string, string>, signal?: AbortSignal) => Promise<AxiosResponse>,
  ): Promise<AxiosResponse> {
    for (let attempt = 0; ; attempt += 1) {
      if (attempt > 0 && opts.mayRepeat && !(await opts.mayRepeat())) {
        throw new BankError('TRANSIENT', `the ${operation} request was not sent again after the bank's 401: the caller withdrew it (nothing reached the bank)`, { operation });
      }
      const token = await this.getToken();
      if (opts.signal?.aborted) throw new BankError('TRANSIENT', `the ${operation} request was not sent: the caller's time for it ran out before it could leave (nothing reached the bank)`);
      const started = this.now();
      // axios's `timeout` stops counting once the answer's headers arrive (then it is the socket's
      // idle time only): a bank dripping its body a byte at a time held the call, its job and its
      // batch for ever. The per-call timeout bounds the whole answer on the wall clock too.
      const deadline = AbortSignal.timeout(opts.timeoutMs ?? (operation === 'statement' ? this.statementTimeoutMs : this.timeoutMs));
      let res: AxiosResponse;
      try {
        res = await send({ Authorization: `Bearer ${token}` }, opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline);
      } catch (err) {
        const failure = this.timedOut(failureFromAxios(operation, err), deadline, opts.signal);
        this.options.logger?.warn({ event: 'bank.call.failed', operation, transport: failure.transportCode, ms: this.now() - started }, 'bank call failed');
        throw this.tooLarge(operation, err) ?? parseBankError(failure);
      }
      this.options.logger?.debug({ event: 'bank.call', operation, status: res.status, ms: this.now() - started }, 'bank call');
      if (res.status === 401 && attempt === 0) {
        if (this.token?.value === token) this.token = undefined;
        continue;
      }
      return res;
    }
  }

  /**
   * An answer cut off at its bound, said as such: the call and the bound. For a read it is a broken
   * answer (CONTRACT_VIOLATION: asking again brings the same flood, so it is not retried here; a
   * statement's job opens an incident with this message). For a submit, the headers came and the
   * bank may hold the document: an unknown outcome, looked up by external id.
   */
  private tooLarge(operation: BankOperation, err: unknown): BankError | undefined {
    if (!answerTooLarge(err)) return undefined;
    const limit = operation === 'statement' ? this.maxStatementBytes : this.maxAnswerBytes;
    const said = `the bank's ${operation} answer exceeded ${mib(limit)}, the bank client's limit for that call, and was cut off unread`;
    if (operation === 'submit') return new BankError('OUTCOME_UNKNOWN', `${said}; the bank may hold the document: look it up by its external id before anything else`, { operation });
    const next = operation === 'statement' ? 'ask for a shorter period; a statement this large is not what the contract describes' : 'no answer of this call is anywhere near that size: the endpoint is broken or not the bank';
    return new BankError('CONTRACT_VIOLATION', `${said}; ${next}`, { operation });
  }

  /** A call cut off by its own deadline (not by the caller) timed out: said so, not "cancelled". */
  private timedOut(failure: BankFailure, deadline: AbortSignal, callerSignal?: AbortSignal): BankFailure {
    return deadline.aborted && !callerSignal?.aborted && failure.status === undefined ? { ...failure, transportCode: 'ETIMEDOUT' } : failure;
  }

  private safeAuthorised<T>(
    operation: BankOperation,
    opts: CallOptions,
    schema: ZodType<T, ZodTypeDef, unknown>,
    send: (headers: Record<string, string>, signal?: AbortSignal) => Promise<AxiosResponse>,
  ): Promise<T> {
    return this.withRetry(operation, opts.signal, async () => {
      const res = await this.authorised(operation, opts, send);
      return this.check(operation, res, [200], schema);
    });
  }

  private safeCall<T>(
    operation: BankOperation,
    signal: AbortSignal | undefined,
    send: () => Promise<AxiosResponse>,
    ok: number[],
    schema: ZodType<T, ZodTypeDef, unknown>,
  ): Promise<T> {
    return this.withRetry(operation, signal, async () => {
      let res: AxiosResponse;
      try {
        res = await send();
      } catch (err) {
        if (err instanceof BankError) throw err;
        throw parseBankError(failureFromAxios(operation, err));
      }
      return this.check(operation, res, ok, schema);
    });
  }

  /** Retries a call that is safe to repeat: TRANSIENT with full-jitter backoff, RATE_LIMITED/MAINTENANCE after Retry-After. */
  private async withRetry<T>(operation: BankOperation, signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await call();
      } catch (err) {
        if (!(err instanceof BankError) || !err.retryable || attempt >= this.retry.maxAttempts || signal?.aborted) throw err;
        let delay: number;
        if (err.retryAfterMs !== undefined) {
          if (err.retryAfterMs > this.retry.maxRetryAfterMs) throw err;
          delay = err.retryAfterMs;
        } else {
          const cap = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** (attempt - 1));
          delay = Math.floor(this.random() * cap);
        }
        this.options.logger?.info({ event: 'bank.call.retry', operation, code: err.code, attempt, delayMs: delay }, 'retrying a safe bank call');
        await sleep(delay, signal);
      }
    }
  }
}
