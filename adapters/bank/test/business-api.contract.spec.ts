import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { parse } from 'yaml';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../../../connector/logging/logger';
import type { NormalisedOrder } from '../../../connector/orders/payment-order';
import { validatePaymentOrder } from '../../../connector/requisites/payment-order.validator';
import { checkStatementBalance } from '../../../connector/statements/statement.model';
import { BusinessApiClient, isFinalStatus } from '../business-api/business-api.client';
import type { BankError } from '../business-api/business-api.errors';
import { ConnectorError } from '../../../connector/shared/errors';
import { StaticCredentialsProvider } from '../business-api/credentials.provider';
import { DEMO } from '../sandbox/sandbox.config';
import { createTestCa, issueSigner, signDetached } from '../sandbox/test-ca';
import { BENEFICIARY_BIN, makeIban, makeIinBin, sampleOrder, caught } from './fixtures';
import { startHarness, type Harness } from './sandbox.harness';

/**
 * Contract tests: the real client against the real sandbox over HTTP (issue 13). Each case names
 * what a caller relies on. The sandbox's day clock is frozen (speed 0) and stepped by the admin API.
 */
type Ledger = { total: number; duplicates: number; submissions: Array<{ externalId: string; document: string; requests: number; accepted: boolean; afterAccepted: number; firstAt: string }> };

/** A beneficiary the bank's AML screening refuses (valid BIN, listed in the sandbox config). */
const AML_BIN = makeIinBin('99034000001');
let h: Harness;
let n = 0;
const nextNumber = () => String(1000 + (n += 1));

beforeAll(async () => {
  h = await startHarness({ amlBlockedIinBins: [AML_BIN] });
});
afterAll(async () => {
  await h.stop();
  await h.drop();
});
beforeEach(async () => {
  await h.admin('POST', '/faults/reset');
});

