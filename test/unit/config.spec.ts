import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../config/load-config';

describe('configuration', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'cfg-'));

  it('has defaults that run the demo on this machine (INTERFACES.md)', () => {
    const config = loadConfig({ env: {}, cwd });
    expect(config.database.url).toBe('postgresql://postgres@127.0.0.1:5432/connector');
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.redis.prefix).toBe('connector');
    expect(config.api).toMatchObject({ host: '127.0.0.1', port: 8080 });
    expect(config.bank.url).toBe('http://127.0.0.1:8900');
    expect(config.signer.url).toBe('http://127.0.0.1:8901');
    expect(config.signer.tokenFile).toBe('.connector/signer.token');
    expect(config.masterKeyFile).toBe('.connector/master.key');
    expect(config.log.level).toBe('info');
    expect(config.testMode).toBe(false);
  });

  it("refuses one folder for onec.outboxDir and onec.inboxDir: the outbox scan would take the connector's own files for 1C", () => {
    const file = join(cwd, 'same-folder.json');
    writeFileSync(file, JSON.stringify({ onec: { outboxDir: 'exchange', inboxDir: './exchange/' } }));
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(/onec\.outboxDir and onec\.inboxDir are one folder \(.*exchange\): the connector would take its own statement and status files/);
    writeFileSync(file, JSON.stringify({ onec: { outboxDir: 'exchange/out', inboxDir: 'exchange/in' } }));
    expect(loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd }).onec.inboxDir).toBe('exchange/in');
  });

  it('takes CONNECTOR_* environment over the file', () => {
    const file = join(cwd, 'a.json');
    writeFileSync(file, JSON.stringify({ api: { port: 9000 }, redis: { prefix: 'fromfile' } }));
    const config = loadConfig({ env: { CONNECTOR_CONFIG: file, CONNECTOR_API_PORT: '9100' }, cwd });
    expect(config.api.port).toBe(9100);
    expect(config.redis.prefix).toBe('fromfile');
  });

  it('names the key, the problem and the expected form of a bad value', () => {
    const file = join(cwd, 'bad.json');
    writeFileSync(file, JSON.stringify({ api: { port: 'eighty' } }));
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(/api\.port: Expected number, received string/);
    expect(() => loadConfig({ env: { CONNECTOR_API_PORT: 'eighty' }, cwd })).toThrow(/CONNECTOR_API_PORT: "eighty" is not a whole number; expected e\.g\. 8080/);
    expect(() => loadConfig({ env: { CONNECTOR_REDIS_PREFIX: 'a:b' }, cwd })).toThrow(/redis\.prefix: expected letters, digits/);
    expect(() => loadConfig({ env: { CONNECTOR_DATABASE_URL: 'mysql://x' }, cwd })).toThrow(/database\.url: expected a postgresql:\/\/ URL/);
  });

  it('database timeouts: bounded by default, each configurable, a bad value refused naming its key', () => {
    expect(loadConfig({ env: {}, cwd }).database).toMatchObject({ statementTimeoutMs: 60_000, lockTimeoutMs: 10_000, idleInTransactionTimeoutMs: 60_000, queryTimeoutMs: 65_000 });
    const file = join(cwd, 'db.json');
    const withDb = (database: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify({ database }));
      return loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    };
    expect(withDb({ statementTimeoutMs: 120_000 }).database.queryTimeoutMs).toBe(125_000);
    expect(withDb({ statementTimeoutMs: 0 }).database.queryTimeoutMs).toBe(0);
    expect(withDb({ lockTimeoutMs: 2_000, queryTimeoutMs: 90_000 }).database).toMatchObject({ lockTimeoutMs: 2_000, queryTimeoutMs: 90_000 });
    expect(() => withDb({ lockTimeoutMs: -1 })).toThrow(ConfigError);
    expect(() => withDb({ lockTimeoutMs: -1 })).toThrow(/database\.lockTimeoutMs: Number must be greater than or equal to 0/);
    expect(() => withDb({ idleInTransactionTimeoutMs: '1min' })).toThrow(/database\.idleInTransactionTimeoutMs: Expected number, received string/);
    expect(() => withDb({ statementTimeoutMs: 60_000, queryTimeoutMs: 30_000 })).toThrow(/database\.queryTimeoutMs: must be above database\.statementTimeoutMs \(60000\)/);
    expect(() => withDb({ statementTimeoutMS: 1 })).toThrow(/database\.statementTimeoutMS: unknown key; did you mean "statementTimeoutMs"\?/);
  });

  it('api.trustedProxies: none by default; addresses and CIDR ranges taken, anything else refused naming the key', () => {
    expect(loadConfig({ env: {}, cwd }).api.trustedProxies).toEqual([]);
    const good = ['127.0.0.1', '::1', '10.0.0.0/24', 'fd00::/8'];
    expect(loadConfig({ env: {}, cwd, overrides: { 'api.trustedProxies': good } }).api.trustedProxies).toEqual(good);
    for (const bad of ['loopback', 'proxy.corp.kz', '10.0.0.0/33', '10.0.0.1/8/1', '::1/129']) {
      expect(() => loadConfig({ env: {}, cwd, overrides: { 'api.trustedProxies': [bad] } })).toThrow(/api\.trustedProxies\.0: expected an IP address or a CIDR range/);
    }
  });

  it('R-4: refuses a bank reached over plain http beyond loopback (the Client Secret and the signed orders would cross the network in clear text), except in test mode', () => {
    for (const url of ['http://api.bank.kz', 'http://10.0.0.5:8900', 'http://bank.example:443/']) {
      expect(() => loadConfig({ env: { CONNECTOR_BANK_URL: url }, cwd })).toThrow(ConfigError);
      expect(() => loadConfig({ env: { CONNECTOR_BANK_URL: url }, cwd })).toThrow(/bank\.url \(CONNECTOR_BANK_URL\): .* is plain http .* use https:\/\//);
    }
    for (const url of ['https://api.bank.kz', 'http://127.0.0.1:8900', 'http://127.0.0.2:9000', 'http://localhost:8900', 'http://[::1]:8900']) {
      expect(loadConfig({ env: { CONNECTOR_BANK_URL: url }, cwd }).bank.url).toBe(url);
    }
    // A URL carrying a login never shows it in the message: neither its password nor, for a bank URL (where a lone user name is often the secret), its user name.
    expect(() => loadConfig({ env: { CONNECTOR_BANK_URL: 'http://client:url-secret-91@api.bank.kz/' }, cwd })).toThrow(/: http:\/\/\*\*\*:\*\*\*@api\.bank\.kz\/ is plain http/);
    expect(() => loadConfig({ env: { CONNECTOR_BANK_URL: 'http://client:url-secret-91@api.bank.kz/' }, cwd })).not.toThrow(/url-secret-91/);
    // A sandbox on another machine of a test bench.
    expect(loadConfig({ env: { CONNECTOR_BANK_URL: 'http://sandbox.test:8900', CONNECTOR_TEST_MODE: '1' }, cwd }).bank.url).toBe('http://sandbox.test:8900');
  });

  it("refuses a signer agent beyond this machine: the agent's token and the users' key passwords go to signer.url in clear text", () => {
    for (const url of ['http://192.0.2.2:8901', 'http://signer.corp.local:8901', 'https://127.0.0.1:8901', 'http://127.0.0.2:8901', 'unix:', 'ftp://127.0.0.1']) {
      expect(() => loadConfig({ env: { CONNECTOR_SIGNER_URL: url }, cwd })).toThrow(/signer\.url: expected http:\/\/127\.0\.0\.1:PORT, .* or unix:\/path: the token and the users' key passwords go to this address in clear text/);
    }
    for (const url of ['http://127.0.0.1:8901', 'http://localhost:9000', 'http://[::1]:8901', 'unix:/run/connector/agent.sock', 'unix:.connector/agent.sock']) {
      expect(loadConfig({ env: { CONNECTOR_SIGNER_URL: url }, cwd }).signer.url).toBe(url);
    }
  });

  it('takes an SMTP server for the admins\' e-mail only with the login over TLS and the password in a file', () => {
    const withSmtp = (smtp: Record<string, unknown>) => {
      const file = join(cwd, 'smtp.json');
      writeFileSync(file, JSON.stringify({ lockdown: { notify: { emails: ['ops@example.kz'], smtp } } }));
      return () => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    };
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', user: 'u', passwordFile: '/etc/connector/smtp.password' })().lockdown.notify.smtp).toEqual({
      host: 'mail.example.kz', port: 587, security: 'starttls', from: 'connector@example.kz', user: 'u', passwordFile: '/etc/connector/smtp.password', timeoutMs: 10_000,
    });
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', user: 'u' })).toThrow(/lockdown\.notify\.smtp\.passwordFile: smtp\.user is set: the password must be in smtp\.passwordFile/);
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', user: 'u', passwordFile: 'p', security: 'none' })).toThrow(/lockdown\.notify\.smtp\.security: a login is never sent in clear text/);
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', security: 'none' })).toThrow(/lockdown\.notify\.smtp\.security: none \(clear text\) is only for a relay on loopback, not mail\.example\.kz/);
    expect(withSmtp({ host: '127.0.0.1', from: 'connector@example.kz', security: 'none' })().lockdown.notify.smtp).toMatchObject({ port: 587, security: 'none' });
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', security: 'tls' })().lockdown.notify.smtp?.port).toBe(465);
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', timeoutMs: 60_000 })).toThrow(/lockdown\.notify\.smtp\.timeoutMs/);
    expect(withSmtp({ host: 'mail.example.kz', from: 'connector@example.kz', password: 'inline' })).toThrow(/password/);
  });

  it('refuses unknown keys (a typo is not silently ignored)', () => {
    const file = join(cwd, 'typo.json');
    writeFileSync(file, JSON.stringify({ reddis: {} }));
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(/reddis/);
  });

  it('refuses unknown keys inside a section too, each named with the key it was probably meant to be', () => {
    const file = join(cwd, 'nested-typo.json');
    writeFileSync(file, JSON.stringify({ worker: { concurency: 4 }, onec: { outboxdir: '/srv/1c/out' }, lockdown: { notify: { emials: ['a@b.kz'] } }, signing: { mandates: [{ login: 'x', account: '*', upTo: '1.00', acount: 'y' }] }, api: { zzz: 1 } }));
    let message = '';
    try {
      loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      message = (err as Error).message;
    }
    // (A misspelt outbox key used to leave the default folder in force: 1C's files were never read.)
    expect(message.split('\n')).toEqual([
      `config ${file}: worker.concurency: unknown key; did you mean "concurrency"?`,
      `config ${file}: onec.outboxdir: unknown key; did you mean "outboxDir"?`,
      `config ${file}: lockdown.notify.emials: unknown key; did you mean "emails"?`,
      `config ${file}: signing.mandates.0.acount: unknown key; did you mean "account"?`,
      expect.stringMatching(new RegExp(`^config ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: api\\.zzz: unknown key; allowed here: .*host.*port`)),
    ]);
  });

  it('honours CONNECTOR_FAKE_NOW only in test mode', () => {
    expect(() => loadConfig({ env: { CONNECTOR_FAKE_NOW: '2026-01-05T09:00:00Z' }, cwd })).toThrow(/only in test mode/);
    const config = loadConfig({ env: { CONNECTOR_FAKE_NOW: '2026-01-05T09:00:00Z', CONNECTOR_TEST_MODE: '1' }, cwd });
    expect(config.fakeNow).toBe('2026-01-05T09:00:00Z');
  });

  it('reports an unreadable or non-JSON file by path', () => {
    const file = join(cwd, 'broken.json');
    writeFileSync(file, '{ not json');
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(new RegExp(`${file} is not valid JSON`));
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: join(cwd, 'missing.json') }, cwd })).toThrow(/config file .*missing.json not found/);
  });

  it.each([
    ['a value left unquoted', '{\n  "database": {\n    "url": postgresql://u:S3cretPass@db/connector\n  }\n}\n', 'line 3, column 12'],
    ['a comma missing', '{\n  "redis": { "url": "redis://:S3cretPass@127.0.0.1:6379" }\n  "database": {}\n}\n', 'line 3, column 3'],
    ['a line break inside a string', '{ "database": { "url": "postgresql://u:S3cret\nPass@db/x" } }', 'line 1, column 46'],
    ['a file cut short', '{ "database": { "url": "postgresql://u:S3cretPass@db/x" ', 'it ends before it is complete'],
  ])('a broken config file (%s) is named by line and column, never quoting what it holds', (_what, text, where) => {
    const file = join(cwd, 'secret-broken.json');
    writeFileSync(file, text);
    let message = '';
    try {
      loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain(`${file} is not valid JSON`);
    expect(message).toContain(where);
    expect(message).not.toMatch(/S3cret|Pass@/);
  });

  it('an account in signing.rules or signing.mandates is matched as the orders carry it: written as a bank prints it, it still applies; one that is no account at all is refused', () => {
    // A two-signature rule for an account written in lower case and groups of four never matched the
    // order's KZ86125KZT5004100100: the "*" rule (one signature) paid it.
    const file = join(cwd, 'signing-accounts.json');
    writeFileSync(file, JSON.stringify({ signing: { rules: [{ account: '*', fromAmount: '0', signatures: 1 }, { account: 'kz86 125k zt50 0410 0100', fromAmount: '0', signatures: 2 }], mandates: [{ login: 'ceo', account: ' KZ86125KZT5004100100', upTo: '1.00' }] } }));
    const config = loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    expect(config.signing.rules.map((r) => r.account)).toEqual(['*', 'KZ86125KZT5004100100']);
    expect(config.signing.mandates.map((m) => m.account)).toEqual(['KZ86125KZT5004100100']);
    writeFileSync(file, JSON.stringify({ signing: { rules: [{ account: 'KZ86125KZT500410010', fromAmount: '0', signatures: 2 }] } }));
    expect(() => loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd })).toThrow(/signing\.rules\.0\.account: .*"\*" or a KZ account/);
  });
  it('an amount in config above the largest amount the connector takes is refused at load naming its key, not at each order', () => {
    // "1000000000000000.00" fits the form (16 digits) but not an integer of tiyn: loaded, every
    // order's validation (requisites.maxAmount) or signing (signing.rules, signing.mandates) threw.
    const file = join(cwd, 'amounts.json');
    const withConfig = (config: Record<string, unknown>) => {
      writeFileSync(file, JSON.stringify(config));
      return loadConfig({ env: { CONNECTOR_CONFIG: file }, cwd });
    };
    const huge = '1000000000000000.00';
    expect(() => withConfig({ requisites: { maxAmount: huge } })).toThrow(/requisites\.maxAmount: amount "1000000000000000\.00" exceeds the largest amount 90071992547409\.91/);
    expect(() => withConfig({ requisites: { minAmount: '9999999999999999' } })).toThrow(/requisites\.minAmount: .*largest amount 90071992547409\.91/);
    expect(() => withConfig({ signing: { rules: [{ account: '*', fromAmount: huge, signatures: 2 }] } })).toThrow(/signing\.rules\.0\.fromAmount: .*largest amount/);
    expect(() => withConfig({ signing: { mandates: [{ login: 'ceo', account: '*', upTo: huge }] } })).toThrow(/signing\.mandates\.0\.upTo: .*largest amount/);
    // The largest amount itself, and ordinary ones, stand.
    const config = withConfig({ requisites: { maxAmount: '90071992547409.91' }, signing: { rules: [{ account: '*', fromAmount: '1000000.00', signatures: 2 }], mandates: [{ login: 'ceo', account: '*', upTo: '90071992547409.91' }] } });
    expect(config.requisites.maxAmount).toBe('90071992547409.91');
    expect(() => withConfig({ requisites: { maxAmount: '12.345' } })).toThrow(/^config \S+: requisites\.maxAmount: expected a decimal amount, e\.g\. "100000000\.00"$/);
  });
});
