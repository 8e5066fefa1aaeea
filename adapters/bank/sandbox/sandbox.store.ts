import { Client, Pool, type PoolClient, type QueryConfig } from 'pg';
import type { ClockState } from './sandbox.clock';
import type { SandboxConfig } from './sandbox.config';
import { parseAmount } from '../../../connector/shared/money';
import { StageBatcher } from '../../../connector/shared/batcher';

/**
 * The sandbox's state in PostgreSQL (schema `sandbox` of CONNECTOR_DATABASE_URL by default,
 * INTERFACES.md). Tables are created on start, idempotently; no migrate step. Everything a
 * restarted sandbox must remember lives here: tokens (hashed), accounts and balances, documents
 * with their exact bytes, statement lines, the submissions ledger, the clock and the
 * credentials switch. Amounts are bigint tiyn.
 */
export interface DocumentRow {
  document_id: string;
  external_id: string;
  doc_key: string;
  payer_iban: string;
  number: string;
  doc_date: string;
  amount: string;
  currency: string;
  fee: string | null;
  status: string;
  reason_code: string | null;
  reason_text: string | null;
  received_at: Date;
  updated_at: Date;
  operational_day: string;
  bank_reference: string;
  requisites: {
    beneficiary: { name: string; iinBin: string; iban: string; bic: string; kbe: string };
    payer: { name: string; iinBin: string; iban: string; bic: string; kod: string };
    knp: string;
    purpose: string;
    number: string;
    date: string;
  };
  content_hash: string;
}

/**
 * The columns of a `DocumentRow`: never `*`, which would also fetch the stored content and
 * signatures (kilobytes, mostly out of line) that no reader of a row needs.
 */
export const DOCUMENT_COLUMNS =
  'document_id, external_id, doc_key, payer_iban, number, doc_date, amount, currency, fee, status, reason_code, reason_text, received_at, updated_at, operational_day, bank_reference, requisites, content_hash';

export interface AccountRow {
  iban: string;
  name: string;
  iin_bin: string;
  bic: string;
  currency: string;
  balance: string;
  status: string;
}

export interface LineInsert {
  iban: string;
  bookingDate: string;
  valueDate: string;
  direction: 'debit' | 'credit';
  amount: number;
  currency: string;
  kind: 'payment' | 'fee' | 'tax' | 'other';
  counterparty: { name: string; iinBin: string; iban: string; bic: string };
  purpose: string;
  knp?: string;
  documentNumber?: string;
  documentDate?: string;
  bankReference?: string;
  externalId?: string;
}

export interface DocumentInsert {
  externalId: string;
  docKey: string;
  payerIban: string;
  number: string;
  date: string;
  amount: number;
  currency: string;
  receivedAt: Date;
  operationalDay: string;
  requisites: unknown;
  content: Buffer;
  contentHash: string;
  signatures: string[];
  signers: unknown[];
}

/** SQL for a sequence number left-padded with zeros to at least `width` digits (never cut). */
function padded(expr: string, width: number): string {
  return `CASE WHEN length(${expr}::text) >= ${width} THEN ${expr}::text ELSE lpad(${expr}::text, ${width}, '0') END`;
}

/** node-postgres settings of the sandbox's pool (pg sends the three PostgreSQL timeouts as startup parameters). */
const SANDBOX_PG_BOUNDS = {
  connectionTimeoutMillis: 5_000,
  keepAlive: true,
  keepAliveInitialDelayMillis: 10_000,
  statement_timeout: 60_000,
  lock_timeout: 10_000,
  idle_in_transaction_session_timeout: 60_000,
  query_timeout: 65_000,
} as const;

