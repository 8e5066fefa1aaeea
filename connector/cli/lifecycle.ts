import type { Logger } from 'pino';

/**
 * Long-running commands (api, worker, scheduler, signer-agent, sandbox): run until SIGINT or
 * SIGTERM, then close gracefully and exit 0 (INTERFACES.md). A second signal forces exit 1.
 */
export function untilSignal(logger: Logger, name: string, close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let closing = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (closing) {
        logger.error({ event: `${name}.shutdown.forced`, signal });
        process.exit(1);
      }
      closing = true;
      logger.info({ event: `${name}.shutdown.started`, signal });
      close()
        .then(() => {
          logger.info({ event: `${name}.shutdown.done` });
          resolve(0);
        })
        .catch((err: Error) => {
          logger.error({ event: `${name}.shutdown.failed`, err: err.message });
          resolve(1);
        });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
