import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PoolClient } from 'pg';
import { z } from 'zod';
import { formatAmount, parseAmount } from '../../../connector/shared/money';
import { reasonTextRu } from '../business-api/business-api.errors';
import {
  canonicalRequisites,
  PAYMENT_ORDER_FORMAT,
  parsePaymentOrderDocument,
  type PaymentOrderDocument,
  type PaymentRequisites,
} from '../business-api/payment-order.document';
import { PRODUCTION_TRUST_DIR, TEST_TRUST_DIR } from '../../../signer-agent';
import { kzDate, operationalDay, SandboxClock, type ClockState } from './sandbox.clock';
import type { SandboxConfig } from './sandbox.config';
import { FaultSwitches, type FaultAnswer } from './sandbox.faults';
import { checkRequisites } from './sandbox.requisites';
import { DOCUMENT_COLUMNS, SandboxStore, type AccountRow, type DocumentRow, type LineInsert } from './sandbox.store';

/** Documents executed per transaction by the day clock. */
const EXECUTION_BATCH = 200;
import { CmsSignatureVerifier, type SignatureVerifier } from './sandbox.verifier';

/**
 * The bank sandbox (issue 13): the contract of `../business-api/openapi.yaml` served by Fastify,
 * realistic rather than a stub (OAuth2 with expiring tokens, signature/certificate/requisite
 * checks, duplicate detection, an operational-day clock, balances and fees, statements), plus an
 * admin API under `/_sandbox/` on loopback only (faults, clock, injections, the ledger).
 */
export interface SandboxOptions {
  config: SandboxConfig;
  /** Serve `/_sandbox/` (loopback callers only). `connector sandbox --no-admin` turns it off. */
  admin?: boolean;
  verifier?: SignatureVerifier;
  logger?: boolean;
  random?: () => number;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  return isIP(host) !== 0 && LOOPBACK.test(host);
}

const requisitesSchema = z.object({
  number: z.string().min(1).max(64),
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/),
  valueDate: z.string().regex(/^\d{4}-\d{2}-\d{2}$/).optional(),
  amount: z.string().max(32),
  currency: z.string().max(8),
  // openapi.yaml Party: name at most 500 characters.
  payer: z.object({ name: z.string().max(500), iinBin: z.string(), iban: z.string().max(64), bic: z.string(), kod: z.string() }),
  beneficiary: z.object({ name: z.string().max(500), iinBin: z.string(), iban: z.string(), bic: z.string(), kbe: z.string() }),
  knp: z.string(),
  kbk: z.string().optional(),
  purpose: z.string().max(2000),
});

const submitSchema = z.object({
  externalId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/),
  document: z.object({ format: z.string(), content: z.string().min(1) }),
  signatures: z.array(z.string()).max(4),
  requisites: requisitesSchema,
});

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

class Refusal extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly field?: string) {
    super(message);
  }
}

function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

function send(reply: FastifyReply, status: number, code: string, message: string, extra: Record<string, unknown> = {}): FastifyReply {
  return reply.code(status).send({ code, message, ...extra });
}

function sendFault(reply: FastifyReply, fault: FaultAnswer): FastifyReply {
  if (fault.retryAfterSeconds !== undefined) reply.header('Retry-After', String(fault.retryAfterSeconds));
  return send(reply, fault.status, fault.code, fault.message);
}

function documentJson(d: DocumentRow): Record<string, unknown> {
  const out: Record<string, unknown> = {
    documentId: d.document_id,
    externalId: d.external_id,
    status: d.status,
    updatedAt: new Date(d.updated_at).toISOString(),
    operationalDay: d.operational_day,
    bankReference: d.bank_reference,
    receivedAt: new Date(d.received_at).toISOString(),
    document: { payerAccount: d.payer_iban, number: d.number, date: d.doc_date, amount: formatAmount(Number(d.amount)), currency: d.currency },
  };
  if (d.reason_code) out.reasonCode = d.reason_code;
  if (d.reason_text) out.reasonText = d.reason_text;
  if (d.fee !== null) out.fee = formatAmount(Number(d.fee));
  return out;
}

function statusJson(d: DocumentRow): Record<string, unknown> {
  const { receivedAt: _r, document: _d, ...rest } = documentJson(d);
  return rest;
}

export class Sandbox {
  readonly app: FastifyInstance;
  readonly store: SandboxStore;
  readonly faults: FaultSwitches;
  clock!: SandboxClock;
  readonly stats = { tokenRequests: 0, submitRequests: 0, statusRequests: 0, lookupRequests: 0, statementRequests: 0, accountRequests: 0 };
  private readonly verifier: SignatureVerifier;
  private readonly tokens = new Map<string, { clientId: string; expiresAt: number }>();
  /** The Client ID each request that passed `authenticate` was made with. */
  private readonly authenticatedClient = new WeakMap<FastifyRequest, string>();
  private revoked = false;
  private ticker?: NodeJS.Timeout;
  private processing?: Promise<void>;
  private readonly hung = new Set<import('node:net').Socket>();
  url = '';

