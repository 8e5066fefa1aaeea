import axios, { AxiosError, type AxiosInstance, type AxiosRequestConfig } from 'axios';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { ConnectorError } from '../../connector/shared/errors';
import { proofMatches, readToken, resolveTokenFile } from './agent-token.store';
import { parseListenAddress } from './listen-address.parser';
import { MAX_SIGN_BATCH, SIGN_BATCH_BYTES, type AgentStatusResponse, type KeyStatusResponse, type LockdownResponse, type LockResponse, type SignResponse } from './signer-agent.contract';

function signBody(input: SignInput): Record<string, unknown> {
  return {
    orderId: input.orderId,
    document: Buffer.from(input.document).toString('base64'),
    cosign: input.cosign ? Buffer.from(input.cosign).toString('base64') : undefined,
    signingTime: input.signingTime instanceof Date ? input.signingTime.toISOString() : input.signingTime,
    expectedIin: input.expectedIin,
    expectedBin: input.expectedBin,
  };
}

/** A refusal or failure reported by (or about reaching) the signer agent. `status` is the HTTP status, 0 when none. */
export class SignerAgentError extends ConnectorError {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details?: unknown,
  ) {
    super(code, message, 1, details);
    this.name = 'SignerAgentError';
  }
}

export interface SignerAgentClientOptions {
  /** `http://127.0.0.1:8901` or `unix:/path/agent.sock` (CONNECTOR_SIGNER_URL). */
  url: string;
  /** The bearer token itself, or the file that holds it (read on first use: the agent creates it). */
  token?: string;
  tokenFile?: string;
  /** Working directory that a relative tokenFile resolves against. */
  cwd?: string;
  /** Per request; signing waits in the agent's worker queue, so keep it generous. */
  timeoutMs?: number;
}

export interface SignInput {
  /** The connector order these bytes belong to (recorded in the agent's journal). */
  orderId: string;
  /** The exact document bytes. */
  document: Uint8Array;
  /** An existing detached CMS to add this signer to (second signature). */
  cosign?: Uint8Array;
  /** Test mode only (the agent refuses it otherwise). */
  signingTime?: Date | string;
  expectedIin?: string;
  expectedBin?: string;
}

export type SignOutput = SignResponse & { cmsDer: Buffer };

const errorBodySchema = z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() });
const sessionSchema = z
  .object({ algorithm: z.string(), serial: z.string(), subject: z.string(), iin: z.string().nullable(), bin: z.string().nullable() })
  .passthrough();
const keyStatusSchema = z
  .object({
    userId: z.string(),
    keystorePath: z.string(),
    expectedIin: z.string().nullable(),
    wrongPasswordCount: z.number().int(),
    wrongPasswordTotal: z.number().int(),
    unlocked: z.boolean(),
    session: sessionSchema.nullable(),
  })
  .passthrough();
const signSchema = z
  .object({
    orderId: z.string(),
    userId: z.string(),
    cms: z.string().min(1),
    algorithm: z.string(),
    serial: z.string(),
    subject: z.string(),
    iin: z.string().nullable(),
    bin: z.string().nullable(),
    signingTime: z.string(),
    documentSha256: z.string().regex(/^[0-9a-f]{64}$/),
  })
  .strict();
const signBatchSchema = z
  .object({
    results: z.array(
      z.union([
        signSchema.extend({ ok: z.literal(true) }).strict(),
        z.object({ ok: z.literal(false), orderId: z.string(), status: z.number().int(), error: errorBodySchema }).strict(),
      ]),
    ),
  })
  .strict();
const lockSchema = z.object({ userId: z.string(), wiped: z.boolean() }).strict();
const lockdownSchema = z.object({ wipedUsers: z.array(z.string()), workers: z.number(), workersAcknowledged: z.number(), elapsedMs: z.number() }).strict();
const statusSchema = z.object({ version: z.string(), pid: z.number(), workers: z.number(), users: z.array(keyStatusSchema) }).passthrough();

/**
 * Typed client of the signer agent (README.md beside this file), for the connector's pipeline and
 * for the lockdown. One axios instance; `unix:` URLs go through `socketPath`; proxies are never
 * used (the token must not leave the machine); every response is checked with zod.
 */
export class SignerAgentClient {
  private readonly http: AxiosInstance;
  private token: string | undefined;
  private readonly tokenFile: string | undefined;

