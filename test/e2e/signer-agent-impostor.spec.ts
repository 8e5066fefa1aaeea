import { createServer, type Server } from 'node:http';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';
import { P12 } from '../fixtures/nca/fixtures';
import { freePort } from '../support/test-env';
import { buildOnce, startAgent, type AgentProcess } from './signer-agent.harness';

/**
 * On loopback any local account may listen on the agent's port while the agent is down (PM2
 * restarting it, a crash). The connector's callers must not hand such a process the agent's token
 * (which lets its holder have every unlocked key sign) or a user's keystore password: the agent
 * proves it holds the token (a fresh challenge answered on GET /health) before anything is sent.
 */
jest.setTimeout(120_000);

beforeAll(() => buildOnce(), 180_000);

describe('signer agent client: another process on the agent\'s address', () => {
  let agent: AgentProcess | undefined;
  let impostor: Server | undefined;
  afterAll(async () => {
    await agent?.stop();
    await new Promise((r) => (impostor ? impostor.close(r) : r(undefined)));
  });

  it('gets neither the token nor the password; the real agent on the same address is used as before', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    agent = await startAgent({ config: { testMode: true, signer: { workers: 1 } }, args: ['--url', url] });
    const dir = agent.dir;
    const client = new SignerAgentClient({ url, tokenFile: '.connector/signer.token', cwd: dir, timeoutMs: 30_000 });
    await client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
    expect(await agent.stop()).toBe(0);

    // Another account's process takes the port and answers like the agent would.
    const seen: string[] = [];
    let closing = false;
    impostor = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        seen.push(`${req.method} ${req.url} auth=${req.headers.authorization ?? '-'} body=${body}`);
        if (closing) res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"SHUTTING_DOWN"}');
        else res.writeHead(200, { 'content-type': 'application/json' }).end(req.url === '/health' ? '{"status":"ok"}' : '{}');
      });
    });
    await new Promise<void>((resolve, reject) => impostor!.once('error', reject).listen(port, '127.0.0.1', resolve));

    await expect(client.unlock('alice', P12.rsaSign2021.password)).rejects.toMatchObject({ code: 'SIGNER_NOT_AUTHENTIC' });
    await expect(client.lockdown('test')).rejects.toMatchObject({ code: 'SIGNER_NOT_AUTHENTIC' });
    // A 503 (an agent closing, during a PM2 restart) is a wait, not an impostor: SHUTTING_DOWN, and
    // still nothing but the challenge is sent.
    closing = true;
    await expect(client.unlock('alice', P12.rsaSign2021.password)).rejects.toMatchObject({ code: 'SHUTTING_DOWN' });
    closing = false;
    expect(seen.length).toBeGreaterThan(0);
    for (const request of seen) expect(request).toMatch(/^GET \/health auth=- body=$/);
    await new Promise((r) => impostor!.close(r));
    impostor = undefined;

    agent = await startAgent({ dir, args: ['--url', url] });
    await expect(client.unlock('alice', P12.rsaSign2021.password)).resolves.toMatchObject({ unlocked: true });
    await expect(client.lockdown('test')).resolves.toMatchObject({ wipedUsers: ['alice'] });
  });
});
