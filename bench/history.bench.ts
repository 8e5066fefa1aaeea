import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { loadConfig } from '../config/load-config';
import { migrate } from '../connector/persistence/database';
import { withOrm } from '../connector/app/app-context';
import { kzCalendarFromConfig } from '../connector/calendar/kz-business-calendar';
import { statementAccounts } from '../connector/statements/statement.schedule';
import { reconcileAccount } from '../connector/statements/reconciliation';
import { orderIdsPage } from '../connector/orders/order-list';
import { statusReportEntries } from '../queue/jobs/write-back.job';
import { PAYMENT_ORDER_HISTORY_INDEXES } from '../connector/persistence/migrations/Migration20261126040000_history_indexes';

/**
 * `npm run bench:history [-- --orders N] [--keep]`: the queries that run all day (every write-back, every
 * statements job, every ERP polling the API) over N orders of history (default 1,000,000: two
 * years at about 1,400 a day on 5 accounts), in a private database dropped afterwards. Each is
 * timed (median of 5 runs after a warm-up) without the indexes of migration 20261126040000 and
 * with them, side by side in one run; building them is timed too. --keep leaves the database for a look.
 * A benchmark that prints figures, never a timed test.
 */
const INDEXES = PAYMENT_ORDER_HISTORY_INDEXES;
const ACCOUNTS = 5;
const DAYS = 730;
const NOW = new Date('2026-11-26T06:00:00Z');
const DAY = '2026-11-24';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} expects a whole number >= 1`);
  return value;
}

const accountOf = (i: number) => `KZ${String(10 + i).padStart(2, '0')}998CTB000000000${i}`;

async function timeIt(run: () => Promise<unknown>): Promise<number> {
  await run();
  const times: number[] = [];
  for (let i = 0; i < 5; i += 1) {
    const start = process.hrtime.bigint();
    await run();
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  return times.sort((a, b) => a - b)[2];
}

const ms = (v: number) => (v >= 100 ? `${v.toFixed(0)} ms` : `${v.toFixed(1)} ms`);

async function main(): Promise<void> {
  const orders = arg('orders', 1_000_000);
  const server = process.env.CONNECTOR_BENCH_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432';
  const dbName = `connector_bench_history_${randomBytes(4).toString('hex')}`;
  const config = loadConfig({ env: { ...process.env, CONNECTOR_DATABASE_URL: `${server}/${dbName}`, CONNECTOR_TEST_MODE: '1' } });
  const admin = new Client({ connectionString: `${server}/postgres` });
  await admin.connect();
  const db = new Client({ connectionString: config.database.url });
  try {
    await migrate(config);
    await db.connect();
    let started = Date.now();
    process.stderr.write(`history: seeding ${orders.toLocaleString('en')} orders over ${DAYS} days on ${ACCOUNTS} accounts...\n`);
    // The same kind of rows the pipeline leaves: nearly all final, the last 200 still on their way.
    await db.query(
      `insert into payment_order (id, source, number, doc_date, value_date, amount_tiyn, currency, payer_name, payer_iin_bin, payer_iban, payer_bic, payer_kod,
         beneficiary_name, beneficiary_iin_bin, beneficiary_iban, beneficiary_bic, beneficiary_kbe, knp, purpose, state, external_id, bank_reference,
         created_at, updated_at, state_changed_at)
       select gen_random_uuid(), 'onec', (g % 20000 + 1)::text, (d at time zone 'Asia/Almaty')::date, (d at time zone 'Asia/Almaty')::date, 100000 + (g % 997) * 100, 'KZT',
         'ТОО Компания', '123456789012', 'KZ' || lpad((10 + g % ${ACCOUNTS})::text, 2, '0') || '998CTB000000000' || (g % ${ACCOUNTS}), 'TSESKZKA', '17',
         'ТОО Поставщик ' || (g % 300), '987654321098', 'KZ11998CTB' || lpad((g % 3000)::text, 10, '0'), 'TSESKZKA', '17', '710', 'Оплата по договору ' || g,
         case when g > $1 - 200 then (array['received','validated','awaiting_signatures','signed','submitted','failed'])[1 + g % 6]
              when g % 50 = 0 then 'rejected' when g % 97 = 0 then 'invalid' else 'executed' end,
         'ext-' || g, 'ref-' || g, d, d, d + interval '2 hours'
       from (select g, $2::timestamptz - ((($1 - g) * ${DAYS} * 86400.0 / $1) * interval '1 second') as d from generate_series(1, $1::int) g) s`,
      [orders, NOW.toISOString()],
    );
    // One account's booked debits for the closed day, naming their orders the ways a bank does.
    const account = accountOf(1);
    await db.query(
      `insert into statement_line (id, account, bank_line_id, booking_date, value_date, direction, amount_tiyn, currency, status, kind,
         counterparty_name, counterparty_iin_bin, counterparty_iban, counterparty_bic, purpose, knp, document_number, document_date, bank_reference, external_id, created_at)
       select gen_random_uuid(), payer_iban, 'line-' || external_id, doc_date, doc_date, 'debit', amount_tiyn, 'KZT', 'booked', 'payment',
         beneficiary_name, beneficiary_iin_bin, beneficiary_iban, beneficiary_bic, purpose, knp, number, doc_date, bank_reference, external_id, now()
       from payment_order where payer_iban = $1 and doc_date = $2 and state = 'executed'`,
      [account, DAY],
    );
    await db.query('analyze payment_order; analyze statement_line');
    const lines = Number((await db.query('select count(*) as n from statement_line')).rows[0].n);
    process.stderr.write(`history: seeded in ${((Date.now() - started) / 1000).toFixed(1)} s (${lines} statement lines of ${DAY} on ${account})\n`);

    const calendar = kzCalendarFromConfig(config);
    const since = new Date(NOW.getTime() - config.pipeline.statusReportDays * 86_400_000).toISOString().slice(0, 10);
    const measure = () =>
      withOrm(config, async (orm) => {
        const em = () => orm.em.fork();
        const out: Array<[string, number]> = [];
        out.push(['accounts followed (each write-back and statements job)', await timeIt(() => statementAccounts(em(), [], NOW))]);
        out.push([`1C status report entries (${config.pipeline.statusReportDays} days)`, await timeIt(() => statusReportEntries(em(), since))]);
        out.push([`matching a closed day's ${lines} lines to orders`, await timeIt(() => reconcileAccount(em(), account, DAY, DAY, { calendar, now: NOW, actor: 'bench' }))]);
        out.push(['API orders list, first page', await timeIt(() => orderIdsPage(em(), { accounts: 'all', limit: 51 }))]);
        out.push(['API orders list, state=executed', await timeIt(() => orderIdsPage(em(), { accounts: 'all', state: 'executed', limit: 51 }))]);
        out.push(['API orders list, one account', await timeIt(() => orderIdsPage(em(), { accounts: [accountOf(2)], limit: 51 }))]);
        out.push(['API orders list, one account, state=failed', await timeIt(() => orderIdsPage(em(), { accounts: [accountOf(2)], state: 'failed', limit: 51 }))]);
        out.push(['API orders list, two accounts, state=rejected', await timeIt(() => orderIdsPage(em(), { accounts: [accountOf(2), accountOf(3)], state: 'rejected', limit: 51 }))]);
        return out;
      });

    await db.query(`drop index ${INDEXES.map((i) => i.name).join(', ')}`);
    const without = await measure();
    started = Date.now();
    for (const index of INDEXES) await db.query(`create index ${index.name} on ${index.on}`);
    await db.query('analyze payment_order');
    const buildMs = Date.now() - started;
    const withIndexes = await measure();

    const width = Math.max(...without.map(([name]) => name.length));
    process.stdout.write(`history: ${orders.toLocaleString('en')} orders, PostgreSQL on loopback; median of 5 runs each, without / with the indexes of migration 20261126040000\n`);
    for (let i = 0; i < without.length; i += 1) {
      const [name, before] = without[i];
      const after = withIndexes[i][1];
      process.stdout.write(`${name.padEnd(width)}  ${ms(before).padStart(8)}  ${ms(after).padStart(8)}  ${(before / after).toFixed(1).padStart(7)}x\n`);
    }
    process.stdout.write(`building the ${INDEXES.length} indexes on ${orders.toLocaleString('en')} orders: ${(buildMs / 1000).toFixed(1)} s\n`);
  } finally {
    await db.end().catch(() => undefined);
    if (process.argv.includes('--keep')) process.stderr.write(`history: kept database ${dbName} (--keep)\n`);
    else await admin.query(`drop database if exists "${dbName}" with (force)`).catch(() => undefined);
    await admin.end();
  }
}

main().catch((err: Error) => {
  process.stderr.write(`bench:history failed: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