  constructor(options: SignerAgentClientOptions) {
    this.token = options.token;
    this.tokenFile = options.tokenFile ? resolveTokenFile(options.tokenFile, options.cwd) : undefined;
    if (!this.token && !this.tokenFile) throw new ConnectorError('SIGNER_TOKEN_MISSING', 'signer agent client needs a token or a token file');
    const base: AxiosRequestConfig = {
      timeout: options.timeoutMs ?? 30_000,
      proxy: false,
      // Errors are read from the body; axios must not throw on them before we do.
      validateStatus: () => true,
      maxContentLength: 256 * 1024 * 1024,
      maxBodyLength: 256 * 1024 * 1024,
    };
    // Where the agent listens, read as the agent reads it: `localhost` is 127.0.0.1. Resolved by the
    // system instead, it is ::1 first on many hosts (Debian's /etc/hosts), a port the agent does not
    // hold there: whoever listens on it would get the token and the passwords of unlocks.
    const address = parseListenAddress(options.url, options.cwd ?? process.cwd());
    this.http =
      address.kind === 'unix'
        ? axios.create({ ...base, baseURL: 'http://localhost', socketPath: address.path })
        : axios.create({ ...base, baseURL: address.url });
  }

  /** The client the rest of the connector uses: URL and token file from the one configuration. */
  static fromConfig(config: { signer: { url: string; tokenFile: string } }, cwd: string = process.cwd()): SignerAgentClient {
    return new SignerAgentClient({ url: config.signer.url, tokenFile: config.signer.tokenFile, cwd });
  }

  /** GET /health: true when the agent answers 200 (no token needed). */
  async health(): Promise<boolean> {
    try {
      const res = await this.http.get('/health');
      return res.status === 200;
    } catch {
      return false;
    }
  }

  enroll(userId: string, input: { keystorePath: string; expectedIin?: string | null }): Promise<KeyStatusResponse> {
    return this.call<KeyStatusResponse>('PUT', `/v1/keys/${encodeURIComponent(userId)}`, keyStatusSchema, input);
  }

  async unenroll(userId: string): Promise<void> {
    await this.call<void>('DELETE', `/v1/keys/${encodeURIComponent(userId)}`, z.unknown());
  }

  /** WRONG_PASSWORD errors carry `details.wrongPasswordCount` (consecutive, per user). */
  unlock(userId: string, password: string): Promise<KeyStatusResponse> {
    return this.call<KeyStatusResponse>('POST', `/v1/keys/${encodeURIComponent(userId)}/unlock`, keyStatusSchema, { password });
  }

  lock(userId: string): Promise<LockResponse> {
    return this.call<LockResponse>('POST', `/v1/keys/${encodeURIComponent(userId)}/lock`, lockSchema, {});
  }

  keyStatus(userId: string): Promise<KeyStatusResponse> {
    return this.call<KeyStatusResponse>('GET', `/v1/keys/${encodeURIComponent(userId)}`, keyStatusSchema);
  }

  status(): Promise<AgentStatusResponse> {
    return this.call<AgentStatusResponse>('GET', '/v1/status', statusSchema);
  }

  async sign(userId: string, input: SignInput): Promise<SignOutput> {
    const res = await this.call<SignResponse>('POST', `/v1/keys/${encodeURIComponent(userId)}/sign`, signSchema, signBody(input));
    return { ...res, cmsDer: Buffer.from(res.cms, 'base64') };
  }

  /**
   * Several documents signed by one user's key, packed into as few requests as the agent takes
   * (at most MAX_SIGN_BATCH documents and SIGN_BATCH_BYTES of documents and CMS each; a larger
   * document travels alone). One outcome per input, in order: the signature, or that document's
   * refusal as the same SignerAgentError a single `sign` would have thrown. A failure of a request
   * itself (agent unreachable, token refused) is thrown.
   */
  async signMany(userId: string, inputs: readonly SignInput[]): Promise<Array<SignOutput | SignerAgentError>> {
    const chunks: SignInput[][] = [];
    let bytes = 0;
    for (const input of inputs) {
      const size = input.document.length + (input.cosign?.length ?? 0);
      const last = chunks[chunks.length - 1];
      if (!last || last.length >= MAX_SIGN_BATCH || bytes + size > SIGN_BATCH_BYTES) {
        chunks.push([input]);
        bytes = size;
      } else {
        last.push(input);
        bytes += size;
      }
    }
    return (await Promise.all(chunks.map((chunk) => this.signBatch(userId, chunk)))).flat();
  }

  private async signBatch(userId: string, inputs: readonly SignInput[]): Promise<Array<SignOutput | SignerAgentError>> {
    const res = await this.call<z.infer<typeof signBatchSchema>>('POST', `/v1/keys/${encodeURIComponent(userId)}/sign-batch`, signBatchSchema, { items: inputs.map(signBody) });
    if (res.results.length !== inputs.length) {
      throw new SignerAgentError('CONTRACT_VIOLATION', `signer agent answered ${res.results.length} results for ${inputs.length} documents`, 200);
    }
    return res.results.map((item, i) => {
      if (item.orderId !== inputs[i].orderId) return new SignerAgentError('CONTRACT_VIOLATION', `signer agent answered item ${i} for order ${item.orderId}, not ${inputs[i].orderId}`, 200);
      if (!item.ok) return new SignerAgentError(item.error.code, item.error.message, item.status, item.error.details);
      const { ok: _ok, ...signature } = item;
      return { ...signature, cmsDer: Buffer.from(signature.cms, 'base64') };
    });
  }