describe('token (OAuth2 client credentials)', () => {
  it('issues a token for the configured pair; a wrong secret is AUTH', async () => {
    const good = h.client();
    expect(await good.listAccounts()).toEqual(expect.arrayContaining([expect.objectContaining({ iban: DEMO.payerIban, status: 'active' })]));
    const bad = h.client({ credentials: new StaticCredentialsProvider({ clientId: 'test-client', clientSecret: 'wrong-secret-123' }) });
    const err = await caught(bad.listAccounts());
    expect(err.code).toBe('AUTH');
  });

  it('a revoked pair is CREDENTIALS_REVOKED, told apart from AUTH, and the provider hears of it (R-2)', async () => {
    const provider = new StaticCredentialsProvider({ clientId: 'test-client', clientSecret: h.secret });
    const client = h.client({ credentials: provider });
    await client.listAccounts();
    await h.admin('PUT', '/credentials', { revoked: true });
    try {
      const onCall = await caught(client.listAccounts());
      expect(onCall.code).toBe('CREDENTIALS_REVOKED');
      client.invalidateToken();
      const onToken = await caught(client.listAccounts());
      expect(onToken.code).toBe('CREDENTIALS_REVOKED');
      expect(onToken.message).toMatch(/regenerate/);
      expect(provider.revoked).toBeGreaterThanOrEqual(2);
    } finally {
      await h.admin('PUT', '/credentials', { revoked: false });
    }
  });

  it('a provider that fails to mark the pair revoked (PostgreSQL away) is logged, never an unhandled rejection that would end the worker', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const lines: string[] = [];
    const logger = createLogger({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const provider = {
      getCredentials: async () => ({ clientId: 'test-client', clientSecret: h.secret }),
      onRevoked: async () => {
        throw new Error('Connection terminated unexpectedly');
      },
    };
    const client = h.client({ credentials: provider, logger });
    await client.listAccounts();
    await h.admin('PUT', '/credentials', { revoked: true });
    try {
      expect((await caught(client.listAccounts())).code).toBe('CREDENTIALS_REVOKED');
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
      expect(lines.join('')).toMatch(/"event":"bank.credentials.mark_revoked_failed".*Connection terminated unexpectedly/);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await h.admin('PUT', '/credentials', { revoked: false });
    }
  });

  it('a provider that cannot give the pair (the vault\'s master key cannot open it) is CREDENTIALS_UNAVAILABLE, not TRANSIENT; nothing is sent', async () => {
    const vault = {
      calls: 0,
      async getCredentials(): Promise<never> {
        vault.calls += 1;
        throw new ConnectorError('MASTER_KEY_MISSING', 'a secret (bank.clientSecret) is sealed under master key k1, which the master key file in use, /srv/x/.connector/master.key, does not hold');
      },
    };
    const client = h.client({ credentials: vault });
    const before = { ...h.sandbox.stats };
    for (const call of [() => client.listAccounts(), () => client.submit(h.signed(sampleOrder({ number: nextNumber() }), 'ext-no-vault'))]) {
      const err = await caught(call());
      expect(err.code).toBe('CREDENTIALS_UNAVAILABLE');
      expect(err.retryable).toBe(false);
      expect(err.details.providerCode).toBe('MASTER_KEY_MISSING');
      expect(err.message).toMatch(/^the connector cannot read its own Client ID \/ Client Secret, nothing was sent to the bank: MASTER_KEY_MISSING: .*\/srv\/x\/.connector\/master.key/);
    }
    // Asked once per call (not retried as a bank outage), and the bank heard nothing.
    expect(vault.calls).toBe(2);
    expect(h.sandbox.stats).toEqual(before);
  });

  it("a vault whose database does not answer is TRANSIENT (retried), not CREDENTIALS_UNAVAILABLE (an operator's incident); nothing is sent", async () => {
    const vault = {
      async getCredentials(): Promise<never> {
        throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      },
    };
    const client = h.client({ credentials: vault });
    const before = { ...h.sandbox.stats };
    const err = await caught(client.submit(h.signed(sampleOrder({ number: nextNumber() }), 'ext-no-db')));
    expect([err.code, err.retryable]).toEqual(['TRANSIENT', true]);
    expect(err.message).toMatch(/could not read its Client ID \/ Client Secret, nothing was sent to the bank \(ECONNREFUSED\)/);
    expect(h.sandbox.stats).toEqual(before);
  });

  it('a rotated pair (the provider\'s version changed) is used at the next call: the cached token is dropped, never used again', async () => {
    const vault = { version: 1, secret: h.secret };
    const provider = {
      async getCredentials() {
        return { clientId: 'test-client', clientSecret: vault.secret, version: String(vault.version) };
      },
      async version() {
        return String(vault.version);
      },
    };
    const client = h.client({ credentials: provider });
    await client.listAccounts();
    await client.listAccounts();
    expect(client.tokenRequests).toBe(1);
    // Rotated to a mistyped secret: the next call asks for a token with it, and the bank refuses.
    Object.assign(vault, { version: 2, secret: 'Mistyped-Rotated-Secret' });
    const before = h.sandbox.stats.tokenRequests;
    expect((await caught(client.listAccounts())).code).toBe('AUTH');
    expect(h.sandbox.stats.tokenRequests - before).toBe(1);
    // Rotated again, to the right one: a new token, then reused while the pair stays.
    Object.assign(vault, { version: 3, secret: h.secret });
    await client.listAccounts();
    await client.listAccounts();
    expect(h.sandbox.stats.tokenRequests - before).toBe(2);
    expect(client.tokenRequests).toBe(3);
  });

  it('concurrent calls when the cached token is due make exactly one token request', async () => {
    let fakeNow = Date.now();
    const client = h.client({ now: () => fakeNow });
    await client.listAccounts();
    expect(client.tokenRequests).toBe(1);
    fakeNow += 11 * 60_000; // past the token's 600 s lifetime
    const before = h.sandbox.stats.tokenRequests;
    await Promise.all(Array.from({ length: 20 }, () => client.listAccounts()));
    expect(h.sandbox.stats.tokenRequests - before).toBe(1);
    expect(client.tokenRequests).toBe(2);
  });

  it('a token the bank expired early is refreshed once for all concurrent callers (401 -> one new token)', async () => {
    const client = h.client();
    await client.listAccounts();
    await h.admin('POST', '/tokens/expire');
    const before = h.sandbox.stats.tokenRequests;
    const results = await Promise.all(Array.from({ length: 10 }, () => client.listAccounts()));
    expect(results.every((r) => r.length > 0)).toBe(true);
    expect(h.sandbox.stats.tokenRequests - before).toBe(1);
  });
});

describe('submit, lookup, status, statement: the happy path', () => {
  it('accepts a signed order, moves it on the day clock to executed, and the statement shows it with its fee', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber(), amount: '1500.00' });
    const accountsBefore = await client.listAccounts();
    const balanceBefore = accountsBefore.find((a) => a.iban === DEMO.payerIban)!.balance;

    const doc = await client.submit(h.signed(order, `ext-${order.number}`));
    expect(doc).toMatchObject({ created: true, externalId: `ext-${order.number}`, status: 'accepted', document: { payerAccount: DEMO.payerIban, number: order.number, amount: '1500.00' } });

    const pending = await client.getStatement(DEMO.payerIban, '2026-11-25', '2026-11-25');
    expect(pending.lines.find((l) => l.externalId === doc.externalId)).toMatchObject({ status: 'pending', kind: 'payment' });

    await h.admin('POST', '/clock/step');
    expect((await client.getStatus(doc.documentId)).status).toBe('in_processing');
    await h.admin('POST', '/clock/step');
    const final = await client.getStatus(doc.documentId);
    expect(final).toMatchObject({ status: 'executed', fee: '300.00', bankReference: doc.bankReference });
    expect(isFinalStatus(final.status)).toBe(true);
    expect(await client.lookup(doc.externalId)).toMatchObject({ documentId: doc.documentId, status: 'executed' });

    const statement = await client.getStatement(DEMO.payerIban, '2026-11-25', '2026-11-25');
    const ours = statement.lines.filter((l) => l.bankReference === doc.bankReference);
    expect(ours).toEqual([
      expect.objectContaining({ kind: 'payment', direction: 'debit', amount: 150000, status: 'booked', externalId: doc.externalId, knp: '710', documentNumber: order.number, counterparty: expect.objectContaining({ iinBin: BENEFICIARY_BIN }) }),
      expect.objectContaining({ kind: 'fee', direction: 'debit', amount: 30000, status: 'booked' }),
    ]);
    expect(statement.source).toBe('bank-json');
    expect(checkStatementBalance(statement).ok).toBe(true);
    const balanceAfter = (await client.listAccounts()).find((a) => a.iban === DEMO.payerIban)!.balance;
    expect(Math.round((Number(balanceBefore) - Number(balanceAfter)) * 100)).toBe(150000 + 30000);
  });

  it('an intrabank payment has no fee and credits the beneficiary account', async () => {
    const client = h.client();
    const order = sampleOrder({
      number: nextNumber(),
      amount: '10.00',
      beneficiary: { name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, iban: DEMO.internalBeneficiaryIban, bic: 'TSESKZKA', kbe: '17' },
    });
    const doc = await client.submit(h.signed(order, `ext-${order.number}`));
    await h.admin('POST', '/clock/step');
    await h.admin('POST', '/clock/step');
    expect(await client.getStatus(doc.documentId)).toMatchObject({ status: 'executed', fee: '0.00' });
    const st = await client.getStatement(DEMO.internalBeneficiaryIban, '2026-11-25', '2026-11-25');
    expect(st.lines).toEqual([expect.objectContaining({ direction: 'credit', amount: 1000, documentNumber: order.number })]);
  });

  it('statements carry injected incoming payments and an unexplained debit, and balance', async () => {
    const client = h.client();
    await h.admin('POST', `/accounts/${DEMO.payerIban}/incoming`, { amount: '2500.50', purpose: 'Оплата по договору 7', knp: '710' });
    const debit = await h.admin<{ lineId: string }>('POST', `/accounts/${DEMO.payerIban}/debit`, { amount: '99.99' });
    const st = await client.getStatement(DEMO.payerIban, '2026-11-20', '2026-11-25');
    expect(st.lines).toEqual(expect.arrayContaining([
      expect.objectContaining({ direction: 'credit', amount: 250050, purpose: 'Оплата по договору 7' }),
      expect.objectContaining({ bankLineId: debit.lineId, direction: 'debit', amount: 9999 }),
    ]));
    expect(st.lines.find((l) => l.bankLineId === debit.lineId)?.bankReference).toBeUndefined();
    expect(checkStatementBalance(st).ok).toBe(true);
    const earlier = await client.getStatement(DEMO.payerIban, '2026-11-20', '2026-11-24');
    expect(earlier.closingBalance).toBe(st.openingBalance);
    expect(earlier.kind).toBe('booked');
    expect(st.kind).toBe('intraday');
  });

  it('keeps an unknown status verbatim and non-final (R-3)', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    const doc = await client.submit(h.signed(order, `ext-${order.number}`));
    await h.admin('PUT', `/documents/${doc.documentId}`, { status: 'partially_accepted' });
    const st = await client.getStatus(doc.documentId);
    expect(st.status).toBe('partially_accepted');
    expect(isFinalStatus(st.status)).toBe(false);
  });
});

