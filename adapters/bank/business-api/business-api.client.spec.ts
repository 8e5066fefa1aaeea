import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, issueTlsCertificate } from '../sandbox/test-ca';
import { BusinessApiClient } from './business-api.client';
import { ConfigCredentialsProvider, StaticCredentialsProvider } from './credentials.provider';
import { caught } from '../test/fixtures';

describe('ConfigCredentialsProvider (until the vault: bank.clientId + secret file or env)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bank-cred-'));

  it('reads the secret file (trailing newline dropped), else CONNECTOR_BANK_CLIENT_SECRET', async () => {
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file-secret\n', { mode: 0o600 });
    expect(await new ConfigCredentialsProvider({ clientId: 'id', clientSecretFile: file, env: { CONNECTOR_BANK_CLIENT_SECRET: 'env' } }).getCredentials()).toEqual({ clientId: 'id', clientSecret: 'from-file-secret' });
    expect(await new ConfigCredentialsProvider({ clientId: 'id', env: { CONNECTOR_BANK_CLIENT_SECRET: 'from-env' } }).getCredentials()).toEqual({ clientId: 'id', clientSecret: 'from-env' });
  });

  it('R-4: refuses a secret file group or others may read (the bank client makes it CREDENTIALS_UNAVAILABLE: nothing sent)', async () => {
    const file = join(dir, 'loose-secret');
    writeFileSync(file, 'loose-canary-secret\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const provider = new ConfigCredentialsProvider({ clientId: 'id', clientSecretFile: file, env: {} });
    const refused = await provider.getCredentials().catch((err: unknown) => err as Error & { code?: string });
    expect(refused).toMatchObject({ code: 'SECRET_FILE_PERMISSIONS', message: expect.stringMatching(/may be read by group or others \(mode 0644\).*chmod 600/) });
    expect((refused as Error).message).not.toContain('loose-canary-secret');
    const client = new BusinessApiClient({ baseUrl: 'http://127.0.0.1:9', apiVersion: 'v1', credentials: provider, timeoutMs: 1_000, retry: { maxAttempts: 1 } });
    try {
      const err = await caught(client.listAccounts());
      expect(err).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', details: { providerCode: 'SECRET_FILE_PERMISSIONS' } });
    } finally {
      client.close();
    }
    chmodSync(file, 0o600);
    expect((await provider.getCredentials()).clientSecret).toBe('loose-canary-secret');
  });

  it('says what is missing without echoing a secret', async () => {
    expect((await caught(new ConfigCredentialsProvider({ env: { CONNECTOR_BANK_CLIENT_SECRET: 'canary-123' } }).getCredentials())).message).toMatch(/bank.clientId/);
    expect((await caught(new ConfigCredentialsProvider({ clientId: 'id', env: {} }).getCredentials())).message).toMatch(/clientSecretFile or CONNECTOR_BANK_CLIENT_SECRET/);
    const err = await caught(new ConfigCredentialsProvider({ clientId: 'id', clientSecretFile: join(dir, 'absent'), env: { CONNECTOR_BANK_CLIENT_SECRET: 'canary-123' } }).getCredentials());
    expect(err.code).toBe('AUTH');
    expect(err.message).toMatch(/ENOENT/);
    expect(err.message).not.toContain('canary-123');
  });
});

