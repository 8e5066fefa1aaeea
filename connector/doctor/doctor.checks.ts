import { KEYS_NOT_WIPED, lockdownKey } from '../lockdown/lockdown.flag';
import { probeRedis } from '../shared/redis-probe';
import { readdirSync, readFileSync } from 'node:fs';
import { open, lstat, stat, statfs, unlink, access } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { Client } from 'pg';
import { ARCHIVE_EXPORTED, ARCHIVE_MAX_AGE_DAYS } from '../archive/archive.export';
import type { ConnectorConfig } from '../../config/config.schema';
import { configFileOf, loadConfig, redactedUrl } from '../../config/load-config';
import { readSigningSecret } from '../shared/secret-file';
import { MIGRATIONS } from '../persistence/migrations';
import { withTimeout } from '../shared/timeout';
import { PASSWORD_NOT_GIVEN, PASSWORD_NOT_GIVEN_HINT } from '../shared/pg-errors';
import { clockFromConfig } from '../shared/clock';
import { kzCalendarFromConfig } from '../calendar/kz-business-calendar';
import { epochDayOfIso } from '../calendar/kz-calendar-data';
import { kzToday } from '../statements/statement.schedule';
import { defaultTrustPaths, loadTrustStore } from '../../signer-agent/certificates/trust.store';
import { readToken, resolveTokenFile } from '../../signer-agent/agent/agent-token.store';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import type { CredentialVault } from '../persistence/entities';
import { credentialStatusOf, masterKeyProblem } from '../vault/credential.vault';
import { KEY_FILE_HINT, resolveMasterKeyPath } from '../vault/master-key.store';

export type Verdict = 'OK' | 'WARN' | 'FAIL';
export interface CheckResult {
  name: string;
  /** Core checks decide the exit code; component checks only WARN unless --strict. */
  core: boolean;
  verdict: Verdict;
  detail: string;
  hint?: string;
}

const CHECK_TIMEOUT_MS = 4_000;


function skew(serverMs: number, localMs: number): number {
  return Math.abs(serverMs - localMs);
}

/** Clock skew above this breaks token expiry, signing times and the R-9/R-13 clocks. */
const SKEW_WARN_MS = 1_000;
const SKEW_FAIL_MS = 5_000;

function skewVerdict(name: string, ms: number): CheckResult {
  const verdict: Verdict = ms > SKEW_FAIL_MS ? 'FAIL' : ms > SKEW_WARN_MS ? 'WARN' : 'OK';
  return {
    name,
    core: true,
    verdict,
    detail: `skew ${ms} ms`,
    hint: verdict === 'OK' ? undefined : 'synchronise the clocks (chrony/systemd-timesyncd) of this host and the server',
  };
}

async function checkRedis(config: ConnectorConfig): Promise<CheckResult[]> {
  const redis = probeRedis(config.redis.url, 3_000);
  // ioredis rejects connect() with "Connection is closed." whatever happened; the socket's own error
  // (ECONNREFUSED, ENOTFOUND, a TLS handshake refused) says what, and is what the admin needs.
  let socketError: Error | undefined;
  redis.on('error', (err: Error) => (socketError ??= err));
  const hint = 'start Redis (redis-server --daemonize yes) or fix CONNECTOR_REDIS_URL';
  try {
    await withTimeout(redis.connect(), CHECK_TIMEOUT_MS, 'Redis');
    // A database number the server does not have (redis://host:6379/16 with the default 16): ioredis
    // reports the refused SELECT as an error event and goes on in database 0, where doctor found all
    // well while every queue of the worker failed with "ERR DB index is out of range".
    if (socketError) throw socketError;
    const before = Date.now();
    const [info, time, policy] = await withTimeout(
      Promise.all([redis.info('server'), redis.time(), redis.config('GET', 'maxmemory-policy').catch(() => [] as string[])]),
      CHECK_TIMEOUT_MS,
      'Redis',
    );
    const local = (before + Date.now()) / 2;
    const version = /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown';
    const [major, minor] = version.split('.').map(Number);
    const results: CheckResult[] = [];
    const tooOld = major < 6 || (major === 6 && minor < 2);
    results.push({ name: 'redis', core: true, verdict: tooOld ? 'FAIL' : 'OK', detail: `${redactedUrl(config.redis.url)} version ${version}`, hint: tooOld ? 'BullMQ needs Redis >= 6.2' : undefined });
    const evict = Array.isArray(policy) && policy[1] && policy[1] !== 'noeviction';
    if (evict) results.push({ name: 'redis-eviction', core: false, verdict: 'WARN', detail: `maxmemory-policy ${policy[1]}`, hint: 'set maxmemory-policy noeviction: an evicting Redis drops queued jobs (LESSONS.md 13)' });
    const serverMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
    results.push(skewVerdict('clock-skew-redis', Math.round(skew(serverMs, local))));
    // Issue 16: the flag every stage checks before a side effect; set, nothing goes to the bank,
    // whatever PostgreSQL records (a lockdown engaged while PostgreSQL was down is in Redis only).
    const flag = await withTimeout(redis.get(lockdownKey(config.redis.prefix)), CHECK_TIMEOUT_MS, 'Redis').catch(() => null);
    if (flag !== null) {
      results.push({ name: 'lockdown-redis', core: false, verdict: 'WARN', detail: `the Redis lockdown flag is set (${flag.slice(0, 120)}): no order is validated, signed or sent`, hint: 'connector lockdown status says whether PostgreSQL records it; if not, run connector lockdown on --reason TEXT to record it, then resolve it' });
    }
    return results;
  } catch (err) {
    const message = (err as Error).message === 'Connection is closed.' && socketError ? socketError.message : (err as Error).message;
    const said = /DB index is out of range/.test(message) ? 'fix the database number at the end of CONNECTOR_REDIS_URL (config redis.url): this Redis has fewer databases (its `databases` setting, 16 by default: 0..15)' : hint;
    return [{ name: 'redis', core: true, verdict: 'FAIL', detail: `${redactedUrl(config.redis.url)}: ${message}`, hint: said }, notChecked('clock-skew-redis', 'Redis', said)];
  } finally {
    redis.disconnect();
  }
}