describe('duplicates and the ledger', () => {
  it('same externalId returns the first document; the resend shows in the ledger as afterAccepted', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    const input = h.signed(order, `ext-${order.number}`);
    const first = await client.submit(input);
    const again = await client.submit(input);
    expect(again).toMatchObject({ created: false, documentId: first.documentId });
    const ledger = await h.admin<Ledger>('GET', '/submissions');
    const entry = ledger.submissions.find((s) => s.externalId === input.externalId)!;
    expect(entry).toEqual({ externalId: input.externalId, document: `${DEMO.payerIban}/${order.number}/${order.date}`, requests: 2, accepted: true, afterAccepted: 1, firstAt: expect.any(String) });
    expect(ledger.duplicates).toBe(ledger.submissions.reduce((s, x) => s + x.afterAccepted, 0));
    expect(Object.keys(ledger).sort()).toEqual(['duplicates', 'submissions', 'total']);
  });

  it('the same payer+number+date under another externalId is refused as DUPLICATE_DOCUMENT', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    await client.submit(h.signed(order, `a-${order.number}`));
    const err = await caught(client.submit(h.signed(order, `b-${order.number}`)));
    expect(err).toMatchObject({ code: 'REJECTED', reasonCode: 'DUPLICATE_DOCUMENT' });
    expect(err.details.reasonText).toMatch(/уже принят/);
    const entry = (await h.admin<Ledger>('GET', '/submissions')).submissions.find((s) => s.externalId === `a-${order.number}`)!;
    expect(entry).toMatchObject({ requests: 2, afterAccepted: 1 });
  });

  it('concurrent resends and concurrent second ids still make exactly one document', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    const input = h.signed(order, `race-${order.number}`);
    const sameId = await Promise.allSettled(Array.from({ length: 8 }, () => client.submit(input)));
    const created = sameId.filter((r) => r.status === 'fulfilled' && r.value.created);
    expect(created).toHaveLength(1);
    expect(sameId.every((r) => r.status === 'fulfilled')).toBe(true);
    const others = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => client.submit(h.signed(order, `race-${order.number}-${i}`))));
    expect(others.map((r) => (r.status === 'rejected' ? (r.reason as BankError).reasonCode : 'accepted'))).toEqual(Array(5).fill('DUPLICATE_DOCUMENT'));
    const docs = await h.admin<{ documents: Array<{ document: { number: string } }> }>('GET', '/documents');
    expect(docs.documents.filter((d) => d.document.number === order.number)).toHaveLength(1);
    const entry = (await h.admin<Ledger>('GET', '/submissions')).submissions.find((s) => s.externalId === input.externalId)!;
    expect(entry).toMatchObject({ requests: 13, accepted: true, afterAccepted: 12 });
  });

  it('the same externalId with a different document is EXTERNAL_ID_CONFLICT', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    await client.submit(h.signed(order, `c-${order.number}`));
    const other = sampleOrder({ number: nextNumber() });
    const err = await caught(client.submit(h.signed(other, `c-${order.number}`)));
    expect(err).toMatchObject({ code: 'REJECTED', reasonCode: 'EXTERNAL_ID_CONFLICT' });
  });
});