  constructor(private readonly options: SandboxOptions) {
    const { config } = options;
    this.store = new SandboxStore(config.databaseUrl, config.schema);
    this.faults = new FaultSwitches(options.random);
    // Like the real bank: NCA's production CAs, plus configured anchors, plus NCA's test CAs in test mode.
    const trustPaths = [...(existsSync(PRODUCTION_TRUST_DIR) ? [PRODUCTION_TRUST_DIR] : []), ...config.trust, ...(config.testMode ? [TEST_TRUST_DIR] : [])];
    this.verifier =
      options.verifier ?? CmsSignatureVerifier.from({ trustPaths, trustPem: config.trustPem, crlPaths: config.crl, requireRevocation: config.requireRevocation });
    this.app = Fastify({ logger: options.logger ?? false, forceCloseConnections: true, bodyLimit: 4 * 1024 * 1024 });
    this.routes();
  }

  private initialClock(): ClockState {
    const c = this.options.config.clock;
    return { anchorSimMs: c.startAt ? Date.parse(c.startAt) : Date.now(), anchorRealMs: Date.now(), speed: c.speed };
  }

  /** Creates the schema and tables (idempotent), loads the persisted state, starts the day clock. */
  async start(host = this.options.config.host, port = this.options.config.port): Promise<string> {
    await this.store.init(this.options.config, this.initialClock());
    await this.loadState();
    const address = await this.app.listen({ host, port });
    this.url = address;
    this.ticker = setInterval(() => void this.tick(), this.options.config.clock.tickMs);
    this.ticker.unref();
    return this.url;
  }

  private async loadState(): Promise<void> {
    const clock = (await this.store.getState<ClockState>('clock')) ?? this.initialClock();
    this.clock = new SandboxClock(clock);
    this.revoked = (await this.store.getState<{ revoked: boolean }>('credentials'))?.revoked ?? false;
    this.tokens.clear();
  }

  async close(): Promise<void> {
    if (this.ticker) clearInterval(this.ticker);
    for (const socket of this.hung) socket.destroy();
    await this.app.close();
    await this.processing?.catch(() => undefined);
    await this.store.close();
  }

  // ---- the operational day --------------------------------------------------------------

  private async tick(): Promise<void> {
    if (this.processing) return;
    this.processing = this.advanceDocuments(false)
      .then(() => undefined)
      .catch((err: unknown) => this.app.log.error({ err }, 'sandbox processing failed'))
      .finally(() => {
        this.processing = undefined;
      });
    await this.processing;
  }

  /**
   * Moves documents one step: accepted -> in_processing -> executed | rejected. Timed by the
   * day clock, or forced (admin `clock/step`). A document received after the cut-off waits for its
   * operational day.
   */
  async advanceDocuments(force: boolean): Promise<{ moved: number }> {
    const { clock: c } = this.options.config;
    const now = this.clock.now();
    const today = kzDate(now);
    const t = this.store.t;
    // Those already in processing are taken before this tick moves more in, so each document spends
    // at least one step there.
    const processing = await this.store.pool.query(
      `SELECT document_id FROM ${t}.documents WHERE status = 'in_processing' AND ($1 OR updated_at <= $2) ORDER BY received_at, document_id`,
      [force, new Date(now.getTime() - c.processingToFinalMs)],
    );
    const moved = await this.store.pool.query(
      `UPDATE ${t}.documents SET status = 'in_processing', updated_at = $4
        WHERE status = 'accepted' AND ($1 OR (received_at <= $2 AND operational_day <= $3))`,
      [force, new Date(now.getTime() - c.acceptedToProcessingMs), today, now],
    );
    const due = processing.rows.map((row) => row.document_id as string);
    // Executed in batches, each one transaction, in the order the bank received them.
    for (let i = 0; i < due.length; i += EXECUTION_BATCH) await this.execute(due.slice(i, i + EXECUTION_BATCH), now);
    return { moved: (moved.rowCount ?? 0) + due.length };
  }