/** A core check that needs a service which did not answer: listed, and not OK (INTERFACES.md names it among the core checks). */
function notChecked(name: string, service: string, hint: string): CheckResult {
  return { name, core: true, verdict: 'FAIL', detail: `not checked: ${service} could not be used`, hint };
}

async function checkPostgres(config: ConnectorConfig, strict: boolean): Promise<CheckResult[]> {
  const client = new Client({ connectionString: config.database.url, connectionTimeoutMillis: 3_000, query_timeout: 3_000, statement_timeout: 3_000 });
  client.on('error', () => undefined);
  const hint = 'start PostgreSQL (pg_ctlcluster <version> main start) or fix CONNECTOR_DATABASE_URL; run `connector migrate` to create the database';
  try {
    await withTimeout(client.connect(), CHECK_TIMEOUT_MS, 'PostgreSQL');
    const before = Date.now();
    const res = await withTimeout(client.query<{ now: Date; version: string }>('select now() as now, current_setting(\'server_version\') as version'), CHECK_TIMEOUT_MS, 'PostgreSQL');
    const local = (before + Date.now()) / 2;
    const results: CheckResult[] = [{ name: 'postgresql', core: true, verdict: 'OK', detail: `server ${res.rows[0].version}` }];
    results.push(skewVerdict('clock-skew-postgresql', Math.round(skew(new Date(res.rows[0].now).getTime(), local))));
    let applied: string[] = [];
    try {
      const m = await withTimeout(client.query<{ name: string }>('select name from mikro_orm_migrations'), CHECK_TIMEOUT_MS, 'PostgreSQL');
      applied = m.rows.map((r) => r.name);
    } catch {
      applied = [];
    }
    const pending = MIGRATIONS.map((m) => m.name).filter((name) => !applied.includes(name));
    if (pending.length === 0) results.push(await checkBankCredentials(client, config));
    results.push(
      pending.length
        ? { name: 'migrations', core: true, verdict: 'FAIL', detail: `${pending.length} pending`, hint: 'run `connector migrate`' }
        : { name: 'migrations', core: true, verdict: 'OK', detail: `${applied.length} applied, none pending` },
    );
    // Issue 16: a lockdown in force is not a fault of the installation, but an operator must see it.
    try {
      const l = await withTimeout(
        client.query<{ state: string; since: Date | null; reason: string | null; incident_id: string | null; warnings: string[] | null }>('select state, since, reason, incident_id, warnings from lockdown_state where id = 1'),
        CHECK_TIMEOUT_MS,
        'PostgreSQL',
      );
      const row = l.rows[0];
      if (row?.state === 'locked') {
        // Keys the lockdown could not wipe are still unlocked in the signer agent (the scheduler retries).
        const keys = (row.warnings ?? []).some((w) => KEYS_NOT_WIPED.test(w)) ? '; keys unlocked in the signer agent are NOT wiped yet (the agent did not answer; the scheduler retries until it does)' : '';
        results.push({
          name: 'lockdown',
          core: false,
          verdict: 'WARN',
          detail: `locked down since ${row.since ? new Date(row.since).toISOString() : '?'}: ${row.reason ?? ''}${keys}`,
          hint: `${keys ? 'start the signer agent (or stop connector-signer-agent, which ends every unlocked key) and keep connector-scheduler running; ' : ''}tell the bank (R-29), then connector lockdown resolve --incident ${row.incident_id} --bank-notified-at ISO --bank-reference TEXT`,
        });
      } else if (row) {
        results.push({ name: 'lockdown', core: false, verdict: 'OK', detail: 'normal' });
      }
    } catch {
      // No lockdown table yet: the migrations check above says so.
    }
    if (pending.length === 0) results.push(await checkOverdueIncidents(client), await checkArchiveAge(client, strict, clockFromConfig(config).now()));
    return results;
  } catch (err) {
    const message = (err as Error).message;
    // The hint for what the server said: a login refused is not a server that is down.
    const said = /password authentication failed|role ".*" does not exist|no pg_hba\.conf entry/i.test(message)
      ? 'PostgreSQL refused the login: check the user and password in CONNECTOR_DATABASE_URL (config database.url) and pg_hba.conf'
      : PASSWORD_NOT_GIVEN.test(message)
        ? `PostgreSQL asks for a password and the URL gives none: ${PASSWORD_NOT_GIVEN_HINT}`
      : /database ".*" does not exist/i.test(message)
        ? 'run `connector migrate`: it creates the database'
        : hint;
    return [
      { name: 'postgresql', core: true, verdict: 'FAIL', detail: `${redactedUrl(config.database.url)}: ${message}`, hint: said },
      notChecked('clock-skew-postgresql', 'PostgreSQL', said),
      notChecked('migrations', 'PostgreSQL', said),
    ];
  } finally {
    void client.end().catch(() => undefined);
  }
}

/**
 * R-1/R-2: the bank's Client ID / Secret must be regenerated within 90 days and is blocked after
 * 90 idle days; warn from day 75. A component check (WARN, FAIL only with --strict), except that
 * the stored secret is opened with the master key file in use (R-4): when it cannot be (no such
 * file, a key file that is not the one that sealed it), nothing can be sent to the bank, so that
 * is a core FAIL naming the file.
 */
