import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { createTestCa, issueTlsCertificate } from '../../adapters/bank/sandbox/test-ca';

/**
 * A real SMTP server on loopback for tests (smtp-server, from the nodemailer project: the mail
 * server is a boundary we do not own), with STARTTLS on a certificate from its own test CA
 * (`caPem`, to trust), one login, and every message it takes kept in `received`.
 */
export interface Received {
  from: string;
  to: string[];
  raw: string;
  secureAtData: boolean;
}

export interface TestMailServer {
  port: number;
  caPem: string;
  received: Received[];
  logins: Array<{ user: string; password: string; secure: boolean }>;
  close(): Promise<void>;
}

/** One CA and server certificate per test process (RSA key generation is the slow part). */
let pki: { caPem: string; keyPem: string; certPem: string } | undefined;
function mailPki(): { caPem: string; keyPem: string; certPem: string } {
  if (!pki) {
    const ca = createTestCa('Mail Test CA');
    pki = { caPem: ca.certPem, ...issueTlsCertificate(ca, { commonName: 'mail.test', ip: '127.0.0.1' }) };
  }
  return pki;
}

export async function startMailServer(login: { user: string; password: string }, options: Partial<SMTPServerOptions> = {}): Promise<TestMailServer> {
  const tls = mailPki();
  const received: Received[] = [];
  const logins: TestMailServer['logins'] = [];
  const server = new SMTPServer({
    key: tls.keyPem,
    cert: tls.certPem,
    logger: false,
    disableReverseLookup: true,
    onAuth(auth, session, callback) {
      logins.push({ user: auth.username ?? '', password: auth.password ?? '', secure: session.secure });
      if (auth.username === login.user && auth.password === login.password) callback(null, { user: login.user });
      // A careless server that echoes what it was sent: a client must not pass it on.
      else callback(new Error(`Authentication failed for ${auth.username}/${auth.password}`));
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          secureAtData: session.secure,
        });
        callback();
      });
    },
    ...options,
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  return { port, caPem: tls.caPem, received, logins, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** The header lines of a message, folded lines joined. */
export function headersOf(raw: string): string[] {
  return raw.split('\r\n\r\n')[0].replace(/\r\n[ \t]+/g, ' ').split('\r\n');
}

/** A header's value with its RFC 2047 encoded words decoded (UTF-8, B or Q). */
export function headerValue(raw: string, name: string): string | undefined {
  const line = headersOf(raw).find((h) => h.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  if (line === undefined) return undefined;
  const qp = (text: string) => Buffer.from(text.replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
  return line
    .slice(name.length + 1)
    .trim()
    .replace(/=\?utf-8\?([bq])\?([^?]*)\?=\s*/gi, (_, kind: string, text: string) => (kind.toLowerCase() === 'b' ? Buffer.from(text, 'base64').toString('utf8') : qp(text.replace(/_/g, ' '))));
}

/** The text of a single-part message, its transfer encoding undone. */
export function bodyOf(raw: string): string {
  const [head, ...rest] = raw.split('\r\n\r\n');
  const body = rest.join('\r\n\r\n');
  const encoding = /content-transfer-encoding:\s*(\S+)/i.exec(head)?.[1].toLowerCase();
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (encoding === 'quoted-printable') {
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, 'latin1').toString('utf8');
  }
  return body;
}