describe('refusals (R-23), each with its own code and Russian text', () => {
  const refused = async (input: Parameters<BusinessApiClient['submit']>[0], code: string) => {
    const err = await caught(h.client().submit(input));
    expect({ code: err.code, reason: err.reasonCode }).toEqual({ code: 'REJECTED', reason: code });
    expect(err.details.reasonText).toMatch(/[а-яё]/i);
    return err;
  };

  it('MALFORMED_DOCUMENT for bytes that are not the canonical XML', async () => {
    const input = h.signed(sampleOrder({ number: nextNumber() }), `m-${n}`);
    const garbage = Buffer.from('<PaymentOrder>not canonical</PaymentOrder>');
    await refused({ ...input, document: garbage, signatures: [signDetached(garbage, h.signer)] }, 'MALFORMED_DOCUMENT');
  });

  it('DOCUMENT_MISMATCH when the JSON differs from what was signed', async () => {
    const input = h.signed(sampleOrder({ number: nextNumber() }), `mm-${n}`);
    await refused({ ...input, requisites: { ...input.requisites, amount: '9999999.00' } }, 'DOCUMENT_MISMATCH');
  });

  it('REQUISITES_INVALID names the field', async () => {
    const order = sampleOrder({ number: nextNumber() });
    order.beneficiary.iinBin = '123456789012';
    const err = await refused(h.signed(order, `r-${n}`), 'REQUISITES_INVALID');
    expect(err.details.field).toBe('beneficiary.iinBin');
  });

  it('SIGNATURE_INVALID for an unsigned-equivalent or foreign-bytes signature', async () => {
    const input = h.signed(sampleOrder({ number: nextNumber() }), `s-${n}`);
    await refused({ ...input, signatures: [signDetached(Buffer.from('other bytes'), h.signer)] }, 'SIGNATURE_INVALID');
  });

  it('CERTIFICATE_INVALID for a signer outside the trust store', async () => {
    const stranger = issueSigner(createTestCa('Rogue CA', new Date('2020-01-01T00:00:00Z'), 30), { commonName: 'X', iin: '800101300006', bin: DEMO.payerBin }, new Date('2026-01-01T00:00:00Z'), 3650);
    await refused(h.signed(sampleOrder({ number: nextNumber() }), `c-${n}`, stranger), 'CERTIFICATE_INVALID');
  });

  it('SIGNER_NOT_AUTHORISED when the signer does not act for the payer', async () => {
    const other = issueSigner(h.ca, { commonName: 'Чужой', iin: '800101300006', bin: BENEFICIARY_BIN }, new Date('2026-01-01T00:00:00Z'), 3650);
    await refused(h.signed(sampleOrder({ number: nextNumber() }), `na-${n}`, other), 'SIGNER_NOT_AUTHORISED');
  });

  it('ACCOUNT_ARRESTED (from config) and ACCOUNT_NOT_FOUND at submit', async () => {
    await refused(h.signed(sampleOrder({ number: nextNumber(), payer: { ...sampleOrder().payer, iban: DEMO.arrestedIban } }), `ar-${n}`), 'ACCOUNT_ARRESTED');
    await refused(h.signed(sampleOrder({ number: nextNumber(), payer: { ...sampleOrder().payer, iban: makeIban('998', 'CTB0000009999') } }), `nf-${n}`), 'ACCOUNT_NOT_FOUND');
  });

  it('a payment to an arrested account held here credits it: an arrest stops what leaves an account, not what comes in', async () => {
    const client = h.client();
    const order = sampleOrder({
      number: nextNumber(),
      amount: '12.34',
      beneficiary: { name: 'ТОО "Под арестом"', iinBin: DEMO.internalBeneficiaryBin, iban: DEMO.arrestedIban, bic: 'TSESKZKA', kbe: '17' },
    });
    const before = (await client.getStatement(DEMO.arrestedIban, '2026-11-25', '2026-11-25')).closingBalance;
    const doc = await client.submit(h.signed(order, `arr-${order.number}`));
    await h.admin('POST', '/clock/step');
    await h.admin('POST', '/clock/step');
    expect(await client.getStatus(doc.documentId)).toMatchObject({ status: 'executed' });
    const st = await client.getStatement(DEMO.arrestedIban, '2026-11-25', '2026-11-25');
    expect(st.lines).toEqual(expect.arrayContaining([expect.objectContaining({ direction: 'credit', amount: 1234, documentNumber: order.number })]));
    expect(st.closingBalance - before).toBe(1234);
  });

  it('AML_REFUSAL for a screened beneficiary; AUTHENTICATION_IMPOSSIBLE and CREDENTIALS_COMPROMISED when the bank says so', async () => {
    const aml = sampleOrder({ number: nextNumber() });
    aml.beneficiary.iinBin = AML_BIN;
    await refused(h.signed(aml, `aml-${n}`), 'AML_REFUSAL');
    for (const code of ['AUTHENTICATION_IMPOSSIBLE', 'CREDENTIALS_COMPROMISED']) {
      await h.admin('PUT', '/faults', { refuse: { code, count: 1, at: 'submit' } });
      await refused(h.signed(sampleOrder({ number: nextNumber() }), `x-${n}`), code);
    }
  });

  it('INSUFFICIENT_FUNDS (payment + fee) and ACCOUNT_SUSPENDED come as rejected statuses on execution', async () => {
    const client = h.client();
    const poor = await client.submit(h.signed(sampleOrder({ number: nextNumber(), amount: '50.00', payer: { ...sampleOrder().payer, iban: DEMO.poorIban } }), `poor-${n}`));
    const later = await client.submit(h.signed(sampleOrder({ number: nextNumber(), amount: '1.00' }), `susp-${n}`));
    await h.admin('PUT', `/accounts/${DEMO.payerIban}`, { status: 'suspended' });
    try {
      await h.admin('POST', '/clock/step');
      await h.admin('POST', '/clock/step');
    } finally {
      await h.admin('PUT', `/accounts/${DEMO.payerIban}`, { status: 'active' });
    }
    expect(await client.getStatus(poor.documentId)).toMatchObject({ status: 'rejected', reasonCode: 'INSUFFICIENT_FUNDS', reasonText: expect.stringMatching(/комисс/) });
    expect(await client.getStatus(later.documentId)).toMatchObject({ status: 'rejected', reasonCode: 'ACCOUNT_SUSPENDED' });
  });

  it('a step executes the due documents together in the order received: an earlier payment can leave a later one short', async () => {
    const client = h.client();
    const payer = { ...sampleOrder().payer, iban: DEMO.poorIban };
    const internal = { name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, iban: DEMO.internalBeneficiaryIban, bic: 'TSESKZKA', kbe: '17' };
    await h.admin('PUT', `/accounts/${DEMO.poorIban}`, { balance: '700.00' });
    try {
      // 350.00 + 300.00 fee leaves 50.00; 10.00 + 300.00 no longer fits; 40.00 intrabank (no fee) does.
      const first = await client.submit(h.signed(sampleOrder({ number: nextNumber(), amount: '350.00', payer }), `batch-a-${n}`));
      const second = await client.submit(h.signed(sampleOrder({ number: nextNumber(), amount: '10.00', payer }), `batch-b-${n}`));
      const third = await client.submit(h.signed(sampleOrder({ number: nextNumber(), amount: '40.00', payer, beneficiary: internal }), `batch-c-${n}`));
      const creditedBefore = (await client.getStatement(DEMO.internalBeneficiaryIban, '2026-11-25', '2026-11-25')).lines.length;
      await h.admin('POST', '/clock/step');
      await h.admin('POST', '/clock/step');
      expect(await client.getStatus(first.documentId)).toMatchObject({ status: 'executed', fee: '300.00' });
      expect(await client.getStatus(second.documentId)).toMatchObject({ status: 'rejected', reasonCode: 'INSUFFICIENT_FUNDS' });
      expect(await client.getStatus(third.documentId)).toMatchObject({ status: 'executed', fee: '0.00' });
      const st = await client.getStatement(DEMO.poorIban, '2026-11-25', '2026-11-25');
      const ours = st.lines.filter((l) => [first.bankReference, third.bankReference].includes(l.bankReference ?? ''));
      expect(ours.map((l) => [l.bankReference, l.kind, l.amount])).toEqual([
        [first.bankReference, 'payment', 35000],
        [first.bankReference, 'fee', 30000],
        [third.bankReference, 'payment', 4000],
      ]);
      expect(checkStatementBalance(st).ok).toBe(true);
      expect((await client.listAccounts()).find((a) => a.iban === DEMO.poorIban)?.balance).toBe('10.00');
      const credited = await client.getStatement(DEMO.internalBeneficiaryIban, '2026-11-25', '2026-11-25');
      expect(credited.lines.slice(creditedBefore)).toEqual([expect.objectContaining({ direction: 'credit', amount: 4000, documentNumber: third.document.number })]);
    } finally {
      await h.admin('PUT', `/accounts/${DEMO.poorIban}`, { balance: '100.00' });
    }
  });
});