async function checkBankCredentials(client: Client, config: ConnectorConfig): Promise<CheckResult> {
  const name = 'bank-credentials';
  const res = await withTimeout(
    client.query<{ client_id: string; secret_enc: string; generated_at: Date; last_used_at: Date | null; revoked_at: Date | null; revoked_reason: string | null; revoked_source: 'bank' | 'lockdown' | null; updated_by: string }>(
      'select client_id, secret_enc, generated_at, last_used_at, revoked_at, revoked_reason, revoked_source, updated_by from credential_vault where id = 1',
    ),
    CHECK_TIMEOUT_MS,
    'PostgreSQL',
  );
  const row = res.rows[0];
  if (!row) {
    return config.bank.clientId
      ? { name, core: false, verdict: 'OK', detail: `Client ID ${config.bank.clientId} from config (the vault is empty)` }
      : { name, core: false, verdict: 'WARN', detail: 'no Client ID / Client Secret stored', hint: 'connector credentials set --client-id ID --secret-stdin' };
  }
  const keyFile = resolveMasterKeyPath(config.masterKeyFile);
  const problem = masterKeyProblem({ secretEnc: row.secret_enc }, keyFile);
  const status = credentialStatusOf(
    { clientId: row.client_id, generatedAt: new Date(row.generated_at), lastUsedAt: row.last_used_at ? new Date(row.last_used_at) : null, revokedAt: row.revoked_at ? new Date(row.revoked_at) : null, revokedReason: row.revoked_reason, revokedSource: row.revoked_source, updatedBy: row.updated_by } as CredentialVault,
    // The clock the worker and `credentials status` judge the pair's age with (a test clock too).
    clockFromConfig(config).now(),
    { file: keyFile, problem },
  );
  if (problem) return { name, core: true, verdict: 'FAIL', detail: `${problem.code}: ${problem.message}`, hint: KEY_FILE_HINT };
  if (status.warnings.length === 0) return { name, core: false, verdict: 'OK', detail: `Client ID ${status.clientId}, ${status.ageDays} days old, last used ${status.idleDays} days ago; opens with master key file ${keyFile}` };
  const worst = status.warnings[0];
  return { name, core: false, verdict: 'WARN', detail: `${worst.code}: ${worst.message}`, hint: 'regenerate the pair in Internet-banking (terms 2.1.1-2.1.2), then connector credentials rotate --secret-stdin' };
}

async function checkDisk(): Promise<CheckResult> {
  const stats = await statfs(process.cwd());
  const freeBytes = Number(stats.bavail) * Number(stats.bsize);
  const gib = freeBytes / 1024 ** 3;
  const verdict: Verdict = gib < 1 ? 'FAIL' : gib < 5 ? 'WARN' : 'OK';
  return { name: 'disk', core: true, verdict, detail: `${gib.toFixed(1)} GiB free in ${process.cwd()}`, hint: verdict === 'OK' ? undefined : 'free disk space: logs, archive and PostgreSQL need room' };
}

/** What an HTTP probe saw: the status, the server's Date header, and when the request left and the answer came (local clock). */
interface HttpProbe {
  status: number;
  date: string | undefined;
  sentAt: number;
  answeredAt: number;
}

