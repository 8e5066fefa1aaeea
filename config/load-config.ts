import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ZodError } from 'zod';
import { configSchema, type ConnectorConfig } from './config.schema';
import { jsonFault } from './json-fault';

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  /** INTERFACES.md: 2 for input that cannot be read (a config file missing, unreadable, not JSON), 1 for a bad value. */
  constructor(
    message: string,
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Environment variables fixed by INTERFACES.md, mapped onto config paths. */
const ENV_MAP: ReadonlyArray<[string, string[], 'string' | 'int' | 'bool']> = [
  ['CONNECTOR_DATABASE_URL', ['database', 'url'], 'string'],
  ['CONNECTOR_REDIS_URL', ['redis', 'url'], 'string'],
  ['CONNECTOR_REDIS_PREFIX', ['redis', 'prefix'], 'string'],
  ['CONNECTOR_API_HOST', ['api', 'host'], 'string'],
  ['CONNECTOR_API_PORT', ['api', 'port'], 'int'],
  ['CONNECTOR_BANK_URL', ['bank', 'url'], 'string'],
  ['CONNECTOR_BANK_CLIENT_ID', ['bank', 'clientId'], 'string'],
  ['CONNECTOR_BANK_CLIENT_SECRET_FILE', ['bank', 'clientSecretFile'], 'string'],
  ['CONNECTOR_LOG_LEVEL', ['log', 'level'], 'string'],
  ['CONNECTOR_SIGNER_URL', ['signer', 'url'], 'string'],
  ['CONNECTOR_SIGNER_TOKEN_FILE', ['signer', 'tokenFile'], 'string'],
  ['CONNECTOR_TEST_MODE', ['testMode'], 'bool'],
  ['CONNECTOR_FAKE_NOW', ['fakeNow'], 'string'],
  ['CONNECTOR_MASTER_KEY_FILE', ['masterKeyFile'], 'string'],
  ['CONNECTOR_WORKER_CONCURRENCY', ['worker', 'concurrency'], 'int'],
  ['CONNECTOR_WORKER_INSTANCES', ['worker', 'instances'], 'int'],
];

function setPath(target: Record<string, unknown>, path: string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[path[path.length - 1]] = value;
}

function envValue(name: string, raw: string, kind: 'string' | 'int' | 'bool'): unknown {
  if (kind === 'string') return raw;
  if (kind === 'bool') {
    if (raw === '1' || raw === 'true') return true;
    if (raw === '0' || raw === 'false' || raw === '') return false;
    throw new ConfigError(`${name}: "${raw}" is not a switch; expected 1 or 0`);
  }
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}: "${raw}" is not a whole number; expected e.g. 8080`);
  return Number(raw);
}

/** Names a zod issue the way an operator reads it: key, problem, expected form. No secret is ever a value here. */
export function describeConfigIssues(error: ZodError, source: string): string {
  return error.issues
    .map((issue) => {
      const key = issue.path.join('.') || '(root)';
      return `config ${source}: ${key}: ${issue.message}`;
    })
    .join('\n');
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Values that win over the file and the environment (tests, embedded use). */
  overrides?: Record<string, unknown>;
}

/**
 * The config file loadConfig reads with these options: CONNECTOR_CONFIG's (resolved against the
 * working directory), else connector.config.json in the working directory when present; null when
 * there is none (defaults and the CONNECTOR_* environment only).
 */
export function configFileOf(options: Pick<LoadConfigOptions, 'env' | 'cwd'> = {}): string | null {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  if (env.CONNECTOR_CONFIG) return resolve(cwd, env.CONNECTOR_CONFIG);
  const file = resolve(cwd, 'connector.config.json');
  return existsSync(file) ? file : null;
}

/**
 * Loads the one configuration: optional JSON file (CONNECTOR_CONFIG, else connector.config.json in the
 * working directory when present), then CONNECTOR_* environment overrides, validated once.
 * A bad value fails here naming its key, the problem and the expected form.
 */
export function loadConfig(options: LoadConfigOptions = {}): ConnectorConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = env.CONNECTOR_CONFIG;
  const file = explicit ? resolve(cwd, explicit) : resolve(cwd, 'connector.config.json');
  let raw: Record<string, unknown> = {};
  if (explicit || existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ConfigError(code === 'ENOENT' ? `config file ${file} not found (CONNECTOR_CONFIG names it)` : `config file ${file} cannot be read: ${code ?? err}`, 2);
    }
    try {
      const parsed: unknown = JSON.parse(text);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        throw new ConfigError(`config file ${file}: expected a JSON object at the top level`, 2);
      }
      raw = parsed as Record<string, unknown>;
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      throw new ConfigError(`config file ${file} is not valid JSON: ${jsonFault(text)}`, 2);
    }
  }
  for (const [name, path, kind] of ENV_MAP) {
    const value = env[name];
    if (value !== undefined) setPath(raw, path, envValue(name, value, kind));
  }
  for (const [dotted, value] of Object.entries(options.overrides ?? {})) setPath(raw, dotted.split('.'), value);
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(describeConfigIssues(result.error, explicit || existsSync(file) ? file : '(defaults + environment)'));
  const config = result.data;
  // zod drops a key a section does not know: a misspelt one (`onec.outboxdir`) would silently be
  // its default, and 1C's files never read. Every key given must be one the schema kept.
  const unknown = unknownKeys(raw, config, []);
  if (unknown.length) {
    const source = explicit || existsSync(file) ? file : '(defaults + environment)';
    throw new ConfigError(unknown.map(({ path, known }) => `config ${source}: ${path.join('.')}: unknown key; ${suggestion(path[path.length - 1], known)}`).join('\n'));
  }
  // One folder for both: the outbox scan took the connector's own kl_to_1c*.txt (they end with
  // КонецФайла like 1C's exports) away to archive/ or error/ before 1C could load them.
  if (resolve(cwd, config.onec.outboxDir) === resolve(cwd, config.onec.inboxDir)) {
    throw new ConfigError(
      `config onec.outboxDir and onec.inboxDir are one folder (${resolve(cwd, config.onec.inboxDir)}): the connector would take its own statement and status files for 1C's exports before 1C loads them; give them two folders (1C's "Обмен с банком" sets the export and import files apart)`,
    );
  }
  if (config.fakeNow && !config.testMode) {
    throw new ConfigError('config: fakeNow (CONNECTOR_FAKE_NOW) is honoured only in test mode; set CONNECTOR_TEST_MODE=1 or unset it');
  }
  if (!config.testMode && !bankUrlIsPrivate(config.bank.url)) {
    // the token request carries the Client ID / Secret, every submit a signed payment order.
    throw new ConfigError(
      `config bank.url (CONNECTOR_BANK_URL): ${redactedUrl(config.bank.url)} is plain http beyond this machine: the Client Secret and the signed payment orders would cross the network in clear text (R-4); use https:// (plain http only for the sandbox on loopback, or in test mode)`,
    );
  }
  return config;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The keys of `input` (at any depth) that the parsed `output` does not have, with the keys it has there. */
