import { z } from 'zod';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { defineJob, registerJob } from '../../queue/job-definition';
import { startScheduler } from '../../queue/scheduler.runner';
import { startWorkers } from '../../queue/worker.runner';

/**
 * Scheduled jobs run all day for years (the sweep, the outbox scan, webhooks...): on real Redis,
 * what they leave behind must not grow. BullMQ keeps a completed job unless told otherwise.
 */
describe('scheduled jobs leave nothing behind in Redis', () => {
  let env: TestEnv;
  let context: AppContext;
  const tickJob = defineJob({ name: 'test.tick', queue: 'maintenance', payload: z.object({}), jobId: () => 'test-tick' });
  let runs = 0;
  const registered = registerJob(tickJob, async () => {
    runs += 1;
    return { run: runs };
  });

  beforeAll(async () => {
    env = await createTestEnv('sched-retention');
    context = await createAppContext({ config: env.config, role: 'worker', logger: createLogger({ level: 'silent' }) });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  it('completed scheduled runs are removed, and those an older release left are purged by the leader', async () => {
    const maintenance = context.queues.get('maintenance');
    // What an older release left: completed runs kept in Redis.
    for (let i = 0; i < 25; i += 1) await maintenance.add(tickJob.name, {}, { jobId: `left-${i}`, removeOnComplete: false });
    const workers = startWorkers(context, context.redis, [registered]);
    try {
      await eventually(async () => ((await maintenance.getJobCounts('completed')).completed === 25 ? true : null), { what: 'the old runs completed and kept' });
      const scheduler = await startScheduler(context, context.redis, { leaseMs: 3_000, extra: [{ id: 'test-tick', everyMs: 100, definition: tickJob, data: {} }] });
      try {
        expect(scheduler.isLeader()).toBe(true);
        const before = runs;
        await eventually(async () => (runs >= before + 10 ? true : null), { timeoutMs: 15_000, what: 'ten scheduled runs' });
        await eventually(async () => ((await maintenance.getJobCounts('completed')).completed === 0 ? true : null), { what: 'no completed job left' });
        expect(runs - before).toBeGreaterThanOrEqual(10);
      } finally {
        await scheduler.close();
      }
    } finally {
      await workers.close(5_000);
    }
  });
});
