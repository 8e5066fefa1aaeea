import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app/app-context';
import { buildApi } from './api.server';
import { apiKeyAuthenticator } from './auth.hooks';
import { sessionAuthenticator } from '../users/session.authenticator';
import { userRoutes } from '../users/user.routes';
import type { UsersWiring } from '../app/user-context';
import { orderSigningRoutes } from './order-signing.routes';
import { lockdownRoutes } from './lockdown.routes';

export interface ApiExtensionOverrides {
  /** Tests replace the signer agent (and may share a session store). */
  users?: Partial<UsersWiring>;
}

/**
 * The API as `connector api` runs it: the foundation's routes plus every capability's routes and
 * authenticators (users/sessions, incidents, lockdown...). Capabilities add theirs here.
 */
export function buildApiWithExtensions(context: AppContext, overrides: ApiExtensionOverrides = {}): FastifyInstance {
  return buildApi(context, {
    // An Authorization header decides first (ERPs); otherwise the session cookie (people).
    authenticators: [apiKeyAuthenticator, sessionAuthenticator(overrides.users)],
    routes: [userRoutes(overrides.users), orderSigningRoutes, lockdownRoutes()],
  });
}