export class SandboxStore {
  readonly pool: Pool;
  private readonly s: string;
  /** Status polls come in bursts (a client tracks many documents): those that arrive together share one read. */
  private readonly byId = new StageBatcher<string, DocumentRow | undefined>(
    async (ids) => {
      const r = await this.pool.query(`SELECT ${DOCUMENT_COLUMNS} FROM ${this.s}.documents WHERE document_id = ANY($1::text[])`, [[...new Set(ids)]]);
      const rows = new Map((r.rows as DocumentRow[]).map((d) => [d.document_id, d]));
      return ids.map((id) => rows.get(id));
    },
    { maxBatch: 256, maxWaitMs: 0 },
  );

  constructor(databaseUrl: string, readonly schema: string, poolMax = 10) {
    if (!/^[a-z_][a-z0-9_]*$/.test(schema)) throw new Error(`invalid schema name ${schema}`);
    this.s = `"${schema}"`;
    // As the connector's own connections (connector/persistence/database.ts, at its defaults): a
    // connect bounded, keepalive for a server gone silent, and a statement stuck behind a hung
    // session's lock, or a session hung inside a transaction, ended instead of stalling the sandbox.
    this.pool = new Pool({ connectionString: databaseUrl, max: poolMax, ...SANDBOX_PG_BOUNDS });
    // An idle client's error (server restart) must not crash the sandbox.
    this.pool.on('error', () => undefined);
  }

  get t(): string {
    return this.s;
  }

