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
 * How long a graceful shutdown may take before the process ends anyway (exit 1), counted from the
 * signal: below PM2's kill_timeout (30 s, ecosystem.config.js), after which PM2 SIGKILLs a process
 * without a word in its log. The worker's wait for its running jobs is bounded (20 s,
 * queue/worker.runner.ts), but a job still running then keeps its PostgreSQL connection, and closing
 * the pool waits for every connection in use: a write-back waiting up to 2 minutes for a file lock
 * another worker holds, a statement still being stored. The API's close waits likewise for a request
 * still being received. What such a job had done is in PostgreSQL; it runs again on the next worker
 * (STYLE.md 4, 5), as after a crash.
 */
export const SHUTDOWN_BOUND_MS = 25_000;

/**
 * Long-running commands (api, worker, scheduler, signer-agent, sandbox): run until SIGINT or
 * SIGTERM, then close gracefully and exit 0 (INTERFACES.md). A second signal forces exit 1, and so
 * does a close still not done SHUTDOWN_BOUND_MS after the signal, naming what it still waited for.
 * Once the close is done the process ends by itself when nothing is left on its event loop, and
 * at the latest EXIT_GRACE_MS later, naming what was left.
 */
export function untilSignal(logger: Logger, name: string, close: () => Promise<void>): Promise<number> {
  return new Promise((resolve) => {
    let closing = false;
    let done: number | undefined;
    const finish = (code: number) => {
      done = code;
      setTimeout(() => {
        logger.warn({ event: `${name}.shutdown.lingering`, exitCode: code, resources: process.getActiveResourcesInfo() });
        process.exit(code);
      }, EXIT_GRACE_MS).unref();
      resolve(code);
    };
    const onSignal = (signal: NodeJS.Signals) => {
      // A close already done ends with its own code; one still running is cut short.
      if (done !== undefined) process.exit(done);
      if (closing) {
        logger.error({ event: `${name}.shutdown.forced`, signal });
        process.exit(1);
      }
      closing = true;
      logger.info({ event: `${name}.shutdown.started`, signal });
      const bound = setTimeout(() => {
        logger.error({ event: `${name}.shutdown.timeout`, boundMs: SHUTDOWN_BOUND_MS, resources: process.getActiveResourcesInfo() });
        process.exit(1);
      }, SHUTDOWN_BOUND_MS);
      close()
        .then(() => {
          clearTimeout(bound);
          logger.info({ event: `${name}.shutdown.done` });
          finish(0);
        })
        .catch((err: Error) => {
          clearTimeout(bound);
          logger.error({ event: `${name}.shutdown.failed`, err: err.message });
          finish(1);
        });
    };
    // `on`, not `once`: a second signal of the same kind must reach the handler (exit 1), not
    // Node's default, which killed the process by that signal in the middle of its close.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
