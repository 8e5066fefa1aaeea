import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookClient } from './webhook.client';

/** 200 and a body that never ends, as fast as the client reads. */
function flood(res: ServerResponse): void {
  res.writeHead(200, { 'Content-Type': 'text/plain' });
  const chunk = Buffer.alloc(16 * 1024, 0x2e);
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) flooded += chunk.length;
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}
let flooded = 0;

/** The webhook client against a local ERP endpoint that misbehaves. */
describe('WebhookClient', () => {
  let server: Server;
  let url: string;
  const timers: NodeJS.Timeout[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.url === '/flood') return flood(res);
        // Headers at once, then a byte every 50 ms for good: the socket is never idle.
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        timers.push(setInterval(() => res.write('.'), 50));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  });
  afterAll(async () => {
    for (const t of timers) clearInterval(t);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it('gives up on an answer that trickles in for longer than the timeout, whole', async () => {
    const client = new WebhookClient(url, 'secret', 300);
    const started = Date.now();
    const result = await client.post('{"event":"order.status"}', new Date());
    expect(result).toEqual({ ok: false, error: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  it('gives up on an answer larger than an acknowledgement could be, saying the call and the limit', async () => {
    const client = new WebhookClient(url.replace(/\/hooks$/, '/flood'), 'secret', 5_000);
    const result = await client.post('{"event":"order.status"}', new Date());
    expect(result).toEqual({ ok: false, error: 'the webhook POST\'s answer exceeded 64 KiB, the limit for it, and was cut off unread' });
    expect(flooded).toBeLessThan(8 * 1024 * 1024);
  }, 10_000);
});
