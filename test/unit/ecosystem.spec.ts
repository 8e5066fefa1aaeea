import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** PM2 loads ecosystem.config.js in a process of its own: so does this test. */
function loadEcosystem(env: NodeJS.ProcessEnv): Array<{ name: string; out_file: string; error_file: string }> {
  const file = resolve(__dirname, '..', '..', 'ecosystem.config.js');
  const out = execFileSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(file)}).apps))`], { env: { ...process.env, ...env } });
  return JSON.parse(out.toString());
}

describe('ecosystem.config.js: the PM2 logs', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ecosystem-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates a missing log folder readable by its owner alone (PM2's files are 0644; they name payees and amounts)", () => {
    const logs = join(dir, 'var', 'logs');
    const apps = loadEcosystem({ CONNECTOR_LOG_DIR: logs });
    expect(statSync(logs).mode & 0o777).toBe(0o700);
    expect(apps.map((a) => a.name)).toEqual(['connector-api', 'connector-worker', 'connector-scheduler', 'connector-signer-agent']);
    for (const app of apps) expect([app.out_file, app.error_file]).toEqual([join(logs, `${app.name}.out.log`), join(logs, `${app.name}.err.log`)]);
  });

  it('PM2 never gives up on a process that cannot start for minutes (PostgreSQL in crash recovery): restarts stay under max_restarts within its window', () => {
    // PM2's rule (pm2/lib/God.js handleExit): an exit within min_uptime of the start, while the app is
    // younger than min_uptime x max_restarts, counts as unstable; max_restarts of them make it `errored`.
    // exp_backoff_restart_delay: 1st delay as given, then x1.5 up to 15 s (restart_delay: a fixed one).
    // The signer agent keeps its own low bound (a key-holding process that keeps crashing stays down).
    const apps = (loadEcosystem({ CONNECTOR_LOG_DIR: join(dir, 'logs') }) as Array<Record<string, unknown>>).filter((a) => a.name !== 'connector-signer-agent');
    expect(apps.map((a) => a.name)).toEqual(['connector-api', 'connector-worker', 'connector-scheduler']);
    for (const app of apps) {
      const minUptime = parseInt(String(app.min_uptime), 10) * 1000;
      const maxRestarts = Number(app.max_restarts);
      const startupMs = 500; // a process that fails fast: the worst case
      let t = 0;
      let delay = 0;
      let unstable = 0;
      while (t < minUptime * maxRestarts && unstable < maxRestarts) {
        t += startupMs;
        unstable += 1;
        if (app.exp_backoff_restart_delay === undefined) delay = Number(app.restart_delay ?? 0);
        else delay = delay === 0 ? Number(app.exp_backoff_restart_delay) : Math.min(15_000, Math.floor(delay * 1.5));
        t += delay;
      }
      expect({ app: app.name, unstableRestarts: unstable < maxRestarts }).toEqual({ app: app.name, unstableRestarts: true });
    }
  });

  it("leaves the mode of a folder the admin made and named in CONNECTOR_LOG_DIR", () => {
    const logs = join(dir, 'shared-logs');
    mkdirSync(logs, { mode: 0o750 });
    loadEcosystem({ CONNECTOR_LOG_DIR: logs });
    expect(statSync(logs).mode & 0o777).toBe(0o750);
  });
});

describe('ecosystem.config.js: CONNECTOR_WORKER_INSTANCES', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ecosystem-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const workers = (value: string | undefined) => {
    const env: NodeJS.ProcessEnv = { CONNECTOR_LOG_DIR: join(dir, 'logs'), CONNECTOR_WORKER_INSTANCES: value };
    if (value === undefined) delete env.CONNECTOR_WORKER_INSTANCES;
    return (loadEcosystem(env) as unknown as Array<{ name: string; instances: unknown }>).find((a) => a.name === 'connector-worker')?.instances;
  };
  const refusal = (value: string): string => {
    try {
      workers(value);
    } catch (err) {
      return String((err as { stderr?: Buffer }).stderr ?? err);
    }
    return 'accepted';
  };

  it('sets the number of worker processes; unset or empty, one', () => {
    expect(workers(undefined)).toBe(1);
    expect(workers('')).toBe(1);
    expect(workers('3')).toBe(3);
    expect(workers(' 2 ')).toBe(2);
  });

  it('refuses what PM2 would read otherwise, naming the variable and the rule: "two" (NaN: no worker started), 0 and -1 (one per CPU core, or one less)', () => {
    for (const value of ['two', '0', '-1', '1.5', '2x']) {
      expect({ value, refusal: refusal(value) }).toEqual({ value, refusal: expect.stringContaining(`CONNECTOR_WORKER_INSTANCES must be a whole number of worker processes, 1 or more (unset: 1); got "${value}"`) });
    }
  });
});
