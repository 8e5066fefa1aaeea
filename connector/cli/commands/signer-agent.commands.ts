import { Command, InvalidArgumentError } from 'commander';
import pino from 'pino';
import { loadConfig } from '../../../config/load-config';
import { createLogger } from '../../logging/logger';
import { runAction } from '../run-action';
import { startSignerAgent } from '../../../signer-agent/agent/signer-agent.process';

function positiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new InvalidArgumentError('expected a whole number from 1 to 64');
  return Number(value);
}

/**
 * `connector signer-agent`: the long-running signer agent (INTERFACES.md: SIGINT/SIGTERM shut it
 * down gracefully with exit 0, after every unlocked key is wiped).
 */
export function registerSignerAgentCommands(program: Command): void {
  program
    .command('signer-agent')
    .description(
      'Run the local signer agent: users enroll their NCA keystores, unlock them for a bounded session, and the connector asks it for detached CMS signatures. Listens on loopback or a Unix socket only (CONNECTOR_SIGNER_URL); callers present the token in CONNECTOR_SIGNER_TOKEN_FILE.',
    )
    .option('--url <url>', 'where to listen: http://127.0.0.1:PORT, http://[::1]:PORT or unix:/path (default: CONNECTOR_SIGNER_URL, config signer.url)')
    .option('--workers <n>', 'signing worker threads (default: config signer.workers, else one per core)', positiveInt)
    .action(
      runAction(async (opts: { url?: string; workers?: number }) => {
        const config = loadConfig();
        // Asynchronous log writes: a slow log reader (a full pipe) must never stall the agent's event
        // loop, which has to answer /health and a lockdown promptly (issue 11). Flushed on exit.
        const destination = pino.destination({ fd: 2, sync: false });
        const logger = createLogger({ level: config.log.level, name: 'signer-agent' }, destination);
        const agent = await startSignerAgent({ config, logger, url: opts.url, workers: opts.workers });
        await new Promise<void>((resolveStopped) => {
          let signalled = false;
          const onSignal = (signal: NodeJS.Signals) => {
            if (signalled) return;
            signalled = true;
            logger.info({ event: 'signer-agent.signal', signal }, 'shutting down');
            agent.stop().then(resolveStopped, (err: unknown) => {
              logger.error({ event: 'signer-agent.stop.failed', err: { message: (err as Error).message } }, 'shutdown failed');
              resolveStopped();
            });
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
          // logrotate's postrotate (README "Running under PM2"): pm2 sendSignal SIGHUP connector-signer-agent.
          process.on('SIGHUP', () => void agent.reopenJournal());
        });
        destination.flushSync();
        return 0;
      }),
    );
}
