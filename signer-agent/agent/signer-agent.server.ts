import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z, type ZodType } from 'zod';
import { ConnectorError } from '../../connector/shared/errors';
import { requestTimeouts } from '../../connector/shared/http-timeouts';
import type { AgentMetrics } from './agent.metrics';
import { AGENT_CHALLENGE, agentProof, bearerToken, tokenMatches } from './agent-token.store';
import {
  enrollBodySchema,
  lockdownBodySchema,
  SIGN_BATCH_BYTES,
  signBatchBodySchema,
  signBodySchema,
  unlockBodySchema,
  userIdSchema,
  type AgentErrorBody,
  type AgentStatusResponse,
  type LockdownResponse,
  type SignBatchItem,
  type SignBatchResponse,
  type SignRequest,
  type SignResponse,
} from './signer-agent.contract';
import type { SignerAgentService } from './signer-agent.service';

/** HTTP status of each refusal code; unknown codes are 422 (a refusal about the key or certificate). */
const STATUS: Record<string, number> = {
  INVALID_REQUEST: 400,
  SIGNING_TIME_NOT_ALLOWED: 400,
  UNAUTHENTICATED: 401,
  WRONG_PASSWORD: 403,
  ORIGIN_REFUSED: 403,
  NOT_FOUND: 404,
  NOT_ENROLLED: 404,
  KEY_LOCKED: 409,
  UNLOCK_IN_PROGRESS: 409,
  DOCUMENT_TOO_LARGE: 413,
  HOST_REFUSED: 421,
  INTERNAL: 500,
  SIGNING_FAILED: 500,
  SHUTTING_DOWN: 503,
  SIGNER_UNAVAILABLE: 503,
  SIGNER_TIMEOUT: 503,
  JOURNAL_UNAVAILABLE: 503,
};

export function httpStatusOf(code: string): number {
  return STATUS[code] ?? 422;
}

/** Host names a loopback caller uses. Anything else is a DNS-rebinding attempt from a browser. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

export interface ServerOptions {
  service: SignerAgentService;
  metrics: AgentMetrics;
  logger: Logger;
  token: string;
  testMode: boolean;
  /** Largest document accepted; the JSON body limit is derived from it (base64, plus a CMS to cosign). */
  maxDocumentBytes: number;
  describe: () => Omit<AgentStatusResponse, 'users'>;
  /** How long a caller may take to send a request (default AGENT_REQUEST_TIMEOUT_MS); tests shorten it. */
  requestTimeoutMs?: number;
}

/**
 * Callers are local server processes on loopback: a request not sent whole within 30 s is a stuck
 * or hostile caller, and its socket is closed (408), so that the lockdown's wipe and the worker's
 * calls always find the agent free.
 */
export const AGENT_REQUEST_TIMEOUT_MS = 30_000;

/**
 * The agent's HTTP surface (README.md). Every route but GET /health needs the bearer token;
 * bodies are checked with zod; errors are `{code,message,details?}`. Request bodies are never
 * logged (they carry passwords and documents); Fastify's per-request logging is off and the
 * service logs structured events instead.
 */
