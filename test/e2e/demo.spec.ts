import { createTestEnv, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';
import { openOrm } from '../../connector/persistence/database';

describe('connector demo (child process, real services)', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await createTestEnv('demo', {}, { migrate: false });
  });
  afterAll(async () => env.cleanup());

  it('creates and migrates its database, runs the main job and leaves the result in PostgreSQL', async () => {
    const res = await runCli(['demo'], { env: env.env, cwd: env.workDir, timeoutMs: 150_000 });
    expect(res.stderr).not.toMatch(/ERROR/);
    expect(res.code).toBe(0);
    const lines = res.stdout.split('\n');
    const summary = Object.fromEntries(lines.filter((l) => /^(executed|rejected|invalid|duplicates|statement): /.test(l)).map((l) => l.split(': ')));
    const orm = await openOrm(env.config);
    try {
      const rows = await orm.em.fork().execute<Array<{ state: string; n: string }>>("select state, count(*) as n from payment_order where source like 'demo:%' group by state");
      const byState = Object.fromEntries(rows.map((r) => [r.state, Number(r.n)]));
      // What the demo printed is what the database holds.
      expect(Number(summary.invalid)).toBe(byState.invalid ?? 0);
      expect(Number(summary.executed)).toBe(byState.executed ?? 0);
      expect(Number(summary.rejected)).toBe(byState.rejected ?? 0);
      expect(byState.invalid).toBeGreaterThanOrEqual(1);
      // Nothing is left half-way: every order of the run reached the end of the wired stages.
      expect(byState.received ?? 0).toBe(0);
      const events = await orm.em.fork().execute<Array<{ n: string }>>('select count(*) as n from order_event');
      expect(Number(events[0].n)).toBeGreaterThanOrEqual(6);
    } finally {
      await orm.close(true);
    }
  });
});
