import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import type { NormalisedOrder } from '../../../connector/orders/payment-order';
import { BusinessApiClient, type BusinessApiClientOptions } from '../business-api/business-api.client';
import { StaticCredentialsProvider } from '../business-api/credentials.provider';
import { buildPaymentOrderDocument, requisitesFromOrder } from '../business-api/payment-order.document';
import { DEMO, loadSandboxConfig, type SandboxConfigInput } from '../sandbox/sandbox.config';
import { startSandbox, type Sandbox } from '../sandbox/sandbox.server';
import { createTestCa, issueSigner, signDetached, type TestCa, type TestSigner } from '../sandbox/test-ca';
import type { SubmitPaymentInput } from '../business-api/business-api.client';

/**
 * A real sandbox on a random loopback port with its own PostgreSQL schema (random suffix), a test
 * CA in its trust store and a signer for the demo payer. Tests talk to it over HTTP with the real
 * client. `stop()` closes it; `drop()` removes the schema.
 */
export const TEST_DATABASE_URL = process.env.CONNECTOR_TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export interface Harness {
  sandbox: Sandbox;
  url: string;
  schema: string;
  ca: TestCa;
  signer: TestSigner;
  secret: string;
  client(options?: Partial<BusinessApiClientOptions>): BusinessApiClient;
  admin<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  signed(order: NormalisedOrder, externalId: string, signer?: TestSigner): SubmitPaymentInput;
  restart(): Promise<void>;
  stop(): Promise<void>;
  drop(): Promise<void>;
}

/** `clientIinBin`: the company the test client's pair belongs to (`GET /accounts` lists only its accounts); absent: every account. */
export async function startHarness(overrides: Partial<SandboxConfigInput> = {}, options: { clientIinBin?: string } = {}): Promise<Harness> {
  const schema = `sandbox_test_${randomBytes(4).toString('hex')}`;
  // The day clock is frozen at 2026-11-25 (KZ); the certificates cover it whatever the real date.
  const ca = createTestCa('Sandbox Test CA', new Date('2020-01-01T00:00:00Z'), 30);
  const signer = issueSigner(ca, { commonName: 'Директор ТОО Ромашка', iin: '800101300006', bin: DEMO.payerBin }, new Date('2026-01-01T00:00:00Z'), 3650);
  const secret = `s3cret-${randomBytes(12).toString('hex')}`;
  const config = loadSandboxConfig({}, {
    databaseUrl: TEST_DATABASE_URL,
    schema,
    port: 0,
    clients: [{ clientId: 'test-client', clientSecret: secret, iinBin: options.clientIinBin }],
    trustPem: [ca.certPem],
    clock: { speed: 0, startAt: '2026-11-25T04:00:00Z' },
    hangMs: 5_000,
    ...overrides,
  });
  const clients: BusinessApiClient[] = [];
  const h: Harness = {
    sandbox: await startSandbox({ config, port: 0 }),
    url: '',
    schema,
    ca,
    signer,
    secret,
    client(options = {}) {
      const c = new BusinessApiClient({
        baseUrl: h.url,
        apiVersion: 'v1',
        credentials: new StaticCredentialsProvider({ clientId: 'test-client', clientSecret: secret }),
        timeoutMs: 5_000,
        retry: { baseDelayMs: 10, maxDelayMs: 50 },
        ...options,
      });
      clients.push(c);
      return c;
    },
    async admin<T>(method: string, path: string, body?: unknown): Promise<T> {
      const res = await fetch(`${h.url}/_sandbox${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const json = (await res.json()) as T;
      if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
      return json;
    },
    signed(order, externalId, who = signer) {
      const document = buildPaymentOrderDocument(order, externalId);
      return { externalId, document, signatures: [signDetached(document, who)], requisites: requisitesFromOrder(order) };
    },
    async restart() {
      await h.sandbox.close();
      h.sandbox = await startSandbox({ config, port: Number(new URL(h.url).port) });
    },
    async stop() {
      for (const c of clients) c.close();
      await h.sandbox.close();
    },
    async drop() {
      const pg = new Client({ connectionString: TEST_DATABASE_URL });
      await pg.connect();
      await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pg.end();
    },
  };
  h.url = h.sandbox.url;
  return h;
}
