import type { Logger } from 'pino';

/**
 * How long a process may linger once its graceful shutdown is done. Everything the process started
 * has been closed and awaited by then; what can still hold the event loop is a handle some library
 * left behind (a timer, a socket), which would keep the process alive for good: systemd, docker
 * and `pm2 stop` would wait for their kill timeout. Short: nothing of ours runs any more. (After a
 * worker closed while Redis was down, BullMQ's watchdog of an interrupted blocking read stays armed
 * for up to 11 s: harmless, and not worth the wait.)
 */
export const EXIT_GRACE_MS = 3_000;

/**
 * Long-running commands (api, worker, scheduler, signer-agent, sandbox): run until SIGINT or
 * SIGTERM, then close gracefully and exit 0 (INTERFACES.md). A second signal forces exit 1.
 * Once the close is done the process ends by itself when nothing is left on its event loop, and
 * at the latest EXIT_GRACE_MS later, naming what was left.
 */
export function untilSignal(logger: Logger, name: string, close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let closing = false;
    const finish = (code: number) => {
      setTimeout(() => {
        logger.warn({ event: `${name}.shutdown.lingering`, exitCode: code, resources: process.getActiveResourcesInfo() });
        process.exit(code);
      }, EXIT_GRACE_MS).unref();
      resolve(code);
    };
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
          finish(0);
        })
        .catch((err: Error) => {
          logger.error({ event: `${name}.shutdown.failed`, err: err.message });
          finish(1);
        });
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}
