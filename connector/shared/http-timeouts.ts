import type { Socket } from 'node:net';

/**
 * How long a client may take to send its request, for a Fastify server. Fastify turns Node's
 * request timeout off (0), so a client that sends a body a byte at a time, or never finishes it,
 * held its socket and buffers for good: enough such connections starve a server of them.
 * - `requestTimeout`: the whole request, body included (the handler's own time does not count);
 * - `headersTimeout`: the request line and headers (at most the whole request's bound);
 * - `connectionsCheckingInterval`: how often Node looks; its default (30 s) would let a bound of
 *   a few seconds run to half a minute more.
 * A client past the bound gets 408 `REQUEST_TIMEOUT` and its connection is closed; that answer,
 * like any other a client's broken request gets before a route sees it, is in the error shape of
 * every other answer (`clientErrorHandler`).
 */
export function requestTimeouts(requestTimeoutMs: number) {
  const headersTimeout = Math.min(requestTimeoutMs, 60_000);
  const connectionsCheckingInterval = Math.max(50, Math.min(5_000, Math.floor(requestTimeoutMs / 4)));
  return {
    requestTimeout: requestTimeoutMs,
    http: { requestTimeout: requestTimeoutMs, headersTimeout, connectionsCheckingInterval },
    clientErrorHandler: (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, requestTimeoutMs),
  };
}

/**
 * The answer to a request Node refused before any route saw it (timed out, headers too large, not
 * HTTP), as `{code,message,details}` (INTERFACES.md), not Fastify's own `{error,statusCode}`.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, requestTimeoutMs: number): void {
  // A connection reset has nothing left to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, reason, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'Request Timeout', 'REQUEST_TIMEOUT', `the request was not sent whole within ${Math.round(requestTimeoutMs / 1000)} s; send it again`]
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE', 'the request headers are larger than this server takes']
        : [400, 'Bad Request', 'INVALID_REQUEST', 'the request is not valid HTTP'];
  const body = JSON.stringify({ code, message, details: null });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${reason}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}
