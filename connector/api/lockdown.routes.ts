import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { AppContext } from '../app/app-context';
import { ApiError } from './api-errors';
import { principalOf } from './auth.hooks';
import { sessionOf, type SessionContext } from '../users/session.authenticator';
import { getIncident, incidentView, listIncidents, resolveIncident } from '../incidents/incident.service';
import { assertScopeUser, parseScope } from '../lockdown/lockdown.service';
import { ConnectorError } from '../shared/errors';
import { parseKzInstant } from '../calendar/kz-time';
import { decodePageCursor, encodePageCursor } from '../shared/page-cursor';
import { lockdownStatusOf, resolveLockdownIn, triggerLockdown } from '../../queue/lockdown.trigger';

/**
 * Incidents and the lockdown over HTTP (INTERFACES.md "Incidents"): any logged-in person may report
 * a suspected compromise (R-29: "detected or suspected"); only an admin reads and resolves incidents;
 * any authenticated caller (a console, an ERP) may read the lockdown state.
 */
const reportBody = z
  .object({
    /** What may have leaked: the reporter's password or EDS, the Client Secret, or something else. */
    what: z.enum(['password', 'eds', 'client_secret', 'other']).default('other'),
    description: z.string().trim().min(1).max(2000),
    /** An admin may name the scope; others get the one that follows from `what`. */
    scope: z.string().max(80).optional(),
  })
  .strict();
/** `GET /api/v1/incidents`: newest first; all of them, or pages of `limit` (at most 500) led on by `nextCursor`. */
const incidentsQuery = z.object({
  status: z.enum(['open', 'resolved']).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
  cursor: z.string().max(200).optional(),
});

/**
 * `POST /api/v1/incidents/:id/resolve`: one body for every incident (README, docs/lockdown.md).
 * Any incident but a lockdown needs `note`; those the bank must hear of, and a lockdown, need
 * `bankNotifiedAt` and `bankReference`; `notifiedBy` (who told the bank) is a lockdown's only.
 */
const resolveBody = z
  .object({
    note: z.string().trim().min(1).max(1000).optional(),
    bankNotifiedAt: z.string().max(64).optional(),
    bankReference: z.string().max(500).optional(),
    notifiedBy: z.string().max(200).optional(),
  })
  .strict();

