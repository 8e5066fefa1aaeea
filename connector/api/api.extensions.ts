import type { FastifyInstance } from 'fastify';
import type { AppContext } from '../app/app-context';
import { buildApi } from './api.server';
import { apiKeyAuthenticator } from './auth.hooks';

/**
 * The API as `connector api` runs it: the foundation's routes plus every capability's routes and
 * authenticators (users/sessions, incidents, lockdown...). Capabilities add theirs here.
 */
export function buildApiWithExtensions(context: AppContext): FastifyInstance {
  return buildApi(context, { authenticators: [apiKeyAuthenticator], routes: [] });
}
