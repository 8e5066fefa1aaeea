import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Webhook signature (INTERFACES.md "1C folder exchange and webhooks"): header
 * `X-Connector-Timestamp` (unix seconds) and `X-Connector-Signature: sha256=<hex HMAC-SHA256 of
 * "<timestamp>.<body>">`. The timestamp is inside the MAC so a captured request cannot be replayed
 * later with a fresh timestamp.
 */
export const TIMESTAMP_HEADER = 'X-Connector-Timestamp';
export const SIGNATURE_HEADER = 'X-Connector-Signature';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}

/**
 * For ERPs (and tests): true when the signature matches and the timestamp is within
 * `toleranceSeconds` of `now` (default 5 minutes). Compared in constant time.
 */
export function verifyWebhook(secret: string, timestamp: string, body: string, signature: string, now: Date, toleranceSeconds = 300): boolean {
  if (!/^\d{1,12}$/.test(timestamp)) return false;
  if (Math.abs(Math.floor(now.getTime() / 1000) - Number(timestamp)) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, Number(timestamp), body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
