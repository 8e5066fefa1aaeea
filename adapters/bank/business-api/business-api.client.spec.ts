import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestCa, issueTlsCertificate } from '../sandbox/test-ca';
import { BusinessApiClient } from './business-api.client';
import { BankError } from './business-api.errors';
import { ConfigCredentialsProvider } from './credentials.provider';

async function caught(p: Promise<unknown>): Promise<BankError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof BankError) return err;
    throw err;
  }
  throw new Error('expected a BankError');
}

describe('ConfigCredentialsProvider (until the vault: bank.clientId + secret file or env)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bank-cred-'));

  it('reads the secret file (trailing newline dropped), else CONNECTOR_BANK_CLIENT_SECRET', async () => {
    const file = join(dir, 'secret');
    writeFileSync(file, 'from-file-secret\n', { mode: 0o600 });
    expect(await new ConfigCredentialsProvider({ clientId: 'id', clientSecretFile: file, env: { CONNECTOR_BANK_CLIENT_SECRET: 'env' } }).getCredentials()).toEqual({ clientId: 'id', clientSecret: 'from-file-secret' });
    expect(await new ConfigCredentialsProvider({ clientId: 'id', env: { CONNECTOR_BANK_CLIENT_SECRET: 'from-env' } }).getCredentials()).toEqual({ clientId: 'id', clientSecret: 'from-env' });
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
