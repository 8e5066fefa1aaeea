import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebhookClient } from './webhook.client';

/** A status and a body that never ends, as fast as the client reads. */
function flood(res: ServerResponse, status = 200): void {
  res.writeHead(status, { 'Content-Type': 'text/plain' });
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
        if (req.url === '/flood-500') return flood(res, 500);
        if (req.url === '/echo') {
          // The ERP took the event and answers with a page far larger than any acknowledgement.
          res.writeHead(200, { 'Content-Type': 'text/html' });
          return res.end(Buffer.alloc(512 * 1024, 0x41));
        }
        // The status line, then a header a byte every 50 ms for good: the socket is never idle, and
        // the answer's head never ends.
        res.socket?.write('HTTP/1.1 200 OK\r\nX-Slow: ');
        timers.push(setInterval(() => res.socket?.write('a'), 50));
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

  it('gives up on an answer whose head trickles in for longer than the timeout, whole', async () => {
    const client = new WebhookClient(url, 'secret', 300);
    const started = Date.now();
    const result = await client.post('{"event":"order.status"}', new Date());
    expect(result).toEqual({ ok: false, error: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 10_000);

  it('takes the status of an answer without end and reads no more of it: 2xx delivered, 5xx not', async () => {
    const ok = await new WebhookClient(url.replace(/\/hooks$/, '/flood'), 'secret', 5_000).post('{"event":"order.status"}', new Date());
    expect(ok).toEqual({ ok: true, status: 200 });
    const refused = await new WebhookClient(url.replace(/\/hooks$/, '/flood-500'), 'secret', 5_000).post('{"event":"order.status"}', new Date());
    expect(refused).toEqual({ ok: false, status: 500, error: 'HTTP 500' });
    // Dropped at once: what the server pushed before it saw the socket close, never the endless rest.
    expect(flooded).toBeLessThan(64 * 1024 * 1024);
  }, 10_000);

  it('an ERP that answers 200 with a large page has the event delivered', async () => {
    const result = await new WebhookClient(url.replace(/\/hooks$/, '/echo'), 'secret', 5_000).post('{"event":"order.status"}', new Date());
    expect(result).toEqual({ ok: true, status: 200 });
  }, 10_000);
});