  /**
   * Executes documents in one transaction: each is rejected (injected refusal, account missing,
   * arrested or suspended, funds short of amount + fee, R-23) or debits the payer, books the
   * payment line and the fee line, and credits a beneficiary held here. Documents are taken
   * in the order received, so an earlier payment can leave a later one short of funds.
   */
  private async execute(documentIds: string[], now: Date): Promise<void> {
    const { config } = this.options;
    const t = this.store.t;
    await this.store.tx(async (db) => {
      // Locks in id order (as every executor does) and rechecks the status under the lock.
      const docs = (
        await db.query(`SELECT ${DOCUMENT_COLUMNS} FROM ${t}.documents WHERE document_id = ANY($1::text[]) AND status = 'in_processing' ORDER BY document_id FOR UPDATE`, [documentIds])
      ).rows as DocumentRow[];
      if (docs.length === 0) return;
      docs.sort((x, y) => new Date(x.received_at).getTime() - new Date(y.received_at).getTime() || (x.document_id < y.document_id ? -1 : 1));
      const ibans = [...new Set(docs.flatMap((d) => [d.payer_iban, d.requisites.beneficiary.iban]))].sort();
      const accounts = new Map(
        ((await db.query(`SELECT * FROM ${t}.accounts WHERE iban = ANY($1::text[]) ORDER BY iban FOR UPDATE`, [ibans])).rows as AccountRow[]).map((a) => [a.iban, { ...a, balance: Number(a.balance) }]),
      );
      const openingBalance = new Map([...accounts.values()].map((a) => [a.iban, a.balance]));
      const day = kzDate(now);
      const rejected: Array<{ id: string; code: string }> = [];
      const executed: Array<{ id: string; fee: number }> = [];
      const lines: LineInsert[] = [];
      for (const doc of docs) {
        const account = accounts.get(doc.payer_iban);
        const amount = Number(doc.amount);
        const r = doc.requisites;
        const fee = parseAmount(r.beneficiary.bic === config.bank.bic ? config.tariff.intrabankFee : config.tariff.interbankFee);
        const refusal =
          this.faults.takeRefusal('execution') ??
          (!account ? 'ACCOUNT_NOT_FOUND'
            : account.status === 'arrested' ? 'ACCOUNT_ARRESTED'
            : account.status === 'suspended' ? 'ACCOUNT_SUSPENDED'
            // funds must cover the payment and the bank's fee.
            : account.balance < amount + fee ? 'INSUFFICIENT_FUNDS'
            : undefined);
        if (refusal || !account) {
          rejected.push({ id: doc.document_id, code: refusal ?? 'ACCOUNT_NOT_FOUND' });
          continue;
        }
        account.balance -= amount + fee;
        lines.push({
          iban: account.iban, bookingDate: day, valueDate: day, direction: 'debit', amount, currency: doc.currency, kind: 'payment',
          counterparty: { name: r.beneficiary.name, iinBin: r.beneficiary.iinBin, iban: r.beneficiary.iban, bic: r.beneficiary.bic },
          purpose: r.purpose, knp: r.knp, documentNumber: doc.number, documentDate: doc.doc_date, bankReference: doc.bank_reference, externalId: doc.external_id,
        });
        if (fee > 0) {
          // the fee is its own line, naming the document it was charged for.
          lines.push({
            iban: account.iban, bookingDate: day, valueDate: day, direction: 'debit', amount: fee, currency: doc.currency, kind: 'fee',
            counterparty: { name: config.bank.name, iinBin: config.bank.bin, iban: config.bank.feeIban, bic: config.bank.bic },
            purpose: `Комиссия за платёж №${doc.number} от ${doc.doc_date}`, knp: '840', bankReference: doc.bank_reference, externalId: doc.external_id,
          });
        }
        // An arrest stops what leaves an account, not what comes in: a beneficiary held here is credited whatever its status (else the money left the payer and reached nobody).
        const beneficiary = accounts.get(r.beneficiary.iban);
        if (beneficiary) {
          beneficiary.balance += amount;
          lines.push({
            iban: beneficiary.iban, bookingDate: day, valueDate: day, direction: 'credit', amount, currency: doc.currency, kind: 'payment',
            counterparty: { name: r.payer.name, iinBin: r.payer.iinBin, iban: r.payer.iban, bic: r.payer.bic },
            purpose: r.purpose, knp: r.knp, documentNumber: doc.number, documentDate: doc.doc_date,
          });
        }
        executed.push({ id: doc.document_id, fee });
      }
      if (rejected.length > 0) {
        await db.query(
          `UPDATE ${t}.documents d SET status = 'rejected', reason_code = x.code, reason_text = x.text, updated_at = $4
             FROM unnest($1::text[], $2::text[], $3::text[]) AS x(id, code, text) WHERE d.document_id = x.id`,
          [rejected.map((x) => x.id), rejected.map((x) => x.code), rejected.map((x) => reasonTextRu(x.code)), now],
        );
      }
      if (executed.length === 0) return;
      await this.store.insertLines(db, lines);
      const changed = [...accounts.values()].filter((a) => a.balance !== openingBalance.get(a.iban));
      await db.query(
        `UPDATE ${t}.accounts a SET balance = x.balance FROM unnest($1::text[], $2::bigint[]) AS x(iban, balance) WHERE a.iban = x.iban`,
        [changed.map((a) => a.iban), changed.map((a) => String(a.balance))],
      );
      await db.query(
        `UPDATE ${t}.documents d SET status = 'executed', fee = x.fee, updated_at = $3 FROM unnest($1::text[], $2::bigint[]) AS x(id, fee) WHERE d.document_id = x.id`,
        [executed.map((x) => x.id), executed.map((x) => x.fee), now],
      );
    });
  }

  // ---- authentication ---------------------------------------------------------------------

  private secretMatches(given: string, expected: string): boolean {
    const a = Buffer.from(sha256(given), 'hex');
    const b = Buffer.from(sha256(expected), 'hex');
    return timingSafeEqual(a, b);
  }

