import { Writable } from 'node:stream';
import { createLogger } from '../../connector/logging/logger';

/**
 * The agent never logs request bodies; pino's redaction is the backstop for the shapes that carry
 * a keystore password (an unlock body logged whole, or nested one level down).
 */
describe('agent logging redaction', () => {
  it('removes the keystore password from every shape an unlock body could be logged in', () => {
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, done) {
        out += chunk.toString();
        done();
      },
    });
    const logger = createLogger({ level: 'trace', name: 'signer-agent' }, sink);
    const canary = 'canary-3f9a1c0e77';
    logger.info({ password: canary }, 'unlock');
    logger.info({ body: { password: canary } }, 'unlock');
    logger.info({ headers: { authorization: `Bearer ${canary}` } }, 'request');
    expect(out).not.toContain(canary);
    expect(out.match(/\[REDACTED\]/g)?.length).toBe(3);
  });
});
