import type { EntityManager } from '@mikro-orm/postgresql';
import type { Command } from 'commander';
import { Option } from 'commander';
import { judgeOnecDocument } from '../../../adapters/erp/onec-exchange/onec-document.judge';
import { readOnecExchangeFile } from '../../../adapters/erp/onec-exchange/onec-exchange.reader';
import { ONEC_SOURCE, type OnecFileSummary, type OnecIssue } from '../../../adapters/erp/onec-exchange/onec-exchange.types';
import { loadConfig } from '../../../config/load-config';
import { encodeOnecText, writeOnecStatement } from '../../../adapters/erp/onec-exchange/onec-statement.writer';
import { ONEC_STATUS_END, renderOnecStatusHeader, renderOnecStatusSections } from '../../../adapters/erp/onec-exchange/onec-status.writer';
import { statusReportPages } from '../../../queue/jobs/write-back.job';
import { writeFileAtomic } from '../../shared/atomic-file';
import { outFileError, outFilePath } from '../out-file';
import { withOrm } from '../../app/app-context';
import { allowWorkBetweenStatements, READ_ONLY_SNAPSHOT } from '../../persistence/database';
import { loadStoredStatement } from '../../statements/statement.repository';
import { formatAmount } from '../../shared/money';
import { defaultBankDirectory } from '../../requisites/bank-directory';
import { checkBic } from '../../requisites/bic.validator';
import { checkIban, checkIbanFormat, ibanBankCode } from '../../requisites/iban.validator';
import { requisiteRefusal } from '../../requisites/requisite-rule';
import { checkBin, checkIin } from '../../requisites/iin-bin.validator';
import { checkKnp, findKnp } from '../../requisites/knp.validator';
import type { RuleResult } from '../../requisites/requisite-rule';
import { ConnectorError, UsageError } from '../../shared/errors';
import { clockFromConfig } from '../../shared/clock';
import { parseKzInstant } from '../../calendar/kz-time';
import { runAction } from '../run-action';

/**
 * ERP-side commands (INTERFACES.md "CLI conventions" and "1C files"):
 * `connector onec parse FILE [--json]` and `connector validate (--iin|--bin|--iban|--bic|--knp) V [--json]`.
 */
export function registerErpCommands(program: Command): void {
  const onec = program.command('onec').description('1C exchange files (1CClientBankExchange, Kazakhstan variant)');
  onec
    .command('parse')
    .description('read a 1C exchange file (payment orders or a bank statement) and judge every document')
    .argument('<file>', 'the 1CClientBankExchange file')
    .option('--json', 'JSON lines: one per document, then a summary line')
    .action(runAction(async (file: string, opts: { json?: boolean }) => parseCommand(file, Boolean(opts.json))));
  onec
    .command('statement')
    .description('write the statement file 1C imports (kl_to_1c.txt) from the stored bank statement lines')
    .requiredOption('--account <iban>', 'the account (IIK)')
    .requiredOption('--from <date>', 'first day, YYYY-MM-DD')
    .requiredOption('--to <date>', 'last day, YYYY-MM-DD')
    .requiredOption('--out <file>', 'where to write the file')
    .addOption(new Option('--encoding <encoding>', 'windows (cp1251, what 1C expects) or utf8').choices(['windows', 'utf8']))
    .action(runAction(async (opts: StatementOptions) => statementCommand(opts)));
  onec
    .command('statuses')
    .description('write the status report of exported documents for 1C users (accepted, executed, rejected with reason)')
    .requiredOption('--out <file>', 'where to write the report')
    .option('--since <iso>', 'only orders whose state changed at or after this moment (without an offset, or a date alone, Kazakhstan time)')
    .option('--source <source>', 'intake source of the orders', ONEC_SOURCE)
    .addOption(new Option('--encoding <encoding>', 'windows (cp1251) or utf8').choices(['windows', 'utf8']))
    .action(runAction(async (opts: StatusesOptions) => statusesCommand(opts)));

  program
    .command('validate')
    .description('check one Kazakhstan requisite: exit 0 valid, 1 invalid (naming the rule), 2 usage')
    .addOption(new Option('--iin <value>', 'individual identification number (12 digits)'))
    .addOption(new Option('--bin <value>', 'business identification number (12 digits)'))
    .addOption(new Option('--iban <value>', 'IIK, the Kazakhstan IBAN (KZ + 18)'))
    .addOption(new Option('--bic <value>', 'bank BIC (8 characters)'))
    .addOption(new Option('--knp <value>', 'purpose-of-payment code (3 digits)'))
    .option('--json', 'one JSON document on stdout')
    .action(runAction(async (opts: Record<string, string | boolean | undefined>) => validateCommand(opts)));
}

