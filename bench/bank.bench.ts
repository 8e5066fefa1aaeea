import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { BusinessApiClient, type SubmitPaymentInput } from '../adapters/bank/business-api/business-api.client';
import { StaticCredentialsProvider } from '../adapters/bank/business-api/credentials.provider';
import { buildPaymentOrderDocument, requisitesFromOrder } from '../adapters/bank/business-api/payment-order.document';
import { DEMO, loadSandboxConfig } from '../adapters/bank/sandbox/sandbox.config';
import { makeIban, makeIinBin } from '../adapters/bank/sandbox/sandbox.requisites';
import { kzDate } from '../adapters/bank/sandbox/sandbox.clock';
import { startSandbox } from '../adapters/bank/sandbox/sandbox.server';
import { createTestCa, issueSigner, signDetached } from '../adapters/bank/sandbox/test-ca';

/**
 * `npm run bench:bank`: submits/s and status calls/s of the real client against the real sandbox
 * on loopback (both in this process), on a throwaway schema of CONNECTOR_DATABASE_URL.
 * BENCH_SUBMITS (default 1000), BENCH_STATUS (default 5000), BENCH_CONCURRENCY (default 16).
 */
async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) {
        const item = items[next];
        next += 1;
        await work(item);
      }
    }),
  );
}

async function main(): Promise<void> {
  const submits = Number(process.env.BENCH_SUBMITS ?? 1000);
  const statusCalls = Number(process.env.BENCH_STATUS ?? 5000);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 16);
  const databaseUrl = process.env.CONNECTOR_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/connector';
  const schema = `sandbox_bench_${randomBytes(4).toString('hex')}`;
  const ca = createTestCa();
  const signer = issueSigner(ca, { commonName: 'Bench signer', iin: '800101300006', bin: DEMO.payerBin });
  const secret = randomBytes(16).toString('hex');
  const config = loadSandboxConfig({}, {
    databaseUrl,
    schema,
    port: 0,
    clients: [{ clientId: 'bench', clientSecret: secret }],
    trustPem: [ca.certPem],
    clock: { speed: 0 },
    accounts: [{ iban: DEMO.payerIban, name: 'Bench', iinBin: DEMO.payerBin, balance: '9999999999.00', status: 'active' }],
  });
  const sandbox = await startSandbox({ config, port: 0 });
  const client = new BusinessApiClient({ baseUrl: sandbox.url, apiVersion: 'v1', credentials: new StaticCredentialsProvider({ clientId: 'bench', clientSecret: secret }) });
  try {
    const beneficiary = { name: 'ТОО Поставщик', iinBin: makeIinBin('95044000000'), iban: makeIban('856', '0000000000042'), bic: 'KCJBKZKX', kbe: '17' };
    // Documents dated today (KZ time): the bank's requisite rules refuse stale or future dates.
    const today = kzDate(new Date());
    const inputs: SubmitPaymentInput[] = Array.from({ length: submits }, (_, i) => {
      const order = {
        number: String(i + 1), date: today, amount: '1000.00', currency: 'KZT',
        payer: { name: 'Bench', iinBin: DEMO.payerBin, iban: DEMO.payerIban, bic: 'TSESKZKA', kod: '17' },
        beneficiary, knp: '710', purpose: `Bench payment ${i + 1}`,
      };
      const document = buildPaymentOrderDocument(order, `bench-${i + 1}`);
      return { externalId: `bench-${i + 1}`, document, signatures: [signDetached(document, signer)], requisites: requisitesFromOrder(order) };
    });
    await client.listAccounts(); // token and keep-alive warm-up
    const ids: string[] = [];
    let t0 = process.hrtime.bigint();
    await pool(inputs, concurrency, async (input) => ids.push((await client.submit(input)).documentId));
    const submitSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const statusTargets = Array.from({ length: statusCalls }, (_, i) => ids[i % ids.length]);
    t0 = process.hrtime.bigint();
    await pool(statusTargets, concurrency, (id) => client.getStatus(id));
    const statusSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const ledger = await sandbox.store.ledger();
    process.stdout.write(
      [
        `bank bench (loopback, client and sandbox in one process, concurrency ${concurrency}, node ${process.version})`,
        `submits: ${submits} in ${submitSeconds.toFixed(2)} s = ${(submits / submitSeconds).toFixed(0)} submits/s (CMS verified, XML parsed, PostgreSQL committed)`,
        `status calls: ${statusCalls} in ${statusSeconds.toFixed(2)} s = ${(statusCalls / statusSeconds).toFixed(0)} status calls/s`,
        `ledger: total ${ledger.total}, duplicates ${ledger.duplicates}; token requests: ${client.tokenRequests}`,
      ].join('\n') + '\n',
    );
  } finally {
    client.close();
    await sandbox.close();
    const pg = new Client({ connectionString: databaseUrl });
    await pg.connect();
    await pg.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await pg.end();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
