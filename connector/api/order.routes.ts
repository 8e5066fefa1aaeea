import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { paymentOrderSchema, type NormalisedOrder } from '../orders/payment-order';
import { PaymentOrder } from '../persistence/entities';
import { conflictAdvice, describeDifferences, intakeOrders, type IntakeConflict } from '../intake/order-intake';
import { orderView } from '../orders/order.mapper';
import { orderIdsPage } from '../orders/order-list';
import { decodePageCursor, encodePageCursor } from '../shared/page-cursor';
import { ORDER_STATES, isOrderState } from '../orders/order-state';
import { canonicalJson } from '../audit/audit.log';
import { bullmqIntakePort } from '../../queue/bullmq-intake.port';
import type { AppContext } from '../app/app-context';
import { ApiError } from './api-errors';
import { principalOf, type Principal } from './auth.hooks';
import { isUuid } from '../shared/uuid';

/**
 * The two bodies POST /api/v1/orders takes (INTERFACES.md "HTTP API"): one order, or {"orders":[...]}.
 * The body's shape picks the schema and the body is judged against that one alone: a union of the two
 * reports only "Invalid input" at the root, where an ERP needs the order and the field
 * (`orders.3.amount`) and the rule broken. A batch's wrapper is judged here, each of its orders on
 * its own (parseOrder): one order that is not one is refused alone, its siblings go on.
 */
const batchSchema = z.object({ orders: z.array(z.unknown()).min(1) }).strict();

interface BodyIssue {
  path: string;
  message: string;
}

/** The orders of the body, each still to be judged; or the issues that make the body no order at all. */
function readBody(body: unknown): { ok: true; batch: boolean; items: unknown[] } | { ok: false; issues: BodyIssue[] } {
  if (Array.isArray(body)) return { ok: false, issues: [{ path: '', message: 'expected one order or {"orders":[...]}, not a bare array' }] };
  const batch = typeof body === 'object' && body !== null && Object.hasOwn(body, 'orders');
  if (!batch) return { ok: true, batch, items: [body] };
  const parsed = batchSchema.safeParse(body);
  if (!parsed.success) return { ok: false, issues: parsed.error.issues.flatMap((i) => bodyIssues(batchSchema, i, [])) };
  return { ok: true, batch, items: parsed.data.orders };
}

/** One order of the body against the schema; issues named by their path in the body (`orders.3.amount`). */
function parseOrder(item: unknown, at: Array<string | number>): { ok: true; order: NormalisedOrder } | { ok: false; issues: BodyIssue[] } {
  const parsed = paymentOrderSchema.safeParse(withoutNullOptionals(item));
  if (parsed.success) return { ok: true, order: parsed.data };
  return { ok: false, issues: parsed.error.issues.flatMap((i) => bodyIssues(paymentOrderSchema, i, at)) };
}

/** The order's optional fields (read from its schema); given as JSON `null`, one is a field not given. */
const NULLABLE_FIELDS: ReadonlySet<string> = new Set(Object.entries(paymentOrderSchema.shape).filter(([, field]) => field instanceof z.ZodOptional).map(([name]) => name));

/**
 * An order with its optional fields that are `null` left out: the API's own answers carry
 * `"erpDocumentId": null`, and many ERPs' JSON writers emit null for an empty value. A required
 * field given as null is still refused, naming it.
 */
function withoutNullOptionals(item: unknown): unknown {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) return item;
  const record = item as Record<string, unknown>;
  const nulled = Object.keys(record).filter((key) => record[key] === null && NULLABLE_FIELDS.has(key));
  if (nulled.length === 0) return item;
  return Object.fromEntries(Object.entries(record).filter(([key]) => !nulled.includes(key)));
}

/** One issue per unknown field, at its own path, with the field it was probably meant to be. */
function bodyIssues(schema: z.ZodTypeAny, issue: z.ZodIssue, at: Array<string | number>): BodyIssue[] {
  if (issue.code !== 'unrecognized_keys') return [{ path: [...at, ...issue.path].join('.'), message: issue.message }];
  const known = fieldsAt(schema, issue.path);
  return issue.keys.map((key) => {
    const meant = known.find((k) => k.toLowerCase() === key.toLowerCase());
    return { path: [...at, ...issue.path, key].join('.'), message: meant ? `unknown field; did you mean "${meant}"?` : `unknown field; allowed here: ${known.join(', ')}` };
  });
}

