import type { Readable } from 'node:stream';
import axios, { type AxiosInstance } from 'axios';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, signWebhook } from './webhook.signature';

/** The one HTTP primitive for ERP webhooks: a signed JSON POST, acknowledged by any 2xx. */
export interface WebhookDelivery {
  ok: boolean;
  status?: number;
  error?: string;
}

export class WebhookClient {
  private readonly http: AxiosInstance;

  constructor(
    private readonly url: string,
    private readonly secret: string,
    private readonly timeoutMs: number,
  ) {
    // No redirects (a signed body must not be replayed elsewhere), every status handled here.
    this.http = axios.create({ timeout: timeoutMs, maxRedirects: 0, validateStatus: () => true });
  }

  async post(body: string, now: Date): Promise<WebhookDelivery> {
    const timestamp = Math.floor(now.getTime() / 1000);
    try {
      const res = await this.http.post<Readable>(this.url, body, {
        headers: { 'Content-Type': 'application/json', [TIMESTAMP_HEADER]: String(timestamp), [SIGNATURE_HEADER]: signWebhook(this.secret, timestamp, body) },
        transformRequest: [(data: string) => data],
        // Only the status counts: the answer's body is never read, but dropped as soon as the status
        // line is in. Read, a body without end (a misrouted download) filled the dispatcher's memory;
        // bounded, an ERP that answers 200 with a page or the document echoed back was counted as
        // not delivered, and every later event waited behind that one for good.
        responseType: 'stream',
        // axios's `timeout` only bounds a silent socket: an answer whose status line trickles in
        // would hold the dispatcher (and, its lock lapsed, let a second one send the same events).
        signal: AbortSignal.timeout(this.timeoutMs),
      });
      res.data.on('error', () => undefined);
      res.data.destroy();
      return res.status >= 200 && res.status < 300 ? { ok: true, status: res.status } : { ok: false, status: res.status, error: `HTTP ${res.status}` };
    } catch (err) {
      // The URL may carry a token: never echo it; the error code says enough.
      const code = axios.isCancel(err) ? 'ETIMEDOUT' : ((err as { code?: string }).code ?? 'ERROR');
      return { ok: false, error: code };
    }
  }
}