  private async issueToken(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    this.stats.tokenRequests += 1;
    const fault = this.faults.take();
    if (fault) return sendFault(reply, fault);
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (body.grant_type !== 'client_credentials') return send(reply, 400, 'INVALID_REQUEST', 'grant_type must be client_credentials');
    const auth = req.headers.authorization ?? '';
    const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(auth);
    let clientId = '';
    let secret = '';
    if (match) {
      const decoded = Buffer.from(match[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        try {
          clientId = decodeURIComponent(decoded.slice(0, colon));
          secret = decodeURIComponent(decoded.slice(colon + 1));
        } catch {
          clientId = '';
        }
      }
    }
    reply.header('Cache-Control', 'no-store');
    const client = this.options.config.clients.find((c) => c.clientId === clientId);
    if (!client || !this.secretMatches(secret, client.clientSecret)) return send(reply, 401, 'INVALID_CLIENT', 'unknown Client ID or wrong Client Secret');
    // a blocked pair is told apart from a wrong one.
    if (this.revoked) return send(reply, 403, 'CREDENTIALS_REVOKED', 'the Client ID / Client Secret pair is blocked; regenerate it in the business cabinet');
    // An injected refusal of the client itself (e.g. CREDENTIALS_COMPROMISED, R-31): no token.
    const refused = this.faults.takeRefusal('token');
    if (refused) return send(reply, 403, refused, reasonTextRu(refused));
    const token = randomBytes(32).toString('base64url');
    const ttl = this.options.config.tokenTtlSeconds;
    const expiresAt = Date.now() + ttl * 1000;
    const hash = sha256(token);
    await this.store.pool.query(`INSERT INTO ${this.store.t}.tokens (token_hash, client_id, expires_at) VALUES ($1, $2, $3)`, [hash, clientId, new Date(expiresAt)]);
    this.tokens.set(hash, { clientId, expiresAt });
    return reply.code(200).send({ access_token: token, token_type: 'Bearer', expires_in: ttl });
  }

  /** The client whose bearer token a request that passed `authenticate` carries. */
  private clientOf(req: FastifyRequest): SandboxConfig['clients'][number] | undefined {
    const clientId = this.authenticatedClient.get(req);
    return clientId === undefined ? undefined : this.options.config.clients.find((c) => c.clientId === clientId);
  }

  /** undefined when the bearer token is good; else the answer to send. */
  private async authenticate(req: FastifyRequest): Promise<{ status: number; code: string; message: string } | undefined> {
    if (this.revoked) return { status: 403, code: 'CREDENTIALS_REVOKED', message: 'the Client ID / Client Secret pair is blocked; regenerate it in the business cabinet' };
    const match = /^Bearer ([A-Za-z0-9_-]{16,})$/.exec(req.headers.authorization ?? '');
    if (!match) return { status: 401, code: 'UNAUTHORIZED', message: 'a bearer token is required' };
    const hash = sha256(match[1]);
    let entry = this.tokens.get(hash);
    if (!entry) {
      const r = await this.store.pool.query(`SELECT client_id, expires_at FROM ${this.store.t}.tokens WHERE token_hash = $1`, [hash]);
      if (r.rows[0]) {
        entry = { clientId: r.rows[0].client_id as string, expiresAt: new Date(r.rows[0].expires_at as Date).getTime() };
        this.tokens.set(hash, entry);
      }
    }
    if (!entry || entry.expiresAt <= Date.now()) return { status: 401, code: 'UNAUTHORIZED', message: 'the access token is invalid or expired' };
    this.authenticatedClient.set(req, entry.clientId);
    return undefined;
  }

  // ---- submit -----------------------------------------------------------------------------

  private async verifySubmission(body: z.infer<typeof submitSchema>, content: Buffer): Promise<{ doc: PaymentOrderDocument; signers: unknown[] }> {
    if (body.document.format !== PAYMENT_ORDER_FORMAT) throw new Refusal(422, 'MALFORMED_DOCUMENT', `document.format must be ${PAYMENT_ORDER_FORMAT}`);
    let doc: PaymentOrderDocument;
    try {
      doc = await parsePaymentOrderDocument(content);
    } catch (err) {
      throw new Refusal(422, 'MALFORMED_DOCUMENT', (err as Error).message);
    }
    // What was signed is what is requested (DESIGN.md "The signed document").
    if (doc.externalId !== body.externalId) throw new Refusal(422, 'DOCUMENT_MISMATCH', 'externalId differs from the ExternalId inside the signed document');
    if (canonicalRequisites(doc.requisites) !== canonicalRequisites(body.requisites as PaymentRequisites)) {
      throw new Refusal(422, 'DOCUMENT_MISMATCH', 'the requisites in the request differ from those in the signed document');
    }
    const problems = checkRequisites(doc.requisites, this.clock.now());
    if (problems.length > 0) throw new Refusal(422, 'REQUISITES_INVALID', problems.map((p) => `${p.field}: ${p.message}`).join('; '), problems[0].field);
    const signatures: Buffer[] = [];
    for (const s of body.signatures) {
      if (!BASE64.test(s)) throw new Refusal(422, 'SIGNATURE_INVALID', 'a signature is not base64');
      signatures.push(Buffer.from(s, 'base64'));
    }
    const verdict = await this.verifier.verify({ content, signatures, payerIinBin: doc.requisites.payer.iinBin, at: this.clock.now() });
    if (!verdict.ok) throw new Refusal(422, verdict.code, verdict.message);
    return { doc, signers: verdict.signers };
  }

  private async submit(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    this.stats.submitRequests += 1;
    const parsed = submitSchema.safeParse(req.body);
    if (!parsed.success) {
      // The ledger counts every submit request for a document whatever it answered (INTERFACES.md):
      // a malformed resend of a known external id too, before the rest of the body is judged.
      const externalId = submitSchema.shape.externalId.safeParse((req.body as { externalId?: unknown } | null)?.externalId);
      if (externalId.success) {
        const known = await this.store.ledgerKeyByExternalId(this.store.pool, externalId.data);
        if (known) await this.store.recordRequest(this.store.pool, known, externalId.data);
      }
      const issue = parsed.error.issues[0];
      return send(reply, 400, 'INVALID_REQUEST', `${issue.path.join('.') || '(body)'}: ${issue.message}`);
    }
    const body = parsed.data;
    const r = body.requisites;
    const requestKey = `${r.payer.iban}/${r.number}/${r.date}`;
    if (!BASE64.test(body.document.content)) {
      await this.store.recordRequest(this.store.pool, (await this.store.ledgerKeyByExternalId(this.store.pool, body.externalId)) ?? requestKey, body.externalId);
      return send(reply, 400, 'INVALID_REQUEST', 'document.content is not base64');
    }
    const content = Buffer.from(body.document.content, 'base64');

    const denied = (await this.authenticate(req)) ?? this.faults.take();
    if (denied) {
      // The ledger key: the document already registered under this externalId, else payer/number/date as requested.
      const known = await this.store.documentByExternalId(this.store.pool, body.externalId);
      await this.store.recordRequest(this.store.pool, known?.doc_key ?? requestKey, body.externalId);
      return sendFault(reply, denied);
    }

    let verified: { doc: PaymentOrderDocument; signers: unknown[] } | undefined;
    let refusal: Refusal | undefined;
    try {
      verified = await this.verifySubmission(body, content);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refusal = err;
    }
    const contentHash = sha256(content);
    const now = this.clock.now();

    type Answer = { status: number; body: Record<string, unknown>; hang?: boolean };
    type Facts = Awaited<ReturnType<SandboxStore['submitFacts']>>;
    const payerIban = verified?.doc.requisites.payer.iban ?? r.payer.iban;
    /**
     * The answer to this request given what the bank holds (`facts`), and the write that goes with
     * it: every request is counted in the ledger, accepted or not, in the statement of its answer
     * (the accepting one by the insert itself).
     */
    const answerWith = async (db: Pick<PoolClient, 'query'>, facts: Facts): Promise<Answer> => {
      const { byExternalId, duplicateOf, account } = facts;
      if (byExternalId) {
        await this.store.recordRequest(db, byExternalId.doc_key, body.externalId);
        if (byExternalId.content_hash === contentHash) return { status: 200, body: documentJson(byExternalId) };
        return { status: 409, body: { code: 'EXTERNAL_ID_CONFLICT', message: 'this externalId was already used for a different document' } };
      }
      const answer = await (async (): Promise<Answer> => {
        if (duplicateOf !== undefined) {
          return { status: 409, body: { code: 'DUPLICATE_DOCUMENT', message: `document ${r.number} of ${r.date} from ${r.payer.iban} was already accepted (bank reference ${duplicateOf})` } };
        }
        if (refusal) return { status: refusal.status, body: { code: refusal.code, message: refusal.message, ...(refusal.field ? { field: refusal.field } : {}) } };
        const doc = verified!.doc;
        const refuse = (code: string, message: string) => ({ status: 422, body: { code, message } });
        if (!account) return refuse('ACCOUNT_NOT_FOUND', `account ${doc.requisites.payer.iban} is not held at this bank`);
        if (account.iin_bin && account.iin_bin !== doc.requisites.payer.iinBin) return refuse('AUTHENTICATION_IMPOSSIBLE', 'the payer IIN/BIN does not own this account');
        if (account.status === 'arrested') return refuse('ACCOUNT_ARRESTED', 'the account is under arrest or priority claims');
        if (account.status === 'suspended') return refuse('ACCOUNT_SUSPENDED', 'operations on the account are suspended');
        if (this.options.config.amlBlockedIinBins.includes(doc.requisites.beneficiary.iinBin)) return refuse('AML_REFUSAL', 'refused under AML/CFT rules');
        // Drawn at most once per request: a race only sends a request to the locked path when the
        // winner's row is committed, and there it is answered from that row before this point.
        const injected = this.faults.takeRefusal('submit');
        if (injected) return refuse(injected, reasonTextRu(injected));
        const row = await this.store.insertDocument(db, {
          externalId: body.externalId, docKey: requestKey, payerIban: doc.requisites.payer.iban, number: doc.requisites.number, date: doc.requisites.date,
          amount: parseAmount(doc.requisites.amount), currency: doc.requisites.currency, receivedAt: now,
          operationalDay: operationalDay(now, this.options.config.clock.cutoff, this.options.config.clock.businessDaysOnly),
          requisites: doc.requisites, content, contentHash, signatures: body.signatures, signers: verified!.signers,
        });
        return { status: 201, body: documentJson(row), hang: this.faults.takeTimeoutAfterAccept() };
      })();
      if (answer.status !== 201) await this.store.recordRequest(db, requestKey, body.externalId);
      return answer;
    };
    /** Requests for the same external id and the same document one after another (several sandbox processes too). */
    const locked = () =>
      this.store.tx(async (db) => {
        await db.query('SELECT pg_advisory_xact_lock(1, hashtext($1)), pg_advisory_xact_lock(2, hashtext($2))', [body.externalId, requestKey]);
        return answerWith(db, await this.store.submitFacts(db, body.externalId, requestKey, payerIban));
      });
    let outcome: Answer;
    try {
      // Most requests race with nobody: read the facts and write the answer in two statements of
      // their own. The unique external id and document key make a concurrent registration fail
      // this path's insert (the statement, ledger count included, does nothing); then the request
      // is answered again under the locks, from what the winner registered.
      outcome = await answerWith(this.store.pool, await this.store.submitFacts(this.store.pool, body.externalId, requestKey, payerIban));
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      outcome = await locked();
    }
    if (outcome.hang) {
      // The ambiguous case: the document is registered, the answer never comes.
      reply.hijack();
      const socket = req.raw.socket;
      this.hung.add(socket);
      const timer = setTimeout(() => socket.destroy(), this.options.config.hangMs);
      timer.unref();
      socket.once('close', () => {
        clearTimeout(timer);
        this.hung.delete(socket);
      });
      return reply;
    }
    return reply.code(outcome.status).send(outcome.body);
  }

  // ---- statements ---------------------------------------------------------------------------

  /**
   * One snapshot (REPEATABLE READ): the balance, the sums and the lines are read in three queries,
   * and a payment executed or booked between them (the executor and the admin API run meanwhile)
   * made a statement that still balanced but opened where the day before did not close: a gap
   * the connector reports for money that never went missing.
   */
  private async statement(iban: string, from: string, to: string): Promise<Record<string, unknown> | undefined> {
    const db = await this.store.pool.connect();
    try {
      await db.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const statement = await this.statementIn(db, iban, from, to);
      await db.query('COMMIT');
      return statement;
    } catch (err) {
      await db.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      db.release();
    }
  }

  private async statementIn(db: PoolClient, iban: string, from: string, to: string): Promise<Record<string, unknown> | undefined> {
    const t = this.store.t;
    const account = await this.store.account(db, iban);
    if (!account) return undefined;
    const signed = `CASE WHEN direction = 'credit' THEN amount ELSE -amount END`;
    const sums = await db.query(
      `SELECT COALESCE(SUM(CASE WHEN booking_date >= $2 THEN ${signed} END), 0) AS since_from,
              COALESCE(SUM(CASE WHEN booking_date > $3 THEN ${signed} END), 0) AS after_to
         FROM ${t}.lines WHERE iban = $1`,
      [iban, from, to],
    );
    const balance = Number(account.balance);
    const opening = balance - Number(sums.rows[0].since_from);
    const closing = balance - Number(sums.rows[0].after_to);
    const rows = await db.query(`SELECT * FROM ${t}.lines WHERE iban = $1 AND booking_date BETWEEN $2 AND $3 ORDER BY seq`, [iban, from, to]);
    const lines: Array<Record<string, unknown>> = rows.rows.map((l) => {
      const line: Record<string, unknown> = {
        lineId: l.line_id, bookingDate: l.booking_date, valueDate: l.value_date, direction: l.direction,
        amount: formatAmount(Number(l.amount)), currency: l.currency, status: 'booked', kind: l.kind,
        counterparty: l.counterparty, purpose: l.purpose,
      };
      for (const [k, col] of [['knp', 'knp'], ['documentNumber', 'document_number'], ['documentDate', 'document_date'], ['bankReference', 'bank_reference'], ['externalId', 'external_id']] as const) {
        if (l[col] !== null) line[k] = l[col];
      }
      return line;
    });
    const today = kzDate(this.clock.now());
    if (from <= today && today <= to) {
      // Pending: documents taken but not yet executed; they do not move the balance (LESSONS.md 6).
      const pending = await db.query(`SELECT ${DOCUMENT_COLUMNS} FROM ${t}.documents WHERE payer_iban = $1 AND status IN ('accepted', 'in_processing') ORDER BY received_at`, [iban]);
      for (const d of pending.rows as DocumentRow[]) {
        const r = d.requisites;
        lines.push({
          lineId: `PENDING-${d.document_id}`, bookingDate: today, valueDate: today, direction: 'debit', amount: formatAmount(Number(d.amount)),
          currency: d.currency, status: 'pending', kind: 'payment',
          counterparty: { name: r.beneficiary.name, iinBin: r.beneficiary.iinBin, iban: r.beneficiary.iban, bic: r.beneficiary.bic },
          purpose: r.purpose, knp: r.knp, documentNumber: d.number, documentDate: d.doc_date, bankReference: d.bank_reference, externalId: d.external_id,
        });
      }
    }
    return {
      account: iban, currency: account.currency, from, to, kind: to >= today ? 'intraday' : 'booked',
      openingBalance: formatAmount(opening), closingBalance: formatAmount(closing), lines,
    };
  }

  // ---- routes -----------------------------------------------------------------------------

  private routes(): void {
    const app = this.app;
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    });
    // Malformed requests get contract errors, never a crash or a framework-shaped body.
    app.setErrorHandler((err: { statusCode?: number; message?: string }, _req, reply) => {
      const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
      if (status === 500) app.log.error({ err }, 'sandbox error');
      return send(reply, status, status === 500 ? 'INTERNAL_ERROR' : 'INVALID_REQUEST', status === 500 ? 'internal error' : (err.message ?? 'bad request'));
    });
    app.setNotFoundHandler((_req, reply) => send(reply, 404, 'NOT_FOUND', 'no such resource'));

