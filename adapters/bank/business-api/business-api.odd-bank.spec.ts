import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BusinessApiClient } from './business-api.client';
import { StaticCredentialsProvider } from './credentials.provider';
import { caught } from '../test/fixtures';

/** A scripted bank on loopback: `answer` gets each request (its body read) and answers it. */
function scriptedBank(answer: (req: IncomingMessage, res: ServerResponse, body: string) => void) {
  let server: HttpServer;
  const bank = { url: '' };
  beforeAll(async () => {
    server = createHttpServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => answer(req, res, body));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    bank.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return bank;
}

const token = (res: ServerResponse) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ access_token: 'a-scripted-token-0123456789', token_type: 'Bearer', expires_in: 3600 }));
};

/** Headers at once, then one byte now and then, never the end: each byte within the socket's idle timeout. */
function drip(req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.write('{');
  const timer = setInterval(() => res.write(' '), 100);
  res.on('close', () => clearInterval(timer));
}

describe('a bank whose answer never ends (a slow drip) does not hold the call for ever', () => {
  const bank = scriptedBank((req, res) => {
    if (req.url?.includes('/oauth/token')) return token(res);
    return drip(req, res);
  });
  const client = (timeoutMs = 500) => new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs, statementTimeoutMs: timeoutMs, retry: { maxAttempts: 1 } });

  it('a status poll, a lookup and a statement end TRANSIENT within their timeout; a submit ends OUTCOME_UNKNOWN', async () => {
    const c = client();
    try {
      for (const call of [() => c.getStatus('DOC-1'), () => c.lookup('ours'), () => c.getStatement('KZ86125KZT5004100100', '2026-11-25', '2026-11-25')]) {
        const started = Date.now();
        const err = await caught(Promise.race([call(), new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting 3 s later')), 3_000))]));
        expect(err.code).toBe('TRANSIENT');
        expect(Date.now() - started).toBeLessThan(2_000);
      }
      const requisites = {
        number: '17', date: '2026-11-25', amount: '100.00', currency: 'KZT',
        payer: { name: 'A', iinBin: '123456789012', iban: 'KZ000000000000000000', bic: 'AAAAKZKA', kod: '17' },
        beneficiary: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000002', bic: 'AAAAKZKA', kbe: '17' },
        knp: '119', purpose: 'p',
      };
      const submit = c.submit({ externalId: 'ours', document: Buffer.from('<doc/>'), signatures: [Buffer.from('cms')], requisites });
      const err = await caught(Promise.race([submit, new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting 3 s later')), 3_000))]));
      expect(err.code).toBe('OUTCOME_UNKNOWN');
    } finally {
      c.close();
    }
  });
});

describe('a token endpoint whose answer never ends does not hold every call for ever', () => {
  const bank = scriptedBank((req, res) => drip(req, res));

  it('the token fetch ends within the timeout, nothing sent: TRANSIENT', async () => {
    const c = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 500, retry: { maxAttempts: 1 } });
    try {
      const started = Date.now();
      const err = await caught(Promise.race([c.listAccounts(), new Promise((_, reject) => setTimeout(() => reject(new Error('still waiting 3 s later')), 3_000))]));
      expect([err.code, err.message]).toEqual(['TRANSIENT', expect.stringMatching(/ETIMEDOUT/)]);
      expect(Date.now() - started).toBeLessThan(2_000);
    } finally {
      c.close();
    }
  });
});

describe("a 404 that is not the bank's answer (a gateway's page, an empty body) is not \"the bank does not have it\"", () => {
  const bank = scriptedBank((req, res) => {
    if (req.url?.includes('/oauth/token')) return token(res);
    if (req.url?.includes('/by-external-id/html')) return res.writeHead(404, { 'content-type': 'text/html' }).end('<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>');
    if (req.url?.includes('/by-external-id/empty')) return res.writeHead(404).end();
    return res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'NOT_FOUND', message: 'no document with this externalId' }));
  });

  it('the lookup that must precede a resend is TRANSIENT (asked again), never NOT_FOUND (which sends the order again); the bank\'s own 404 stays NOT_FOUND', async () => {
    const c = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 2_000, retry: { maxAttempts: 1 } });
    try {
      expect((await caught(c.lookup('html'))).code).toBe('TRANSIENT');
      expect((await caught(c.lookup('empty'))).code).toBe('TRANSIENT');
      expect((await caught(c.getStatus('DOC-1'))).code).toBe('NOT_FOUND');
      expect((await caught(c.lookup('ours'))).code).toBe('NOT_FOUND');
    } finally {
      c.close();
    }
  });
});

describe('a token endpoint that gives an odd lifetime (expires_in 0, a string, a fraction) still gives a token', () => {
  const lifetimes: unknown[] = [0, '3600', 3599.5];
  let tokens = 0;
  const bank = scriptedBank((req, res) => {
    res.setHeader('content-type', 'application/json');
    if (req.url?.includes('/oauth/token')) {
      const expires_in = lifetimes[Math.min(tokens, lifetimes.length - 1)];
      tokens += 1;
      return res.end(JSON.stringify({ access_token: `a-scripted-token-${tokens}-0123456789`, token_type: 'Bearer', expires_in }));
    }
    return res.end(JSON.stringify({ accounts: [] }));
  });

  it('the call goes through (a token refused for its lifetime failed every call, and a submit ended failed with nothing sent); expires_in 0 is not a token request per call', async () => {
    for (const _ of lifetimes) {
      const c = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 2_000, retry: { maxAttempts: 1 } });
      try {
        expect(await c.listAccounts()).toEqual([]);
        expect(await c.listAccounts()).toEqual([]);
        expect(c.tokenRequests).toBe(1);
      } finally {
        c.close();
      }
    }
  });
});

