import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { verifyCms } from '../../signer-agent/cms/cms.verifier';
import { SignerAgentClient, SignerAgentError } from '../../signer-agent/agent/signer-agent.client';
import { CA, CRL, P12, testTrust } from '../fixtures/nca/fixtures';
import { buildOnce, expectEventually, journalOf, runAgent, startAgent, type AgentProcess } from './signer-agent.harness';

/**
 * The signer agent as operators run it: `node dist/connector/cli/main.js signer-agent` in a child
 * process with its own working directory, talked to over HTTP with the typed client.
 */
jest.setTimeout(120_000);

const RSA_MOMENT = '2021-06-01T00:00:00Z'; // inside the RSA 2021 test key's window (it has expired since)
const GOST_MOMENT = '2022-09-01T00:00:00Z';
const DOC = Buffer.from('<payment-order number="17" amount="7745.70">Оплата по счету 5</payment-order>\n', 'utf8');

async function refusal(promise: Promise<unknown>): Promise<SignerAgentError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SignerAgentError) return err;
    throw err;
  }
  throw new Error('expected the agent to refuse');
}

/** A raw HTTP request (to send what the typed client never would: bad tokens, hosts, bodies). */
function raw(url: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: string; ms: number }> {
  const u = new URL(url);
  const started = process.hrtime.bigint();
  return new Promise((resolveRes, reject) => {
    const req = httpRequest({ host: u.hostname.replace(/^\[|\]$/g, ''), port: u.port, method, path, headers }, (res) => {
      let data = '';
      res.on('data', (d: Buffer) => (data += d.toString('utf8')));
      res.on('end', () => resolveRes({ status: res.statusCode ?? 0, body: data, ms: Number(process.hrtime.bigint() - started) / 1e6 }));
    });
    req.on('error', reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { stdio: 'pipe' }).toString('utf8');
}

function tmpFile(dir: string, name: string, data: Buffer): string {
  const path = join(dir, name);
  writeFileSync(path, data);
  return path;
}

const figures: string[] = [];

beforeAll(() => buildOnce(), 180_000);
afterAll(() => {
  if (figures.length) process.stdout.write(`\nsigner agent figures:\n${figures.map((f) => `  ${f}`).join('\n')}\n`);
});

describe('signer agent process (test mode)', () => {
  let agent: AgentProcess;
  const canaries: string[] = [];
  const RSA_PASSWORD = P12.rsaSign2021.password;

  beforeAll(async () => {
    agent = await startAgent({ config: { testMode: true, signer: { workers: 2, crl: [CRL.rsa] } } });
  });
  afterAll(async () => {
    await agent?.stop();
  });

  it('creates the token file 0600 and refuses every route but /health without the right bearer token (401)', async () => {
    expect(statSync(join(agent.dir, '.connector', 'signer.token')).mode & 0o777).toBe(0o600);
    expect((await raw(agent.url, 'GET', '/health', {})).status).toBe(200);
    for (const [method, path] of [
      ['GET', '/v1/status'],
      ['GET', '/metrics'],
      ['POST', '/v1/lockdown'],
      ['POST', '/v1/keys/alice/unlock'],
    ]) {
      const none = await raw(agent.url, method, path, {});
      expect([method, path, none.status, JSON.parse(none.body).code]).toEqual([method, path, 401, 'UNAUTHENTICATED']);
      const wrong = await raw(agent.url, method, path, { authorization: `Bearer ${agent.token.slice(0, -1)}x` });
      expect(wrong.status).toBe(401);
    }
    expect((await raw(agent.url, 'GET', '/v1/status', { authorization: `Bearer ${agent.token}` })).status).toBe(200);
  });

  it('refuses a non-loopback Host header (DNS rebinding) and browser requests (Origin)', async () => {
    const auth = { authorization: `Bearer ${agent.token}` };
    const rebound = await raw(agent.url, 'GET', '/v1/status', { ...auth, host: 'evil.example:8901' });
    expect([rebound.status, JSON.parse(rebound.body).code]).toEqual([421, 'HOST_REFUSED']);
    const browser = await raw(agent.url, 'GET', '/v1/status', { ...auth, origin: 'http://evil.example' });
    expect([browser.status, JSON.parse(browser.body).code]).toEqual([403, 'ORIGIN_REFUSED']);
  });

  it('enrolls, unlocks and signs an RSA document: the detached CMS verifies with openssl and with our verifier, and the journal records it', async () => {
    const enrolled = await agent.client.enroll('alice', { keystorePath: P12.rsaSign2021.path, expectedIin: '123456789011' });
    expect(enrolled).toMatchObject({ userId: 'alice', unlocked: false, expectedIin: '123456789011', wrongPasswordCount: 0 });
    const unlocked = await agent.client.unlock('alice', RSA_PASSWORD);
    expect(unlocked.session).toMatchObject({ algorithm: 'RSA-SHA256', iin: '123456789011', bin: null, serial: '4279390A141F5353A62947B61ED65E81741467D1' });

    const signed = await agent.client.sign('alice', { orderId: 'order-1', document: DOC, signingTime: RSA_MOMENT });
    expect(signed).toMatchObject({ orderId: 'order-1', userId: 'alice', algorithm: 'RSA-SHA256', signingTime: '2021-06-01T00:00:00.000Z', iin: '123456789011' });

    const doc = tmpFile(agent.dir, 'doc.xml', DOC);
    const sig = tmpFile(agent.dir, 'doc.p7s', signed.cmsDer);
    const attime = String(Date.parse(RSA_MOMENT) / 1000 + 60);
    expect(() => openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', doc, '-CAfile', CA.rsa, '-partial_chain', '-attime', attime, '-out', '/dev/null'])).not.toThrow();
    // A changed byte must not verify (the check above is not vacuous).
    const tampered = tmpFile(agent.dir, 'doc2.xml', Buffer.concat([DOC, Buffer.from(' ')]));
    expect(() => openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', tampered, '-CAfile', CA.rsa, '-partial_chain', '-attime', attime, '-out', '/dev/null'])).toThrow();

    const verdict = verifyCms(signed.cmsDer, { content: DOC, trust: testTrust(), at: new Date('2021-06-02T00:00:00Z') });
    expect(verdict.valid).toBe(true);
    expect(verdict.signers.map((s) => [s.serial, s.verdict, s.signingTime])).toEqual([[signed.serial, 'valid', '2021-06-01T00:00:00.000Z']]);

    const record = journalOf(agent.dir).find((r) => r.event === 'signed' && r.orderId === 'order-1');
    expect(record).toMatchObject({
      userId: 'alice',
      serial: signed.serial,
      algorithm: 'RSA-SHA256',
      signingTime: '2021-06-01T00:00:00.000Z',
      documentSha256: signed.documentSha256,
      documentBytes: DOC.length,
      cosign: false,
      // The agent has the RSA CA's CRL: the journal says which CRL found the certificate not revoked.
      revocation: 'good',
      revocationSource: expect.stringMatching(/nca_rsa_test\.crl: CRL of .*RSA TEST/),
    });
    expect(signed.documentSha256).toBe(createHash('sha256').update(DOC).digest('hex'));
  });

  it('adds a second signer to an existing CMS without disturbing the first (openssl verifies both)', async () => {
    await agent.client.enroll('carol', { keystorePath: P12.rsaSign2021.path });
    await agent.client.unlock('carol', RSA_PASSWORD);
    const first = await agent.client.sign('alice', { orderId: 'order-2', document: DOC, signingTime: RSA_MOMENT });
    const second = await agent.client.sign('carol', { orderId: 'order-2', document: DOC, cosign: first.cmsDer, signingTime: '2021-06-02T00:00:00Z' });
    const verdict = verifyCms(second.cmsDer, { content: DOC, trust: testTrust(), at: new Date('2021-06-03T00:00:00Z') });
    expect(verdict.signers.map((s) => [s.verdict, s.signingTime])).toEqual([
      ['valid', '2021-06-01T00:00:00.000Z'],
      ['valid', '2021-06-02T00:00:00.000Z'],
    ]);
    const doc = tmpFile(agent.dir, 'doc3.xml', DOC);
    const sig = tmpFile(agent.dir, 'doc3.p7s', second.cmsDer);
    const attime = String(Date.parse('2021-06-03T00:00:00Z') / 1000);
    expect(() => openssl(['cms', '-verify', '-binary', '-inform', 'DER', '-in', sig, '-content', doc, '-CAfile', CA.rsa, '-partial_chain', '-attime', attime, '-out', '/dev/null'])).not.toThrow();
    expect(journalOf(agent.dir).find((r) => r.event === 'signed' && r.userId === 'carol')).toMatchObject({ orderId: 'order-2', cosign: true });
    // A CMS over other bytes cannot be co-signed.
    const other = await refusal(agent.client.sign('carol', { orderId: 'order-3', document: Buffer.from('other'), cosign: first.cmsDer, signingTime: RSA_MOMENT }));
    expect(other.code).toBe('DIGEST_MISMATCH');
  });

  it('signs with a GOST 34.10-2015 key and cosigns after RSA; our verifier accepts both signers', async () => {
    await agent.client.enroll('gulnara', { keystorePath: P12.gostIndividual.path, expectedIin: '123456789012' });
    await agent.client.unlock('gulnara', P12.gostIndividual.password);
    const gost = await agent.client.sign('gulnara', { orderId: 'order-g', document: DOC, signingTime: GOST_MOMENT });
    expect(gost.algorithm).toBe('GOST34.10-2015-512');
    const alone = verifyCms(gost.cmsDer, { content: DOC, trust: testTrust(), at: new Date('2022-09-02T00:00:00Z') });
    expect(alone.signers.map((s) => [s.algorithm, s.verdict])).toEqual([['GOST34.10-2015-512', 'valid']]);
    const rsaFirst = await agent.client.sign('alice', { orderId: 'order-g2', document: DOC, signingTime: RSA_MOMENT });
    const both = await agent.client.sign('gulnara', { orderId: 'order-g2', document: DOC, cosign: rsaFirst.cmsDer, signingTime: GOST_MOMENT });
    const verdict = verifyCms(both.cmsDer, { content: DOC, trust: testTrust(), at: new Date('2022-09-02T00:00:00Z') });
    // Judged in 2022 the RSA certificate (expired 2022-01-18) fails; the crypto of both still holds and the GOST signer is valid.
    expect(verdict.signers.map((s) => [s.algorithm, s.verdict, s.code])).toEqual([
      ['RSA-SHA256', 'invalid', 'CERT_EXPIRED'],
      ['GOST34.10-2015-512', 'valid', null],
    ]);
  });

  it('counts wrong passwords per user, reports them in the response and the status, and resets on success', async () => {
    await agent.client.enroll('dave', { keystorePath: P12.rsaSign2021.path });
    for (const expected of [1, 2, 3]) {
      const canary = `canary-${randomBytes(9).toString('hex')}`;
      canaries.push(canary);
      const err = await refusal(agent.client.unlock('dave', canary));
      expect([err.status, err.code, err.details]).toEqual([403, 'WRONG_PASSWORD', { wrongPasswordCount: expected, wrongPasswordTotal: expected }]);
      expect(err.message).not.toContain(canary);
    }
    expect(await agent.client.keyStatus('dave')).toMatchObject({ wrongPasswordCount: 3, wrongPasswordTotal: 3, unlocked: false });
    expect((await agent.client.keyStatus('alice')).wrongPasswordCount).toBe(0);
    expect(await agent.client.metrics()).toMatch(/signer_failures_total\{code="WRONG_PASSWORD"\} 3\n/);
    const ok = await agent.client.unlock('dave', RSA_PASSWORD);
    expect(ok).toMatchObject({ unlocked: true, wrongPasswordCount: 0, wrongPasswordTotal: 3 });
    // The counter survives in the registry file (a restart does not reset a brute-force count).
    const registry = JSON.parse(readFileSync(join(agent.dir, '.connector', 'signer-keys.json'), 'utf8'));
    expect(registry.users.dave).toMatchObject({ wrongPasswordCount: 0, wrongPasswordTotal: 3 });
  });

  it('never echoes a password from a malformed or unexpected unlock body', async () => {
    const canary = `canary-${randomBytes(9).toString('hex')}`;
    canaries.push(canary);
    const headers = { authorization: `Bearer ${agent.token}`, 'content-type': 'application/json' };
    const broken = await raw(agent.url, 'POST', '/v1/keys/dave/unlock', headers, `{"password":"${canary}"`);
    expect([broken.status, JSON.parse(broken.body).code]).toEqual([400, 'INVALID_REQUEST']);
    expect(broken.body).not.toContain(canary);
    const extra = await raw(agent.url, 'POST', '/v1/keys/dave/unlock', headers, JSON.stringify({ password: canary, remember: true }));
    expect([extra.status, JSON.parse(extra.body).code]).toEqual([400, 'INVALID_REQUEST']);
    expect(extra.body).not.toContain(canary);
  });

  it('judges the certificate at the signing moment and refuses with its code', async () => {
    const expired = await refusal(agent.client.sign('alice', { orderId: 'order-x', document: DOC, signingTime: '2023-01-01T00:00:00Z' }));
    expect([expired.status, expired.code]).toEqual([422, 'CERT_EXPIRED']);
    const early = await refusal(agent.client.sign('alice', { orderId: 'order-x', document: DOC, signingTime: '2020-01-01T00:00:00Z' }));
    expect(early.code).toBe('CERT_NOT_YET_VALID');
    const otherIin = await refusal(agent.client.sign('alice', { orderId: 'order-x', document: DOC, signingTime: RSA_MOMENT, expectedIin: '999999999999' }));
    expect(otherIin.code).toBe('IDENTITY_MISMATCH');

    await agent.client.enroll('erlan', { keystorePath: P12.rsaAuthRevoked.path });
    await agent.client.unlock('erlan', P12.rsaAuthRevoked.password);
    const auth = await refusal(agent.client.sign('erlan', { orderId: 'order-x', document: DOC, signingTime: '2022-01-19T00:00:00Z' }));
    expect(auth.code).toBe('NOT_A_SIGNING_KEY');

    await agent.client.enroll('farid', { keystorePath: P12.rsaSignRevoked.path });
    await agent.client.unlock('farid', P12.rsaSignRevoked.password);
    const revoked = await refusal(agent.client.sign('farid', { orderId: 'order-x', document: DOC, signingTime: '2022-06-01T00:00:00Z' }));
    expect(revoked.code).toBe('CERT_REVOKED');

    await agent.client.enroll('gena', { keystorePath: P12.gost2004.path });
    const legacy = await refusal(agent.client.unlock('gena', P12.gost2004.password));
    expect([legacy.code, legacy.message]).toEqual(['UNSUPPORTED_ALGORITHM', expect.stringContaining('34.310-2004')]);

    await agent.client.enroll('hana', { keystorePath: P12.rsaSign2021.path, expectedIin: '111111111111' });
    const mismatch = await refusal(agent.client.unlock('hana', RSA_PASSWORD));
    expect(mismatch.code).toBe('IDENTITY_MISMATCH');
    expect((await agent.client.keyStatus('hana')).unlocked).toBe(false);

    const metrics = await agent.client.metrics();
    expect(metrics).toMatch(/signer_failures_total\{code="CERT_EXPIRED"\} 1\n/);
    expect(metrics).toMatch(/signer_failures_total\{code="NOT_A_SIGNING_KEY"\} 1\n/);
    expect(metrics).toMatch(/signer_signatures_total\{algorithm="RSA-SHA256"\} \d+\n/);
    expect(journalOf(agent.dir).filter((r) => r.event === 'sign_refused').map((r) => r.code)).toEqual(
      expect.arrayContaining(['CERT_EXPIRED', 'CERT_NOT_YET_VALID', 'IDENTITY_MISMATCH', 'NOT_A_SIGNING_KEY', 'CERT_REVOKED']),
    );
  });

  it('refuses to sign for a user who is not enrolled, not unlocked, or has locked the key', async () => {
    expect((await refusal(agent.client.sign('nobody', { orderId: 'o', document: DOC }))).code).toBe('NOT_ENROLLED');
    await agent.client.enroll('ivan', { keystorePath: P12.rsaSign2021.path });
    expect((await refusal(agent.client.sign('ivan', { orderId: 'o', document: DOC, signingTime: RSA_MOMENT }))).status).toBe(409);
    await agent.client.unlock('ivan', RSA_PASSWORD);
    await agent.client.sign('ivan', { orderId: 'o-ivan', document: DOC, signingTime: RSA_MOMENT });
    expect(await agent.client.lock('ivan')).toEqual({ userId: 'ivan', wiped: true });
    const locked = await refusal(agent.client.sign('ivan', { orderId: 'o-ivan-2', document: DOC, signingTime: RSA_MOMENT }));
    expect([locked.status, locked.code]).toEqual([409, 'KEY_LOCKED']);
    expect((await agent.client.keyStatus('ivan')).unlocked).toBe(false);
    await agent.client.unlock('ivan', RSA_PASSWORD);
    await agent.client.unenroll('ivan');
    expect((await refusal(agent.client.keyStatus('ivan'))).code).toBe('NOT_ENROLLED');
    expect((await refusal(agent.client.sign('ivan', { orderId: 'o-ivan-3', document: DOC, signingTime: RSA_MOMENT }))).code).toBe('NOT_ENROLLED');
    expect(journalOf(agent.dir).filter((r) => r.userId === 'ivan').map((r) => r.event)).toEqual(
      expect.arrayContaining(['enrolled', 'unlocked', 'signed', 'locked', 'unenrolled']),
    );
    expect((await refusal(agent.client.enroll('kim', { keystorePath: join(agent.dir, 'missing.p12') }))).code).toBe('KEYSTORE_UNREADABLE');
    expect((await refusal(agent.client.sign('alice', { orderId: 'bad id with spaces', document: DOC }))).code).toBe('INVALID_REQUEST');
  });

  it('sign-batch answers every document on its own: signatures that verify and are journaled, and a refused item that fails only itself', async () => {
    await agent.client.unlock('alice', RSA_PASSWORD);
    const docs = [DOC, Buffer.from('<second/>'), Buffer.from('<third/>')];
    const results = await agent.client.signMany('alice', [
      { orderId: 'batch-1', document: docs[0], signingTime: RSA_MOMENT },
      { orderId: 'batch-2', document: docs[1], signingTime: RSA_MOMENT, expectedIin: '999999999999' },
      { orderId: 'batch-3', document: docs[2], signingTime: RSA_MOMENT },
    ]);
    expect(results.map((r) => (r instanceof SignerAgentError ? [r.code, r.status] : [r.orderId, r.userId]))).toEqual([
      ['batch-1', 'alice'],
      ['IDENTITY_MISMATCH', 422],
      ['batch-3', 'alice'],
    ]);
    for (const i of [0, 2]) {
      const signed = results[i] as Exclude<(typeof results)[number], SignerAgentError>;
      expect(signed.documentSha256).toBe(createHash('sha256').update(docs[i]).digest('hex'));
      expect(verifyCms(signed.cmsDer, { content: docs[i], trust: testTrust(), at: new Date('2021-06-02T00:00:00Z') }).valid).toBe(true);
    }
    const journal = journalOf(agent.dir);
    expect(journal.filter((r) => r.event === 'signed' && String(r.orderId).startsWith('batch-')).map((r) => r.orderId).sort()).toEqual(['batch-1', 'batch-3']);
    expect(journal.find((r) => r.event === 'sign_refused' && r.orderId === 'batch-2')).toMatchObject({ code: 'IDENTITY_MISMATCH' });
    // A key that is not unlocked refuses each item with the code a single sign gets.
    await agent.client.lock('alice');
    const locked = await agent.client.signMany('alice', [{ orderId: 'batch-4', document: DOC, signingTime: RSA_MOMENT }]);
    expect(locked.map((r) => r instanceof SignerAgentError && [r.code, r.status])).toEqual([['KEY_LOCKED', 409]]);
    await agent.client.unlock('alice', RSA_PASSWORD);
    // A malformed item is refused on its own; the others are signed.
    const mixed = await agent.client.signMany('alice', [
      { orderId: 'batch-5', document: DOC, signingTime: RSA_MOMENT },
      { orderId: 'bad id', document: DOC },
    ]);
    expect(mixed.map((r) => (r instanceof SignerAgentError ? [r.code, r.status] : r.orderId))).toEqual(['batch-5', ['INVALID_REQUEST', 400]]);
    // Documents too large to travel together travel one per request, each with its own answer:
    // three of 7 MB, each within the agent's 8 MB, together over what one request may carry.
    const big = [0x41, 0x42, 0x43].map((byte) => Buffer.alloc(7 * 1024 * 1024, byte));
    const large = await agent.client.signMany('alice', big.map((document, i) => ({ orderId: `batch-big-${i}`, document, signingTime: RSA_MOMENT })));
    expect(large.map((r) => (r instanceof SignerAgentError ? r.code : r.documentSha256))).toEqual(big.map((d) => createHash('sha256').update(d).digest('hex')));
  });

  it('keeps /health responsive during a burst of 200 signing requests (figures reported, not asserted)', async () => {
    await agent.client.unlock('alice', RSA_PASSWORD);
    const latencies: number[] = [];
    let burstDone = false;
    const poll = (async () => {
      while (!burstDone) {
        const res = await raw(agent.url, 'GET', '/health', {});
        expect(res.status).toBe(200);
        latencies.push(res.ms);
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const started = process.hrtime.bigint();
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => agent.client.sign('alice', { orderId: `burst-${i}`, document: Buffer.concat([DOC, Buffer.from(String(i))]), signingTime: RSA_MOMENT })),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    burstDone = true;
    await poll;
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((f) => (f as PromiseRejectedResult).reason?.code)).toEqual([]);
    expect(latencies.length).toBeGreaterThan(0);
    const sorted = [...latencies].sort((a, b) => a - b);
    const loopMax = /signer_event_loop_delay_seconds\{quantile="1"\} ([\d.]+)/.exec(await agent.client.metrics());
    expect(loopMax).not.toBeNull();
    figures.push(`agent main-thread event-loop delay max since listening (10 ms resolution): ${(Number(loopMax![1]) * 1000).toFixed(1)} ms`);
    figures.push(
      `burst: 200 RSA signatures over HTTP in ${seconds.toFixed(2)} s (${(200 / seconds).toFixed(0)}/s); /health during it: ${latencies.length} probes, median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)} ms, max ${sorted[sorted.length - 1].toFixed(1)} ms`,
    );
    const serials = new Set(journalOf(agent.dir).filter((r) => r.event === 'signed' && String(r.orderId).startsWith('burst-')).map((r) => r.orderId));
    expect(serials.size).toBe(200);
  });

  it('lockdown wipes every key in every worker, reports its elapsed time, and no signature is handed out after it', async () => {
    await agent.client.unlock('alice', RSA_PASSWORD);
    await agent.client.unlock('carol', RSA_PASSWORD);
    // Keep the workers busy while the lockdown arrives.
    const burst = Array.from({ length: 60 }, (_, i) =>
      agent.client.sign(i % 2 ? 'alice' : 'carol', { orderId: `ld-${i}`, document: DOC, signingTime: RSA_MOMENT }).then(
        () => 'signed',
        (err: SignerAgentError) => err.code,
      ),
    );
    await new Promise((r) => setTimeout(r, 30));
    const roundTripStarted = process.hrtime.bigint();
    const lockdown = await agent.client.lockdown('e2e test');
    const roundTripMs = Number(process.hrtime.bigint() - roundTripStarted) / 1e6;
    expect(lockdown.wipedUsers).toEqual(expect.arrayContaining(['alice', 'carol']));
    expect(lockdown.workers).toBe(2);
    expect(Number.isFinite(lockdown.elapsedMs) && lockdown.elapsedMs >= 0).toBe(true);
    figures.push(
      `lockdown under a signing burst: elapsedMs inside the agent ${lockdown.elapsedMs.toFixed(2)} ms, HTTP round trip ${roundTripMs.toFixed(1)} ms, workers acknowledged ${lockdown.workersAcknowledged}/${lockdown.workers}`,
    );
    const outcomes = await Promise.all(burst);
    expect(outcomes.every((o) => o === 'signed' || o === 'KEY_LOCKED')).toBe(true);
    const journal = journalOf(agent.dir);
    const lockdownAt = Date.parse(String(journal.find((r) => r.event === 'lockdown')?.at));
    const afterLockdown = journal.filter((r) => r.event === 'signed' && String(r.orderId).startsWith('ld-') && Date.parse(String(r.at)) > lockdownAt);
    expect(afterLockdown).toEqual([]);
    const status = await agent.client.status();
    expect(status.users.filter((u) => u.unlocked)).toEqual([]);
    expect((await refusal(agent.client.sign('alice', { orderId: 'after', document: DOC, signingTime: RSA_MOMENT }))).code).toBe('KEY_LOCKED');
    expect(await agent.client.metrics()).toMatch(/signer_keys_unlocked 0\n/);
    const idle = await agent.client.lockdown();
    figures.push(`lockdown idle: elapsedMs ${idle.elapsedMs.toFixed(2)} ms`);
    // Whatever the body, a lockdown with the token is carried out.
    const auth = { authorization: `Bearer ${agent.token}` };
    for (const [headers, body] of [
      [{ ...auth, 'content-type': 'application/json' }, ''],
      [{ ...auth, 'content-type': 'application/json' }, '{not json'],
      [{ ...auth, 'content-type': 'text/plain' }, 'lock it all'],
      [auth, undefined],
    ] as Array<[Record<string, string>, string | undefined]>) {
      const res = await raw(agent.url, 'POST', '/v1/lockdown', headers, body);
      expect([res.status, JSON.parse(res.body).workers]).toEqual([200, 2]);
    }
  });

  it('SIGHUP after logrotate moved the journal: a new journal at the same path, the old records kept in the moved file', async () => {
    const path = join(agent.dir, '.connector', 'signer-journal.jsonl');
    const before = journalOf(agent.dir).length;
    renameSync(path, `${path}.1`);
    agent.child.kill('SIGHUP');
    await expectEventually(() => expect(existsSync(path)).toBe(true));
    await agent.client.unlock('alice', RSA_PASSWORD);
    await agent.client.sign('alice', { orderId: 'after-rotation', document: DOC, signingTime: RSA_MOMENT });
    expect(journalOf(agent.dir).find((r) => r.event === 'signed' && r.orderId === 'after-rotation')).toMatchObject({ userId: 'alice' });
    // Everything written before the rotation stayed in the moved file (journal writes of session
    // events may still land there just after it), nothing of it in the new one.
    const moved = readFileSync(`${path}.1`, 'utf8').trimEnd().split('\n');
    expect(moved.length).toBeGreaterThanOrEqual(before);
    const fresh = readFileSync(path, 'utf8');
    for (const line of moved) expect(fresh).not.toContain(line);
    expect(agent.output()).toContain('signer-agent.journal.reopened');
    expect(agent.child.exitCode).toBeNull();
  });

  it('exits 0 on SIGTERM after wiping, and no password ever reached its output, journal or registry', async () => {
    await agent.client.unlock('alice', RSA_PASSWORD);
    const code = await agent.stop('SIGTERM');
    expect(code).toBe(0);
    const journal = readFileSync(join(agent.dir, '.connector', 'signer-journal.jsonl'), 'utf8');
    expect(journalOf(agent.dir).filter((r) => r.event === 'locked' && r.reason === 'shutdown').map((r) => r.userId)).toContain('alice');
    const registry = readFileSync(join(agent.dir, '.connector', 'signer-keys.json'), 'utf8');
    const everything = `${agent.output()}\n${journal}\n${registry}`;
    expect(canaries.length).toBeGreaterThanOrEqual(4);
    for (const secret of [...canaries, RSA_PASSWORD, P12.gostIndividual.password]) expect(everything).not.toContain(secret);
    expect(agent.output()).toContain('signer.unlock.wrong_password'); // the log did record the failed attempts
  });
});

describe('signer agent process: sessions, addresses, modes', () => {
  it('wipes an unlocked key after the idle timeout (seconds in test mode)', async () => {
    const agent = await startAgent({ config: { testMode: true, signer: { workers: 1, sessionIdleSeconds: 1 } } });
    try {
      await agent.client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
      const unlocked = await agent.client.unlock('alice', P12.rsaSign2021.password);
      expect(Date.parse(unlocked.session!.idleExpiresAt) - Date.parse(unlocked.session!.unlockedAt)).toBe(1000);
      await agent.client.sign('alice', { orderId: 'o1', document: DOC, signingTime: RSA_MOMENT });
      await expectEventually(async () => expect((await agent.client.keyStatus('alice')).unlocked).toBe(false), 10_000);
      expect((await refusal(agent.client.sign('alice', { orderId: 'o2', document: DOC, signingTime: RSA_MOMENT }))).code).toBe('KEY_LOCKED');
      expect(journalOf(agent.dir).filter((r) => r.event === 'locked').map((r) => r.reason)).toEqual(['idle_timeout']);
    } finally {
      expect(await agent.stop('SIGINT')).toBe(0);
    }
  });

  it('ends a session at signer.sessionMaxMinutes after the unlock even when that is shorter than the idle timeout', async () => {
    // An admin bounds unlocked keys to 5 minutes whatever the activity; the idle timeout stays at its default 30.
    const agent = await startAgent({ config: { testMode: true, signer: { workers: 1, sessionMaxMinutes: 5 } } });
    try {
      expect(await agent.client.status()).toMatchObject({ idleTimeoutSeconds: 1800, sessionMaxSeconds: 300 });
      await agent.client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
      const { session } = await agent.client.unlock('alice', P12.rsaSign2021.password);
      const unlockedAt = Date.parse(session!.unlockedAt);
      expect(Date.parse(session!.expiresAt) - unlockedAt).toBe(300_000);
      expect(Date.parse(session!.idleExpiresAt) - unlockedAt).toBe(300_000);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('keeps enrolments, the wrong-password count and the token across a restart, but never an unlocked key', async () => {
    const first = await startAgent({ config: { testMode: true, signer: { workers: 1 } } });
    await first.client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
    await first.client.enroll('bob', { keystorePath: P12.rsaSign2021.path });
    await first.client.unlock('bob', P12.rsaSign2021.password);
    for (let i = 0; i < 2; i++) expect((await refusal(first.client.unlock('alice', `wrong-${i}-password`))).code).toBe('WRONG_PASSWORD');
    expect(await first.stop()).toBe(0);
    const second = await startAgent({ dir: first.dir });
    try {
      expect(second.token).toBe(first.token);
      expect(await second.client.keyStatus('alice')).toMatchObject({ wrongPasswordCount: 2, unlocked: false });
      expect(await second.client.keyStatus('bob')).toMatchObject({ unlocked: false });
      expect((await refusal(second.client.sign('bob', { orderId: 'o', document: DOC, signingTime: RSA_MOMENT }))).code).toBe('KEY_LOCKED');
    } finally {
      await second.stop();
    }
  });

  it('refuses to start on a non-loopback address, naming the rule (exit 1)', async () => {
    for (const args of [['--url', 'http://0.0.0.0:8901'], ['--url', 'http://192.168.10.5:8901']]) {
      const run = runAgent({ args });
      expect(await run.exited).toBe(1);
      expect(run.output()).toMatch(/SIGNER_NOT_LOOPBACK: .*127\.0\.0\.1/);
    }
    const first = await startAgent({ config: { testMode: true, signer: { workers: 1 } } });
    try {
      const taken = runAgent({ args: ['--url', first.url] });
      expect(await taken.exited).toBe(1);
      expect(taken.output()).toContain('SIGNER_LISTEN_FAILED');
    } finally {
      await first.stop();
    }
    // From the configuration the address is refused before anything starts: the connector's commands read it too.
    const fromEnv = runAgent({ args: [], env: { CONNECTOR_SIGNER_URL: 'http://10.0.0.1:8901' } });
    expect(await fromEnv.exited).toBe(1);
    expect(fromEnv.output()).toMatch(/CONFIG_INVALID: .*signer\.url: expected http:\/\/127\.0\.0\.1:PORT/);
  });

  it('a trust path it cannot read stops the start with exit 1, and its last line names the path (not "the worker stopped")', async () => {
    const missing = join(mkdtempSync(join(tmpdir(), 'signer-trust-')), 'nca_root.pem');
    const run = runAgent({ config: { testMode: true, signer: { workers: 1, trust: [missing] } } });
    expect(await run.exited).toBe(1);
    const last = run.output().trimEnd().split('\n').pop() ?? '';
    expect(last).toMatch(/^SIGNER_UNAVAILABLE: signing workers failed to start: trust path .*nca_root\.pem cannot be read: ENOENT/);
  });

  it('refuses seconds-long idle timeouts and signingTime outside test mode', async () => {
    const run = runAgent({ config: { signer: { sessionIdleSeconds: 5 } } });
    expect(await run.exited).toBe(1);
    expect(run.output()).toContain('CONFIG_INVALID');

    const agent = await startAgent({ config: { signer: { workers: 1 } } });
    try {
      await agent.client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
      await agent.client.unlock('alice', P12.rsaSign2021.password);
      const withTime = await refusal(agent.client.sign('alice', { orderId: 'o1', document: DOC, signingTime: RSA_MOMENT }));
      expect([withTime.status, withTime.code]).toEqual([400, 'SIGNING_TIME_NOT_ALLOWED']);
      // Outside test mode the NCA test CA is not trusted: the key is refused at the signing moment (now).
      expect((await refusal(agent.client.sign('alice', { orderId: 'o1', document: DOC }))).code).toBe('CHAIN_UNTRUSTED');
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('listens on a Unix socket with mode 0600; the client reaches it and the socket is removed on exit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signer-sock-'));
    const socket = join(dir, 'agent.sock');
    const agent = await startAgent({ dir, config: { testMode: true, signer: { workers: 1 } }, args: ['--url', `unix:${socket}`] });
    expect(agent.url).toBe(`unix:${socket}`);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    const client = new SignerAgentClient({ url: `unix:${socket}`, tokenFile: '.connector/signer.token', cwd: dir });
    expect(await client.health()).toBe(true);
    await client.enroll('alice', { keystorePath: P12.rsaSign2021.path });
    await client.unlock('alice', P12.rsaSign2021.password);
    const signed = await client.sign('alice', { orderId: 'sock-1', document: DOC, signingTime: RSA_MOMENT });
    expect(verifyCms(signed.cmsDer, { content: DOC, trust: testTrust(), at: new Date('2021-06-02T00:00:00Z') }).valid).toBe(true);
    const wrongToken = new SignerAgentClient({ url: `unix:${socket}`, token: 'x'.repeat(43) });
    // The agent cannot prove a token the client does not share: the client sends nothing (the agent's
    // own 401 to a wrong bearer token is the first test's).
    expect((await refusal(wrongToken.status())).code).toBe('SIGNER_NOT_AUTHENTIC');
    expect(await agent.stop()).toBe(0);
    expect(existsSync(socket)).toBe(false);
  });

  it('reads a CRL the refresh job replaced while it runs: a certificate revoked since its start is refused from then on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'signer-crl-'));
    // The cache file as `crl.refresh` keeps it; at the start it holds a CRL that says nothing of the RSA key.
    const cached = tmpFile(dir, 'nca_rsa.crl', readFileSync(CRL.gost2022));
    const agent = await startAgent({ dir, config: { testMode: true, signer: { workers: 2, crl: [cached] } } });
    try {
      await agent.client.enroll('farid', { keystorePath: P12.rsaSignRevoked.path });
      await agent.client.unlock('farid', P12.rsaSignRevoked.password);
      const before = await agent.client.sign('farid', { orderId: 'crl-1', document: DOC, signingTime: '2022-06-01T00:00:00Z' });
      expect(before.cmsDer.length).toBeGreaterThan(0);
      // No CRL of its CA yet: signed (signer.requireRevocation is off), and the journal and the log say revocation went unchecked.
      expect(journalOf(dir).find((r) => r.event === 'signed' && r.orderId === 'crl-1')).toMatchObject({ revocation: 'unchecked', revocationSource: null });
      await expectEventually(async () => expect(agent.output()).toMatch(/"event":"signer\.signed".*"revocation":"unchecked".*revocation unchecked: no current CRL of the issuer is configured/));
      // The next download lists it, written the way the refresh job writes (a temporary file, renamed).
      writeFileSync(`${cached}.tmp`, readFileSync(CRL.rsa));
      renameSync(`${cached}.tmp`, cached);
      // Every worker reads it within a second or so; from then on no worker signs with the key.
      await expectEventually(async () => {
        for (let i = 0; i < 4; i += 1) expect((await refusal(agent.client.sign('farid', { orderId: `crl-2-${i}`, document: DOC, signingTime: '2022-06-01T00:00:00Z' }))).code).toBe('CERT_REVOKED');
      });
    } finally {
      expect(await agent.stop()).toBe(0);
    }
  });

  it('reports an unreachable agent with a code', async () => {
    const client = new SignerAgentClient({ url: 'http://127.0.0.1:1', token: 'x'.repeat(43), timeoutMs: 2000 });
    expect(await client.health()).toBe(false);
    expect((await refusal(client.status())).code).toBe('SIGNER_UNREACHABLE');
  });
});
