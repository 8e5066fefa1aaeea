import { execFile, execFileSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { P12 } from '../fixtures/nca/fixtures';
import { freePort } from '../support/test-env';
import { buildOnce, ROOT, startAgent, type AgentProcess } from './signer-agent.harness';

/**
 * `signer.url: http://localhost:8901` is allowed, and the agent listens on 127.0.0.1 for it
 * (localhost = 127.0.0.1). On Debian and Ubuntu /etc/hosts also names ::1 localhost, and Node 20
 * connects to ::1 first: a port nobody holds there is any local account's to take, and whoever
 * listens on [::1]:8901 then receives the agent's token and the users' keystore passwords from the
 * API's unlock. The client must go where the agent listens.
 *
 * Such a host is made for the client alone: it runs in a mount namespace of its own where a
 * private /etc/hosts lists ::1 first (the machine's own file is not touched). Needs unshare and
 * mount (root); skipped, with a line saying so, where they are not allowed.
 */
jest.setTimeout(120_000);

function namespacesAllowed(): boolean {
  try {
    execFileSync('unshare', ['--mount', '--fork', 'sh', '-c', 'mount --bind /etc/hosts /etc/hosts'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

const allowed = namespacesAllowed();
if (!allowed) process.stderr.write('signer-agent-localhost.spec: unshare/mount not allowed here; the ::1 localhost case is skipped\n');
const itOnSuchHost = allowed ? it : it.skip;

beforeAll(() => buildOnce(), 180_000);

describe('signer agent client on a host where localhost is ::1 first', () => {
  let agent: AgentProcess | undefined;
  let squatter: Server | undefined;
  afterAll(async () => {
    await agent?.stop();
    await new Promise((r) => (squatter ? squatter.close(r) : r(undefined)));
  });

  itOnSuchHost('unlocks through the agent on 127.0.0.1; a listener on [::1] of the same port gets neither the token nor the password', async () => {
    const port = await freePort();
    agent = await startAgent({ config: { testMode: true, signer: { workers: 1 } }, args: ['--url', `http://localhost:${port}`] });
    expect(agent.url).toBe(`http://127.0.0.1:${port}`);
    await agent.client.enroll('alice', { keystorePath: P12.rsaSign2021.path });

    // Another local account's process, on the ::1 side of the same port.
    const caught: string[] = [];
    squatter = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => {
        caught.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''} ${body}`);
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"code":"SIGNER_UNAVAILABLE","message":"not the agent"}');
      });
    });
    await new Promise<void>((resolve, reject) => squatter!.once('error', reject).listen(port, '::1', resolve));

    const hosts = join(agent.dir, 'hosts');
    writeFileSync(hosts, '::1 localhost\n127.0.0.1 localhost\n');
    const script = join(agent.dir, 'unlock.js');
    writeFileSync(
      script,
      `const { SignerAgentClient } = require(${JSON.stringify(join(ROOT, 'dist', 'signer-agent', 'agent', 'signer-agent.client.js'))});
       require('node:dns').lookup('localhost', (err, address) => {
         const client = new SignerAgentClient({ url: 'http://localhost:${port}', tokenFile: '.connector/signer.token', cwd: ${JSON.stringify(agent!.dir)} });
         client.unlock('alice', ${JSON.stringify(P12.rsaSign2021.password)}).then(
           (status) => console.log(JSON.stringify({ resolved: address, unlocked: status.unlocked })),
           (e) => console.log(JSON.stringify({ resolved: address, code: e.code })),
         );
       });`,
    );
    const out = await new Promise<string>((resolve, reject) =>
      execFile('unshare', ['--mount', '--fork', 'sh', '-c', `mount --bind "$0" /etc/hosts && exec "$1" "$2"`, hosts, process.execPath, script], { cwd: agent!.dir, timeout: 60_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout),
      ),
    );
    // The host is as described: localhost resolves to ::1 first.
    expect(JSON.parse(out)).toEqual({ resolved: '::1', unlocked: true });
    expect(caught).toEqual([]);
  });
});