describe('requisite limits: what the validator passes, the bank takes (no 400 after signing)', () => {
  type Schema = { $ref?: string; allOf?: Schema[]; properties?: Record<string, Schema>; [k: string]: unknown };
  const spec = parse(readFileSync(join(__dirname, '../business-api/openapi.yaml'), 'utf8')) as { components: { schemas: Record<string, Schema> } };
  const resolve = (s: Schema): Schema => (s.$ref ? resolve(spec.components.schemas[s.$ref.split('/').pop() as string]) : s);
  /** Every constraint the contract puts on a requisite: path -> its keywords (maxLength, pattern, ...). */
  function contractLimits(schema: Schema, prefix = ''): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    const parts = [resolve(schema), ...(resolve(schema).allOf ?? []).map(resolve)];
    for (const part of parts) {
      for (const [name, raw] of Object.entries(part.properties ?? {})) {
        const prop = resolve(raw);
        if (prop.properties || prop.allOf) Object.assign(out, contractLimits(prop, `${prefix}${name}.`));
        const keywords = Object.keys(prop).filter((k) => ['maxLength', 'minLength', 'pattern', 'format', 'maximum', 'minimum', 'enum', 'const'].includes(k));
        if (keywords.length > 0) out[`${prefix}${name}`] = keywords.sort();
      }
    }
    return out;
  }
  // For each limit of the contract (and of the sandbox's request schema), a value just past it.
  const pastLimit: Record<string, (o: NormalisedOrder) => void> = {
    number: (o) => (o.number = '7'.repeat(65)),
    date: (o) => (o.date = '25.11.2026'),
    valueDate: (o) => (o.valueDate = '2026-11-5'),
    amount: (o) => (o.amount = '12345678901234567.00'),
    'payer.name': (o) => (o.payer.name = 'Ә'.repeat(501)),
    'beneficiary.name': (o) => (o.beneficiary.name = 'Ә'.repeat(501)),
    purpose: (o) => (o.purpose = 'я'.repeat(2001)),
    // The sandbox's own bounds (beyond openapi.yaml): currency at most 8, the payer's IIK at most 64.
    currency: (o) => (o.currency = 'KAZTENGE1'),
    'payer.iban': (o) => (o.payer.iban = `KZ${'0'.repeat(63)}`),
  };
  const validatorErrors = (o: NormalisedOrder) => validatePaymentOrder(o, { now: new Date('2026-11-25T04:00:00Z') }).errors.map((e) => e.field);

  it('knows every limit openapi.yaml puts on PaymentRequisites (a new one must be added to the validator)', () => {
    expect(contractLimits(spec.components.schemas.PaymentRequisites)).toEqual({
      number: ['maxLength', 'minLength'],
      date: ['format', 'pattern'],
      valueDate: ['format', 'pattern'],
      amount: ['pattern'],
      'payer.name': ['maxLength'],
      'beneficiary.name': ['maxLength'],
      purpose: ['maxLength'],
    });
  });

  it.each(Object.keys(pastLimit))('%s: a value past the limit is the validator\'s error, so it is never signed', (field) => {
    const order = sampleOrder({ number: nextNumber() });
    pastLimit[field](order);
    expect(validatorErrors(order)).toContain(field);
  });

  it('an order right at the limits passes the validator and the bank accepts it; one character more is refused as malformed', async () => {
    const client = h.client();
    const number = `${nextNumber()}-${'9'.repeat(59)}`;
    const order = sampleOrder({ number, payer: { ...sampleOrder().payer, name: 'Ә'.repeat(500) }, beneficiary: { ...sampleOrder().beneficiary, name: 'Ғ'.repeat(500) } });
    expect(order.number).toHaveLength(64);
    expect(validatorErrors(order)).toEqual([]);
    expect(await client.submit(h.signed(order, `lim-${n}`))).toMatchObject({ created: true, document: { number } });
    // What the validator now refuses is what the bank refuses (400 INVALID_REQUEST, never retried as is).
    for (const longer of [{ number: `${number}0` }, { payer: { ...order.payer, name: `${order.payer.name}Ә` } }]) {
      const over = { ...order, ...longer, number: longer.number ?? `${nextNumber()}-over` };
      expect(validatorErrors(over).length).toBeGreaterThan(0);
      const err = await caught(client.submit(h.signed(over, `lim-over-${n}`)));
      expect({ code: err.code, status: err.details.httpStatus, bankCode: err.details.bankCode }).toEqual({ code: 'CONTRACT_VIOLATION', status: 400, bankCode: 'INVALID_REQUEST' });
    }
  });
});