    app.register(async (api) => {
      api.addHook('onRequest', async (req, reply) => {
        const { version } = req.params as { version?: string };
        if (!version || !this.options.config.apiVersions.includes(version)) return send(reply, 404, 'NOT_FOUND', `API version ${version} is not served`);
        const slow = this.faults.state.slowMs;
        if (slow > 0) await new Promise((r) => setTimeout(r, slow));
        return undefined;
      });
      api.post('/oauth/token', (req, reply) => this.issueToken(req, reply));
      api.post('/payments', (req, reply) => this.submit(req, reply));

      const guarded = async (req: FastifyRequest, reply: FastifyReply, handler: () => Promise<FastifyReply>) => {
        const denied = (await this.authenticate(req)) ?? this.faults.take();
        if (denied) return sendFault(reply, denied);
        return handler();
      };
      api.get('/payments/by-external-id/:externalId', (req, reply) =>
        guarded(req, reply, async () => {
          this.stats.lookupRequests += 1;
          const { externalId } = req.params as { externalId: string };
          const doc = await this.store.documentByExternalId(this.store.pool, externalId);
          if (!doc) return send(reply, 404, 'NOT_FOUND', 'no document with this externalId');
          return reply.send(documentJson(doc));
        }),
      );
      api.get('/payments/:documentId/status', (req, reply) =>
        guarded(req, reply, async () => {
          this.stats.statusRequests += 1;
          const { documentId } = req.params as { documentId: string };
          const doc = await this.store.documentById(documentId);
          if (!doc) return send(reply, 404, 'NOT_FOUND', 'no such document');
          const mixed = this.faults.takeStatusMixUp();
          return reply.send({ ...statusJson(doc), ...(mixed?.externalId ? { externalId: mixed.externalId } : {}), ...(mixed?.documentId ? { documentId: mixed.documentId } : {}) });
        }),
      );
      api.get('/accounts', (req, reply) =>
        guarded(req, reply, async () => {
          this.stats.accountRequests += 1;
          const t = this.store.t;
          // The accounts of the company the Client ID belongs to, not the bank's other customers (a beneficiary
          // held here); a pair no longer in the config (its token still good) is nobody's: none.
          const client = this.clientOf(req);
          if (!client) return reply.send({ accounts: [] });
          const owner = client.iinBin ?? null;
          const r = await this.store.pool.query(
            `SELECT a.*, COALESCE((SELECT SUM(d.amount) FROM ${t}.documents d WHERE d.payer_iban = a.iban AND d.status IN ('accepted','in_processing')), 0) AS held
               FROM ${t}.accounts a WHERE ($1::text IS NULL OR a.iin_bin = $1) ORDER BY a.iban`,
            [owner],
          );
          return reply.send({
            accounts: r.rows.map((a) => ({
              iban: a.iban, currency: a.currency, name: a.name, status: a.status,
              balance: formatAmount(Number(a.balance)), available: formatAmount(Number(a.balance) - Number(a.held)),
            })),
          });
        }),
      );
      api.get('/accounts/:iban/statement', (req, reply) =>
        guarded(req, reply, async () => {
          this.stats.statementRequests += 1;
          const { iban } = req.params as { iban: string };
          const { from, to } = req.query as { from?: string; to?: string };
          if (!from || !to || !ISO_DATE.test(from) || !ISO_DATE.test(to) || from > to) return send(reply, 400, 'INVALID_REQUEST', 'from and to must be YYYY-MM-DD with from <= to');
          const statement = await this.statement(iban, from, to);
          if (!statement) return send(reply, 404, 'ACCOUNT_NOT_FOUND', 'no such account');
          return reply.send(statement);
        }),
      );
    }, { prefix: '/api/:version' });

