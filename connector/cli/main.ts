#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { commandRegistrars } from './commands';

export function buildProgram(): Command {
  const program = new Command('connector')
    .description('Bank connector: 1C/ERP payment orders -> EDS signatures -> Alatau City Bank Business API, and back.')
    .showHelpAfterError()
    .exitOverride();
  for (const register of commandRegistrars) register(program);
  return program;
}

async function main(): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version exit 0; anything else commander refuses is a usage error (2).
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    throw err;
  }
}

/**
 * A reader that left (`connector orders list --json | head`, `less` quit early) makes the next
 * write fail with EPIPE. Unhandled, that error killed the process with a stack trace wherever the
 * command was, even between two steps of its work: the command now finishes, its exit code its own,
 * and what no one reads any more is dropped.
 */
export function ignoreClosedReader(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    throw err;
  });
}

if (require.main === module) {
  ignoreClosedReader(process.stdout);
  ignoreClosedReader(process.stderr);
  main().catch((err: unknown) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
