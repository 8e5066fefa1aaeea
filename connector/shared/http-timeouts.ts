/**
 * How long a client may take to send its request, for a Fastify server. Fastify turns Node's
 * request timeout off (0), so a client that sends a body a byte at a time, or never finishes it,
 * held its socket and buffers for good: enough such connections starve a server of them.
 * - `requestTimeout`: the whole request, body included (the handler's own time does not count);
 * - `headersTimeout`: the request line and headers (at most the whole request's bound);
 * - `connectionsCheckingInterval`: how often Node looks; its default (30 s) would let a bound of
 *   a few seconds run to half a minute more.
 * A client past the bound gets 408 and its connection is closed.
 */
export function requestTimeouts(requestTimeoutMs: number): { requestTimeout: number; http: { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } } {
  const headersTimeout = Math.min(requestTimeoutMs, 60_000);
  const connectionsCheckingInterval = Math.max(50, Math.min(5_000, Math.floor(requestTimeoutMs / 4)));
  return { requestTimeout: requestTimeoutMs, http: { requestTimeout: requestTimeoutMs, headersTimeout, connectionsCheckingInterval } };
}