    if (this.options.admin !== false) app.register((admin, _opts, done) => this.adminRoutes(admin, done), { prefix: '/_sandbox' });
  }

  private adminRoutes(admin: FastifyInstance, done: (err?: Error) => void): void {
    // The admin API never leaves loopback, whatever the listen address (issue 13).
    admin.addHook('onRequest', async (req, reply) => {
      if (!LOOPBACK.test(req.socket.remoteAddress ?? '')) return send(reply, 403, 'FORBIDDEN', 'the sandbox admin API answers loopback callers only');
      return undefined;
    });
    const bad = (reply: FastifyReply, err: unknown) => send(reply, 400, 'INVALID_REQUEST', err instanceof z.ZodError ? err.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') : String(err));

    admin.get('/submissions', async () => this.store.ledger());
    admin.get('/stats', async () => ({ ...this.stats }));
    admin.get('/faults', async () => this.faults.state);
    admin.put('/faults', async (req, reply) => {
      try {
        return this.faults.update(req.body ?? {});
      } catch (err) {
        return bad(reply, err);
      }
    });
    admin.post('/faults/reset', async () => this.faults.reset());
    admin.get('/credentials', async () => ({ revoked: this.revoked, clientIds: this.options.config.clients.map((c) => c.clientId) }));
    admin.put('/credentials', async (req, reply) => {
      const parsed = z.object({ revoked: z.boolean() }).safeParse(req.body);
      if (!parsed.success) return bad(reply, parsed.error);
      this.revoked = parsed.data.revoked;
      await this.store.setState('credentials', { revoked: this.revoked });
      return { revoked: this.revoked };
    });
    admin.post('/tokens/expire', async () => {
      this.tokens.clear();
      const r = await this.store.pool.query(`UPDATE ${this.store.t}.tokens SET expires_at = now() WHERE expires_at > now()`);
      return { expired: r.rowCount ?? 0 };
    });
    const clockView = () => ({ now: this.clock.now().toISOString(), operationalDay: kzDate(this.clock.now()), speed: this.clock.snapshot().speed });
    admin.get('/clock', async () => clockView());
    admin.put('/clock', async (req, reply) => {
      const parsed = z.object({ now: z.string().datetime({ offset: true }).optional(), speed: z.number().min(0).max(100_000).optional() }).strict().safeParse(req.body ?? {});
      if (!parsed.success) return bad(reply, parsed.error);
      await this.store.setState('clock', this.clock.set({ now: parsed.data.now ? new Date(parsed.data.now) : undefined, speed: parsed.data.speed }));
      return clockView();
    });
    admin.post('/clock/advance', async (req, reply) => {
      const parsed = z.object({ ms: z.number().int().min(0) }).safeParse(req.body);
      if (!parsed.success) return bad(reply, parsed.error);
      await this.store.setState('clock', this.clock.advance(parsed.data.ms));
      const { moved } = await this.advanceDocuments(false);
      return { ...clockView(), moved };
    });
    admin.post('/clock/step', async () => {
      const { moved } = await this.advanceDocuments(true);
      return { ...clockView(), moved };
    });
    admin.get('/documents', async () => {
      const r = await this.store.pool.query(`SELECT ${DOCUMENT_COLUMNS} FROM ${this.store.t}.documents ORDER BY received_at, document_id`);
      return { documents: (r.rows as DocumentRow[]).map(documentJson) };
    });
    /** Sets a document's status verbatim (e.g. a status the contract does not know yet, R-3). */
    admin.put('/documents/:documentId', async (req, reply) => {
      const parsed = z.object({ status: z.string().regex(/^[a-z_]{1,40}$/), reasonCode: z.string().optional() }).strict().safeParse(req.body);
      if (!parsed.success) return bad(reply, parsed.error);
      const { documentId } = req.params as { documentId: string };
      const r = await this.store.pool.query(
        `UPDATE ${this.store.t}.documents SET status = $2, reason_code = $3, reason_text = $4, updated_at = $5 WHERE document_id = $1`,
        [documentId, parsed.data.status, parsed.data.reasonCode ?? null, parsed.data.reasonCode ? reasonTextRu(parsed.data.reasonCode) : null, this.clock.now()],
      );
      if (!r.rowCount) return send(reply, 404, 'NOT_FOUND', 'no such document');
      return { documentId, ...parsed.data };
    });
    admin.get('/accounts', async () => {
      const r = await this.store.pool.query(`SELECT * FROM ${this.store.t}.accounts ORDER BY iban`);
      return { accounts: r.rows.map((a) => ({ iban: a.iban, name: a.name, iinBin: a.iin_bin, bic: a.bic, currency: a.currency, status: a.status, balance: formatAmount(Number(a.balance)) })) };
    });
    admin.put('/accounts/:iban', async (req, reply) => {
      const parsed = z.object({ status: z.enum(['active', 'suspended', 'arrested']).optional(), balance: z.string().regex(/^\d{1,16}\.\d{2}$/).optional() }).strict().safeParse(req.body ?? {});
      if (!parsed.success) return bad(reply, parsed.error);
      const { iban } = req.params as { iban: string };
      const r = await this.store.pool.query(
        `UPDATE ${this.store.t}.accounts SET status = COALESCE($2, status), balance = COALESCE($3, balance) WHERE iban = $1`,
        [iban, parsed.data.status ?? null, parsed.data.balance ? parseAmount(parsed.data.balance) : null],
      );
      if (!r.rowCount) return send(reply, 404, 'ACCOUNT_NOT_FOUND', 'no such account');
      return { iban, ...parsed.data };
    });
    const injection = z.object({
      amount: z.string().regex(/^\d{1,16}\.\d{2}$/),
      purpose: z.string().max(2000).optional(),
      knp: z.string().regex(/^\d{3}$/).optional(),
      counterparty: z.object({ name: z.string(), iinBin: z.string(), iban: z.string(), bic: z.string() }).optional(),
    });
    const inject = async (req: FastifyRequest, reply: FastifyReply, direction: 'credit' | 'debit') => {
      const parsed = injection.safeParse(req.body);
      if (!parsed.success) return bad(reply, parsed.error);
      const { iban } = req.params as { iban: string };
      const p = parsed.data;
      const amount = parseAmount(p.amount);
      const day = kzDate(this.clock.now());
      const lineId = await this.store.tx(async (db: PoolClient) => {
        const account = await this.store.account(db, iban, true);
        if (!account) return undefined;
        await db.query(`UPDATE ${this.store.t}.accounts SET balance = balance + $2 WHERE iban = $1`, [iban, direction === 'credit' ? amount : -amount]);
        const [lineId] = await this.store.insertLines(db, [{
          iban, bookingDate: day, valueDate: day, direction, amount, currency: account.currency, kind: 'payment',
          counterparty: p.counterparty ?? { name: direction === 'credit' ? 'ТОО "Покупатель"' : 'Неизвестный получатель', iinBin: '', iban: '', bic: '' },
          purpose: p.purpose ?? (direction === 'credit' ? 'Оплата по договору' : 'Списание'), knp: p.knp,
        }]);
        return lineId;
      });
      if (!lineId) return send(reply, 404, 'ACCOUNT_NOT_FOUND', 'no such account');
      return { lineId, iban, direction, amount: p.amount, bookingDate: day };
    };
    /** An incoming payment from a counterparty. */
    admin.post('/accounts/:iban/incoming', (req, reply) => inject(req, reply, 'credit'));
    /** A debit that no order explains (reconciliation and incident tests, R-27/R-29). */
    admin.post('/accounts/:iban/debit', (req, reply) => inject(req, reply, 'debit'));
    admin.post('/reset', async () => {
      this.faults.reset();
      await this.store.reset(this.options.config, this.initialClock());
      await this.loadState();
      return { reset: true };
    });
    done();
  }
}

/** Creates and starts a sandbox; `close()` stops it (tests, the CLI, the demo). */
export async function startSandbox(options: SandboxOptions & { host?: string; port?: number }): Promise<Sandbox> {
  const sandbox = new Sandbox(options);
  try {
    await sandbox.start(options.host, options.port);
  } catch (err) {
    await sandbox.close().catch(() => undefined);
    throw err;
  }
  return sandbox;
}