/** Any HTTP answer means the endpoint is reachable; only connection failures and timeouts count. */
function probeHttp(url: string, path: string): Promise<HttpProbe> {
  return new Promise((resolve, reject) => {
    const options: http.RequestOptions = url.startsWith('unix:')
      ? { socketPath: url.slice('unix:'.length), path, method: 'GET', timeout: 3_000 }
      : // An IPv6 literal comes bracketed out of URL (`[::1]`); http.request wants it bare or looks it up as a name.
        { ...(() => { const u = new URL(path, url); return { hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'), port: u.port, path: u.pathname, protocol: u.protocol }; })(), method: 'GET', timeout: 3_000 };
    const lib = url.startsWith('https:') ? https : http;
    const sentAt = Date.now();
    const req = lib.request(options, (res: http.IncomingMessage) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, date: res.headers.date, sentAt, answeredAt: Date.now() });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 3 s')));
    req.on('error', reject);
    req.end();
  });
}

async function probeComponent(name: string, url: string, path: string, strict: boolean, hint: string): Promise<{ result: CheckResult; probe?: HttpProbe }> {
  try {
    const probe = await withTimeout(probeHttp(url, path), CHECK_TIMEOUT_MS, name);
    return { result: { name, core: false, verdict: 'OK', detail: `${redactedUrl(url)} answered HTTP ${probe.status}` }, probe };
  } catch (err) {
    return { result: { name, core: strict, verdict: strict ? 'FAIL' : 'WARN', detail: `${redactedUrl(url)}: ${(err as Error).message}`, hint } };
  }
}

async function checkComponent(name: string, url: string, path: string, strict: boolean, hint: string): Promise<CheckResult> {
  return (await probeComponent(name, url, path, strict, hint)).result;
}

/** A second more than the servers' bound: a Date header may come from a proxy in front of the bank, or be rounded rather than cut. */
const BANK_SKEW_WARN_MS = SKEW_WARN_MS + 1_000;

/**
 * This host's clock against the bank's (the HTTP Date header of its answer). PostgreSQL and Redis
 * usually run on this very host and share its clock, so their skew lines stay green however wrong
 * it is; the bank's clock is the one that counts (the CMS signing-time it judges, the operational
 * day of a payment order's date, the R-9/R-13 and deadline clocks). The header has whole seconds
 * and the answer took a while: only the skew beyond both counts. Null when the bank sent no Date.
 * WARN (FAIL with --strict), as the bank's other line.
 */
export function bankClockSkew(probe: Pick<HttpProbe, 'date' | 'sentAt' | 'answeredAt'>, strict: boolean): CheckResult | null {
  const bankMs = probe.date ? Date.parse(probe.date) : NaN;
  if (!Number.isFinite(bankMs)) return null;
  // The bank stamped its answer at some moment in [bankMs, bankMs + 1 s), and we at some moment in [sentAt, answeredAt].
  const ahead = probe.sentAt - (bankMs + 999);
  const behind = bankMs - probe.answeredAt;
  const ms = Math.max(0, ahead, behind);
  const name = 'clock-skew-bank';
  if (ms <= BANK_SKEW_WARN_MS) return { name, core: false, verdict: 'OK', detail: `within ${BANK_SKEW_WARN_MS} ms of the bank's Date header (whole seconds)` };
  const seconds = Math.round(ms / 1000);
  return {
    name,
    core: strict,
    verdict: strict ? 'FAIL' : 'WARN',
    detail: `this host's clock is ${seconds} s ${ahead > 0 ? 'ahead of' : 'behind'} the bank's (its Date header: ${new Date(bankMs).toISOString()}); PostgreSQL and Redis on this host share its clock, so their skew lines cannot show it`,
    hint: 'synchronise this host\'s clock (timedatectl set-ntp true, or chrony/systemd-timesyncd; on a VM, the host\'s time sync): signing times, the dates of payment orders and every deadline follow it',
  };
}

/** The bank's endpoint: reachable (a component check), and this host's clock against the bank's. */
async function checkBank(config: ConnectorConfig, strict: boolean): Promise<CheckResult[]> {
  const { result, probe } = await probeComponent('bank', config.bank.url, '/', strict, 'start the sandbox (`connector sandbox`) or check CONNECTOR_BANK_URL and the network to the bank');
  const skewLine = probe ? bankClockSkew(probe, strict) : null;
  return skewLine ? [result, skewLine] : [result];
}

/**
 * The signer agent: reachable, and, when this user can read the token file, proving that it holds
 * that token (what every caller asks before it sends the token or a password). An agent started with
 * another token file, or another process on the agent's address, answers /health but every unlock and
 * signature is refused (SIGNER_NOT_AUTHENTIC): reachable alone said OK.
 */
async function checkSignerAgent(config: ConnectorConfig, strict: boolean): Promise<CheckResult> {
  const reach = await checkComponent('signer-agent', config.signer.url, '/health', strict, 'start the signer agent (`connector signer-agent`, or pm2 start ecosystem.config.js)');
  if (reach.verdict !== 'OK') return reach;
  const tokenFile = resolveTokenFile(config.signer.tokenFile);
  try {
    readToken(tokenFile);
  } catch (err) {
    // Run as another user than the connector's processes (the file is theirs, mode 0600): not judged.
    return { ...reach, detail: `${reach.detail}; whether it holds the signer token was not checked: ${(err as Error).message}` };
  }
  try {
    const status = await withTimeout(new SignerAgentClient({ url: config.signer.url, tokenFile, timeoutMs: CHECK_TIMEOUT_MS }).status(), CHECK_TIMEOUT_MS + 1_000, 'the signer agent');
    return { ...reach, detail: `${reach.detail}; it holds the token of ${tokenFile} (agent ${status.version}, ${status.users.length} keys enrolled)` };
  } catch (err) {
    return {
      name: 'signer-agent',
      core: strict,
      verdict: strict ? 'FAIL' : 'WARN',
      detail: `${redactedUrl(config.signer.url)}: ${(err as Error).message}`,
      hint: `the connector's processes read the token from ${tokenFile} (CONNECTOR_SIGNER_TOKEN_FILE): start the agent in the same folder with the same token file, or stop the process that holds the agent's address`,
    };
  }
}

/**
 * The business-day calendar's data (R-20..R-22, R-9, R-29 deadlines) ends on a date: past it every
 * deadline throws (fail closed), so password changes, status tracking and incidents stop. FAIL once
 * today is not covered, WARN in the last 90 days (ship the next year's data), and WARN while the
 * current year's data is still provisional.
 */
export function checkCalendar(config: ConnectorConfig, now: Date): CheckResult {
  let calendar: ReturnType<typeof kzCalendarFromConfig>;
  try {
    calendar = kzCalendarFromConfig(config);
  } catch (err) {
    return { name: 'calendar', core: true, verdict: 'FAIL', detail: (err as Error).message, hint: 'mend or remove the file in calendar.dataDir (connector/calendar/README.md); the worker, the scheduler and the API do not start with it' };
  }
  const { lastDate } = calendar.coverage();
  const today = kzToday(now);
  const daysLeft = epochDayOfIso(lastDate) - epochDayOfIso(today);
  const update = `update the connector, or put the official kz-YYYY.json in ${config.calendar.dataDir ? `calendar.dataDir (${config.calendar.dataDir})` : 'a folder named by calendar.dataDir'} (connector/calendar/README.md)`;
  // Deadlines look a few business days ahead (R-27: 3 operational days): fail as soon as they cannot be computed.
  let aheadOk = daysLeft >= 0;
  if (aheadOk) {
    try {
      calendar.operationalDeadline(now, 5);
    } catch {
      aheadOk = false;
    }
  }
  if (!aheadOk) return { name: 'calendar', core: true, verdict: 'FAIL', detail: `the business-day data ends ${lastDate}: deadlines from today (${today}) cannot be computed`, hint: update };
  if (daysLeft <= 90) return { name: 'calendar', core: false, verdict: 'WARN', detail: `the business-day data ends ${lastDate}, in ${daysLeft} days`, hint: update };
  const year = Number(today.slice(0, 4));
  const provisional = calendar.unconfirmed().filter((u) => u.year === year);
  if (provisional.length) return { name: 'calendar', core: false, verdict: 'WARN', detail: `${year}: ${provisional.length} item(s) of the calendar not yet official (e.g. ${provisional[0].what.length > 100 ? `${provisional[0].what.slice(0, 99)}…` : provisional[0].what})`, hint: update };
  return { name: 'calendar', core: false, verdict: 'OK', detail: `business days known until ${lastDate}` };
}

/**
 * A console reached over TLS (an https origin in api.consoleOrigins) sits behind a reverse proxy, and
 * the API believes X-Forwarded-* only from the addresses in api.trustedProxies (none by default).
 * Without it every browser counts as the proxy's address against the per-IP login limit (one budget
 * for everyone: RATE_LIMITED for all under a brute force), the audit log names the proxy, and the
 * session cookie is not marked Secure. WARN: a console on the LAN without a proxy needs none.
 */
export function checkProxyTrust(config: ConnectorConfig): CheckResult {
  const tls = config.api.consoleOrigins.filter((o) => o.startsWith('https://'));
  if (tls.length === 0 || config.api.trustedProxies.length > 0) {
    return { name: 'api-proxy', core: false, verdict: 'OK', detail: config.api.trustedProxies.length ? `X-Forwarded-* believed from ${config.api.trustedProxies.join(', ')}` : 'no reverse proxy named (none expected: no https console origin)' };
  }
  return {
    name: 'api-proxy',
    core: false,
    verdict: 'WARN',
    detail: `the console is reached at ${tls[0]} (a TLS proxy in front?) but api.trustedProxies is empty: every browser counts as the proxy's address against the per-IP login limit, and the session cookie is not Secure`,
    hint: 'list the proxy\'s address in api.trustedProxies (e.g. ["127.0.0.1"] for nginx on this machine)',
  };
}

/**
 * Someone must hear of an incident (an unexplained debit is for the bank within 1 business day,
 * R-29; an erroneous execution within 3 operational days, R-27): every incident goes to the admins
 * by e-mail (lockdown.notify.emails + smtp); the webhook carries the lockdown's notices only.
 * WARN (FAIL with --strict) when incidents would reach no one.
 */
export function checkAlertChannel(config: ConnectorConfig, strict: boolean): CheckResult {
  const { emails, smtp, webhookUrl } = config.lockdown.notify;
  const webhook = webhookUrl ? adminWebhookProblem(config) : null;
  const webhookHint = 'write the HMAC secret the admins\' receiver verifies with into lockdown.notify.webhookSecretFile (or webhooks.secretFile), mode 0600';
  const notOk = { name: 'alerts', core: strict, verdict: strict ? ('FAIL' as const) : ('WARN' as const) };
  if (emails.length && smtp) {
    if (webhook) return { ...notOk, detail: `e-mail to ${emails.length} admin(s); no lockdown notice is sent by webhook: ${webhook}`, hint: webhookHint };
    return { name: 'alerts', core: false, verdict: 'OK', detail: `e-mail to ${emails.length} admin(s)${webhookUrl ? ', lockdown notices also by webhook' : ''}` };
  }
  return {
    ...notOk,
    detail: webhookUrl
      ? `incidents reach no one: only the lockdown notices go to the webhook, incidents go by e-mail and none is configured${webhook ? `; and no lockdown notice is sent by webhook either: ${webhook}` : ''}`
      : 'no admin alert channel: incidents and lockdowns are only in connector incidents list and the logs',
    hint: `set lockdown.notify.emails and lockdown.notify.smtp (docs/lockdown.md)${webhook ? `; ${webhookHint}` : ''}`,
  };
}

/**
 * Why the admins' webhook would send nothing, as queue/lockdown.trigger.ts judges it (its secret:
 * lockdown.notify.webhookSecretFile, else webhooks.secretFile), or null when it can sign.
 */
function adminWebhookProblem(config: ConnectorConfig): string | null {
  const own = config.lockdown.notify.webhookSecretFile;
  const file = own ?? config.webhooks.secretFile;
  if (!file) return 'lockdown.notify.webhookUrl is set, but neither lockdown.notify.webhookSecretFile nor webhooks.secretFile names its HMAC secret';
  const read = readSigningSecret(file, own ? 'lockdown.notify.webhookSecretFile' : 'webhooks.secretFile (lockdown.notify.webhookSecretFile unset)');
  return 'problem' in read ? read.problem : null;
}

/** Who runs doctor (and, under the same account, the worker): named in a folder's verdict. */
function runningUser(): string {
  try {
    return `${userInfo().username} (uid ${process.getuid?.() ?? '?'})`;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
}

/**
 * Whether this process can write into `dir`: a file is really created and removed there (an access()
 * check would pass for root on a read-only mount, and say nothing of a full disk). Null when it can;
 * otherwise why not. A missing folder is `missing`, with whether it could be created (its nearest
 * existing ancestor is a folder this user may write into).
 */
async function folderProblem(dir: string): Promise<{ missing: boolean; why: string } | null> {
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR') return { missing: true, why: 'a part of its path is a file, not a folder' };
    if (code !== 'ENOENT') return { missing: false, why: `cannot be looked at (${code})` };
    let ancestor = dirname(dir);
    for (;;) {
      try {
        const up = await stat(ancestor);
        if (!up.isDirectory()) return { missing: true, why: `${ancestor} is a file, not a folder: it cannot be created` };
        await access(ancestor, fsConstants.W_OK | fsConstants.X_OK).catch((e: NodeJS.ErrnoException) => {
          throw Object.assign(new Error(`${ancestor} is not writable (${e.code}): it cannot be created`), { code: 'ANCESTOR' });
        });
        return { missing: true, why: `does not exist yet (the worker creates it in ${ancestor} at its first write)` };
      } catch (e) {
        if ((e as { code?: string }).code === 'ANCESTOR') return { missing: true, why: (e as Error).message };
        if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return { missing: true, why: 'a part of its path is a file, not a folder: it cannot be created' };
        const next = dirname(ancestor);
        if (next === ancestor) return { missing: true, why: 'no part of its path exists' };
        ancestor = next;
      }
    }
  }
  if (!info.isDirectory()) return { missing: false, why: 'is a file, not a folder' };
  const probe = join(dir, `.connector-doctor-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(probe, 'wx', 0o600);
    await handle.close();
    await unlink(probe);
    return null;
  } catch (err) {
    return { missing: false, why: `is not writable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})` };
  }
}

/**
 * The outbox's own folders (adapters/erp/onec-exchange/onec-outbox.folder.ts): a file is claimed
 * into processing/, then moved to archive/ or error/; the worker creates them when missing. One
 * that exists but is not a folder this user can write into (left by a worker run once as root, a
 * file or a link in its place) fails every file 1C exports: it stays in processing/ and opens an
 * incident at each scan, while the outbox itself is writable. Null when all are usable.
 */
async function outboxSubfolderProblem(dir: string): Promise<{ missing: boolean; why: string } | null> {
  for (const sub of ['processing', 'archive', 'error']) {
    const path = join(dir, sub);
    let info;
    try {
      info = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      return { missing: false, why: `has ${sub}/, which cannot be looked at (${(err as NodeJS.ErrnoException).code})` };
    }
    const effect = `no file 1C exports can be moved ${sub === 'processing' ? 'into it to be taken in' : `to ${sub}/: each stays in processing/ and opens an incident`}`;
    if (info.isSymbolicLink()) return { missing: false, why: `has ${sub}/ as a symbolic link, which the worker refuses to move files through: ${effect}` };
    if (!info.isDirectory()) return { missing: false, why: `has a file named ${sub} where the worker's ${sub}/ folder goes: ${effect}` };
    const problem = await folderProblem(path);
    if (problem) return { missing: false, why: `has ${sub}/, which ${problem.why}: ${effect}` };
  }
  return null;
}

/**
 * The 1C folders (INTERFACES.md "1C folder exchange"): `onec.inboxDir`, where the connector writes
 * kl_to_1c.txt and kl_to_1c_status.txt for 1C, and `onec.outboxDir`, whose files it takes in and
 * moves to archive/ or error/. Not writable by this user, or missing where it cannot be created:
 * WARN, FAIL with --strict (as `archive`: an installation without 1C has no use for the folders, so
 * they do not decide the exit code on their own). Missing but creatable: WARN (the worker creates the inbox at its first write; the outbox, which it only reads, someone must create). Without this, an unwritable folder showed only as worker log warnings and
 * 1C silently stopped getting statements and statuses.
 */
export async function checkOnecFolders(config: ConnectorConfig, strict: boolean, cwd = process.cwd()): Promise<CheckResult[]> {
  const user = runningUser();
  const folders = [
    { name: 'onec-inbox', key: 'onec.inboxDir', dir: resolve(cwd, config.onec.inboxDir), role: 'kl_to_1c.txt and kl_to_1c_status.txt are written here for 1C', workerCreates: true },
    // The worker only reads the outbox (a missing one is an empty one to its scan): it never creates
    // it, so 1C's export into it fails until a person does.
    { name: 'onec-outbox', key: 'onec.outboxDir', dir: resolve(cwd, config.onec.outboxDir), role: "1C's 1c_to_kl.txt is taken from here and moved to archive/ or error/", workerCreates: false },
  ];
  return Promise.all(
    folders.map(async ({ name, key, dir, role, workerCreates }): Promise<CheckResult> => {
      const probe = async () => (await folderProblem(dir)) ?? (workerCreates ? null : await outboxSubfolderProblem(dir));
      const problem = await withTimeout(probe(), CHECK_TIMEOUT_MS, dir).catch((err: Error) => ({ missing: false, why: `did not answer (${err.message}): a hung network share?` }));
      if (problem === null) return { name, core: false, verdict: 'OK', detail: `${dir} writable by ${user}` };
      const fixable = problem.missing && problem.why.startsWith('does not exist yet');
      const hint = `${key}: ${role}. Create the folder (or correct ${key}) and let ${user}, who runs the connector, write there (chown or setfacl -m u:USER:rwx${workerCreates ? '' : '; the same for its processing/, archive/ and error/ folders: chown -R, setfacl -R'}); it must be the folder 1C's "Обмен с банком" uses`;
      if (fixable && !workerCreates) return { name, core: false, verdict: 'WARN', detail: `${dir} does not exist: 1C cannot export into it, and the worker never creates it (it only takes files from it)`, hint };
      if (fixable) return { name, core: false, verdict: 'WARN', detail: `${dir} ${problem.why}`, hint };
      return { name, core: strict, verdict: strict ? 'FAIL' : 'WARN', detail: `${dir} ${problem.why} for ${user}`, hint };
    }),
  );
}

/**
 * R-26: the archive of payment documents and statements must be backed up. `connector archive
 * export` records each export in the audit log; none, or none for ARCHIVE_MAX_AGE_DAYS, is a WARN
 * (FAIL with --strict). The pg_dump beside it is the machine's cron's, which doctor cannot see.
 */
async function checkArchiveAge(client: Client, strict: boolean, now: Date): Promise<CheckResult> {
  const { rows } = await withTimeout(client.query<{ at: Date | null }>('select max(at) as at from audit_event where action = $1', [ARCHIVE_EXPORTED]), CHECK_TIMEOUT_MS, 'PostgreSQL');
  const last = rows[0]?.at ? new Date(rows[0].at) : null;
  // Against the clock the export was recorded with (the connector's, a test clock too).
  const ageDays = last ? (now.getTime() - last.getTime()) / 86_400_000 : Infinity;
  if (ageDays <= ARCHIVE_MAX_AGE_DAYS) return { name: 'archive', core: false, verdict: 'OK', detail: `last archive export ${last?.toISOString()}` };
  return {
    name: 'archive',
    core: strict,
    verdict: strict ? 'FAIL' : 'WARN',
    detail: last ? `the last archive export was ${Math.floor(ageDays)} days ago (${last.toISOString()}): the archive of documents and statements is not backed up (R-26)` : 'no archive export recorded: the archive of documents and statements is not backed up (R-26)',
    hint: 'schedule connector archive export --out /backup/archive-<date> (and pg_dump) in the crontab, as the README\'s "Backups" says',
  };
}

/**
 * R-17, R-27, R-29: an incident the bank must hear of by a deadline (a user who lost authority, an
 * unexplained debit, an erroneous execution) and still open past it. Not a fault of the
 * installation, so WARN even with --strict, like a lockdown in force; but an admin running doctor
 * must see it (the e-mails may have gone unread).
 */
async function checkOverdueIncidents(client: Client): Promise<CheckResult> {
  const { rows } = await withTimeout(
    client.query<{ n: string; id: string | null; kind: string; title: string | null; deadline_at: Date | null }>(
      `select count(*) over () as n, id, kind, title, deadline_at from incident where status = 'open' and deadline_at < now() order by deadline_at, id limit 1`,
    ),
    CHECK_TIMEOUT_MS,
    'PostgreSQL',
  );
  const [first] = rows;
  if (!first) return { name: 'incidents', core: false, verdict: 'OK', detail: 'no open incident past its deadline' };
  return {
    name: 'incidents',
    core: false,
    verdict: 'WARN',
    detail: `${first.n} open incident(s) past their deadline; the first, due ${new Date(first.deadline_at as Date).toISOString()}: ${String(first.title).slice(0, 200)}`,
    hint:
      first.kind === 'lockdown'
        ? `tell the bank (R-29: +7 7172 770 622), then connector lockdown resolve --incident ${first.id} --bank-notified-at ISO --bank-reference TEXT`
        : first.kind === 'credentials_aging' || first.kind === 'credentials_idle'
          ? 'regenerate the Client ID / Client Secret in Internet-banking and store it: connector credentials rotate --secret-stdin'
          : `connector incidents show ${first.id}; tell the bank (R-17, R-27, R-29: +7 7172 770 622), then connector incidents resolve ${first.id} --note TEXT --bank-notified-at ISO --bank-reference TEXT`,
  };
}

/**
 * Whose signatures count (R-15, R-30): the NCA trust anchors the signer agent checks certificates
 * against, and whether a certificate NCA revoked is refused (CRLs). WARN (FAIL with --strict) with
 * no anchor (every signer refused), no CRL (a revoked certificate accepted) or CRLs without
 * signer.requireRevocation (a certificate whose CRL went stale accepted).
 */
export function checkSignerTrust(config: ConnectorConfig, strict: boolean): CheckResult {
  const failed = (detail: string, hint: string): CheckResult => ({ name: 'signer-trust', core: strict, verdict: strict ? 'FAIL' : 'WARN', detail, hint });
  let anchors: number;
  try {
    anchors = loadTrustStore(defaultTrustPaths(config)).anchors.length;
  } catch (err) {
    return failed((err as Error).message, 'fix signer.trust: every path must be a readable certificate file or folder');
  }
  if (anchors === 0) return failed('no trust anchor: every signer certificate is refused', "put NCA's root and issuing CA certificates into signer-agent/trust/production (its README says which) or list them in signer.trust");
  const { crl, requireRevocation } = config.signer;
  if (crl.length === 0) return failed(`${anchors} trust anchor(s), no CRL: a certificate NCA revoked is still accepted`, "add NCA's CRL URLs (or files) to signer.crl and set signer.requireRevocation: true");
  // LESSONS.md 14, fail closed: without requireRevocation a certificate whose CRL could not be
  // refreshed (NCA's address down for a day, the cached copy past its nextUpdate) still signs, with
  // a warning in the agent's log nobody reads: a departed employee's revoked key included.
  if (!requireRevocation) {
    return failed(
      `${anchors} trust anchor(s), ${crl.length} CRL source(s), revocation not required: a certificate whose CRL is stale or missing still signs`,
      'set signer.requireRevocation: true (a signer whose CRL cannot be refreshed is then refused until it is)',
    );
  }
  return { name: 'signer-trust', core: false, verdict: 'OK', detail: `${anchors} trust anchor(s), ${crl.length} CRL source(s), revocation required` };
}

export interface DoctorReport {
  ok: boolean;
  checks: CheckResult[];
}

/** Runs every check in parallel with bounded timeouts: it answers well within 15 s even when a service hangs. */
/** A check the entry point adds (one that needs an adapter, e.g. the admins' mail server); null when it does not apply. */
export type ExtraCheck = (config: ConnectorConfig, strict: boolean, timeoutMs: number) => Promise<CheckResult | CheckResult[] | null>;

const SECRET_VARIABLE = 'CONNECTOR_BANK_CLIENT_SECRET';

/**
 * Where a Client Secret sits in an environment, by the variable's name only (its value is never
 * read out): this shell, PM2's saved process lists (`pm2 save` writes each process's environment
 * in clear text to dump.pm2, and keeps the one before as dump.pm2.bak), and the running connector
 * processes and PM2 daemon of this user (/proc/<pid>/environ).
 */
function secretEnvironmentPlaces(env: NodeJS.ProcessEnv): string[] {
  const procDir = '/proc';
  const places: string[] = [];
  if (env[SECRET_VARIABLE]) places.push('this shell');
  const pm2Home = env.PM2_HOME ?? join(env.HOME ?? homedir(), '.pm2');
  for (const file of ['dump.pm2', 'dump.pm2.bak']) {
    try {
      if (readFileSync(join(pm2Home, file), 'utf8').includes(`"${SECRET_VARIABLE}"`)) places.push(join(pm2Home, file));
    } catch {
      // No such file, or not ours to read.
    }
  }
  let pids: string[] = [];
  try {
    pids = readdirSync(procDir).filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid);
  } catch {
    // Not Linux: nothing more to look at.
  }
  for (const pid of pids) {
    try {
      const cmdline = readFileSync(join(procDir, pid, 'cmdline'), 'utf8').split('\0');
      const connector = cmdline.findIndex((a) => /connector[\\/]cli[\\/]main\.js$/.test(a));
      const what = connector >= 0 ? `connector ${cmdline[connector + 1] ?? ''}`.trim() : cmdline.some((a) => /^PM2 .*God Daemon/.test(a)) ? 'the PM2 daemon' : undefined;
      if (!what) continue;
      const environ = readFileSync(join(procDir, pid, 'environ'));
      if (environ.subarray(0, SECRET_VARIABLE.length + 1).toString() === `${SECRET_VARIABLE}=` || environ.includes(`\0${SECRET_VARIABLE}=`)) places.push(`process ${pid} (${what})`);
    } catch {
      // Gone meanwhile, or another user's.
    }
  }
  return places;
}