describe('mutual TLS and a private CA bundle (bank.caFile, clientCertFile, clientKeyFile)', () => {
  const ca = createTestCa('Bank TLS CA');
  const server = issueTlsCertificate(ca, { commonName: 'bank.test', ip: '127.0.0.1' });
  const clientCert = issueTlsCertificate(ca, { commonName: 'connector', client: true });
  const dir = mkdtempSync(join(tmpdir(), 'bank-tls-'));
  const files = { ca: join(dir, 'ca.pem'), cert: join(dir, 'client.pem'), key: join(dir, 'client.key') };
  writeFileSync(files.ca, ca.certPem);
  writeFileSync(files.cert, clientCert.certPem);
  writeFileSync(files.key, clientCert.keyPem, { mode: 0o600 });
  let https: Server;
  let url = '';

  beforeAll(async () => {
    https = createServer({ cert: server.certPem, key: server.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.endsWith('/oauth/token')) return res.end(JSON.stringify({ access_token: 'tls-token-0123456789', token_type: 'Bearer', expires_in: 60 }));
      return res.end(JSON.stringify({ accounts: [] }));
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
    url = `https://127.0.0.1:${(https.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => https.close(() => r())));

  const bank = (extra: Partial<{ caFile: string; clientCertFile: string; clientKeyFile: string }>) => ({
    url, apiVersion: 'v1', clientId: 'id', timeoutMs: 5_000, statementTimeoutMs: 5_000, ...extra,
  });
  const env = { CONNECTOR_BANK_CLIENT_SECRET: 'tls-secret' };

  it('talks to a bank that requires a client certificate, trusting its private CA', async () => {
    const client = BusinessApiClient.fromConfig(bank({ caFile: files.ca, clientCertFile: files.cert, clientKeyFile: files.key }), { env });
    try {
      expect(await client.listAccounts()).toEqual([]);
    } finally {
      client.close();
    }
  });

  it('never skips verification: an unknown server CA or a missing client certificate fails', async () => {
    const noCa = BusinessApiClient.fromConfig(bank({ clientCertFile: files.cert, clientKeyFile: files.key }), { env, retry: { maxAttempts: 1 } });
    const noCert = BusinessApiClient.fromConfig(bank({ caFile: files.ca }), { env, retry: { maxAttempts: 1 } });
    try {
      expect((await caught(noCa.listAccounts())).code).toBe('TRANSIENT');
      expect((await caught(noCert.listAccounts())).code).toBe('TRANSIENT');
    } finally {
      noCa.close();
      noCert.close();
    }
  });
});

describe('an answer about another document (a bank-side mix-up) is never taken for ours', () => {
  let server: HttpServer;
  let url = '';
  /** What the scripted bank answers for the submit and the lookup: a document of someone else's. */
  const theirs = {
    documentId: 'DOC-THEIRS',
    externalId: 'someone-else',
    status: 'accepted',
    updatedAt: '2026-11-25T05:00:00Z',
    receivedAt: '2026-11-25T05:00:00Z',
    document: { payerAccount: 'KZ000000000000000001', number: '9', date: '2026-11-25', amount: '5.00', currency: 'KZT' },
  };
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url?.includes('/oauth/token')) return res.end(JSON.stringify({ access_token: 'a-scripted-token-0123456789', token_type: 'Bearer', expires_in: 3600 }));
        res.statusCode = req.method === 'POST' ? 201 : 200;
        // Asked about ours-2 (submit or lookup), it answers under our external id with someone else's document.
        const askedOurs2 = req.url?.includes('by-external-id/ours-2') || (req.method === 'POST' && (JSON.parse(body) as { externalId?: string }).externalId === 'ours-2');
        res.end(JSON.stringify(askedOurs2 ? { ...theirs, externalId: 'ours-2' } : theirs));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const requisites = {
    number: '17', date: '2026-11-25', amount: '100.00', currency: 'KZT',
    payer: { name: 'A', iinBin: '123456789012', iban: 'KZ000000000000000000', bic: 'AAAAKZKA', kod: '17' },
    beneficiary: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000002', bic: 'AAAAKZKA', kbe: '17' },
    knp: '119', purpose: 'p',
  };

  it('a submit answered with another document is an unknown outcome (look ours up), its id never our reference; a lookup answered so is a contract violation, never "not found"', async () => {
    const client = new BusinessApiClient({ baseUrl: url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 5_000, retry: { maxAttempts: 1 } });
    try {
      const submitted = await caught(client.submit({ externalId: 'ours', document: Buffer.from('<doc/>'), signatures: [Buffer.from('cms')], requisites }));
      expect(submitted.code).toBe('OUTCOME_UNKNOWN');
      expect(submitted.message).toMatch(/about another document \(external id "someone-else"\); look ours up by its external id/);
      const looked = await caught(client.lookup('ours'));
      expect(looked.code).toBe('CONTRACT_VIOLATION');
      expect(looked.message).toMatch(/lookup of ours with another document \(external id "someone-else"\)/);
      // Our external id on someone else's requisites: still not ours.
      const relabelled = await caught(client.submit({ externalId: 'ours-2', document: Buffer.from('<doc/>'), signatures: [Buffer.from('cms')], requisites }));
      expect(relabelled.code).toBe('OUTCOME_UNKNOWN');
      expect(relabelled.message).toMatch(/payer account "KZ000000000000000001", number "9", amount "5.00"/);
      // The submit job's lookup checks the requisites too: the retry after that unknown outcome does not take it for ours either.
      const looked2 = await caught(client.lookup('ours-2', { expected: requisites }));
      expect(looked2.code).toBe('CONTRACT_VIOLATION');
      expect(looked2.message).toMatch(/lookup of ours-2 with another document \(payer account "KZ000000000000000001", number "9", amount "5.00"\)/);
    } finally {
      client.close();
    }
  });
});

describe("a page in the way (a gateway's or portal's HTML with 200) is an outage, not a broken contract", () => {
  let server: HttpServer;
  let url = '';
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url?.includes('/oauth/token')) {
          res.setHeader('content-type', 'application/json');
          return res.end(JSON.stringify({ access_token: 'a-scripted-token-0123456789', token_type: 'Bearer', expires_in: 3600 }));
        }
        res.statusCode = 200;
        res.setHeader('content-type', 'text/html; charset=utf-8');
        res.end('<html><body><h1>Сервис временно недоступен</h1></body></html>');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('a status poll is TRANSIENT (retried, never a per-order incident of its own); a submit is an unknown outcome (looked up before anything else)', async () => {
    const client = new BusinessApiClient({ baseUrl: url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 5_000, retry: { maxAttempts: 1 } });
    const requisites = {
      number: '17', date: '2026-11-25', amount: '100.00', currency: 'KZT',
      payer: { name: 'A', iinBin: '123456789012', iban: 'KZ000000000000000000', bic: 'AAAAKZKA', kod: '17' },
      beneficiary: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000002', bic: 'AAAAKZKA', kbe: '17' },
      knp: '119', purpose: 'p',
    };
    try {
      const polled = await caught(client.lookup('ours'));
      expect([polled.code, polled.message]).toEqual(['TRANSIENT', expect.stringMatching(/the lookup was answered by a page that is not the bank's API \(HTTP 200, text\/html; charset=utf-8\): a proxy or gateway in the way/)]);
      const submitted = await caught(client.submit({ externalId: 'ours', document: Buffer.from('<doc/>'), signatures: [Buffer.from('cms')], requisites }));
      expect([submitted.code, submitted.message]).toEqual(['OUTCOME_UNKNOWN', expect.stringMatching(/look the document up by its external id/)]);
    } finally {
      client.close();
    }
  });
});

describe('a statement answer about another account or period is never stored as the one asked for', () => {
  let server: HttpServer;
  let url = '';
  /** The scripted bank answers with the account spelled as `?account=` says and the period `?answerFrom..answerTo`. */
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.includes('/oauth/token')) return res.end(JSON.stringify({ access_token: 'a-scripted-token-0123456789', token_type: 'Bearer', expires_in: 3600 }));
      const asked = new URL(req.url ?? '/', 'http://bank');
      const iban = decodeURIComponent(/\/accounts\/([^/]+)\/statement$/.exec(asked.pathname)?.[1] ?? '');
      const script: Record<string, { account: string; from?: string }> = {
        KZ86125KZT5004100100: { account: 'kz86 125k zt50 0410 0100' },
        KZ96125KZT2001004330: { account: 'KZ86125KZT5004100100' },
        KZ40125KZT1001300335: { account: 'KZ40125KZT1001300335', from: '2026-11-24' },
      };
      const answer = script[iban];
      if (!answer) return res.writeHead(404).end(JSON.stringify({ code: 'ACCOUNT_NOT_FOUND', message: 'no such account' }));
      res.end(JSON.stringify({
        account: answer.account, currency: 'KZT', from: answer.from ?? asked.searchParams.get('from'), to: asked.searchParams.get('to'), kind: 'booked',
        openingBalance: '100.00', closingBalance: '90.00',
        lines: [
          { lineId: 'L1', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: '4.00', currency: 'KZT', status: 'booked', kind: 'payment', counterparty: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000002', bic: 'AAAAKZKA' }, purpose: 'p' },
          // A kind the contract does not name (yet).
          { lineId: 'L2', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: '6.00', currency: 'KZT', status: 'BOOKED', kind: 'conversion', counterparty: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000003', bic: 'AAAAKZKA' }, purpose: 'FX' },
          // A status the contract does not name (yet): kept apart as pending, not a broken statement.
          { lineId: 'L3', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: '7.00', currency: 'KZT', status: 'reversed', kind: 'payment', counterparty: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000004', bic: 'AAAAKZKA' }, purpose: 'p' },
        ],
      }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('takes the asked account printed another way under the asked spelling; refuses another account or another period as a contract violation', async () => {
    const client = new BusinessApiClient({ baseUrl: url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 5_000, retry: { maxAttempts: 1 } });
    try {
      // Lower case and in groups of four: the same account, stored and reconciled under the asked IBAN.
      const same = await client.getStatement('KZ86125KZT5004100100', '2026-11-25', '2026-11-25');
      expect([same.account, same.periodFrom, same.periodTo, same.lines.length]).toEqual(['KZ86125KZT5004100100', '2026-11-25', '2026-11-25', 3]);
      // A line of a kind the contract does not name is kept as `other` (an unexplained debit unless an order explains it), not a broken statement;
      // one of a status it does not name is kept apart as pending (out of the balance check, which still holds: 100 - 4 - 6 = 90); `BOOKED` is booked.
      expect(same.lines.map((l) => [l.bankLineId, l.kind, l.status])).toEqual([['L1', 'payment', 'booked'], ['L2', 'other', 'booked'], ['L3', 'payment', 'pending']]);
      const other = await caught(client.getStatement('KZ96125KZT2001004330', '2026-11-25', '2026-11-25'));
      expect([other.code, other.message]).toEqual(['CONTRACT_VIOLATION', expect.stringMatching(/about account "KZ86125KZT5004100100", where KZ96125KZT2001004330 for 2026-11-25\.\.2026-11-25 was asked; nothing of it is stored/)]);
      const later = await caught(client.getStatement('KZ40125KZT1001300335', '2026-11-23', '2026-11-25'));
      expect([later.code, later.message]).toEqual(['CONTRACT_VIOLATION', expect.stringMatching(/about period 2026-11-24\.\.2026-11-25, where/)]);
    } finally {
      client.close();
    }
  });
});