describe('not found, transient, rate limits, maintenance, contract violations', () => {
  it('NOT_FOUND for an unknown externalId, document id and account', async () => {
    const client = h.client();
    expect((await caught(client.lookup('never-sent'))).code).toBe('NOT_FOUND');
    expect((await caught(client.getStatus('D9999999999'))).code).toBe('NOT_FOUND');
    expect((await caught(client.getStatement(makeIban('998', 'CTB0000009998'), '2026-11-01', '2026-11-02'))).code).toBe('NOT_FOUND');
  });

  it('a safe call rides over a 5xx with backoff; a submit 5xx is OUTCOME_UNKNOWN, and lookup then settles it', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    const doc = await client.submit(h.signed(order, `t-${order.number}`));
    await h.admin('PUT', '/faults', { fail5xxNext: 2 });
    expect((await client.getStatus(doc.documentId)).documentId).toBe(doc.documentId);
    await h.admin('PUT', '/faults', { fail5xxNext: 10 });
    expect((await caught(h.client({ retry: { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 2 } }).getStatus(doc.documentId))).code).toBe('TRANSIENT');
    await h.admin('PUT', '/faults', { fail5xxNext: 1 });
    const order2 = sampleOrder({ number: nextNumber() });
    const err = await caught(client.submit(h.signed(order2, `t-${order2.number}`)));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    await h.admin('POST', '/faults/reset');
    expect((await caught(client.lookup(`t-${order2.number}`))).code).toBe('NOT_FOUND');
  });

  it('an unreachable bank is TRANSIENT, also for submit (nothing was sent)', async () => {
    const client = h.client({ baseUrl: 'http://127.0.0.1:9', retry: { maxAttempts: 1 } });
    expect((await caught(client.listAccounts())).code).toBe('TRANSIENT');
    const submitErr = await caught(client.submit(h.signed(sampleOrder({ number: nextNumber() }), `u-${n}`)));
    expect(submitErr.code).toBe('TRANSIENT');
  });

  it('429 with Retry-After: a safe call waits for it and succeeds; a submit gets RATE_LIMITED with retryAfterMs', async () => {
    const client = h.client();
    await client.listAccounts();
    await h.admin('PUT', '/faults', { rateLimitNext: 1, retryAfterSeconds: 1 });
    const started = Date.now();
    await client.listAccounts();
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    await h.admin('PUT', '/faults', { rateLimitNext: 1, retryAfterSeconds: 7 });
    const err = await caught(client.submit(h.signed(sampleOrder({ number: nextNumber() }), `rl-${n}`)));
    expect(err).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 7000 });
  });

  it('503 maintenance with Retry-After: waited for when short, handed to the caller when long', async () => {
    const client = h.client({ retry: { maxRetryAfterMs: 3_000 } });
    await client.listAccounts();
    await h.admin('PUT', '/faults', { maintenanceUntil: new Date(Date.now() + 1_200).toISOString() });
    const started = Date.now();
    await client.listAccounts();
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    await h.admin('PUT', '/faults', { maintenanceUntil: new Date(Date.now() + 60_000).toISOString() });
    const err = await caught(client.listAccounts());
    expect(err.code).toBe('MAINTENANCE');
    expect(err.retryAfterMs).toBeGreaterThan(50_000);
  });

  it('CONTRACT_VIOLATION when our request breaks the contract (400) or an answer fails its schema', async () => {
    const client = h.client();
    expect((await caught(client.getStatement(DEMO.payerIban, '2026-11-25', '2026-11-01'))).code).toBe('CONTRACT_VIOLATION');
    const liar: Server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url?.endsWith('/oauth/token')) return res.end(JSON.stringify({ access_token: 'x'.repeat(20), token_type: 'Bearer', expires_in: 60 }));
      return res.end(JSON.stringify({ documentId: 'D1', status: 42 }));
    });
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (liar.address() as AddressInfo).port;
      const c = h.client({ baseUrl: `http://127.0.0.1:${port}` });
      const err = await caught(c.getStatus('D1'));
      expect(err.code).toBe('CONTRACT_VIOLATION');
      expect(err.message).toMatch(/status/);
      // An unreadable success to a submit may hide an accepted document: unknown, not violated.
      const submitErr = await caught(c.submit(h.signed(sampleOrder({ number: nextNumber() }), `liar-${n}`)));
      expect(submitErr.code).toBe('OUTCOME_UNKNOWN');
    } finally {
      liar.close();
    }
  });
});