/**
 * R-4: a Client Secret in an environment (`CONNECTOR_BANK_CLIENT_SECRET`, the fallback when no
 * `bank.clientSecretFile` is given and the vault is empty) is readable in /proc/<pid>/environ by
 * anyone running as the connector's user, and PM2 keeps it in clear text in its dump files. A
 * warning naming each place and the way out; the value is never shown.
 */
function checkSecretInEnvironment(env: NodeJS.ProcessEnv, strict: boolean): CheckResult | null {
  const places = secretEnvironmentPlaces(env);
  if (places.length === 0) return null;
  return {
    name: 'bank-secret-env',
    core: strict,
    verdict: strict ? 'FAIL' : 'WARN',
    detail: `the Client Secret is in an environment (${SECRET_VARIABLE}), where the connector's user can read it: ${places.join('; ')}`,
    hint: "seal it in the vault (printf '%s\\n' \"$SECRET\" | connector credentials set --client-id ID --secret-stdin); unset the variable; restart PM2 from a clean shell (pm2 kill, then pm2 start ecosystem.config.js, pm2 save) and delete ~/.pm2/dump.pm2.bak; the secret has been readable: regenerate the pair in Internet-banking and connector credentials rotate",
  };
}

/**
 * Which configuration doctor judged. Run from another folder than the installation's (PM2 starts
 * the processes in it), doctor reads no connector.config.json and judges the defaults: "valid"
 * alone let an admin believe the installation's file was checked.
 */
