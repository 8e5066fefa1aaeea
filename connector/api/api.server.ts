import Fastify, { type FastifyInstance } from 'fastify';
import type { AppContext } from '../app/app-context';
import { pendingMigrations } from '../persistence/database';
import { ApiError, sendError } from './api-errors';
import { transientDatabaseError } from '../shared/pg-errors';
import { withTimeout } from '../shared/timeout';
import { requestTimeouts } from '../shared/http-timeouts';
import { apiKeyAuthenticator, registerAuth, type Authenticator } from './auth.hooks';
import { registerOrderRoutes } from './order.routes';

export interface ApiOptions {
  authenticators?: Authenticator[];
  /** Extra route modules (users, incidents, lockdown...) added by later capabilities. */
  routes?: Array<(app: FastifyInstance, context: AppContext) => void>;
  /** How long a client may take to send a request (default API_REQUEST_TIMEOUT_MS); tests shorten it. */
  requestTimeoutMs?: number;
}

/**
 * A request not sent whole within 5 minutes is closed (408): Node's own default, which Fastify
 * turns off. Long enough for the largest orders batch (16 MiB) over a slow link to an ERP.
 */
export const API_REQUEST_TIMEOUT_MS = 300_000;

/**
 * The largest body a route takes unless it says otherwise: a login, a grant, an incident report
 * are a few hundred bytes. Only the orders batch intake takes more (ORDERS_BODY_LIMIT_BYTES); a
 * body is read into memory before it is parsed, so a 16 MiB limit on every route let anyone, with
 * no credentials, hold 16 MiB per request.
 */
export const BODY_LIMIT_BYTES = 64 * 1024;

function sizeText(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`;
}

/** The HTTP API (`connector api`): Fastify, JSON only, errors in the INTERFACES.md shape. */
export function buildApi(context: AppContext, options: ApiOptions = {}): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    ...requestTimeouts(options.requestTimeoutMs ?? API_REQUEST_TIMEOUT_MS),
    // X-Forwarded-* only from the configured reverse proxies: trusting every loopback client (and
    // every client is one when the API listens on loopback) let anyone name a new address in
    // X-Forwarded-For for each login attempt and escape the per-IP limit. None: the socket's address.
    trustProxy: context.config.api.trustedProxies.length > 0 ? context.config.api.trustedProxies : false,
  });

  app.setErrorHandler((error: Error & { code?: string; statusCode?: number }, request, reply) => {
    if (error instanceof ApiError) return sendError(reply, error);
    // HTTP's 413, in our error shape; INTERFACES.md fixes no code for it, BODY_TOO_LARGE sits beside
    // BATCH_TOO_LARGE (also 413) so an ERP can tell "split the batch" from "this body is not an order".
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      // The limit of the route that refused it (the orders intake's is larger than the others').
      const limit = request.routeOptions.bodyLimit ?? BODY_LIMIT_BYTES;
      return sendError(reply, new ApiError(413, 'BODY_TOO_LARGE', `the request body is larger than ${sizeText(limit)}, the limit of this route; nothing was stored`, { limitBytes: limit }));
    }
    const status = error.statusCode;
    if (status === 415) return sendError(reply, new ApiError(415, 'UNSUPPORTED_MEDIA_TYPE', 'send Content-Type: application/json'));
    if (status && status >= 400 && status < 500) {
      return sendError(reply, new ApiError(400, 'INVALID_REQUEST', error.message));
    }
    // A lock or statement bound, a deadlock, a dropped connection: nothing was stored (the
    // transaction rolled back), and the same request later goes through. An ERP retries a 503 with
    // Retry-After; a 500 it would take as a fault of its request.
    const transient = transientDatabaseError(error);
    if (transient !== null) {
      context.logger.warn({ event: 'api.database_transient', method: request.method, url: request.routeOptions.url, why: transient, err: error.message });
      return sendError(reply, new ApiError(503, 'TEMPORARILY_UNAVAILABLE', `the database could not answer in time (${transient}); the request did not complete: send it again`, undefined, { 'retry-after': '5' }));
    }
    context.logger.error({ event: 'api.error', method: request.method, url: request.routeOptions.url, err: error.message });
    return sendError(reply, new ApiError(500, 'INTERNAL', 'internal error; see the connector log'));
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new ApiError(404, 'NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`)));

  app.get('/health', async () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const failing: Array<{ dependency: string; error: string }> = [];
    await Promise.all([
      withTimeout(context.redis.ping(), 2000, 'Redis').catch((err: Error) => failing.push({ dependency: 'redis', error: err.message })),
      withTimeout(context.orm.em.fork().execute('select 1'), 2000, 'PostgreSQL')
        .then(() => withTimeout(pendingMigrations(context.orm), 2000, 'PostgreSQL migrations'))
        .then((pending) => {
          if (pending.length) failing.push({ dependency: 'migrations', error: `${pending.length} pending: run connector migrate` });
        })
        .catch((err: Error) => failing.push({ dependency: 'postgresql', error: err.message })),
    ]);
    if (failing.length) return reply.status(503).send({ status: 'not_ready', failing });
    return { status: 'ready' };
  });

  registerAuth(app, context, options.authenticators ?? [apiKeyAuthenticator]);
  registerOrderRoutes(app, context);
  for (const register of options.routes ?? []) register(app, context);
  return app;
}
