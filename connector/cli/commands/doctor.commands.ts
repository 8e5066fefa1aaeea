import type { Command } from 'commander';
import { runDoctor } from '../../doctor/doctor.checks';
import { runAction } from '../run-action';
import { printJson, table } from '../output';

export function registerDoctorCommands(program: Command): void {
  program
    .command('doctor')
    .description('check config, Redis, PostgreSQL, migrations, clock skew and disk (exit 1 if a core check fails); bank and signer agent are WARN unless --strict')
    .option('--json', 'one JSON document')
    .option('--strict', 'an unreachable bank or signer agent fails too')
    .action(
      runAction(async (opts: { json?: boolean; strict?: boolean }) => {
        const report = await runDoctor({ strict: opts.strict });
        if (opts.json) {
          printJson(report);
        } else {
          process.stdout.write(`${table(report.checks.map((c) => [c.verdict, c.name, c.detail, c.hint ?? '']), ['VERDICT', 'CHECK', 'DETAIL', 'HINT'])}\n`);
          process.stdout.write(report.ok ? 'doctor: all core checks passed\n' : 'doctor: a core check FAILED (see hints)\n');
        }
        return report.ok ? 0 : 1;
      }),
    );
}
