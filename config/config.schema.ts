import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * The one configuration of the connector. Every key has a safe default that runs the demo on a
 * developer machine (local Redis and PostgreSQL, the embedded bank sandbox on loopback).
 * Secrets are never values here: only paths of files that hold them (or env variables read at use).
 */
const hostPort = z.number().int().min(1).max(65535);

/** The largest amount the connector holds as an integer of tiyn (Number.MAX_SAFE_INTEGER tiyn; connector/shared/money.ts MAX_AMOUNT). */
const LARGEST_AMOUNT = '90071992547409.91';

/**
 * An amount in tenge as config writes it ("1000000.00"). Its form, then its size: one the
 * connector cannot hold as an integer of tiyn (over LARGEST_AMOUNT) is refused here, naming the
 * key, not by every order it is compared with later. (config/ imports nothing of connector/:
 * DESIGN.md's dependency rules; the size is compared in BigInt here.)
 */
function amountSetting(example: string) {
  return z
    .string()
    .regex(/^\d{1,16}(\.\d{1,2})?$/, `expected a decimal amount, e.g. "${example}"`)
    .superRefine((text, ctx) => {
      // The form is the regex's to name (it runs first and its issue is kept).
      const form = /^(\d{1,16})(?:\.(\d{1,2}))?$/.exec(text);
      if (!form) return;
      const tiyn = BigInt(form[1]) * 100n + BigInt((form[2] ?? '').padEnd(2, '0'));
      if (tiyn > BigInt(Number.MAX_SAFE_INTEGER)) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `amount "${text}" exceeds the largest amount ${LARGEST_AMOUNT}` });
    });
}

/** An IPv4/IPv6 address, or one with a prefix length (CIDR), as Fastify's trustProxy takes them. */
function isAddressOrRange(value: string): boolean {
  const [address, bits, ...rest] = value.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * An SMTP server for the admins' alerts. The login is only ever sent over TLS: `starttls` (the
 * default, port 587) requires the upgrade and never falls back to clear text, `tls` speaks TLS from
 * the first byte (port 465), `none` is clear text and allowed only without a login (a relay on
 * loopback). The password lives in a file, like every other secret here.
 */
const smtpSchema = z
  .object({
    host: z.string().min(1),
    /** Default: 465 with `tls`, 587 otherwise. */
    port: hostPort.optional(),
    security: z.enum(['starttls', 'tls', 'none']).default('starttls'),
    /** The sender address (envelope and From). */
    from: z.string().email(),
    user: z.string().min(1).optional(),
    passwordFile: z.string().min(1).optional(),
    /** PEM file of the CA that signed the server's certificate, trusted instead of the public ones (a private mail server). */
    caFile: z.string().min(1).optional(),
    /** Bound on the whole send, and on each of its steps: a lockdown never waits longer for its e-mail; below PM2's kill_timeout (30 s). */
    timeoutMs: z.number().int().min(500).max(20_000).default(10_000),
  })
  .strict()
  .superRefine((smtp, ctx) => {
    if (smtp.user && !smtp.passwordFile) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['passwordFile'], message: 'smtp.user is set: the password must be in smtp.passwordFile' });
    if (smtp.passwordFile && !smtp.user) ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['user'], message: 'smtp.passwordFile is set without smtp.user' });
    if (smtp.user && smtp.security === 'none') ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['security'], message: 'a login is never sent in clear text: use starttls or tls with smtp.user' });
    // The lockdown's e-mail carries the bank checklist (Client ID, accounts, documents): clear text only to a relay on this machine.
    if (smtp.security === 'none' && !/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/i.test(smtp.host)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['security'], message: `none (clear text) is only for a relay on loopback, not ${smtp.host}: use starttls or tls` });
    }
  })
  .transform((smtp) => ({ ...smtp, port: smtp.port ?? (smtp.security === 'tls' ? 465 : 587) }));

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'expected HH:MM (24h), e.g. "17:00"');