/** The fields the object at `path` of `schema` may have. */
function fieldsAt(schema: z.ZodTypeAny, path: Array<string | number>): string[] {
  let at: z.ZodTypeAny | undefined = schema;
  for (const step of path) {
    if (at instanceof z.ZodArray) at = at.element;
    else if (at instanceof z.ZodObject) at = (at.shape as Record<string, z.ZodTypeAny>)[String(step)];
    else return [];
    while (at instanceof z.ZodOptional || at instanceof z.ZodDefault) at = at._def.innerType;
  }
  return at instanceof z.ZodObject ? Object.keys(at.shape) : [];
}

function listed(issues: BodyIssue[]): string {
  const shown = issues.slice(0, 3).map((i) => `${i.path || '(body)'}: ${i.message}`).join('; ');
  return `${shown}${issues.length > 3 ? ` (and ${issues.length - 3} more in details)` : ''}`;
}

/** The error's message names the first problems too, for the ERP's log that keeps only the message. */
function invalidBody(issues: BodyIssue[], what = 'the body is not a payment order (nor {"orders":[...]})'): ApiError {
  return new ApiError(400, 'INVALID_REQUEST', `${what}: ${listed(issues)}; nothing was stored`, issues);
}

/**
 * Why one order of a batch was not taken in (nothing of it stored): its own answer in the batch's
 * results, where a single order would be answered 400 INVALID_REQUEST as a whole (INTERFACES.md),
 * as a document conflict is 409 alone and a `conflict` in a batch.
 */
type Refusal = { code: 'INVALID_REQUEST'; issues: BodyIssue[] };

/** A refused order's result: the shape of every result of a batch, with no id (nothing was stored) and `refused`. */
function refusedResult(item: unknown, index: number, refusal: Refusal) {
  const erpDocumentId = paymentOrderSchema.shape.erpDocumentId.safeParse(typeof item === 'object' && item !== null ? (item as Record<string, unknown>).erpDocumentId : undefined);
  const what = `orders.${index} is not a payment order`;
  return {
    id: null,
    externalId: null,
    state: null,
    created: false,
    erpDocumentId: (erpDocumentId.success ? erpDocumentId.data : undefined) ?? null,
    errors: refusal.issues.map((i) => ({ field: i.path, code: refusal.code, message: i.message })),
    warnings: [],
    refused: { code: refusal.code, message: `${what}: ${listed(refusal.issues)}; it was not stored (each other order of the batch is answered at its own index)` },
  };
}

function conflictMessage(order: NormalisedOrder, conflict: IntakeConflict, orderId: string): string {
  if (conflict.erpDocumentId !== undefined) {
    return `ERP document ${conflict.erpDocumentId} of ${order.payer.iban} is already an order (${conflict.state}) under other requisites (${describeDifferences(conflict, 'en')}); this one was not stored: ${conflictAdvice(conflict.state, orderId).en}`;
  }
  return `document ${order.number} of ${order.date} from ${order.payer.iban} is already taken (order ${conflict.state}) with other requisites (${describeDifferences(conflict, 'en')}); nothing was changed: ${conflictAdvice(conflict.state, orderId).en}`;
}

function canSee(principal: Principal, account: string): boolean {
  return principal.accounts === 'all' ? !principal.exceptAccounts?.includes(account) : principal.accounts.includes(account);
}

/**
 * An order taken in (committed) whose lockdown check failed after the commit: accepted, not yet
 * judged. Answered as taken in, with this warning, never as an error: an ERP told "error" would
 * send the payment again (intakeOrders' `lockdownUnchecked`).
 */
const LOCKDOWN_UNCHECKED_WARNING = {
  field: 'state',
  code: 'LOCKDOWN_UNCHECKED',
  message: 'taken in and stored; whether a lockdown is in force could not be read just now, so the order waits in state received for the validate stage (held there if a lockdown is in force): do not send it again, follow it with GET /api/v1/orders/:id',
};

interface StoredResponse {
  status: number;
  body: unknown;
}

