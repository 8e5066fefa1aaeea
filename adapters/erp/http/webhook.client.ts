import axios, { type AxiosInstance } from 'axios';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './webhook.signature';

/** The one HTTP primitive for ERP webhooks: a signed JSON POST, acknowledged by any 2xx. */
export interface WebhookDelivery {
  ok: boolean;
  status?: number;
  error?: string;
}

/**
 * The most of an ERP's answer that is read: only its status counts, and an acknowledgement is a few
 * bytes (or an error page of a few KiB). Unbounded, an endpoint answering without end filled the
 * dispatcher's memory, and with it the worker's.
 */
export const MAX_WEBHOOK_ANSWER_BYTES = 64 * 1024;

export class WebhookClient {
  private readonly http: AxiosInstance;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
  ) {
    // No redirects (a signed body must not be replayed elsewhere), every status handled here.
    this.http = axios.create({ timeout: timeoutMs, maxRedirects: 0, validateStatus: () => true, maxContentLength: MAX_WEBHOOK_ANSWER_BYTES });
  }

  async post(body: string, now: Date): Promise<WebhookDelivery> {
    const timestamp = Math.floor(now.getTime() / 1000);
    try {
      const res = await this.http.post(this.url, body, {
        headers: { 'Content-Type': 'application/json', [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signWebhook(this.secret, timestamp, body) },
        transformRequest: [(data: string) => data],
        // axios's `timeout` only bounds a silent socket: an answer that trickles in a byte at a time
        // would hold the dispatcher (and, its lock lapsed, let a second one send the same events).
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      return res.status >= 200 && res.status < 300 ? { ok: true, status: res.status } : { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      // The URL may carry a token: never echo it; the error code says enough.
      const e = err as { code?: string; response?: unknown; message?: string };
      // axios has no code of its own for an answer cut off at maxContentLength: ERR_BAD_RESPONSE,
      // no response, its own words. Not delivered: the event is sent again, as after any failure.
      if (e.code === 'ERR_BAD_RESPONSE' && e.response === undefined && /maxContentLength/.test(e.message ?? '')) {
        return { ok: false, error: `the webhook POST's answer exceeded ${MAX_WEBHOOK_ANSWER_BYTES / 1024} KiB, the limit for it, and was cut off unread` };
      }
      const code = axios.isCancel(err) ? 'ETIMEDOUT' : (e.code ?? 'ERROR');
      return { ok: false, error: code };
    }
  }
}
