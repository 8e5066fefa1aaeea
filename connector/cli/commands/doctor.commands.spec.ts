import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../config/load-config';
import { WEBHOOK_LAG_WARN_MS, checkWebhooks, renderDoctorReport, webhooksVerdict, type WebhookLag } from './doctor.commands';

const config = loadConfig({ env: {}, cwd: mkdtempSync(join(tmpdir(), 'doctor-webhooks-')) });
const now = new Date('2026-11-27T10:00:00Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const cursor = (over: Partial<NonNullable<WebhookLag['cursor']>> = {}) => ({ lastEventId: '41', attempts: 0, lastError: null, nextAttemptAt: null, updatedAt: ago(60_000), ...over });
const oldest = (ageMs: number) => ({ id: '42', orderId: 'order-42', fromState: 'received', toState: 'invalid', at: ago(ageMs) });

describe('doctor: status webhooks', () => {
  it.each<[string, WebhookLag, string, RegExp]>([
    ['no dispatch yet', { cursor: null, oldest: null, behind: 0 }, 'OK', /^configured; no dispatch has run yet/],
    ['caught up', { cursor: cursor(), oldest: null, behind: 0 }, 'OK', /^every status event delivered \(the last acknowledged: event 41\)$/],
    ['a fresh event on its way', { cursor: cursor(), oldest: oldest(30_000), behind: 2 }, 'OK', /^3 status event\(s\) on their way, the oldest \(event 42\) 30 s old$/],
    ['an event not sent for longer than the bound', { cursor: cursor(), oldest: oldest(WEBHOOK_LAG_WARN_MS + 60_000), behind: 7 }, 'WARN', /^status event 42 \(order order-42, received -> invalid, .+\) undelivered for 6 min: no attempt failed, it was not sent; 7 more event\(s\) wait behind it$/],
    [
      'a fresh event whose last attempt failed',
      { cursor: cursor({ attempts: 3, lastError: 'ECONNREFUSED', nextAttemptAt: new Date(now.getTime() + 4_000) }), oldest: oldest(10_000), behind: 100_000 },
      'WARN',
      /^status event 42 .+ undelivered for 0 min: the last attempt failed \(ECONNREFUSED, .+\), 3 attempt\(s\) so far, next attempt 2026-11-27T10:00:04\.000Z; 100000 or more events wait behind it$/,
    ],
  ])('%s: %s', (_what, lag, verdict, detail) => {
    const result = webhooksVerdict(lag, config, now);
    expect(result).toMatchObject({ name: 'webhooks', core: false, verdict, detail: expect.stringMatching(detail) });
    if (verdict === 'WARN') expect(result.hint).toBeTruthy();
  });

  it('allows two dispatch periods when webhooks.everyMs is longer than the bound', () => {
    const slow = { ...config, webhooks: { ...config.webhooks, everyMs: 600_000 } };
    expect(webhooksVerdict({ cursor: cursor(), oldest: oldest(15 * 60_000), behind: 0 }, slow, now).verdict).toBe('OK');
    expect(webhooksVerdict({ cursor: cursor(), oldest: oldest(25 * 60_000), behind: 0 }, slow, now).verdict).toBe('WARN');
  });

  it('an empty secret file is a WARN naming it: the worker sends no event signed with an empty key', async () => {
    const secretFile = join(mkdtempSync(join(tmpdir(), 'doctor-webhooks-')), 'webhook.secret');
    writeFileSync(secretFile, '\n', { mode: 0o600 });
    const withUrl = { ...config, webhooks: { ...config.webhooks, url: 'http://127.0.0.1:9/hooks', secretFile } };
    expect(await checkWebhooks(withUrl, false, 1_000)).toMatchObject({ name: 'webhooks', verdict: 'WARN', detail: `no status event is sent: webhooks.secretFile ${secretFile} is empty: an HMAC with an empty key is one anyone can compute; write the HMAC secret the receiver verifies with into it (mode 0600)` });
  });

  it('a secret file group or others may read is a WARN naming it and its mode, as the Client Secret file is (R-4): the worker sends nothing signed with it', async () => {
    const secretFile = join(mkdtempSync(join(tmpdir(), 'doctor-webhooks-')), 'webhook.secret');
    writeFileSync(secretFile, 'loose-webhook-secret\n');
    chmodSync(secretFile, 0o640);
    const withUrl = { ...config, webhooks: { ...config.webhooks, url: 'http://127.0.0.1:9/hooks', secretFile } };
    const result = await checkWebhooks(withUrl, false, 1_000);
    expect(result).toMatchObject({ name: 'webhooks', verdict: 'WARN', detail: `no status event is sent: webhooks.secretFile ${secretFile} may be read by group or others (mode 0640): anyone on this machine could sign in the connector's name; run chmod 600 ${secretFile}` });
    expect(JSON.stringify(result)).not.toContain('loose-webhook-secret');
  });
});

describe('doctor: the report on a terminal', () => {
  it("keeps each line as long as its own check: a long detail elsewhere pads no other line, and each hint is on its own line under its check", () => {
    const text = renderDoctorReport({
      ok: false,
      checks: [
        { name: 'config', core: true, verdict: 'OK', detail: 'valid' },
        { name: 'bank-credentials', core: true, verdict: 'FAIL', detail: `MASTER_KEY_MISSING: ${'the stored Client Secret cannot be opened '.repeat(10)}`, hint: 'restore the key file from backup' },
        { name: 'bank', core: false, verdict: 'WARN', detail: 'http://127.0.0.1:8900: connect ECONNREFUSED', hint: 'start the sandbox' },
      ],
    });
    expect(text.split('\n')).toEqual([
      'VERDICT  CHECK             DETAIL',
      'OK       config            valid',
      expect.stringMatching(/^FAIL {5}bank-credentials {2}MASTER_KEY_MISSING: the stored Client Secret cannot be opened .*opened$/),
      '         hint: restore the key file from backup',
      'WARN     bank              http://127.0.0.1:8900: connect ECONNREFUSED',
      '         hint: start the sandbox',
    ]);
  });
});
