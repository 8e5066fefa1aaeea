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

  it("leaves the mode of a folder the admin made and named in CONNECTOR_LOG_DIR", () => {
    const logs = join(dir, 'shared-logs');
    mkdirSync(logs, { mode: 0o750 });
    loadEcosystem({ CONNECTOR_LOG_DIR: logs });
    expect(statSync(logs).mode & 0o777).toBe(0o750);
  });
});
