import type { FastifyInstance, FastifyRequest } from 'fastify';
import { authenticateApiKey } from '../api-keys/api-key.service';
import type { AppContext } from '../app/app-context';
import { ApiError } from './api-errors';

/**
 * Who is calling. ERPs come with an API key (scoped to payer accounts); people come with a
 * session (the users issue adds that authenticator). `accounts` is what the caller may see and
 * submit for; 'all' only for roles that have it.
 */
export interface Principal {
  kind: 'api_key' | 'session';
  /** Namespace of idempotency keys and rate limits. */
  scope: string;
  /** ERP source of orders this principal submits (part of the natural key). */
  source: string;
  /** Recorded in order events and the audit log. */
  actor: string;
  accounts: string[] | 'all';
  /** With `accounts` 'all': accounts taken out of it (a person's narrower right on them, R-16). */
  exceptAccounts?: string[];
}

export type Authenticator = (request: FastifyRequest, context: AppContext) => Promise<Principal | null>;

const PRINCIPAL = Symbol('principal');
type WithPrincipal = FastifyRequest & { [PRINCIPAL]?: Principal };

export function principalOf(request: FastifyRequest): Principal {
  const principal = (request as WithPrincipal)[PRINCIPAL];
  if (!principal) throw new ApiError(401, 'UNAUTHENTICATED', 'authentication required');
  return principal;
}

/**
 * The credentials of `Authorization: Bearer <key>`, or undefined when the header names another
 * scheme (or none). The scheme is matched without regard to case (RFC 7235 section 2.1, RFC 6750
 * section 2.1): `bearer <key>` from an ERP's HTTP library used to be refused 401.
 */
export function bearerCredentials(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer[ \t]+(.*)$/i.exec(header);
  return match ? match[1].trim() : undefined;
}

export const apiKeyAuthenticator: Authenticator = async (request, context) => {
  const presented = bearerCredentials(request.headers.authorization);
  if (presented === undefined) return null;
  const record = await authenticateApiKey(context.orm.em.fork(), presented);
  if (!record) throw new ApiError(401, 'UNAUTHENTICATED', 'the API key is unknown or revoked');
  // Best effort: the last use of a key helps operators spot forgotten ones.
  void context.orm.em
    .fork()
    .execute('update api_key set last_used_at = ? where id = ?', [context.clock.now(), record.id])
    .catch(() => undefined);
  return { kind: 'api_key', scope: `key:${record.id}`, source: `api:${record.name}`, actor: `api-key:${record.name}`, accounts: record.accounts };
};

/** Paths that need no principal. */
const PUBLIC = new Set(['/health', '/ready', '/api/v1/auth/login']);

export function registerAuth(app: FastifyInstance, context: AppContext, authenticators: Authenticator[]): void {
  // Before the body is read (preParsing, not preHandler): no caller without a key or a session
  // makes the API hold a body in memory, the orders intake's 16 MiB above all. The authenticators
  // look at headers only.
  app.addHook('preParsing', async (request) => {
    const path = request.routeOptions.url ?? request.url.split('?')[0];
    if (PUBLIC.has(path) || !path.startsWith('/api/')) return;
    for (const authenticate of authenticators) {
      const principal = await authenticate(request, context);
      if (principal) {
        (request as WithPrincipal)[PRINCIPAL] = principal;
        return;
      }
    }
    throw new ApiError(401, 'UNAUTHENTICATED', 'authentication required: Authorization: Bearer <API key> or a session');
  });
}