export function buildSignerAgentServer(options: ServerOptions): FastifyInstance {
  const { service, metrics, token } = options;
  const app = Fastify({
    loggerInstance: options.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: Math.ceil((options.maxDocumentBytes * 4) / 3) * 2 + 64 * 1024,
    // Lockdown must answer fast even with a signing burst queued: no keep-alive starvation.
    return503OnClosing: true,
    ...requestTimeouts(options.requestTimeoutMs ?? AGENT_REQUEST_TIMEOUT_MS),
  });

  app.addHook('onRequest', async (request, reply) => {
    const host = hostWithoutPort(request.headers.host ?? '');
    if (!LOOPBACK_HOSTS.has(host)) return sendError(reply, new ConnectorError('HOST_REFUSED', 'the signer agent answers only loopback host names'));
    // Callers are server processes; a browser (which always sends Origin cross-site) is refused.
    if (request.headers.origin !== undefined) return sendError(reply, new ConnectorError('ORIGIN_REFUSED', 'the signer agent does not serve browsers'));
    if (request.method === 'GET' && request.url === '/health') return;
    if (!tokenMatches(bearerToken(request.headers.authorization), token)) {
      return sendError(reply, new ConnectorError('UNAUTHENTICATED', 'missing or wrong bearer token; see CONNECTOR_SIGNER_TOKEN_FILE'));
    }
  });

  /** A refusal as it is answered: a ConnectorError as is; anything else logged (name and code only) and INTERNAL. */
  const asRefusal = (err: unknown): ConnectorError => {
    if (err instanceof ConnectorError) return err;
    options.logger.error({ event: 'signer.http.error', err: { name: (err as Error)?.name, code: (err as { code?: string })?.code } }, 'unexpected error');
    return new ConnectorError('INTERNAL', 'internal error of the signer agent; see its log');
  };

  // Every refusal the agent answers is counted once, here, by its code (issue 11: failures by code).
  const sendError = (reply: FastifyReply, err: ConnectorError): FastifyReply => {
    metrics.failed(err.code);
    return sendErrorBody(reply, err);
  };

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, _request, reply) => {
    if (err instanceof ConnectorError) return sendError(reply, err);
    // Fastify's own errors (body parsing, size). Their messages may quote the body: never echoed.
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return sendError(reply, new ConnectorError('DOCUMENT_TOO_LARGE', `the request body is larger than the agent accepts (${options.maxDocumentBytes} document bytes)`));
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return sendError(reply, new ConnectorError('INVALID_REQUEST', 'the request body is not valid JSON of the expected content type (application/json)'));
    }
    return sendError(reply, asRefusal(err));
  });

  app.setNotFoundHandler((request, reply) => sendError(reply, new ConnectorError('NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  // A caller's challenge is answered with a proof that this process holds the token (callers check it
  // before they send the token or a password: nothing else listening on this address can give it).
  app.get('/health', async (request, reply) => {
    const challenge = request.headers['x-signer-challenge'];
    if (typeof challenge === 'string' && AGENT_CHALLENGE.test(challenge)) reply.header('x-signer-proof', agentProof(token, challenge));
    return { status: 'ok' };
  });

  app.get('/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metrics.render();
  });

  app.get('/v1/status', async (): Promise<AgentStatusResponse> => ({ ...options.describe(), users: service.statusAll() }));

  app.get('/v1/keys/:userId', async (request) => service.status(userIdParam(request)));

  app.put('/v1/keys/:userId', async (request, reply) => {
    const userId = userIdParam(request);
    const body = parseBody(enrollBodySchema, request.body);
    const status = await service.enroll(userId, body.keystorePath, body.expectedIin ?? null);
    return reply.code(200).send(status);
  });

  app.delete('/v1/keys/:userId', async (request, reply) => {
    await service.unenroll(userIdParam(request));
    return reply.code(204).send();
  });

  app.post('/v1/keys/:userId/unlock', async (request) => {
    const userId = userIdParam(request);
    const body = parseBody(unlockBodySchema, request.body);
    return service.unlock(userId, body.password);
  });

  app.post('/v1/keys/:userId/lock', async (request) => {
    const userId = userIdParam(request);
    return { userId, ...service.lock(userId) };
  });

  const signOne = async (userId: string, body: SignRequest): Promise<SignResponse> => {
    const outcome = await service.sign({
      userId,
      orderId: body.orderId,
      document: Buffer.from(body.document, 'base64'),
      cosign: body.cosign ? Buffer.from(body.cosign, 'base64') : null,
      signingTime: body.signingTime ? new Date(body.signingTime) : undefined,
      expected: { iin: body.expectedIin ?? null, bin: body.expectedBin ?? null },
    });
    return {
      orderId: body.orderId,
      userId,
      cms: Buffer.from(outcome.cms).toString('base64'),
      algorithm: outcome.facts.algorithm,
      serial: outcome.facts.serial,
      subject: outcome.facts.subject,
      iin: outcome.facts.iin,
      bin: outcome.facts.bin,
      signingTime: outcome.signingTime.toISOString(),
      documentSha256: outcome.documentSha256,
    };
  };

  app.post('/v1/keys/:userId/sign', async (request): Promise<SignResponse> => signOne(userIdParam(request), parseBody(signBodySchema, request.body)));

  // The same signatures for several documents of one user in one request: each item is signed
  // (in parallel, by the signing workers) and answered on its own, exactly as a single sign would be.
  // Room for a client's packed batch (SIGN_BATCH_BYTES, base64) or for one document of the largest size.
  const batchBodyLimit = Math.max(app.initialConfig.bodyLimit ?? 0, Math.ceil((SIGN_BATCH_BYTES * 4) / 3) * 2 + 256 * 1024);
  app.post('/v1/keys/:userId/sign-batch', { bodyLimit: batchBodyLimit }, async (request): Promise<SignBatchResponse> => {
    const userId = userIdParam(request);
    const { items } = parseBody(signBatchBodySchema, request.body);
    const results = await Promise.all(
      items.map(async (raw): Promise<SignBatchItem> => {
        const orderId = typeof (raw as { orderId?: unknown })?.orderId === 'string' ? (raw as { orderId: string }).orderId : '';
        try {
          return { ok: true, ...(await signOne(userId, parseBody(signBodySchema, raw))) };
        } catch (err) {
          const refusal = asRefusal(err);
          metrics.failed(refusal.code);
          return { ok: false, orderId, status: httpStatusOf(refusal.code), error: errorBody(refusal) };
        }
      }),
    );
    return { results };
  });

  // A lockdown must never fail on its input: in its own scope any body (none, empty, not JSON,
  // another content type) is accepted, and only a well-formed reason is kept.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
      try {
        done(null, typeof body === 'string' && body.trim() ? JSON.parse(body) : {});
      } catch {
        done(null, {});
      }
    });
    scope.post('/v1/lockdown', async (request): Promise<LockdownResponse> => {
      const parsed = lockdownBodySchema.safeParse(request.body ?? {});
      return service.lockdown(parsed.success ? (parsed.data.reason ?? null) : null);
    });
  });

  return app;
}

/** `127.0.0.1:8901` -> `127.0.0.1`; `[::1]:8901` -> `[::1]`. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1);
  return host.split(':')[0];
}

function errorBody(err: ConnectorError): AgentErrorBody {
  const body: AgentErrorBody = { code: err.code, message: err.message };
  if (err.details !== undefined) body.details = err.details;
  return body;
}

function sendErrorBody(reply: FastifyReply, err: ConnectorError): FastifyReply {
  return reply.code(httpStatusOf(err.code)).type('application/json; charset=utf-8').send(errorBody(err));
}

function userIdParam(request: FastifyRequest): string {
  const raw = (request.params as { userId?: unknown }).userId;
  const parsed = userIdSchema.safeParse(raw);
  if (!parsed.success) throw new ConnectorError('INVALID_REQUEST', `userId: ${parsed.error.issues[0].message}`);
  return parsed.data;
}

/** Validates a body; messages name the field and the rule, never the value (a password may be one). */
function parseBody<S extends ZodType>(schema: S, body: unknown): z.infer<S> {
  const parsed = schema.safeParse(body ?? {});
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`);
    throw new ConnectorError('INVALID_REQUEST', `invalid request body: ${issues.join('; ')}`, 2, { issues });
  }
  return parsed.data as z.infer<S>;
}
