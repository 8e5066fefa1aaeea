import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SMTPServerOptions } from 'smtp-server';
import { bodyOf, headersOf, headerValue, startMailServer, type TestMailServer } from '../../test/support/mail-server';
import { SmtpMailer, type SmtpConfig } from './smtp.mailer';

/** The mailer against a real SMTP server on loopback (test/support/mail-server.ts). */
const PASSWORD = 'smtp-Pa55word-never-shown';
const USER = 'alerts@example.kz';
const dir = mkdtempSync(join(tmpdir(), 'smtp-mailer-'));
const passwordFile = join(dir, 'smtp.password');
writeFileSync(passwordFile, `${PASSWORD}\n`);

async function startMailbox(options: Partial<SMTPServerOptions> = {}): Promise<TestMailServer & { caFile: string }> {
  const server = await startMailServer({ user: USER, password: PASSWORD }, options);
  const caFile = join(dir, `ca-${server.port}.pem`);
  writeFileSync(caFile, server.caPem);
  return Object.assign(server, { caFile });
}

function smtpConfig(mailbox: { port: number; caFile?: string }, over: Partial<SmtpConfig> = {}): SmtpConfig {
  return { host: '127.0.0.1', port: mailbox.port, security: 'starttls', from: 'connector@example.kz', user: USER, passwordFile, caFile: mailbox.caFile, timeoutMs: 5_000, ...over };
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('SmtpMailer', () => {
  it('logs in only after STARTTLS, verifies the certificate, and delivers one message to every admin', async () => {
    const mailbox = await startMailbox();
    try {
      const mailer = new SmtpMailer(smtpConfig(mailbox), ['ops@example.kz', 'cfo@example.kz']);
      const sent = await mailer.send({ subject: 'LOCKDOWN: Секрет утёк\r\nBcc: thief@evil.example', text: 'Позвоните в банк: +7 7172 770 622\nincident: 42' });
      expect(sent).toEqual({ ok: true, accepted: ['ops@example.kz', 'cfo@example.kz'], rejected: [] });
      expect(mailbox.logins).toEqual([{ user: USER, password: PASSWORD, secure: true }]);
      expect(mailbox.received).toHaveLength(1);
      const [mail] = mailbox.received;
      expect(mail.secureAtData).toBe(true);
      expect(mail.from).toBe('connector@example.kz');
      // The CR/LF in the subject added neither a header nor a recipient.
      expect(mail.to).toEqual(['ops@example.kz', 'cfo@example.kz']);
      expect(headersOf(mail.raw).filter((h) => /^bcc:/i.test(h))).toEqual([]);
      expect(headerValue(mail.raw, 'subject')).toBe('LOCKDOWN: Секрет утёк Bcc: thief@evil.example');
      expect(bodyOf(mail.raw)).toContain('Позвоните в банк: +7 7172 770 622');
      expect(await mailer.verify()).toEqual({ ok: true });
    } finally {
      await mailbox.close();
    }
  });

  it('sends nothing, not even the login, to a server that does not offer STARTTLS', async () => {
    const mailbox = await startMailbox({ hideSTARTTLS: true, disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    try {
      const sent = await new SmtpMailer(smtpConfig(mailbox), ['ops@example.kz']).send({ subject: 's', text: 't' });
      expect(sent.ok).toBe(false);
      expect(mailbox.logins).toEqual([]);
      expect(mailbox.received).toEqual([]);
      if (!sent.ok) expect(sent.error).toMatch(new RegExp(`^SMTP 127\\.0\\.0\\.1:${mailbox.port}: `));
    } finally {
      await mailbox.close();
    }
  });

  it('refuses a certificate from a CA it was not told to trust', async () => {
    const mailbox = await startMailbox();
    try {
      const sent = await new SmtpMailer(smtpConfig(mailbox, { caFile: undefined }), ['ops@example.kz']).send({ subject: 's', text: 't' });
      expect(sent.ok).toBe(false);
      expect(mailbox.logins).toEqual([]);
      expect(mailbox.received).toEqual([]);
    } finally {
      await mailbox.close();
    }
  });

  it('a refused login names the server and its answer, never the password (even when the server echoes it)', async () => {
    const mailbox = await startMailbox();
    const wrong = join(dir, 'wrong.password');
    writeFileSync(wrong, 'Wrong-Pa55word-also-secret\n');
    try {
      const mailer = new SmtpMailer(smtpConfig(mailbox, { passwordFile: wrong }), ['ops@example.kz']);
      for (const outcome of [await mailer.send({ subject: 's', text: 't' }), await mailer.verify()]) {
        expect(outcome.ok).toBe(false);
        if (outcome.ok) continue;
        expect(outcome.error).toContain(`SMTP 127.0.0.1:${mailbox.port}: EAUTH`);
        expect(outcome.error).toContain('Authentication failed');
        expect(outcome.error).toContain('<redacted>');
        expect(outcome.error).not.toContain('Wrong-Pa55word-also-secret');
      }
      expect(mailbox.received).toEqual([]);
    } finally {
      await mailbox.close();
    }
  });

  it('takes the password out of whatever the server echoes, in full or in the forms AUTH sends it, before the answer is cut', async () => {
    const echoes = [
      // Whatever the length of the server's prefix, one of these puts the cut inside the password.
      ...[160, 168, 176, 184, 192].map((n) => `${'x'.repeat(n)}${PASSWORD}`),
      `bad credentials ${Buffer.from(`\u0000${USER}\u0000${PASSWORD}`).toString('base64')}`,
      `bad password ${Buffer.from(PASSWORD).toString('base64')}`,
    ];
    for (const echo of echoes) {
      const mailbox = await startMailbox({ onAuth: (_auth, _session, callback) => callback(new Error(echo)) });
      try {
        const sent = await new SmtpMailer(smtpConfig(mailbox), ['ops@example.kz']).send({ subject: 's', text: 't' });
        expect(sent.ok).toBe(false);
        if (sent.ok) continue;
        expect(sent.error).toContain('EAUTH');
        for (const piece of [PASSWORD.slice(0, 8), PASSWORD.slice(-8), Buffer.from(PASSWORD).toString('base64').slice(0, 12)]) expect(sent.error).not.toContain(piece);
      } finally {
        await mailbox.close();
      }
    }
  });

  it('speaks TLS from the first byte with security tls', async () => {
    const mailbox = await startMailbox({ secure: true });
    try {
      const sent = await new SmtpMailer(smtpConfig(mailbox, { security: 'tls' }), ['ops@example.kz']).send({ subject: 'tls', text: 'implicit TLS' });
      expect(sent).toEqual({ ok: true, accepted: ['ops@example.kz'], rejected: [] });
      expect(mailbox.logins).toEqual([{ user: USER, password: PASSWORD, secure: true }]);
    } finally {
      await mailbox.close();
    }
  });

  it('refuses a certificate that does not name the host it connects to', async () => {
    const mailbox = await startMailbox();
    try {
      // The test certificate names 127.0.0.1 (and mail.test), not localhost.
      const sent = await new SmtpMailer(smtpConfig(mailbox, { host: 'localhost' }), ['ops@example.kz']).send({ subject: 's', text: 't' });
      expect(sent.ok).toBe(false);
      if (!sent.ok) expect(sent.error).toMatch(/altnames|hostname|certificate/i);
      expect(mailbox.logins).toEqual([]);
    } finally {
      await mailbox.close();
    }
  });

  it('never logs in over clear text, even when handed security none with a login', async () => {
    const mailbox = await startMailbox({ hideSTARTTLS: true, disabledCommands: ['STARTTLS'], allowInsecureAuth: true });
    try {
      const sent = await new SmtpMailer(smtpConfig(mailbox, { security: 'none' }), ['ops@example.kz']).send({ subject: 's', text: 't' });
      expect(sent.ok).toBe(false);
      expect(mailbox.logins).toEqual([]);
      expect(mailbox.received).toEqual([]);
    } finally {
      await mailbox.close();
    }
  });

  it('does not send without the configured login when the server offers no AUTH', async () => {
    const mailbox = await startMailbox({ disabledCommands: ['AUTH'] });
    try {
      const mailer = new SmtpMailer(smtpConfig(mailbox), ['ops@example.kz']);
      expect((await mailer.send({ subject: 's', text: 't' })).ok).toBe(false);
      expect((await mailer.verify()).ok).toBe(false);
      expect(mailbox.received).toEqual([]);
    } finally {
      await mailbox.close();
    }
  });

  it('names a password file it cannot read, and does not connect', async () => {
    const sent = await new SmtpMailer(smtpConfig({ port: 1 }, { passwordFile: join(dir, 'missing') }), ['ops@example.kz']).send({ subject: 's', text: 't' });
    expect(sent).toEqual({ ok: false, error: `the SMTP password file ${join(dir, 'missing')} cannot be read` });
  });

  it('gives up on a server that never answers, within its bound', async () => {
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (silent.address() as AddressInfo).port;
      const sent = await new SmtpMailer(smtpConfig({ port }, { timeoutMs: 500 }), ['ops@example.kz']).send({ subject: 's', text: 't' });
      expect(sent.ok).toBe(false);
      if (!sent.ok) expect(sent.error).toMatch(/timeout|abort/i);
    } finally {
      silent.close();
    }
  });
});