describe('a redirect (never followed) says where it pointed, without its query or userinfo', () => {
  const bank = scriptedBank((req, res) => {
    if (req.url?.includes('/oauth/token')) return token(res);
    if (req.url?.endsWith('/accounts')) return res.writeHead(302, { location: 'https://portal-user:Portal-Pw-77@wifi.portal.example/login?session=Session-Canary-31&back=%2Fapi#frag' }).end();
    return res.writeHead(301, { location: '/api/v2/payments/by-external-id/ours?sig=Sig-Canary-9' }).end();
  });

  it('a captive portal shows its host and path; a moved endpoint its path on the same host; neither a query nor a password', async () => {
    const c = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' }), timeoutMs: 2_000, retry: { maxAttempts: 1 } });
    try {
      const portal = await caught(c.listAccounts());
      expect(portal.code).toBe('CONTRACT_VIOLATION');
      expect(portal.message).toMatch(/^the accounts was answered HTTP 302, a redirect to https:\/\/wifi\.portal\.example\/login; not followed/);
      const moved = await caught(c.lookup('ours'));
      expect(moved.message).toMatch(/^the lookup was answered HTTP 301, a redirect to \/api\/v2\/payments\/by-external-id\/ours on the same host; not followed/);
      for (const err of [portal, moved]) expect(err.message).not.toMatch(/Canary|Portal-Pw|portal-user|frag/);
    } finally {
      c.close();
    }
  });
});

/** Answers 200 JSON that never ends, as fast as the client reads; counts what it wrote. */
function flood(res: ServerResponse, sent: { bytes: number }): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  res.write('{"accounts":[');
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) sent.bytes += chunk.length;
    if (!res.destroyed) res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

describe('an answer larger than the call could need is cut off at a bound, named with its call and limit', () => {
  const sent = { bytes: 0 };
  const bank = scriptedBank((req, res) => {
    if (req.url?.includes('/oauth/token')) return token(res);
    if (req.url?.includes('/statement')) {
      // A statement of 3,000 lines: fine under its own bound, far over the other calls' one.
      const line = { lineId: 'L', bookingDate: '2026-03-02', valueDate: '2026-03-02', direction: 'credit', amount: '1.00', currency: 'KZT', status: 'booked', kind: 'payment', counterparty: { name: 'ТОО «Покупатель»', iinBin: '000000000000', iban: 'KZ000000000000000000', bic: 'XXXXKZKA' }, purpose: 'оплата '.repeat(20) };
      const lines = Array.from({ length: 3_000 }, (_, i) => ({ ...line, lineId: `L${i}` }));
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ account: 'KZ000000000000000000', currency: 'KZT', from: '2026-03-02', to: '2026-03-02', openingBalance: '0.00', closingBalance: '3000.00', lines }));
    }
    return flood(res, sent);
  });
  const credentials = new StaticCredentialsProvider({ clientId: 'id', clientSecret: 'secret' });

  it('reads end CONTRACT_VIOLATION naming the call and the limit (the default 4 MiB), a submit OUTCOME_UNKNOWN; memory stays bounded', async () => {
    const c = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials, timeoutMs: 20_000, retry: { maxAttempts: 1 } });
    try {
      sent.bytes = 0;
      const accounts = await caught(c.listAccounts());
      expect([accounts.code, accounts.message]).toEqual(['CONTRACT_VIOLATION', expect.stringMatching(/^the bank's accounts answer exceeded 4 MiB, the bank client's limit for that call, and was cut off unread/)]);
      // Cut off near the bound, not read to the end (the server would have gone on for ever).
      expect(sent.bytes).toBeLessThan(32 * 1024 * 1024);
      const requisites = {
        number: '17', date: '2026-11-25', amount: '100.00', currency: 'KZT',
        payer: { name: 'A', iinBin: '123456789012', iban: 'KZ000000000000000000', bic: 'AAAAKZKA', kod: '17' },
        beneficiary: { name: 'B', iinBin: '123456789012', iban: 'KZ000000000000000002', bic: 'AAAAKZKA', kbe: '17' },
        knp: '119', purpose: 'p',
      };
      const submit = await caught(c.submit({ externalId: 'ours', document: Buffer.from('<doc/>'), signatures: [Buffer.from('cms')], requisites }));
      expect([submit.code, submit.message]).toEqual(['OUTCOME_UNKNOWN', expect.stringMatching(/^the bank's submit answer exceeded 4 MiB.*look it up by its external id/)]);
    } finally {
      c.close();
    }
  }, 30_000);

  it('a statement has a bound of its own, larger: its call is held to it, and a smaller one is said with its call and limit', async () => {
    const roomy = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials, timeoutMs: 20_000, retry: { maxAttempts: 1 }, maxAnswerBytes: 64 * 1024 });
    const tight = new BusinessApiClient({ baseUrl: bank.url, apiVersion: 'v1', credentials, timeoutMs: 20_000, retry: { maxAttempts: 1 }, maxAnswerBytes: 64 * 1024, maxStatementBytes: 256 * 1024 });
    try {
      // Over the other calls' 64 KiB, under the statement's default bound.
      expect((await roomy.getStatement('KZ000000000000000000', '2026-03-02', '2026-03-02')).lines).toHaveLength(3_000);
      const cut = await caught(tight.getStatement('KZ000000000000000000', '2026-03-02', '2026-03-02'));
      expect([cut.code, cut.message]).toEqual(['CONTRACT_VIOLATION', expect.stringMatching(/^the bank's statement answer exceeded 0\.25 MiB, the bank client's limit for that call, and was cut off unread; ask for a shorter period/)]);
    } finally {
      roomy.close();
      tight.close();
    }
  }, 30_000);
});