describe('the ambiguous timeout (exactly once)', () => {
  it('a submit whose answer never comes is OUTCOME_UNKNOWN; lookup finds it; the bank holds exactly one document', async () => {
    const client = h.client({ timeoutMs: 400 });
    const order = sampleOrder({ number: nextNumber() });
    const input = h.signed(order, `amb-${order.number}`);
    await h.admin('PUT', '/faults', { timeoutAfterAcceptNext: 1 });
    const err = await caught(client.submit(input));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    const found = await client.lookup(input.externalId);
    expect(found).toMatchObject({ externalId: input.externalId, status: 'accepted' });
    const docs = await h.admin<{ documents: Array<{ externalId: string; document: { number: string } }> }>('GET', '/documents');
    expect(docs.documents.filter((d) => d.document.number === order.number)).toHaveLength(1);
    const entry = (await h.admin<Ledger>('GET', '/submissions')).submissions.find((s) => s.externalId === input.externalId)!;
    expect(entry).toMatchObject({ requests: 1, accepted: true, afterAccepted: 0 });
  });

  it('a caller AbortSignal during a submit is OUTCOME_UNKNOWN too (the bytes may have left)', async () => {
    const client = h.client();
    await client.listAccounts();
    await h.admin('PUT', '/faults', { timeoutAfterAcceptNext: 1 });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const order = sampleOrder({ number: nextNumber() });
    const err = await caught(client.submit(h.signed(order, `ab-${order.number}`), { signal: ac.signal }));
    expect(err.code).toBe('OUTCOME_UNKNOWN');
    expect((await client.lookup(`ab-${order.number}`)).status).toBe('accepted');
  });
});