/**
 * How long a reservation of an Idempotency-Key lasts without a sign of life before another request
 * may take the key. The request that holds it renews it every IDEMPOTENCY_HEARTBEAT_MS while it
 * runs (keepReservation), however long that is, so only a request whose process died (or whose
 * database stopped answering) loses it. It was a fixed 15 minutes from the start: the ERP's retries
 * of a request that crashed were refused that long, each told "retry in 5 s". Taking the key from
 * a live request would still make no second order (the natural key does not let a document in
 * twice); it would only answer `created: false` where the first answers 201.
 */
export const IDEMPOTENCY_RESERVATION_MS = 60_000;
export const IDEMPOTENCY_HEARTBEAT_MS = 10_000;

/**
 * Renews this request's reservation (its `created_at`) while it runs; `stop` when it has answered.
 * A renewal that fails is left to the next one: the reservation lapses only after several missed.
 */
export function keepReservation(context: AppContext, scope: string, key: string, hash: string, everyMs = IDEMPOTENCY_HEARTBEAT_MS): { stop: () => void } {
  const timer = setInterval(() => {
    void context.orm.em
      .fork()
      .execute('update idempotency_record set created_at = ? where scope = ? and idempotency_key = ? and request_hash = ? and response_status = 0', [context.clock.now(), scope, key, hash])
      .catch(() => undefined);
  }, everyMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/**
 * Reserves the key for this body before any order is taken in (a row with status 0 until the
 * response is stored): two requests with one key and different bodies at the same moment used to
 * both find the key free, both take their orders in and both answer 201. `reserved`: this request
 * stores the response; `replay`: the first result; `sameInFlight`: the same body is being taken in
 * right now by another request (awaitIdempotent waits for its answer).
 */
async function reserveIdempotent(context: AppContext, scope: string, key: string, hash: string, tries = 2): Promise<'reserved' | 'sameInFlight' | { replay: StoredResponse }> {
  const now = context.clock.now();
  const taken = await context.orm.em.fork().execute<Array<{ taken: number }>>(
    `insert into idempotency_record (scope, idempotency_key, request_hash, response_status, response_body, created_at)
     values (?, ?, ?, 0, 'null'::jsonb, ?)
     on conflict (scope, idempotency_key) do update set request_hash = excluded.request_hash, created_at = excluded.created_at
       where idempotency_record.response_status = 0 and idempotency_record.created_at < ?
     returning 1 as taken`,
    [scope, key, hash, now, new Date(now.getTime() - IDEMPOTENCY_RESERVATION_MS)],
  );
  if (taken.length) return 'reserved';
  const previous = await findIdempotent(context, scope, key);
  // Gone between the two statements (the request that held it failed): try once more.
  if (!previous) {
    if (tries <= 1) throw new ApiError(409, 'IDEMPOTENCY_CONFLICT', 'this Idempotency-Key is being taken and given back by other requests right now; retry');
    return reserveIdempotent(context, scope, key, hash, tries - 1);
  }
  if (previous.hash !== hash) throw new ApiError(409, 'IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was already used with a different body');
  return previous.response.status === 0 ? 'sameInFlight' : { replay: previous.response };
}

/**
 * How long a request waits for the first request with its key and body to store its answer. Above
 * the time a full batch (api.maxBatchSize orders, validated inline) takes on a busy database, below
 * the minute an ERP's HTTP client commonly gives up after. Past it the answer is 409 with
 * Retry-After: the first request still runs, and the retry replays its answer.
 */
export const IDEMPOTENCY_WAIT_MS = 30_000;
const IDEMPOTENCY_POLL_MS = 50;

/**
 * The key for this request (`reserved`), or the first result to replay. A request that finds the
 * same body in flight waits for that answer (INTERFACES.md: the same key and body return the
 * first result): it used to take the orders in again and answer its own result, 200 `created:
 * false` without `idempotent-replayed`, while the first answered 201. Should the first request
 * fail, its reservation is given back and the next poll takes the key for this one.
 */
export async function awaitIdempotent(context: AppContext, scope: string, key: string, hash: string, waitMs = IDEMPOTENCY_WAIT_MS): Promise<'reserved' | { replay: StoredResponse }> {
  const until = Date.now() + waitMs;
  for (;;) {
    const found = await reserveIdempotent(context, scope, key, hash);
    if (found !== 'sameInFlight') return found;
    if (Date.now() >= until) throw stillInFlight(context, await findReservedAt(context, scope, key), waitMs);
    await sleep(IDEMPOTENCY_POLL_MS);
  }
}

/**
 * The answer to a request that waited its bound for the first with its key. While the first renews
 * its reservation it is alive: retry in 5 s for its answer. A reservation not renewed for two
 * heartbeats belongs to a request that most likely died: the answer says when the key is free
 * (Retry-After up to IDEMPOTENCY_RESERVATION_MS), and the retry then takes the orders in itself.
 */
function stillInFlight(context: AppContext, renewedAt: Date | null, waitMs: number): ApiError {
  const now = context.clock.now().getTime();
  const freeAt = new Date((renewedAt ?? new Date(now)).getTime() + IDEMPOTENCY_RESERVATION_MS);
  const silentMs = renewedAt ? now - renewedAt.getTime() : 0;
  const dead = silentMs > 2 * IDEMPOTENCY_HEARTBEAT_MS;
  const retryAfter = dead ? Math.max(1, Math.ceil((freeAt.getTime() - now) / 1000)) : 5;
  const message = dead
    ? `the first request with this Idempotency-Key and this body has given no sign of life for ${Math.round(silentMs / 1000)} s (it most likely stopped before answering); the key is free from ${freeAt.toISOString()}: retry in ${retryAfter} s with the same key and body, and that request takes the orders in (none is stored twice)`
    : `the first request with this Idempotency-Key and this body is still being taken in (over ${Math.round(waitMs / 1000)} s); retry in ${retryAfter} s with the same key and body to get its answer`;
  return new ApiError(409, 'IDEMPOTENCY_CONFLICT', message, { inProgress: true, freeAt: freeAt.toISOString() }, { 'retry-after': String(retryAfter) });
}

/** When the reservation of the key was last taken or renewed; null when there is none any more. */
async function findReservedAt(context: AppContext, scope: string, key: string): Promise<Date | null> {
  const rows = await context.orm.em.fork().execute<Array<{ created_at: Date }>>(
    'select created_at from idempotency_record where scope = ? and idempotency_key = ? and response_status = 0',
    [scope, key],
  );
  return rows.length ? new Date(rows[0].created_at) : null;
}

async function findIdempotent(context: AppContext, scope: string, key: string): Promise<{ hash: string; response: StoredResponse } | null> {
  const rows = await context.orm.em.fork().execute<Array<{ request_hash: string; response_status: number; response_body: unknown }>>(
    'select request_hash, response_status, response_body from idempotency_record where scope = ? and idempotency_key = ?',
    [scope, key],
  );
  return rows.length ? { hash: rows[0].request_hash, response: { status: rows[0].response_status, body: rows[0].response_body } } : null;
}

/**
 * The orders batch intake's body limit, the one route above the API's 64 KiB: far above
 * api.maxBatchSize orders (500 of a few KiB each).
 */
export const ORDERS_BODY_LIMIT_BYTES = 16 * 1024 * 1024;

export function registerOrderRoutes(app: FastifyInstance, context: AppContext): void {
  const intakePort = bullmqIntakePort(context.queues);

  app.post('/api/v1/orders', { bodyLimit: ORDERS_BODY_LIMIT_BYTES }, async (request, reply) => {
    const principal = principalOf(request);
    const idempotencyKey = request.headers['idempotency-key'];
    if (Array.isArray(idempotencyKey) || (idempotencyKey !== undefined && !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey))) {
      throw new ApiError(400, 'INVALID_REQUEST', 'Idempotency-Key must be 1-255 visible ASCII characters');
    }
    const requestHash = createHash('sha256').update(canonicalJson(request.body)).digest('hex');
    const scope = principal.scope;
    // A key already used answers first, whatever this body is (INTERFACES.md: another body is 409).
    const previous = idempotencyKey ? await findIdempotent(context, scope, idempotencyKey) : null;
    if (previous && previous.hash !== requestHash) throw new ApiError(409, 'IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was already used with a different body');
    if (previous && previous.response.status !== 0) return reply.status(previous.response.status).header('idempotent-replayed', 'true').send(previous.response.body);
    // A body refused as a whole never takes a free key.
    const read = readBody(request.body);
    if (!read.ok) throw invalidBody(read.issues);
    const { batch, items: bodyItems } = read;
    if (bodyItems.length > context.config.api.maxBatchSize) {
      throw new ApiError(413, 'BATCH_TOO_LARGE', `a batch holds at most ${context.config.api.maxBatchSize} orders; this one has ${bodyItems.length}`);
    }
    // Each order judged alone: one that is not an order is refused alone and stores nothing; the
    // others of its batch go on.
    const judged = bodyItems.map((item, index): { order: NormalisedOrder } | { refusal: Refusal } => {
      const parsed = parseOrder(item, batch ? ['orders', index] : []);
      return parsed.ok ? { order: parsed.order } : { refusal: { code: 'INVALID_REQUEST', issues: parsed.issues } };
    });
    const orders = judged.flatMap((j) => ('order' in j ? [j.order] : []));
    if (orders.length === 0) {
      // Nothing to take in: refused as a whole, as INTERFACES.md says of one order.
      throw invalidBody(judged.flatMap((j) => ('refusal' in j ? j.refusal.issues : [])), batch ? 'no order of the batch can be taken in' : undefined);
    }
    const outside = judged.flatMap((j, index) => ('order' in j && !canSee(principal, j.order.payer.iban) ? [{ index, account: j.order.payer.iban }] : []));
    if (outside.length) {
      throw new ApiError(403, 'ACCOUNT_NOT_ALLOWED', `payer account ${outside[0].account} is outside this key's accounts`, outside);
    }
    if (idempotencyKey) {
      const found = await awaitIdempotent(context, scope, idempotencyKey, requestHash);
      if (found !== 'reserved') return reply.status(found.replay.status).header('idempotent-replayed', 'true').send(found.replay.body);
    }
    // Renewed while this request runs: a slow batch keeps its key, a dead process loses it in a minute.
    const reservation = idempotencyKey ? keepReservation(context, scope, idempotencyKey, requestHash) : undefined;
    try {
      return await takeOrdersIn();
    } catch (err) {
      // Nothing to replay: the key is free again for this request's retry (or a request waiting on it).
      if (idempotencyKey) {
        await context.orm.em.fork().execute('delete from idempotency_record where scope = ? and idempotency_key = ? and request_hash = ? and response_status = 0', [scope, idempotencyKey, requestHash]).catch(() => undefined);
      }
      throw err;
    } finally {
      reservation?.stop();
    }

    /** The request itself: the orders taken in, the answer (stored for the key when this request reserved it). */
    async function takeOrdersIn() {
      const results = await intakeOrders(
        context.orm.em.fork(),
        principal.source,
        orders.map((order) => ({ order, rawDocument: JSON.stringify(order) })),
        intakePort,
        { actor: principal.actor, now: context.clock.now(), validateInline: context.validator, logger: context.logger },
      );
      if (!batch && results[0].conflict) {
        // LESSONS.md 2: another body under a taken document key is a conflict, never a silent success.
        const { conflict } = results[0];
        throw new ApiError(409, 'DOCUMENT_CONFLICT', conflictMessage(orders[0], conflict, results[0].orderId), { id: results[0].orderId, state: conflict.state, differences: conflict.differences });
      }
      const em = context.orm.em.fork();
      const stored = await em.find(PaymentOrder, { id: { $in: results.map((r) => r.orderId) } });
      const byId = new Map(stored.map((o) => [o.id, o]));
      const taken = results.map((r, index) => {
        const order = byId.get(r.orderId);
        return {
          id: r.orderId,
          externalId: r.externalId,
          state: order?.state ?? r.state,
          created: r.created,
          erpDocumentId: order?.erpDocumentId ?? null,
          errors: order?.errors ?? [],
          warnings: r.lockdownUnchecked ? [...(order?.warnings ?? []), LOCKDOWN_UNCHECKED_WARNING] : order?.warnings ?? [],
          ...(r.conflict ? { conflict: { code: 'DOCUMENT_CONFLICT', message: conflictMessage(orders[index], r.conflict, r.orderId), state: r.conflict.state, differences: r.conflict.differences } } : {}),
        };
      });
      // Every order of the body answered at its own index, the refused ones too.
      let next = 0;
      const items = judged.map((j, index) => ('refusal' in j ? refusedResult(bodyItems[index], index, j.refusal) : taken[next++]));
      const status = items.some((i) => i.created) ? 201 : 200;
      const body = batch ? { results: items } : items[0];
      if (idempotencyKey) {
        // The orders are committed: failing to keep the answer for the key must not turn it into an
        // error (the ERP would think them not taken in). Answered all the same; the key is given back
        // so that a retry takes the orders in again and is told what is stored (`created: false`).
        await context.orm.em
          .fork()
          .execute(
            `update idempotency_record set response_status = ?, response_body = ?::jsonb
              where scope = ? and idempotency_key = ? and request_hash = ? and response_status = 0`,
            [status, JSON.stringify(body), scope, idempotencyKey, requestHash],
          )
          .catch(async (err: unknown) => {
            context.logger.warn({ event: 'api.idempotency_store_failed', orders: results.length, error: err instanceof Error ? err.message : String(err) }, 'orders taken in and answered, but their answer was not kept for the Idempotency-Key; the key is given back');
            await context.orm.em
              .fork()
              .execute('delete from idempotency_record where scope = ? and idempotency_key = ? and request_hash = ? and response_status = 0', [scope, idempotencyKey, requestHash])
              .catch(() => undefined);
          });
      }
      return reply.status(status).send(body);
    }
  });

  const listQuery = z.object({
    state: z.string().optional(),
    erpDocumentId: z.string().max(128).optional(),
    // `limit=` empty is no limit given, as the other parameters are (INTERFACES.md writes the query
    // `?state=&erpDocumentId=&limit=&cursor=`): coerced, "" was 0 and refused.
    limit: z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().min(1).max(500).default(50)),
    cursor: z.string().max(200).optional(),
  });

  app.get('/api/v1/orders', async (request: FastifyRequest) => {
    const principal = principalOf(request);
    const query = listQuery.safeParse(request.query);
    // The message names each parameter and its rule too (invalidBody's reason): an ERP's log often keeps only the message.
    if (!query.success) {
      const issues = query.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      throw new ApiError(400, 'INVALID_REQUEST', `bad query: ${listed(issues)} (limit is 1-500, cursor the nextCursor of the page before)`, issues);
    }
    const { state, erpDocumentId, limit, cursor } = query.data;
    if (state && !isOrderState(state)) {
      const message = `unknown state "${state}": one of ${ORDER_STATES.join(', ')}`;
      throw new ApiError(400, 'INVALID_REQUEST', message, [{ path: 'state', message }]);
    }
    if (principal.accounts !== 'all' && principal.accounts.length === 0) return { orders: [], nextCursor: null };
    let before: { createdAt: Date; id: string } | undefined;
    if (cursor) {
      const decoded = decodePageCursor(cursor);
      if (!decoded) throw new ApiError(400, 'INVALID_REQUEST', 'bad cursor');
      before = { createdAt: decoded.at, id: decoded.id };
    }
    const em = context.orm.em.fork();
    const rows = await orderIdsPage(em, { accounts: principal.accounts, state, erpDocumentId, before, limit: limit + 1 });
    const page = rows.slice(0, limit);
    const orders = await em.find(PaymentOrder, { id: { $in: page } }, { orderBy: { createdAt: 'desc', id: 'desc' } });
    const last = orders[orders.length - 1];
    const nextCursor = rows.length > limit && last ? encodePageCursor({ at: last.createdAt, id: last.id }) : null;
    return { orders: orders.map(orderView), nextCursor };
  });

  app.get('/api/v1/orders/:id', async (request) => {
    const principal = principalOf(request);
    const { id } = request.params as { id: string };
    if (!isUuid(id)) throw new ApiError(404, 'NOT_FOUND', 'no such order');
    const order = await context.orm.em.fork().findOne(PaymentOrder, { id });
    if (!order || !canSee(principal, order.payerIban)) throw new ApiError(404, 'NOT_FOUND', 'no such order');
    return orderView(order);
  });
}
