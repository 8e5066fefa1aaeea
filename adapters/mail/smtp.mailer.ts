import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { createTransport } from 'nodemailer';
import type { ConnectorConfig } from '../../config/config.schema';
import { singleLine } from '../../connector/shared/text';

/** `lockdown.notify.smtp` (config/config.schema.ts). */
export type SmtpConfig = NonNullable<ConnectorConfig['lockdown']['notify']['smtp']>;

/** A plain-text message to the admins. */
export interface AlertMail {
  subject: string;
  text: string;
}

/** What became of one e-mail: the recipients the server took, those it refused, or why nothing was sent. */
export type MailDelivery = { ok: true; accepted: string[]; rejected: string[] } | { ok: false; error: string };

/** Longest subject kept (the rest of the reason is in the body). */
const MAX_SUBJECT = 150;

/**
 * The one mail primitive: one message over SMTP (nodemailer) to a fixed list of recipients.
 * A new connection per message: alerts are rare and must not depend on a pooled connection the
 * server dropped hours ago. The login goes only over TLS (the config refuses anything else) and the
 * server's certificate is always verified. Never throws: the outcome says what happened, in words
 * that carry the server's answer and never the password.
 */
export class SmtpMailer {
  constructor(
    private readonly smtp: SmtpConfig,
    private readonly recipients: readonly string[],
  ) {}

  /** Sends `mail`; header values are encoded by nodemailer (a CR/LF in a subject cannot add a header). */
  async send(mail: AlertMail): Promise<MailDelivery> {
    if (this.recipients.length === 0) return { ok: false, error: 'no recipients configured' };
    const transport = this.transport();
    if ('error' in transport) return { ok: false, error: transport.error };
    try {
      const info = await transport.mailer.sendMail({
        from: this.smtp.from,
        to: [...this.recipients],
        subject: oneLine(mail.subject, MAX_SUBJECT),
        text: mail.text,
        // No attachments, no remote content: nothing in a message is read from a path or a URL.
        disableFileAccess: true,
        disableUrlAccess: true,
        // One bound on the whole conversation (each step has it too): a hung server never holds a lockdown.
        signal: AbortSignal.timeout(this.smtp.timeoutMs),
      });
      return { ok: true, accepted: (info.accepted ?? []).map(String), rejected: (info.rejected ?? []).map(String) };
    } catch (err) {
      return { ok: false, error: describe(err, this.smtp, transport.pass) };
    } finally {
      transport.mailer.close();
    }
  }

  /** Connects, upgrades to TLS and logs in as a send would, without sending (`connector doctor`). */
  async verify(): Promise<{ ok: true } | { ok: false; error: string }> {
    const transport = this.transport();
    if ('error' in transport) return { ok: false, error: transport.error };
    try {
      await transport.mailer.verify();
      return { ok: true };
    } catch (err) {
      return { ok: false, error: describe(err, this.smtp, transport.pass) };
    } finally {
      transport.mailer.close();
    }
  }

  private transport(): { mailer: ReturnType<typeof createTransport>; pass: string | undefined } | { error: string } {
    const { smtp } = this;
    let pass: string | undefined;
    let ca: string | undefined;
    try {
      if (smtp.passwordFile) pass = readFileSync(smtp.passwordFile, 'utf8').replace(/\r?\n$/, '');
    } catch {
      return { error: `the SMTP password file ${smtp.passwordFile} cannot be read` };
    }
    try {
      if (smtp.caFile) ca = readFileSync(smtp.caFile, 'utf8');
    } catch {
      return { error: `the SMTP CA file ${smtp.caFile} cannot be read` };
    }
    // Never a login in clear text, whatever the caller built (the config refuses it too).
    if (smtp.user && smtp.security === 'none') return { error: 'a login is never sent in clear text: lockdown.notify.smtp.security must be starttls or tls with a user' };
    const mailer = createTransport({
      host: smtp.host,
      port: smtp.port,
      secure: smtp.security === 'tls',
      // starttls: the upgrade is required; a server that does not offer it gets nothing, not a clear-text login.
      requireTLS: smtp.security === 'starttls',
      ignoreTLS: smtp.security === 'none',
      name: hostname(),
      auth: smtp.user && pass !== undefined ? { user: smtp.user, pass } : undefined,
      // A server that does not offer AUTH gets no message from a configured login (not a silent skip).
      forceAuth: Boolean(smtp.user),
      // The certificate must name the host (its IP when the host is one: no SNI for an address).
      tls: { ...(isIP(smtp.host) ? {} : { servername: smtp.host }), minVersion: 'TLSv1.2', rejectUnauthorized: true, ...(ca ? { ca } : {}) },
      connectionTimeout: smtp.timeoutMs,
      greetingTimeout: smtp.timeoutMs,
      socketTimeout: smtp.timeoutMs,
      logger: false,
      debug: false,
    });
    return { mailer, pass };
  }
}

/** One line (connector/shared/text.ts) of at most `max` characters. */
function oneLine(text: string, max: number): string {
  const flat = singleLine(text);
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** The failure in words: nodemailer's code and the server's reply, naming the server; never the password. */
function describe(err: unknown, smtp: SmtpConfig, pass: string | undefined): string {
  const e = err as { code?: string; response?: string; message?: string };
  // The server's reply is the most useful part ("535 5.7.8 Authentication failed"); our own commands are never quoted.
  let said = e.response ?? e.message ?? String(err);
  // A server may echo what it was sent: the password, and the forms AUTH PLAIN / LOGIN send it in,
  // are taken out of the whole text first, before it is flattened and cut (a cut would leave a piece).
  if (pass) {
    const forms = [pass, Buffer.from(pass).toString('base64'), Buffer.from(`\u0000${smtp.user ?? ''}\u0000${pass}`).toString('base64')];
    for (const form of forms) said = said.split(form).join('<redacted>');
  }
  return `SMTP ${smtp.host}:${smtp.port}: ${e.code ? `${e.code} ` : ''}${oneLine(said, 200)}`;
}