function configSourceOf(env: NodeJS.ProcessEnv | undefined, cwd = process.cwd()): string {
  const file = configFileOf({ env, cwd });
  return file ? `${file} and the CONNECTOR_* environment` : `no config file (CONNECTOR_CONFIG unset, no connector.config.json in ${cwd}): defaults and the CONNECTOR_* environment only`;
}

export async function runDoctor(options: { strict?: boolean; env?: NodeJS.ProcessEnv; cwd?: string; extra?: ExtraCheck[] } = {}): Promise<DoctorReport> {
  let config: ConnectorConfig;
  try {
    config = loadConfig({ env: options.env, cwd: options.cwd });
  } catch (err) {
    return { ok: false, checks: [{ name: 'config', core: true, verdict: 'FAIL', detail: (err as Error).message, hint: 'fix the named key in connector.config.json or the CONNECTOR_* environment' }] };
  }
  const strict = options.strict ?? false;
  const groups = await Promise.all([
    Promise.resolve<CheckResult[]>([{ name: 'config', core: true, verdict: 'OK', detail: `${config.testMode ? 'valid (TEST MODE: test CAs trusted, fake clock allowed)' : 'valid'}: ${configSourceOf(options.env, options.cwd)}` }]),
    Promise.resolve([checkSecretInEnvironment(options.env ?? process.env, strict)].filter((c): c is CheckResult => c !== null)),
    checkRedis(config),
    checkPostgres(config, strict),
    checkDisk().then((r) => [r]),
    checkOnecFolders(config, strict, options.cwd),
    ...([
      ['calendar', () => checkCalendar(config, clockFromConfig(config).now())],
      ['alerts', () => checkAlertChannel(config, strict)],
      ['api-proxy', () => checkProxyTrust(config)],
      ['signer-trust', () => checkSignerTrust(config, strict)],
    ] as const).map(([name, check]) =>
      Promise.resolve().then(check).then(
        (r) => [r],
        (err: Error) => [{ name, core: true, verdict: 'FAIL' as const, detail: err.message, hint: 'the check itself failed: reinstall the connector (npm ci && npm run build)' }],
      ),
    ),
    checkBank(config, strict),
    checkSignerAgent(config, strict).then((r) => [r]),
    ...(options.extra ?? []).map((check) =>
      withTimeout(check(config, strict, CHECK_TIMEOUT_MS), CHECK_TIMEOUT_MS + 1_000, 'check').then(
        (r) => (r ? [r].flat() : []),
        (err: Error) => [{ name: 'check', core: strict, verdict: strict ? ('FAIL' as const) : ('WARN' as const), detail: err.message, hint: 'a component check did not answer in time: run connector doctor again; if it stays, check that component' }],
      ),
    ),
  ]);
  const checks = groups.flat();
  const ok = checks.every((c) => !(c.verdict === 'FAIL' && (c.core || strict)));
  return { ok, checks };
}