  /** Creates the database when it is missing (INTERFACES.md: the sandbox needs no migrate step). */
  static async ensureDatabase(databaseUrl: string): Promise<void> {
    const probe = new Client({ connectionString: databaseUrl });
    try {
      await probe.connect();
      return;
    } catch (err) {
      if ((err as { code?: string }).code !== '3D000') throw err;
    } finally {
      await probe.end().catch(() => undefined);
    }
    const url = new URL(databaseUrl);
    const name = decodeURIComponent(url.pathname.slice(1));
    url.pathname = '/postgres';
    const admin = new Client({ connectionString: url.toString() });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE "${name.replace(/"/g, '""')}"`);
    } catch (err) {
      // Another process created it meanwhile.
      if ((err as { code?: string }).code !== '42P04') throw err;
    } finally {
      await admin.end();
    }
  }

  async init(config: SandboxConfig, initialClock: ClockState): Promise<void> {
    const s = this.s;
    await SandboxStore.ensureDatabase(config.databaseUrl);
    const client = await this.pool.connect();
    try {
      // Two sandboxes starting at once would race on the catalog: serialise the DDL. The other one's
      // DDL and seeding may take longer than a lock wait is otherwise allowed: this one waits for it.
      // (statement_timeout too: PostgreSQL counts a lock wait as the statement's time.)
      await client.query('SET lock_timeout = 0');
      await client.query('SET statement_timeout = 0');
      // The client's own query_timeout too (a day: node-postgres takes 0 as "the pool's").
      const ddlLock: QueryConfig & { query_timeout: number } = { text: 'SELECT pg_advisory_lock(hashtext($1))', values: [`sandbox-ddl-${this.schema}`], query_timeout: 86_400_000 };
      await client.query(ddlLock);
      await client.query('RESET lock_timeout');
      await client.query('RESET statement_timeout');
      await client.query(`
        CREATE SCHEMA IF NOT EXISTS ${s};
        CREATE TABLE IF NOT EXISTS ${s}.state (key text PRIMARY KEY, value jsonb NOT NULL);
        CREATE TABLE IF NOT EXISTS ${s}.tokens (token_hash text PRIMARY KEY, client_id text NOT NULL, expires_at timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS ${s}.accounts (
          iban text PRIMARY KEY, name text NOT NULL, iin_bin text NOT NULL, bic text NOT NULL,
          currency text NOT NULL, balance bigint NOT NULL, status text NOT NULL);
        CREATE SEQUENCE IF NOT EXISTS ${s}.doc_seq;
        CREATE SEQUENCE IF NOT EXISTS ${s}.line_seq;
        CREATE TABLE IF NOT EXISTS ${s}.documents (
          document_id text PRIMARY KEY, external_id text NOT NULL UNIQUE, doc_key text NOT NULL UNIQUE,
          payer_iban text NOT NULL, number text NOT NULL, doc_date text NOT NULL,
          amount bigint NOT NULL, currency text NOT NULL, fee bigint,
          status text NOT NULL, reason_code text, reason_text text,
          received_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, operational_day text NOT NULL,
          bank_reference text NOT NULL, requisites jsonb NOT NULL, content bytea NOT NULL,
          content_hash text NOT NULL, signatures jsonb NOT NULL, signers jsonb NOT NULL);
        -- The day's processing looks only at documents not yet final. A partial index in the order it
        -- takes them: a plain index scan skips (and marks) the entries of documents that moved on,
        -- where a bitmap scan over an index of every status visited each dead row's page.
        DROP INDEX IF EXISTS ${s}.documents_status;
        CREATE INDEX IF NOT EXISTS documents_pending ON ${s}.documents (status, received_at, document_id) WHERE status IN ('accepted', 'in_processing');
        CREATE TABLE IF NOT EXISTS ${s}.submissions (
          doc_key text PRIMARY KEY, external_id text NOT NULL, requests integer NOT NULL,
          accepted boolean NOT NULL, after_accepted integer NOT NULL, first_at timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS ${s}.lines (
          line_id text PRIMARY KEY, seq bigint NOT NULL, iban text NOT NULL, booking_date text NOT NULL,
          value_date text NOT NULL, direction text NOT NULL, amount bigint NOT NULL, currency text NOT NULL,
          kind text NOT NULL, counterparty jsonb NOT NULL, purpose text NOT NULL, knp text,
          document_number text, document_date text, bank_reference text, external_id text);
        CREATE INDEX IF NOT EXISTS lines_account ON ${s}.lines (iban, booking_date, seq);
      `);
      await this.seed(client, config, initialClock);
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`sandbox-ddl-${this.schema}`]);
    } finally {
      client.release();
    }
  }

  private async seed(client: PoolClient, config: SandboxConfig, initialClock: ClockState): Promise<void> {
    for (const a of config.accounts) {
      // Balances survive restarts; the status follows the config at every start.
      await client.query(
        `INSERT INTO ${this.s}.accounts (iban, name, iin_bin, bic, currency, balance, status) VALUES ($1,$2,$3,$4,$5,$6,$7)
         ON CONFLICT (iban) DO UPDATE SET status = EXCLUDED.status, name = EXCLUDED.name, iin_bin = EXCLUDED.iin_bin, bic = EXCLUDED.bic`,
        [a.iban, a.name, a.iinBin, a.bic, a.currency, parseAmount(a.balance), a.status],
      );
    }
    await client.query(`INSERT INTO ${this.s}.state (key, value) VALUES ('clock', $1) ON CONFLICT (key) DO NOTHING`, [JSON.stringify(initialClock)]);
    await client.query(`INSERT INTO ${this.s}.state (key, value) VALUES ('credentials', '{"revoked":false}') ON CONFLICT (key) DO NOTHING`);
  }

  /** Wipes everything and seeds again (admin reset). */
  async reset(config: SandboxConfig, initialClock: ClockState): Promise<void> {
    await this.pool.query(`TRUNCATE ${this.s}.state, ${this.s}.tokens, ${this.s}.accounts, ${this.s}.documents, ${this.s}.submissions, ${this.s}.lines`);
    const client = await this.pool.connect();
    try {
      await this.seed(client, config, initialClock);
    } finally {
      client.release();
    }
  }

  async getState<T>(key: string): Promise<T | undefined> {
    const r = await this.pool.query(`SELECT value FROM ${this.s}.state WHERE key = $1`, [key]);
    return r.rows[0]?.value as T | undefined;
  }

  async setState(key: string, value: unknown): Promise<void> {
    await this.pool.query(`INSERT INTO ${this.s}.state (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, [key, JSON.stringify(value)]);
  }

  async tx<T>(work: (c: PoolClient) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * The ledger (INTERFACES.md): one row per document, counting every submit request for it and
   * those that arrived after it was accepted. Called once for every submit request whatever the
   * answer (the request that registered the document is counted by `insertDocument`).
   */
  async recordRequest(db: Pick<PoolClient, 'query'>, docKey: string, externalId: string): Promise<void> {
    await db.query(this.ledgerUpsert('$1', '$2', 'false'), [docKey, externalId]);
  }

  /**
   * The ledger key (payer/number/date) a request under this external id is counted for: that of the
   * document registered under it, else that of a ledger row first counted under it (a request the
   * sandbox refused); undefined when the sandbox never saw the id.
   */
  async ledgerKeyByExternalId(db: Pick<PoolClient, 'query'>, externalId: string): Promise<string | undefined> {
    const r = await db.query(
      `SELECT COALESCE((SELECT doc_key FROM ${this.s}.documents WHERE external_id = $1),
                       (SELECT doc_key FROM ${this.s}.submissions WHERE external_id = $1 ORDER BY first_at LIMIT 1)) AS doc_key`,
      [externalId],
    );
    return (r.rows[0]?.doc_key as string | null) ?? undefined;
  }

  /** The ledger row's upsert for one request, with the SQL parameters (or expressions) given. */
  private ledgerUpsert(docKey: string, externalId: string, accepted: string): string {
    return `INSERT INTO ${this.s}.submissions AS l (doc_key, external_id, requests, accepted, after_accepted, first_at)
       VALUES (${docKey}, ${externalId}, 1, ${accepted}, 0, now())
       ON CONFLICT (doc_key) DO UPDATE SET requests = l.requests + 1,
         after_accepted = l.after_accepted + (CASE WHEN l.accepted THEN 1 ELSE 0 END),
         accepted = l.accepted OR EXCLUDED.accepted`;
  }

  async ledger(): Promise<{ total: number; duplicates: number; submissions: Array<Record<string, unknown>> }> {
    const r = await this.pool.query(`SELECT doc_key, external_id, requests, accepted, after_accepted, first_at FROM ${this.s}.submissions ORDER BY first_at, doc_key`);
    const submissions = r.rows.map((row) => ({
      externalId: row.external_id as string,
      document: row.doc_key as string,
      requests: Number(row.requests),
      accepted: row.accepted as boolean,
      afterAccepted: Number(row.after_accepted),
      firstAt: (row.first_at as Date).toISOString(),
    }));
    return { total: submissions.length, duplicates: submissions.reduce((s, x) => s + x.afterAccepted, 0), submissions };
  }

  async documentByExternalId(db: Pick<PoolClient, 'query'>, externalId: string): Promise<DocumentRow | undefined> {
    const r = await db.query(`SELECT ${DOCUMENT_COLUMNS} FROM ${this.s}.documents WHERE external_id = $1`, [externalId]);
    return r.rows[0] as DocumentRow | undefined;
  }

  /**
   * What a submit needs to know, in one round trip (taken under its locks): the document already
   * registered under this externalId, the bank reference of one registered under docKey, and the
   * payer's account.
   */
  async submitFacts(db: Pick<PoolClient, 'query'>, externalId: string, docKey: string, iban: string): Promise<{ byExternalId?: DocumentRow; duplicateOf?: string; account?: AccountRow }> {
    const r = await db.query(
      `SELECT (SELECT row_to_json(d) FROM (SELECT ${DOCUMENT_COLUMNS} FROM ${this.s}.documents WHERE external_id = $1) d) AS by_external_id,
              (SELECT bank_reference FROM ${this.s}.documents WHERE doc_key = $2) AS duplicate_of, a.*
         FROM (SELECT 1) one LEFT JOIN ${this.s}.accounts a ON a.iban = $3`,
      [externalId, docKey, iban],
    );
    const { by_external_id: byExternalId, duplicate_of: duplicateOf, ...account } = r.rows[0] as AccountRow & { by_external_id: DocumentRow | null; duplicate_of: string | null };
    return { byExternalId: byExternalId ?? undefined, duplicateOf: duplicateOf ?? undefined, account: account.iban === null ? undefined : account };
  }

  documentById(documentId: string): Promise<DocumentRow | undefined> {
    return this.byId.run(documentId);
  }

  async account(db: Pick<PoolClient, 'query'>, iban: string, forUpdate = false): Promise<AccountRow | undefined> {
    const r = await db.query(`SELECT * FROM ${this.s}.accounts WHERE iban = $1${forUpdate ? ' FOR UPDATE' : ''}`, [iban]);
    return r.rows[0] as AccountRow | undefined;
  }

  /**
   * Registers a document, and counts the request that registered it in the ledger as accepted, in
   * one round trip: its id and bank reference come from doc_seq (`D` + 10 digits; `ACB` +
   * operational day + 7 digits), and the stored row comes back.
   */
  async insertDocument(db: Pick<PoolClient, 'query'>, d: DocumentInsert): Promise<DocumentRow> {
    const r = await db.query(
      `WITH n AS (SELECT nextval('${this.s}.doc_seq') AS seq),
       ledger AS (${this.ledgerUpsert('$2::text', '$1::text', 'true')})
       INSERT INTO ${this.s}.documents (document_id, external_id, doc_key, payer_iban, number, doc_date, amount, currency, status, received_at, updated_at, operational_day, bank_reference, requisites, content, content_hash, signatures, signers)
       SELECT 'D' || ${padded('n.seq', 10)}, $1, $2, $3, $4, $5, $6, $7, 'accepted', $8, $8, $9, 'ACB' || replace($9::text, '-', '') || ${padded('n.seq', 7)}, $10, $11, $12, $13, $14
       FROM n RETURNING ${DOCUMENT_COLUMNS}`,
      [d.externalId, d.docKey, d.payerIban, d.number, d.date, d.amount, d.currency, d.receivedAt, d.operationalDay, JSON.stringify(d.requisites), d.content, d.contentHash, JSON.stringify(d.signatures), JSON.stringify(d.signers)],
    );
    return r.rows[0] as DocumentRow;
  }

  /**
   * Books statement lines in two round trips whatever their number: one draw of line_seq numbers,
   * handed out in the order given (so a payment's line precedes its fee's), and one insert. The
   * line id is the booking date and the sequence number (8 digits or more). Returns the ids.
   */
  async insertLines(db: Pick<PoolClient, 'query'>, lines: LineInsert[]): Promise<string[]> {
    if (lines.length === 0) return [];
    const drawn = await db.query(`SELECT nextval('${this.s}.line_seq') AS seq FROM generate_series(1, $1::int)`, [lines.length]);
    const seqs = drawn.rows.map((row) => BigInt(row.seq as string)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const ids = lines.map((l, i) => `${l.bookingDate.replace(/-/g, '')}-${String(seqs[i]).padStart(8, '0')}`);
    const column = <K extends keyof LineInsert>(k: K) => lines.map((l) => l[k] ?? null);
    await db.query(
      `INSERT INTO ${this.s}.lines (line_id, seq, iban, booking_date, value_date, direction, amount, currency, kind, counterparty, purpose, knp, document_number, document_date, bank_reference, external_id)
       SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::text[], $9::text[], $10::jsonb[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[])`,
      [
        ids, seqs.map(String), column('iban'), column('bookingDate'), column('valueDate'), column('direction'), column('amount'), column('currency'), column('kind'),
        lines.map((l) => JSON.stringify(l.counterparty)), column('purpose'), column('knp'), column('documentNumber'), column('documentDate'), column('bankReference'), column('externalId'),
      ],
    );
    return ids;
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
