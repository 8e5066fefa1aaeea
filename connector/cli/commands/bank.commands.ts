import type { Command } from 'commander';
import { ConnectorError, UsageError } from '../../shared/errors';
import { listenFailure } from '../../shared/listen-error';
import { runAction } from '../run-action';
import { describeServiceError } from '../service-error.mapper';
import { loadConfig } from '../../../config/load-config';
import { loadSandboxConfig, SandboxConfigError } from '../../../adapters/bank/sandbox/sandbox.config';
import { isLoopbackHost, startSandbox } from '../../../adapters/bank/sandbox/sandbox.server';

/**
 * `connector sandbox [--host H] [--port N] [--no-admin]` (INTERFACES.md): the bank sandbox,
 * long-running; SIGINT/SIGTERM stop it with exit 0. A non-loopback host needs --no-admin, so the
 * `/_sandbox/` admin API (faults, clock, injections) is never reachable from the network.
 */
export function registerBankCommands(program: Command): void {
  program
    .command('sandbox')
    .description('Run the bank sandbox (the Business API contract on loopback; state in schema "sandbox" of CONNECTOR_DATABASE_URL)')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', '8900')
    .option('--no-admin', 'do not serve the /_sandbox/ admin API (required for a non-loopback --host)')
    .action(
      runAction(async (opts: { host: string; port: string; admin: boolean }) => {
        if (!/^\d+$/.test(opts.port) || Number(opts.port) > 65535) throw new UsageError(`--port ${opts.port}: expected a port number 0-65535`);
        if (!isLoopbackHost(opts.host) && opts.admin) {
          throw new ConnectorError(
            'ADMIN_NOT_LOOPBACK',
            `--host ${opts.host} is not a loopback address and the /_sandbox/ admin API must never leave loopback; add --no-admin to serve only the bank contract there`,
          );
        }
        // The connector's own config says where PostgreSQL is (file or CONNECTOR_DATABASE_URL) and whether test mode is on.
        const connector = loadConfig();
        let config;
        try {
          config = loadSandboxConfig(process.env, {
            host: opts.host,
            port: Number(opts.port),
            databaseUrl: connector.database.url,
            ...(connector.testMode ? { testMode: true } : {}),
          });
        } catch (err) {
          if (err instanceof SandboxConfigError) throw new ConnectorError(err.code, err.message);
          throw err;
        }
        const sandbox = await startSandbox({ config, admin: opts.admin, host: opts.host, port: Number(opts.port) }).catch((err: Error & { code?: string; syscall?: string }) => {
          if (err.syscall === 'listen') throw listenFailure('SANDBOX_START_FAILED', 'the sandbox', `${opts.host}:${opts.port}`, err, '--host / --port');
          const why = describeServiceError(err, connector)?.message ?? `${err.code ?? ''} ${err.message}`.trim();
          throw new ConnectorError('SANDBOX_START_FAILED', `the sandbox could not start: ${why}`);
        });
        process.stderr.write(
          `sandbox: listening on ${sandbox.url} (API ${config.apiVersions.map((v) => `/api/${v}`).join(', ')}, state in schema "${config.schema}"` +
            `${opts.admin ? ', admin /_sandbox/ on loopback' : ', admin off'})\n`,
        );
        if (config.clients.some((c) => c.clientId === 'demo-client')) {
          process.stderr.write('sandbox: using the demo client pair (demo-client); set CONNECTOR_SANDBOX_CLIENT_ID/SECRET for your own\n');
        }
        await new Promise<void>((resolve) => {
          const stop = () => resolve();
          process.once('SIGINT', stop);
          process.once('SIGTERM', stop);
        });
        await sandbox.close();
        process.stderr.write('sandbox: stopped\n');
        return 0;
      }),
    );
}
