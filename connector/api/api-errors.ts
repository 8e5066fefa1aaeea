import type { FastifyReply } from 'fastify';

/** Every API error has this body (INTERFACES.md): {"code":"UPPER_SNAKE","message":"...","details":...}. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  for (const [name, value] of Object.entries(error.headers)) reply.header(name, value);
  // `details` always there (null when an error has none): a client may read it without asking first.
  return reply.status(error.statusCode).send({ code: error.code, message: error.message, details: error.details ?? null });
}
