import { connect } from 'node:net';

/**
 * A client that sends a request's headers and the first byte of its body, then nothing more (a
 * stalled or hostile sender). Resolves once the server closes the connection, with what it
 * answered; `headers` go with the request (a caller's credentials); `also` runs while the request hangs (another client's call must still be served).
 */
export async function stalledRequest(port: number, path: string, options: { headers?: Record<string, string>; also?: () => Promise<void> } = {}): Promise<{ answer: string }> {
  const socket = connect(port, '127.0.0.1');
  let answer = '';
  socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const extra = Object.entries(options.headers ?? {}).map(([name, value]) => `${name}: ${value}\r\n`).join('');
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n${extra}\r\n{`);
  await options.also?.();
  await closed;
  return { answer };
}
