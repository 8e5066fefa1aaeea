import { Writable } from 'node:stream';
import { createLogger } from '../../connector/logging/logger';

describe('logging redacts secrets at the logger', () => {
  function capture() {
    const lines: string[] = [];
    const stream = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    return { lines, logger: createLogger({ level: 'info' }, stream) };
  }

  it('never writes a known secret, wherever a caller puts it', () => {
    const canary = 'CANARY-s3cr3t-7f1e2d';
    const { lines, logger } = capture();
    logger.info({ event: 'x', password: canary, clientSecret: canary, token: canary });
    logger.info({ event: 'login', body: { login: 'a', password: canary, newPassword: canary, totp: canary } });
    logger.info({ event: 'bank', req: { headers: { authorization: `Bearer ${canary}`, cookie: `sid=${canary}` } } });
    logger.child({ orderId: 'o-1' }).warn({ event: 'y', credentials: { client_secret: canary, access_token: canary } });
    const out = lines.join('');
    expect(lines).toHaveLength(4);
    expect(out).not.toContain(canary);
    expect(out).toContain('[REDACTED]');
    expect(out).toContain('"orderId":"o-1"');
  });
});