function parse<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, body: unknown): T {
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw new ApiError(400, 'INVALID_REQUEST', 'bad request body', result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
  return result.data;
}

function requirePerson(request: FastifyRequest): SessionContext {
  principalOf(request);
  const session = sessionOf(request);
  if (!session) throw new ApiError(403, 'SESSION_REQUIRED', 'incidents are reported and read by people with a session, not API keys');
  return session;
}

function asApiError(err: unknown): unknown {
  if (!(err instanceof ConnectorError)) return err;
  const status = err.code === 'FORBIDDEN' ? 403 : err.code === 'NOT_FOUND' ? 404 : err.code === 'LOCKDOWN_STEPS_MISSING' ? 422 : err.code === 'NOT_LOCKED' || err.code === 'WRONG_INCIDENT' || err.code === 'LOCKDOWN_RETRIGGERED' ? 409 : err.exitCode === 2 ? 400 : 422;
  return new ApiError(status, err.code, err.message, err.details);
}

export function lockdownRoutes() {
  return (app: FastifyInstance, context: AppContext): void => {
    app.post('/api/v1/incidents', async (request, reply) => {
      const session = requirePerson(request);
      const body = parse(reportBody, request.body);
      const login = session.user.login;
      let scope: string;
      if (body.scope !== undefined) {
        if (session.user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only an admin may choose the scope; describe what leaked with "what"');
        scope = body.scope;
      } else {
        scope = body.what === 'password' || body.what === 'eds' ? `user:${login}` : body.what === 'client_secret' ? 'credentials' : 'all';
      }
      try {
        await assertScopeUser(context.orm.em.fork(), parseScope(scope));
      } catch (err) {
        throw asApiError(err);
      }
      const result = await triggerLockdown(context, {
        trigger: 'user_report',
        reason: `reported by ${login} (${body.what}): ${body.description}`,
        scope,
        evidence: { reportedBy: login, what: body.what, ip: request.ip },
        actor: `user:${login}`,
      }).catch((err) => {
        throw asApiError(err);
      });
      const incident = await getIncident(context.orm.em.fork(), result.incidentId);
      return reply.status(201).send({
        incident: incident ? incidentView(incident) : { id: result.incidentId },
        lockdown: await lockdownStatusOf(context),
        engaged: result.engaged,
        checklist: result.checklist,
      });
    });

    app.get('/api/v1/incidents', async (request) => {
      // Incidents tell every account's balances, debits and counterparties and people's IINs: an
      // admin's to read (R-16: others see only the accounts they have a right on). Anyone still
      // reports one (POST) and reads the lockdown state (GET /api/v1/lockdown).
      if (requirePerson(request).user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only an admin reads incidents; GET /api/v1/lockdown tells everyone whether the connector is locked down');
      const query = incidentsQuery.safeParse(request.query);
      if (!query.success) throw new ApiError(400, 'INVALID_REQUEST', 'bad query: status is open or resolved, limit 1-500, cursor as given', query.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })));
      const { status, cursor } = query.data;
      const before = cursor === undefined ? undefined : decodePageCursor(cursor);
      if (before === null) throw new ApiError(400, 'INVALID_REQUEST', 'bad cursor');
      // Without a limit (nor a cursor), every incident, as the list always answered.
      const limit = query.data.limit ?? (cursor === undefined ? undefined : 100);
      if (limit === undefined) return { incidents: (await listIncidents(context.orm.em.fork(), { status })).map(incidentView), nextCursor: null };
      const rows = await listIncidents(context.orm.em.fork(), { status, before, limit: limit + 1 });
      const page = rows.slice(0, limit);
      const last = page[page.length - 1];
      return { incidents: page.map(incidentView), nextCursor: rows.length > limit && last ? encodePageCursor({ at: last.openedAt, id: last.id }) : null };
    });

    app.post('/api/v1/incidents/:id/resolve', async (request) => {
      const session = requirePerson(request);
      // Every incident, a lockdown too, is resolved by an admin: asked first, so that nobody else
      // learns which incident ids exist (404 against 403).
      if (session.user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only an admin resolves an incident');
      const { id } = request.params as { id: string };
      const found = await getIncident(context.orm.em.fork(), id);
      if (!found) throw new ApiError(404, 'NOT_FOUND', `no incident ${id}`);
      if (found.kind !== 'lockdown') {
        // Any other incident: an admin closes it once dealt with (incident.service.ts resolveIncident).
        if (session.user.role !== 'admin') throw new ApiError(403, 'FORBIDDEN', 'only an admin resolves an incident');
        const body = parse(resolveBody, request.body);
        const refuse = (path: string, message: string) => new ApiError(400, 'INVALID_REQUEST', 'bad request body', [{ path, message }]);
        if (!body.note) throw refuse('note', `a ${found.kind} incident is resolved with a note saying what was done about it`);
        // As a lockdown's (and the CLI's): an ISO time, without an offset Kazakhstan time.
        const bankNotifiedAt = body.bankNotifiedAt === undefined ? undefined : parseKzInstant(body.bankNotifiedAt);
        if (bankNotifiedAt === null) throw refuse('bankNotifiedAt', 'an ISO time, e.g. 2026-11-25T10:30:00+05:00 (without an offset, Kazakhstan time)');
        if (body.notifiedBy !== undefined) throw refuse('notifiedBy', `recorded for a lockdown only; say who told the bank in note`);
        try {
          const { incident, resolved } = await resolveIncident(context.orm.em.fork(), {
            id,
            actor: `user:${session.user.login}`,
            note: body.note,
            bankNotifiedAt,
            bankNotifiedAtText: body.bankNotifiedAt,
            bankReference: body.bankReference,
            now: context.clock.now(),
            caller: 'api',
          });
          return { resolved, incident: incidentView(incident) };
        } catch (err) {
          throw asApiError(err);
        }
      }
      const body = parse(resolveBody, request.body);
      try {
        const result = await resolveLockdownIn(context, {
          incidentId: id,
          bankNotifiedAt: body.bankNotifiedAt,
          bankReference: body.bankReference,
          notifiedBy: body.notifiedBy,
          note: body.note,
          actor: `user:${session.user.login}`,
          isAdmin: session.user.role === 'admin',
          caller: 'api',
        });
        return { ...result, lockdown: await lockdownStatusOf(context) };
      } catch (err) {
        throw asApiError(err);
      }
    });

    app.get('/api/v1/lockdown', async (request) => {
      principalOf(request);
      return lockdownStatusOf(context);
    });
  };
}