/**
 * The account of a signing rule or a mandate: "*" or a KZ account, kept as orders carry it (no spaces,
 * upper case; a bank prints it in groups of four). A rule is matched to an order's account by
 * equality: one written otherwise never matched, and the "*" rule (maybe one signature) applied.
 */
const signingAccount = z
  .string()
  .transform((v) => (v.trim() === '*' ? '*' : v.replace(/\s+/g, '').toUpperCase()))
  .refine((v) => v === '*' || /^KZ\d{5}[A-Z0-9]{13}$/.test(v), 'expected "*" or a KZ account (IIK: KZ, 2 check digits, 3-digit bank code, 13 letters or digits)')
  .default('*');

/** The signer agent's address (signer.url): loopback http or a Unix socket, as the agent listens. */
function signerUrlIsLocal(url: string): boolean {
  if (/^unix:./.test(url)) return true;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(parsed.hostname);
  } catch {
    return false;
  }
}

export const configSchema = z
  .object({
    testMode: z.boolean().default(false),
    /** ISO time the clock starts from; honoured only in test mode. */
    fakeNow: z.string().datetime({ offset: true }).optional(),
    database: z
      .object({
        url: z
          .string()
          .regex(/^postgres(ql)?:\/\//, 'expected a postgresql:// URL')
          .default('postgresql://postgres@127.0.0.1:5432/connector'),
        poolMax: z.number().int().min(1).max(200).default(10),
        /**
         * Server-side bounds set on every connection the connector opens (PostgreSQL's settings of the
         * same names; 0 = not set, the server's own value applies). A statement stuck behind a lock a
         * hung session holds, or a session left idle inside a transaction, would otherwise stall a
         * worker for good. The worker's statements take milliseconds; the heaviest regular ones (a
         * day's statement stored, a retention sweep) seconds. `connector migrate` runs without them
         * (an index over years of rows may rightly take minutes), and the archive export's snapshot
         * transaction without the idle bound (it writes files between its fetches).
         */
        statementTimeoutMs: z.number().int().min(0).max(86_400_000).default(60_000),
        /** How long one statement waits for a row, table or advisory lock before it fails (SQLSTATE 55P03); the job is retried. */
        lockTimeoutMs: z.number().int().min(0).max(86_400_000).default(10_000),
        /** A session idle this long inside an open transaction is ended by the server, its locks released (SQLSTATE 25P03). */
        idleInTransactionTimeoutMs: z.number().int().min(0).max(86_400_000).default(60_000),
        /**
         * The client's own bound on one query (pg's query_timeout): a server that stopped answering
         * without closing the connection. Default: statementTimeoutMs + 5 s, so the server cancels
         * a slow statement first; 0 = none. Must be above statementTimeoutMs when both are set.
         */
        queryTimeoutMs: z.number().int().min(0).max(86_400_000).optional(),
      })
      .superRefine((db, ctx) => {
        if (db.queryTimeoutMs && db.statementTimeoutMs && db.queryTimeoutMs <= db.statementTimeoutMs) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: ['queryTimeoutMs'],
            message: `must be above database.statementTimeoutMs (${db.statementTimeoutMs}), so that the server cancels a slow statement before the client gives up on the connection; or 0 for none`,
          });
        }
      })
      .transform((db) => ({ ...db, queryTimeoutMs: db.queryTimeoutMs ?? (db.statementTimeoutMs ? db.statementTimeoutMs + 5_000 : 0) }))
      .default({}),
    redis: z
      .object({
        url: z.string().regex(/^rediss?:\/\//, 'expected a redis:// or rediss:// URL').default('redis://127.0.0.1:6379'),
        prefix: z
          .string()
          .regex(/^[A-Za-z0-9_.-]+$/, 'expected letters, digits, "_", "-" or "." (no ":")')
          .default('connector'),
      })
      .default({}),
    api: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: hostPort.default(8080),
        /** Origins of a console allowed to call the API with a session cookie (CSRF check). */
        consoleOrigins: z.array(z.string().url()).default([]),
        /**
         * Names the API is reached by (the Host header), beyond IP addresses, `localhost`, `api.host`
         * and the console origins' hosts: a page whose own name is made to resolve to this machine (DNS
         * rebinding) is refused. Empty while the API listens beyond loopback: any name (list the
         * names the ERPs and browsers use here to close that).
         */
        allowedHosts: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'expected a host name without scheme or port')).default([]),
        /**
         * Addresses (or CIDR ranges) of the reverse proxies in front of the API: only a request whose
         * socket comes from one of them has its X-Forwarded-For / -Proto believed (the client's address
         * for the per-IP login limit, https for the cookie's Secure flag). Empty: the socket's address,
         * whatever the headers say; any client could otherwise name a new address for every attempt.
         */
        trustedProxies: z.array(z.string().refine(isAddressOrRange, 'expected an IP address or a CIDR range, e.g. 127.0.0.1 or 10.0.0.0/24')).default([]),
        maxBatchSize: z.number().int().min(1).max(10000).default(500),
        /**
         * How long an `Idempotency-Key` and the answer it got are kept: a retry within this many days
         * gets the first answer (or 409 for another body). Older records are deleted by the sweeper
         * (a batch answer can weigh hundreds of KB); the natural key still makes the same document
         * one order afterwards.
         */
        idempotencyKeepDays: z.number().int().min(1).max(3650).default(30),
      })
      .default({}),
    bank: z
      .object({
        url: z.string().url().default('http://127.0.0.1:8900'),
        apiVersion: z.string().min(1).default('v1'),
        clientId: z.string().min(1).optional(),
        /** File holding the Client Secret until the credential vault has one. */
        clientSecretFile: z.string().min(1).optional(),
        timeoutMs: z.number().int().min(100).max(600_000).default(15_000),
        statementTimeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
        caFile: z.string().optional(),
        clientCertFile: z.string().optional(),
        clientKeyFile: z.string().optional(),
      })
      .default({}),
    signer: z
      .object({
        /**
         * The agent on this machine: http on loopback or a Unix socket. Every call carries the
         * agent's token, and an unlock carries a user's key password: on any other address they
         * would cross the network in clear text (the agent itself listens nowhere else).
         */
        url: z
          .string()
          .refine(signerUrlIsLocal, 'expected http://127.0.0.1:PORT, http://[::1]:PORT, http://localhost:PORT or unix:/path: the token and the users\' key passwords go to this address in clear text, so only to this machine')
          .default('http://127.0.0.1:8901'),
        tokenFile: z.string().default('.connector/signer.token'),
        sessionIdleMinutes: z.number().int().min(1).max(30).default(30),
        /**
         * Idle timeout in seconds, overriding sessionIdleMinutes; honoured only in test mode (tests
         * that watch a session end cannot wait minutes). Never above R-13's 30 minutes.
         */
        sessionIdleSeconds: z.number().int().min(1).max(1800).optional(),
        /** Absolute bound of one unlock session whatever its activity (default 8 h, one working day). */
        sessionMaxMinutes: z.number().int().min(1).max(1440).default(480),
        /** The agent's registry of enrolled keystores: user id -> path (never a password). */
        keysFile: z.string().min(1).default('.connector/signer-keys.json'),
        /** Append-only JSON-lines journal of what the agent signed (no secrets). */
        journalFile: z.string().min(1).default('.connector/signer-journal.jsonl'),
        /** Signing worker threads; default: one per core. */
        workers: z.number().int().min(1).max(64).optional(),
        /** Largest document (bytes) the agent accepts for signing. */
        maxDocumentBytes: z.number().int().min(1).max(64 * 1024 * 1024).default(8 * 1024 * 1024),
        trust: z.array(z.string()).default([]),
        /** CRL files, or http(s) URLs refreshed on a schedule into crlCacheDir (LESSONS.md 14-15). */
        crl: z.array(z.string()).default([]),
        crlCacheDir: z.string().min(1).default('.connector/crl-cache'),
        crlRefreshMinutes: z.number().int().min(1).max(10_080).default(60),
        requireRevocation: z.boolean().default(false),
      })
      .default({}),
    masterKeyFile: z.string().default('.connector/master.key'),
    /** People: password policy, sessions, lock-out, second factor (R-5..R-14, INTERFACES.md "HTTP API"). */
    users: z
      .object({
        /** 30 minutes idle ends a session; may be set lower, never higher. */
        sessionIdleMinutes: z.number().int().min(1).max(30).default(30),
        /** A session ends after this long whatever its activity (one working day by default). */
        sessionAbsoluteHours: z.number().int().min(1).max(24).default(12),
        /** how long 5 consecutive wrong passwords lock a login (an admin can unlock sooner). */
        lockoutMinutes: z.number().int().min(1).max(1440).default(30),
        /** Per-IP login attempts a minute; INTERFACES.md: never below 30. */
        loginRateLimitPerMinute: z.number().int().min(30).max(100_000).default(30),
        /** roles whose members must present a TOTP code at login. */
        totpRequiredRoles: z.array(z.enum(['admin', 'signer', 'operator', 'viewer'])).default([]),
        /** scrypt cost as log2(N); 15 = 32 MiB of memory per hash. */
        scryptLogN: z.number().int().min(14).max(20).default(15),
        /** Mark the session cookie Secure even when the request did not arrive over TLS (behind a TLS proxy that does not say so). */
        secureCookie: z.boolean().default(false),
      })
      .default({}),
    log: z
      .object({
        level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      })
      .default({}),
    onec: z
      .object({
        outboxDir: z.string().default('exchange/outbox'),
        inboxDir: z.string().default('exchange/inbox'),
        encoding: z.enum(['windows', 'utf8']).default('windows'),
        /** A file is taken only when its size has not changed for this long (1C may still write). */
        stableMs: z.number().int().min(0).max(600_000).default(2_000),
        scanEveryMs: z.number().int().min(200).max(3_600_000).default(5_000),
      })
      .default({}),
    /** Kazakhstan requisite rules (connector/requisites): limits and how strict the reference lists are. */
    requisites: z
      .object({
        /** An unknown КНП: the shipped list is partial (no official machine-readable list), so a warning by default. */
        unknownKnp: z.enum(['warning', 'error']).default('warning'),
        /** A BIC (or IIK bank code) missing from the bank directory. */
        unknownBic: z.enum(['warning', 'error']).default('error'),
        minAmount: amountSetting('0.01').default('0.01'),
        /** Largest amount of one order; unset = no limit beyond the safe-integer range. */
        maxAmount: amountSetting('100000000.00').optional(),
        currencies: z.array(z.string().regex(/^[A-Z]{3}$/, 'expected an ISO 4217 code, e.g. "KZT"')).min(1).default(['KZT']),
        purposeMaxLength: z.number().int().min(1).max(2000).default(420),
        /** How many days ahead of today (Kazakhstan time) a document date may be. */
        futureDateToleranceDays: z.number().int().min(0).max(30).default(1),
        /** Older documents get a warning (a payment order is valid 10 calendar days from its date). */
        staleAfterDays: z.number().int().min(1).max(366).default(10),
        /** Kazakhstan has one time zone, UTC+5, since 1 March 2024: "today" is judged there. */
        utcOffsetMinutes: z.number().int().min(-720).max(840).default(300),
      })
      .default({}),
    /** Status-change webhooks to an ERP (INTERFACES.md "1C folder exchange and webhooks"). */
    webhooks: z
      .object({
        /** Where status changes are POSTed; unset = no webhooks. */
        url: z.string().url().optional(),
        /** File holding the HMAC secret (never the secret itself in config). */
        secretFile: z.string().min(1).optional(),
        timeoutMs: z.number().int().min(100).max(120_000).default(10_000),
        everyMs: z.number().int().min(200).max(3_600_000).default(2_000),
        /** Backoff between attempts on one event doubles from 1 s up to this. */
        maxBackoffMs: z.number().int().min(1000).max(86_400_000).default(300_000),
        batchSize: z.number().int().min(1).max(1000).default(100),
      })
      .default({}),
    calendar: z
      .object({
        /** The bank's operational-day cut-off, Kazakhstan time (UTC+5). */
        cutoff: hhmm.default('17:00'),
        /**
         * A folder of `kz-YYYY.json` files laid over the shipped calendar data, one per year
         * (connector/calendar/README.md): next year's official transfers without a new release.
         * Read at each process's start.
         */
        dataDir: z.string().min(1).optional(),
      })
      .default({}),
    worker: z
      .object({
        /** Jobs per queue a worker process runs at once; also its send slots: the most payment requests on their way to the bank (what a lockdown can find in flight). */
        concurrency: z.number().int().min(1).max(256).default(8),
        /**
         * Jobs the validate, sign, submit and track stages take at once per worker process. They are coalesced
         * into batches of up to `batchSize` orders (queue/stage-batcher.ts), so this bounds the batch.
         */
        batchConcurrency: z.number().int().min(1).max(1024).default(16),
        /** Orders per batch in those stages; 1 turns batching off. */
        batchSize: z.number().int().min(1).max(1024).default(16),
        /**
         * How long the first order of a batch waits for others to join it. Under a steady trickle the
         * wait is what fills a batch: at 100 orders/s offered (`npm run bench -- --rate 100`), 25 ms
         * against 5 ms cut the machine's CPU per order by a sixth to a fifth and with it the
         * queueing (README, Figures: alternated runs).
         * When orders come all at once the batches fill before the wait ends, so it costs nothing there;
         * a lone order pays it once per stage (about 0.1 s in all).
         */
        batchWaitMs: z.number().int().min(0).max(1000).default(25),
        /** PM2 instances of connector-worker. */
        instances: z.number().int().min(1).max(64).default(1),
      })
      .default({}),
    queue: z
      .object({
        /** BullMQ lock of an active job; a worker that dies loses its jobs to another after this. */
        lockDurationMs: z.number().int().min(500).max(600_000).default(30_000),
        stalledIntervalMs: z.number().int().min(500).max(600_000).default(30_000),
        maxStalledCount: z.number().int().min(0).max(100).default(5),
        attempts: z.number().int().min(1).max(1000).default(8),
        backoffMs: z.number().int().min(10).max(3_600_000).default(2_000),
      })
      .default({}),
    signing: z
      .object({
        /**
         * How many signatures an order needs, by payer account and amount (DESIGN.md step 3).
         * The rule with the highest fromAmount not above the order's amount, for its account
         * (or "*"), applies: 1 = a first signature, 2 = first and second. Amounts in tenge: an order
         * in another currency is judged above every threshold, limit and mandate (policyAmountTiyn).
         */
        rules: z
          .array(
            z.object({
              account: signingAccount,
              fromAmount: amountSetting('1000000.00').default('0'),
              signatures: z.union([z.literal(1), z.literal(2)]),
            }),
          )
          .default([{ account: '*', fromAmount: '0', signatures: 1 }]),
        /**
         * Standing mandates: a user's unlocked key signs ERP orders of an account up to an amount
         * without a per-order approval. Off (empty) by default; every use is audited.
         */
        mandates: z
          .array(
            z.object({
              login: z.string().min(1),
              account: signingAccount,
              upTo: amountSetting('500000.00'),
            }),
          )
          .default([]),
        /** How often an order waiting for signatures looks again for an unlocked signer. */
        pollEveryMs: z.number().int().min(100).max(3_600_000).default(3_000),
      })
      .default({}),
    tracking: z
      .object({
        /** First status poll after submission; doubles up to maxPollEveryMs (backoff). */
        pollEveryMs: z.number().int().min(50).max(3_600_000).default(2_000),
        maxPollEveryMs: z.number().int().min(50).max(3_600_000).default(60_000),
      })
      .default({}),
    /** Compromise lockdown (R-29..R-31, connector/lockdown): what each trigger does, brute-force bounds, admin alerts. */
    lockdown: z
      .object({
        /** Per trigger: `lockdown` (stop everything, default) or `alert` (an incident and an admin alert only). */
        triggers: z
          .object({
            user_report: z.enum(['lockdown', 'alert']).default('lockdown'),
            bank_credentials_revoked: z.enum(['lockdown', 'alert']).default('lockdown'),
            bank_refused_compromise: z.enum(['lockdown', 'alert']).default('lockdown'),
            certificate_check_failed: z.enum(['lockdown', 'alert']).default('lockdown'),
            signed_bytes_mismatch: z.enum(['lockdown', 'alert']).default('lockdown'),
            unexplained_debit: z.enum(['lockdown', 'alert']).default('lockdown'),
            execution_mismatch: z.enum(['lockdown', 'alert']).default('lockdown'),
            brute_force: z.enum(['lockdown', 'alert']).default('lockdown'),
          })
          .strict()
          .default({}),
        /** Bank refusal reason codes that mean identification / authentication / compromise (R-31, terms 5.2.2, 5.2.8d). */
        bankRefusalCodes: z.array(z.string().regex(/^[A-Z_]{1,60}$/)).default(['AUTHENTICATION_IMPOSSIBLE', 'CREDENTIALS_COMPROMISED']),
        bruteForce: z
          .object({
            windowMinutes: z.number().int().min(1).max(1440).default(15),
            /** This many different logins locked out within the window is an attack, not a forgetful user. */
            lockoutsAcrossAccounts: z.number().int().min(2).max(1000).default(3),
            /** Login attempts for blocked (disabled) users within the window. */
            disabledUserAttempts: z.number().int().min(1).max(1000).default(3),
          })
          .default({}),
        notify: z
          .object({
            /** Admins' alert webhook (signed like the ERP webhooks); unset = no webhook. */
            webhookUrl: z.string().url().optional(),
            /** File holding the HMAC secret; defaults to webhooks.secretFile. */
            webhookSecretFile: z.string().min(1).optional(),
            /** Admins who get each lockdown notice by e-mail, through `smtp` (docs/lockdown.md). */
            emails: z.array(z.string().email()).default([]),
            timeoutMs: z.number().int().min(100).max(60_000).default(3_000),
            /** The mail server the e-mails go through; unset = no e-mail (a warning when `emails` is set). */
            smtp: smtpSchema.optional(),
            /** How often the scheduler's leader mails new open incidents to `emails` (one digest; each incident once). */
            incidentsEveryMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
          })
          .default({}),
        /** Bound on each outside call of the lockdown (signer agent, webhook): the lock never waits longer. */
        agentTimeoutMs: z.number().int().min(50).max(30_000).default(2_000),
      })
      .default({}),
    sweeper: z
      .object({
        everyMs: z.number().int().min(1000).max(3_600_000).default(30_000),
        /** Orders untouched this long in a transient state are re-queued. */
        staleAfterMs: z.number().int().min(1000).max(86_400_000).default(120_000),
      })
      .default({}),
    /** Statements, reconciliation and write-back (issue 15 stages 5-7). */
    pipeline: z
      .object({
        /**
         * Accounts whose statements are fetched. Empty: the distinct payer accounts of orders not
         * yet final or final for less than 3 days.
         */
        accounts: z.array(z.string().regex(/^KZ\d{2}[0-9A-Z]{16}$/, 'expected a Kazakhstan IBAN (KZ + 18)')).default([]),
        /** How often each account's statement is fetched: today's (intraday) and the closed previous business day(s). */
        statementsEveryMs: z.number().int().min(1000).max(86_400_000).default(15 * 60_000),
        /** Orders whose document date is this recent appear in the status report for 1C. */
        statusReportDays: z.number().int().min(1).max(366).default(7),
      })
      .default({}),
  })
  .strict();

export type ConnectorConfig = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
