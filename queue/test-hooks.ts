import { writeFileSync } from 'node:fs';
import type { JobContext } from './job-context';

/**
 * Crash tests need a worker to stop at a known point inside a job so it can be killed there.
 * Honoured only in test mode: CONNECTOR_TEST_PAUSE_AT=<job name> makes the handler write
 * CONNECTOR_TEST_PAUSE_FILE and wait forever at that point.
 */
export async function testPausePoint(context: JobContext, point: string): Promise<void> {
  if (!context.config.testMode || process.env.CONNECTOR_TEST_PAUSE_AT !== point) return;
  const marker = process.env.CONNECTOR_TEST_PAUSE_FILE;
  if (marker) writeFileSync(marker, `${process.pid}\n`);
  await new Promise(() => undefined);
}