  lockdown(reason?: string): Promise<LockdownResponse> {
    return this.call<LockdownResponse>('POST', '/v1/lockdown', lockdownSchema, { reason: reason ?? null });
  }

  async metrics(): Promise<string> {
    const res = await this.send('GET', '/metrics');
    if (res.status !== 200) throw this.errorOf(res.status, res.data);
    return String(res.data);
  }

  private async call<T>(method: string, path: string, schema: z.ZodTypeAny, data?: unknown): Promise<T> {
    const res = await this.send(method, path, data);
    if (res.status === 204) return undefined as T;
    if (res.status < 200 || res.status >= 300) throw this.errorOf(res.status, res.data);
    const parsed = schema.safeParse(res.data);
    if (!parsed.success) {
      throw new SignerAgentError('CONTRACT_VIOLATION', `signer agent answered ${method} ${path} with an unexpected body: ${parsed.error.issues[0].path.join('.')}: ${parsed.error.issues[0].message}`, res.status);
    }
    return parsed.data as T;
  }

  private async send(method: string, path: string, data?: unknown) {
    const token = await this.provenToken(method, path);
    return this.request(method, path, { method, url: path, data, headers: { authorization: `Bearer ${token}`, ...(data !== undefined ? { 'content-type': 'application/json' } : {}) } });
  }

  /**
   * The token, once what answers at the agent's address has proved that it holds it (a fresh challenge
   * each call, before the token or a password leaves). On loopback any local account may listen on the
   * agent's port while the agent is down (a restart, a crash): it gets nothing. A proof that fails with
   * the token read earlier is tried once with the token file read again: the file may have been
   * replaced (a token feared leaked, R-29: deleted, the agent restarted with a new one).
   */
  private async provenToken(method: string, path: string): Promise<string> {
    const token = this.currentToken();
    if (await this.proves(token, method, path)) return token;
    if (this.tokenFile) {
      this.token = undefined;
      const fresh = this.currentToken();
      if (fresh !== token && (await this.proves(fresh, method, path))) return fresh;
    }
    throw new SignerAgentError(
      'SIGNER_NOT_AUTHENTIC',
      `what answers at the signer agent's address did not prove that it holds the signer token, so neither the token nor ${method} ${path} was sent to it: another process on the agent's address (is connector signer-agent running?), or an agent with another token file (CONNECTOR_SIGNER_TOKEN_FILE)`,
      0,
    );
  }

  private async proves(token: string, method: string, path: string): Promise<boolean> {
    const challenge = randomBytes(24).toString('base64url');
    const res = await this.request(method, path, { method: 'GET', url: '/health', headers: { 'x-signer-challenge': challenge } });
    // An agent that is closing answers 503 to every request (a PM2 restart): a wait, not an impostor.
    // Nothing was sent but the challenge, so taking a 503 at its word gives nothing away.
    if (res.status === 503) throw new SignerAgentError('SHUTTING_DOWN', `the signer agent is shutting down (HTTP 503 to GET /health before ${method} ${path}); it answers again once started`, 0);
    return res.status === 200 && proofMatches(res.headers['x-signer-proof'], token, challenge);
  }

  /** One HTTP exchange; failing to reach the agent is told for the call it was made for (`method path`). */
  private async request(method: string, path: string, config: AxiosRequestConfig) {
    try {
      return await this.http.request(config);
    } catch (err) {
      const e = err as AxiosError;
      if (e.code === 'ECONNABORTED' || e.code === 'ETIMEDOUT') throw new SignerAgentError('SIGNER_TIMEOUT', `signer agent did not answer ${method} ${path} in time`, 0);
      throw new SignerAgentError('SIGNER_UNREACHABLE', `signer agent is unreachable (${e.code ?? e.message}); is connector signer-agent running?`, 0);
    }
  }

  private currentToken(): string {
    if (!this.token) this.token = readToken(this.tokenFile as string);
    return this.token;
  }

  private errorOf(status: number, data: unknown): SignerAgentError {
    const body = errorBodySchema.safeParse(data);
    if (body.success) return new SignerAgentError(body.data.code, body.data.message, status, body.data.details);
    return new SignerAgentError('CONTRACT_VIOLATION', `signer agent answered HTTP ${status} without an error body`, status);
  }
}