describe('secrets never leak (R-4)', () => {
  it('neither the Client Secret nor a token appears in errors or debug logs', async () => {
    const canary = `CANARY-${Date.now()}-secret`;
    const chunks: string[] = [];
    const sink = new Writable({ write(chunk, _enc, cb) { chunks.push(String(chunk)); cb(); } });
    const logger = createLogger({ level: 'trace' }, sink);
    const wrong = h.client({ credentials: new StaticCredentialsProvider({ clientId: 'test-client', clientSecret: canary }), logger });
    const errors: unknown[] = [await caught(wrong.listAccounts())];
    const good = h.client({ logger });
    const tokenRes = await fetch(`${h.url}/api/v1/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`test-client:${h.secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials',
    });
    const { access_token: token } = (await tokenRes.json()) as { access_token: string };
    await good.listAccounts();
    await h.admin('PUT', '/faults', { fail5xxNext: 1 });
    errors.push(await caught(good.submit(h.signed(sampleOrder({ number: nextNumber() }), `sec-${n}`))));
    errors.push(await caught(good.lookup('none-such')));
    const text = [...chunks, ...errors.map((e) => `${JSON.stringify(e)} ${(e as Error).message} ${(e as Error).stack}`)].join('\n');
    expect(chunks.length).toBeGreaterThan(0);
    for (const secret of [canary, h.secret, token, Buffer.from(`test-client:${canary}`).toString('base64')]) expect(text).not.toContain(secret);
  });
});

describe('restart', () => {
  it('documents, tokens, balances and the ledger survive a sandbox restart', async () => {
    const client = h.client();
    const order = sampleOrder({ number: nextNumber() });
    const doc = await client.submit(h.signed(order, `rs-${order.number}`));
    const ledgerBefore = await h.admin<Ledger>('GET', '/submissions');
    const tokensBefore = client.tokenRequests;
    await h.restart();
    expect((await client.lookup(doc.externalId)).documentId).toBe(doc.documentId);
    expect(client.tokenRequests).toBe(tokensBefore);
    expect(await h.admin<Ledger>('GET', '/submissions')).toEqual(ledgerBefore);
  });
});