function unknownKeys(input: unknown, output: unknown, path: string[]): Array<{ path: string[]; known: string[] }> {
  if (Array.isArray(input) && Array.isArray(output)) {
    return input.flatMap((item, i) => (i < output.length ? unknownKeys(item, output[i], [...path, String(i)]) : []));
  }
  if (!isPlainObject(input) || !isPlainObject(output)) return [];
  return Object.entries(input).flatMap(([key, value]) => {
    if (value === undefined) return [];
    if (!Object.hasOwn(output, key)) return [{ path: [...path, key], known: Object.keys(output) }];
    return unknownKeys(value, output[key], [...path, key]);
  });
}

/** "did you mean" the nearest key (a case slip, or up to 2 letters off), else the keys allowed there. */
function suggestion(key: string, known: string[]): string {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i += 1) {
      let prev = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j += 1) {
        const next = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
        prev = row[j];
        row[j] = next;
      }
    }
    return row[b.length];
  };
  const ranked = known.map((k) => ({ k, d: k.toLowerCase() === key.toLowerCase() ? 0 : distance(key.toLowerCase(), k.toLowerCase()) })).sort((a, b) => a.d - b.d);
  return ranked[0] && ranked[0].d <= 2 ? `did you mean "${ranked[0].k}"?` : `allowed here: ${known.join(', ')}`;
}

/**
 * Schemes whose user name is a database or Redis role: shown, as the hint for a refused login names
 * it. Elsewhere (`https://TOKEN@host`, a bank or webhook URL) a lone user name is often the secret.
 */
const ROLE_SCHEMES = new Set(['postgresql:', 'postgres:', 'redis:', 'rediss:']);

/**
 * The URL as an operator may see it (doctor, logs, error messages): the one place config URLs are
 * made printable. The password is replaced by ***, and the user name too outside ROLE_SCHEMES;
 * every query value is *** (a token, a signature or a password rides there as `?password=`,
 * `?token=`, `?sig=`; the names stay, so the operator sees what is there), and a query part with
 * no `=` (`?TOKEN`) is *** whole; the fragment is dropped. The path is shown as given (it is what
 * tells a moved endpoint): a secret in a URL's path (some webhook services put one there) is not
 * hidden. A URL with nothing to hide is returned exactly as written, so that the operator finds
 * the text they configured.
 */
export function redactedUrl(url: string): string {
  const hideQuery = (query: string) =>
    query
      .split('&')
      .map((part) => (part === '' ? part : part.includes('=') ? `${part.slice(0, part.indexOf('='))}=***` : '***'))
      .join('&');
  try {
    const parsed = new URL(url);
    const hideUser = parsed.username !== '' && !ROLE_SCHEMES.has(parsed.protocol);
    if (!parsed.password && !hideUser && !parsed.search && !parsed.hash) return url;
    if (parsed.password) parsed.password = '***';
    if (hideUser) parsed.username = '***';
    if (parsed.search) parsed.search = hideQuery(parsed.search.slice(1));
    parsed.hash = '';
    return parsed.toString();
  } catch {
    // Not a URL node can read: whatever sits between "//" and "@", and the query's values, go.
    const bare = url.replace(/#.*$/s, '').replace(/\/\/[^@/?#]*@/, '//***@');
    const q = bare.indexOf('?');
    return q < 0 ? bare : `${bare.slice(0, q)}?${hideQuery(bare.slice(q + 1))}`;
  }
}

/** https anywhere; plain http only to loopback (the sandbox on this machine). */
function bankUrlIsPrivate(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  if (protocol === 'https:') return true;
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}