function issueJson(issue: OnecIssue): Record<string, unknown> {
  const out: Record<string, unknown> = { field: issue.field, code: issue.code, message: issue.message, line: issue.line };
  if (issue.key !== undefined) out.key = issue.key;
  out.messageEn = issue.messageEn;
  return out;
}

function human(issue: OnecIssue, file: string): string {
  return `${file}:${issue.line}: ${issue.field}: ${issue.code}: ${issue.message}`;
}

async function parseCommand(file: string, json: boolean): Promise<number> {
  const config = loadConfig();
  const now = clockFromConfig(config).now();
  let summary: OnecFileSummary | undefined;
  let documents = 0;
  let ok = 0;
  let warnings = 0;
  const write = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  // INTERFACES.md, CLI conventions: warnings go to stderr; stdout keeps what was asked for (the
  // documents' verdicts, their errors, the summary), so `> report.txt` holds no warning.
  const warn = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  try {
    for await (const event of readOnecExchangeFile(file)) {
      if (event.type === 'document') {
        const judged = judgeOnecDocument(event.document, { now, rules: config.requisites });
        documents += 1;
        warnings += judged.warnings.length;
        if (judged.ok) ok += 1;
        if (json) {
          const line = judged.ok
            ? { line: judged.line, kind: judged.kind, ok: true, order: judged.order, warnings: judged.warnings.map(issueJson) }
            : { line: judged.line, kind: judged.kind, ok: false, errors: judged.errors.map(issueJson), warnings: judged.warnings.map(issueJson) };
          write(JSON.stringify(line));
        } else {
          const o = judged.order;
          write(`line ${judged.line} ${judged.kind || '(no kind)'} №${o.number} ${o.date} ${o.amount} ${o.currency}${o.direction ? ` ${o.direction}` : ''}: ${judged.ok ? 'OK' : 'INVALID'}`);
          for (const e of judged.errors) write(`  error   ${human(e, file)}`);
          for (const w of judged.warnings) warn(`warning ${human(w, file)}`);
        }
      } else if (event.type === 'end') {
        summary = event.file;
      }
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConnectorError('FILE_UNREADABLE', `${file} cannot be read: ${code ?? (err as Error).message}`, 2);
  }
  const s = summary as OnecFileSummary;
  warnings += s.warnings.length;
  const out = {
    summary: {
      documents,
      ok,
      invalid: documents - ok,
      warnings,
      encoding: s.encoding,
      file,
      exchange: s.exchange,
      complete: s.complete,
      balances: s.balances,
      declaredEncoding: s.declaredEncoding ?? null,
      fileErrors: s.errors.map(issueJson),
      fileWarnings: s.warnings.map(issueJson),
    },
  };
  if (json) write(JSON.stringify(out));
  else {
    for (const e of s.errors) write(`error   ${human(e, file)}`);
    for (const w of s.warnings) warn(`warning ${human(w, file)}`);
    write(`${file}: ${documents} documents, ${ok} ok, ${documents - ok} invalid, ${warnings} warnings, encoding ${s.encoding}`);
  }
  if (!s.exchange) {
    const first = s.errors[0];
    process.stderr.write(`NOT_EXCHANGE_FILE: ${first ? first.messageEn : `${file} is not a 1CClientBankExchange file`}\n`);
    return 2;
  }
  return 0;
}

interface StatementOptions {
  account: string;
  from: string;
  to: string;
  out: string;
  encoding?: 'windows' | 'utf8';
}

const ISO_DAY = /^\d{4}-\d{2}-\d{2}$/;

async function statementCommand(opts: StatementOptions): Promise<number> {
  for (const [name, value] of [
    ['--from', opts.from],
    ['--to', opts.to],
  ] as const) {
    if (!ISO_DAY.test(value) || Number.isNaN(Date.parse(`${value}T00:00:00Z`)) || new Date(`${value}T00:00:00Z`).toISOString().slice(0, 10) !== value) {
      throw new UsageError(`${name} ${value} is not a date: expected YYYY-MM-DD`);
    }
  }
  if (opts.from > opts.to) throw new UsageError(`--from ${opts.from} is after --to ${opts.to}`);
  const out = outFilePath('--out', opts.out, 'kl_to_1c.txt');
  const account = opts.account.trim().toUpperCase();
  // A mistyped account is refused naming the rule it breaks (INVALID_ACCOUNT, exit 1, as `users
  // grant` and `api-keys create` refuse one): it used to be looked up and answered NO_STATEMENT
  // with advice to add it to pipeline.accounts. Format and mod-97 only: an account of a bank
  // missing from the directory is still looked up.
  const iban = checkIbanFormat(account);
  if (!iban.ok) throw requisiteRefusal('INVALID_ACCOUNT', '--account', opts.account, iban);
  const config = loadConfig();
  const encoding = opts.encoding ?? config.onec.encoding;
  const now = clockFromConfig(config).now();
  const stored = await withOrm(config, (orm) => loadStoredStatement(orm.em.fork() as EntityManager, account, opts.from, opts.to, { erpSource: ONEC_SOURCE }));
  const written = writeOnecStatement(stored.statement, {
    encoding,
    owner: { name: stored.holder.name, iinBin: stored.holder.iinBin, bic: stored.holder.bic, code: stored.holder.code },
    createdAt: now,
    utcOffsetMinutes: config.requisites.utcOffsetMinutes,
  });
  await writeFileAtomic(out, written.bytes).catch((err: unknown) => {
    throw outFileError('--out', out, err);
  });
  for (const w of [...stored.warnings, ...written.warnings]) process.stderr.write(`warning: ${w}\n`);
  const s = stored.statement;
  process.stderr.write(`${out}: ${s.lines.length} lines, ${s.periodFrom}..${s.periodTo}, opening ${formatAmount(s.openingBalance)}, closing ${formatAmount(s.closingBalance)} ${s.currency}, ${encoding === 'windows' ? 'cp1251' : 'utf8'}\n`);
  process.stdout.write(`${out}\n`);
  return 0;
}

interface StatusesOptions {
  out: string;
  since?: string;
  source: string;
  encoding?: 'windows' | 'utf8';
}


async function statusesCommand(opts: StatusesOptions): Promise<number> {
  let since: Date | undefined;
  if (opts.since !== undefined) {
    // Without an offset (a date alone: its start), Kazakhstan time: never the zone of the machine.
    since = parseKzInstant(opts.since, { dateOnly: true }) ?? undefined;
    if (!since) throw new UsageError(`--since ${opts.since} is not a moment: expected ISO, e.g. 2026-11-25T00:00:00+05:00 (without an offset, Kazakhstan time)`);
  }
  const out = outFilePath('--out', opts.out, 'kl_to_1c_status.txt');
  const config = loadConfig();
  const now = clockFromConfig(config).now();
  const encoding = opts.encoding ?? config.onec.encoding;
  const utcOffsetMinutes = config.requisites.utcOffsetMinutes;
  let written = 0;
  // A page at a time (years of orders in constant memory), all of one snapshot of the database,
  // into a temp file renamed at the end: 1C never reads a half-written report, and a failure
  // leaves the previous one in place.
  const known = await withOrm(config, async (orm) => {
    await orm.em.fork().transactional(async (tx) => {
      // Pages are encoded and written to disk between the fetches: the snapshot is not idle, it works.
      await allowWorkBetweenStatements(tx);
      await writeFileAtomic(
        out,
        (async function* report() {
          yield encodeOnecText(renderOnecStatusHeader({ encoding, createdAt: now, utcOffsetMinutes }), encoding);
          for await (const page of statusReportPages(tx as EntityManager, { source: opts.source, since })) {
            yield encodeOnecText(renderOnecStatusSections(page, utcOffsetMinutes), encoding, { continued: true });
            written += page.length;
            if (written % 100_000 < page.length) process.stderr.write(`${out}: ${written} documents so far\n`);
          }
          yield encodeOnecText(ONEC_STATUS_END, encoding, { continued: true });
        })(),
      ).catch((err: unknown) => {
        throw outFileError('--out', out, err);
      });
    }, READ_ONLY_SNAPSHOT);
    return written === 0 ? knownSources(orm.em.fork(), opts.source) : null;
  });
  process.stderr.write(`${out}: ${written} documents\n`);
  // An empty report is also what a mistyped --source gives: say so, and which sources there are.
  if (known && !known.exists) {
    process.stderr.write(
      `warning: no orders of source "${opts.source}" exist; ` +
        `${known.sources.length ? `sources with orders: ${known.sources.join(', ')}${known.more ? ', ...' : ''}` : 'no orders have been received yet'}\n`,
    );
  }
  process.stdout.write(`${out}\n`);
  return 0;
}

const LISTED_SOURCES = 50;

/**
 * Whether any order of `source` exists, and the sources that have orders (`onec`, `console`,
 * `api:<key name>`, ...). No index leads with `source` (the natural key is payer account, number
 * and date, whatever the source), so the list is one pass over the orders: it is asked only when
 * the source given has none, i.e. for a typo.
 */
async function knownSources(em: EntityManager, source: string): Promise<{ exists: boolean; sources: string[]; more: boolean }> {
  const [hit] = await em.execute<Array<{ exists: boolean }>>('select exists(select 1 from payment_order where source = ?) as exists', [source]);
  if (hit?.exists) return { exists: true, sources: [], more: false };
  const rows = await em.execute<Array<{ source: string }>>('select source from payment_order group by source order by source limit ?', [LISTED_SOURCES + 1]);
  return { exists: false, sources: rows.slice(0, LISTED_SOURCES).map((r) => r.source), more: rows.length > LISTED_SOURCES };
}

const KINDS = ['iin', 'bin', 'iban', 'bic', 'knp'] as const;
type Kind = (typeof KINDS)[number];

async function validateCommand(opts: Record<string, string | boolean | undefined>): Promise<number> {
  const given = KINDS.filter((k) => typeof opts[k] === 'string');
  if (given.length !== 1) throw new UsageError('give exactly one of --iin, --bin, --iban, --bic, --knp with a value');
  const kind: Kind = given[0];
  const value = (opts[kind] as string).trim();
  const json = Boolean(opts.json);
  let result: RuleResult;
  const info: Record<string, unknown> = {};
  const warnings: { code: string; message: string; messageEn: string }[] = [];
  switch (kind) {
    case 'iin':
      result = checkIin(value);
      break;
    case 'bin':
      result = checkBin(value);
      break;
    case 'iban': {
      const upper = value.toUpperCase().replace(/\s+/g, '');
      result = checkIban(upper);
      if (checkIbanFormat(upper).ok) {
        const banks = defaultBankDirectory.findByIbanCode(ibanBankCode(upper));
        if (banks.length > 0) info.bank = { code: ibanBankCode(upper), bics: banks.map((b) => b.bic), name: banks[0].name };
      }
      break;
    }
    case 'bic': {
      result = checkBic(value.toUpperCase());
      const bank = defaultBankDirectory.findByBic(value.toUpperCase());
      if (bank) info.bank = { code: bank.ibanCode, name: bank.name, active: bank.active !== false };
      break;
    }
    case 'knp': {
      result = checkKnp(value);
      if (!result.ok && result.code === 'KNP_UNKNOWN') {
        // The shipped list is partial: an unknown code is valid unless the config says otherwise.
        const strict = loadConfig().requisites.unknownKnp === 'error';
        if (!strict) {
          warnings.push({ code: result.code, message: result.message, messageEn: result.messageEn });
          result = { ok: true };
        }
      }
      const known = findKnp(value);
      if (known) info.knp = { name: known.name };
      break;
    }
    default: {
      const never: never = kind;
      throw new UsageError(`unknown requisite ${String(never)}`);
    }
  }
  for (const w of warnings) process.stderr.write(`warning ${w.code}: ${w.messageEn}\n`);
  if (json) {
    process.stdout.write(
      `${JSON.stringify({
        valid: result.ok,
        kind,
        value,
        code: result.ok ? null : result.code,
        message: result.ok ? null : result.message,
        messageEn: result.ok ? null : result.messageEn,
        warnings,
        ...info,
      })}\n`,
    );
  } else if (result.ok) {
    process.stdout.write(`valid: ${kind.toUpperCase()} ${value}\n`);
  }
  if (!result.ok) {
    process.stderr.write(`${result.code}: ${result.messageEn} (${result.message})\n`);
    return 1;
  }
  return 0;
}
