import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { BankError } from '../../../adapters/bank/business-api/business-api.errors';
import { fetchAndReconcile } from '../../../queue/jobs/fetch-statement.job';
import { renderStatementFile, writeFileAtomic, type Encoding } from '../../../queue/jobs/write-back.job';
import { createAppContext } from '../../app/app-context';
import { ConnectorError, UsageError } from '../../shared/errors';
import { runAction } from '../run-action';

/**
 * `connector onec statement --account IBAN --from DATE --to DATE --out FILE [--encoding windows|utf8]`
 * (INTERFACES.md): writes the statement file 1C imports. By default the statement is first fetched
 * from the bank, stored and reconciled (like the scheduled fetch); `--no-fetch` writes what is
 * already stored.
 */
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const IBAN = /^KZ\d{2}[0-9A-Z]{16}$/;

interface StatementOptions {
  account: string;
  from: string;
  to: string;
  out: string;
  encoding?: Encoding;
  fetch: boolean;
  json?: boolean;
}

export function registerStatementsCommands(program: Command): void {
  // `onec` belongs to the ERP commands; add to it (or create it when this registrar runs alone).
  const onec = program.commands.find((c) => c.name() === 'onec') ?? program.command('onec').description('1C exchange files');
  onec
    .command('statement')
    .description('write the statement file 1C imports (kl_to_1c.txt) for one account and date range')
    .requiredOption('--account <iban>', 'the account (IIK/IBAN)')
    .requiredOption('--from <date>', 'first day, YYYY-MM-DD (Kazakhstan date)')
    .requiredOption('--to <date>', 'last day, YYYY-MM-DD')
    .requiredOption('--out <file>', 'where to write the file')
    .addOption(new Option('--encoding <encoding>', 'windows = cp1251 (what 1C expects), utf8 = UTF-8 with BOM; default: config onec.encoding').choices(['windows', 'utf8']))
    .option('--no-fetch', 'do not ask the bank: write what is stored')
    .option('--json', 'print a JSON summary on stdout')
    .action(runAction(async (opts: StatementOptions) => statementCommand(opts)));
}

async function statementCommand(opts: StatementOptions): Promise<number> {
  const account = opts.account.toUpperCase().replace(/\s+/g, '');
  if (!IBAN.test(account)) throw new UsageError(`--account ${opts.account} is not a Kazakhstan IBAN (KZ + 18 characters)`);
  if (!ISO_DATE.test(opts.from) || !ISO_DATE.test(opts.to)) throw new UsageError('--from and --to must be dates YYYY-MM-DD');
  if (opts.from > opts.to) throw new UsageError('--from must not be after --to');
  const context = await createAppContext({ name: 'connector-cli', role: 'producer' });
  try {
    let fetched: Awaited<ReturnType<typeof fetchAndReconcile>> | undefined;
    if (opts.fetch) {
      try {
        fetched = await fetchAndReconcile(context, account, opts.from, opts.to);
      } catch (err) {
        if (err instanceof BankError) throw new ConnectorError(err.code, `the bank's statement could not be fetched: ${err.message} (use --no-fetch to write what is stored)`);
        throw err;
      }
    }
    const encoding = opts.encoding ?? context.config.onec.encoding;
    const { render, statements } = await renderStatementFile(context.orm.em.fork(), [account], opts.from, opts.to, encoding);
    const path = resolve(opts.out);
    await writeFileAtomic(path, render(context.clock.now()));
    const s = statements[0];
    const summary = {
      path,
      account,
      from: opts.from,
      to: opts.to,
      encoding,
      lines: s.lines.filter((l) => l.status === 'booked').length,
      openingBalance: s.openingBalance,
      closingBalance: s.closingBalance,
      fetched: fetched ? { stored: fetched.stored, duplicates: fetched.duplicates, matched: fetched.matched, executed: fetched.executed, incidents: fetched.incidents.length } : null,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
    else {
      process.stdout.write(`${path}\n`);
      process.stderr.write(`${account} ${opts.from}..${opts.to}: ${summary.lines} booked lines, ${encoding}${fetched ? `; fetched: ${fetched.stored} new lines, ${fetched.incidents.length} new incidents` : ''}\n`);
    }
    return 0;
  } finally {
    await context.close();
  }
}
