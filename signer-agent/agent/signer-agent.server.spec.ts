import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { stalledRequest } from '../../test/support/stalled-request';
import { AgentMetrics } from './agent.metrics';
import { buildSignerAgentServer } from './signer-agent.server';
import type { SignerAgentService } from './signer-agent.service';

/**
 * The agent's HTTP layer against a caller that starts a request and never finishes it: the agent
 * closes that connection (408) within its bound and goes on serving others. The request never
 * reaches the service, so none is needed.
 */
const TOKEN = 't'.repeat(43);

describe('signer agent server: a stalled caller', () => {
  it('is cut off after the request bound while another caller is served', async () => {
    const app = buildSignerAgentServer({
      service: {} as SignerAgentService,
      metrics: new AgentMetrics(() => 0),
      logger: pino({ level: 'silent' }),
      token: TOKEN,
      testMode: true,
      maxDocumentBytes: 1 << 20,
      describe: () => ({}) as never,
      requestTimeoutMs: 300,
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;
      // A caller with the token whose body (a keystore password) never comes whole.
      const { answer } = await stalledRequest(port, '/v1/keys/u1/unlock', {
        headers: { authorization: `Bearer ${TOKEN}` },
        also: async () => expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200),
      });
      // Without a bound the connection stays open and the test runs into its own timeout.
      expect(answer).toMatch(/^HTTP\/1\.1 408 /);
      // In the error shape of every other answer (INTERFACES.md), not Fastify's own.
      expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({ code: 'REQUEST_TIMEOUT', message: expect.stringMatching(/not sent whole/), details: null });
    } finally {
      await app.close();
    }
  }, 20_000);
});
