/**
 * PM2 apps of the connector. Start from a built checkout: `npm ci && npm run build && npx pm2 start ecosystem.config.js`.
 * PM2 reads this file with require(): CommonJS only.
 *
 * kill_timeout: PM2 sends SIGINT, waits this long, then SIGKILLs. Workers finish their current
 * jobs within 20 s (queue/worker.runner.ts) and the slowest bank call times out at bank.timeoutMs
 * (15 s default), so 30 s is above both.
 */
const fs = require('node:fs');
const path = require('node:path');

const cli = path.join(__dirname, 'dist', 'connector', 'cli', 'main.js');
const logs = process.env.CONNECTOR_LOG_DIR || path.join(__dirname, 'logs');
// PM2 writes its log files world-readable (0644). They hold no secret, but they do hold payees,
// amounts and order ids: the folder that holds them is the owner's alone. A folder the admin made
// (CONNECTOR_LOG_DIR) keeps the mode they gave it; our own `logs/` is closed even when it exists.
// A link (to a shared log folder) and a folder of another user are left as they are: PM2 must load
// this file whatever the mode of its logs.
if (!fs.existsSync(logs)) fs.mkdirSync(logs, { recursive: true, mode: 0o700 });
else if (!process.env.CONNECTOR_LOG_DIR && !fs.lstatSync(logs).isSymbolicLink()) {
  try {
    fs.chmodSync(logs, 0o700);
  } catch {
    // not ours to change (EPERM): PM2 still starts
  }
}
const workerInstances = workerInstancesOf(process.env.CONNECTOR_WORKER_INSTANCES);

/**
 * CONNECTOR_WORKER_INSTANCES: how many worker processes, a whole number from 1 (unset or empty: 1).
 * Anything else is refused here, naming the variable: given to PM2 as it was, "two" (NaN) made the
 * daemon's instance count fail (no worker started), and 0 or -1 meant one worker per CPU core, or
 * one less, to PM2: not "no worker".
 */
function workerInstancesOf(raw) {
  if (raw === undefined || raw.trim() === '') return 1;
  if (!/^[1-9][0-9]*$/.test(raw.trim())) {
    throw new Error(`CONNECTOR_WORKER_INSTANCES must be a whole number of worker processes, 1 or more (unset: 1); got "${raw}"`);
  }
  return Number(raw.trim());
}

function app(name, command, extra = {}) {
  return {
    name,
    script: cli,
    args: command,
    cwd: __dirname,
    exec_mode: 'fork',
    instances: 1,
    autorestart: true,
    max_restarts: 20,
    min_uptime: '10s',
    // A process that cannot start (PostgreSQL still in crash recovery after a power loss, a port
    // taken) exits at once. With a fixed 2 s delay PM2 counted 20 quick exits within its window
    // (min_uptime x max_restarts = 200 s) in about a minute and left the app `errored` for good:
    // the connector stayed down after PostgreSQL came back. Growing delays (1 s, x1.5, up to 15 s)
    // spread fewer than 20 restarts over that window, so PM2 never gives up; it tries every 15 s.
    exp_backoff_restart_delay: 1000,
    kill_timeout: 30000,
    out_file: path.join(logs, `${name}.out.log`),
    error_file: path.join(logs, `${name}.err.log`),
    merge_logs: true,
    time: false,
    env: { NODE_ENV: 'production' },
    ...extra,
  };
}

module.exports = {
  apps: [
    app('connector-api', 'api'),
    app('connector-worker', 'worker', { instances: workerInstances }),
    app('connector-scheduler', 'scheduler'),
    // Keys live only in this process's memory: a restart locks every key until its owner unlocks it again.
    app('connector-signer-agent', 'signer-agent', { max_restarts: 5 }),
  ],
};
