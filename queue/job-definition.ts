import type { Job } from 'bullmq';
import type { z } from 'zod';
import type { QueueName } from './queue-names';
import type { JobContext } from './job-context';

/**
 * One job type: its name constant, the queue it runs on, the zod schema of its payload (ids only,
 * STYLE.md 4) and the job id derived from the business key. A job id saves redundant work; it never
 * deduplicates business events (LESSONS.md 11): the handlers guard every effect in PostgreSQL.
 */
export interface JobDefinition<S extends z.ZodTypeAny = z.ZodTypeAny> {
  name: string;
  queue: QueueName;
  payload: S;
  jobId: (payload: z.output<S>) => string;
}

export type JobHandler<S extends z.ZodTypeAny = z.ZodTypeAny> = (payload: z.output<S>, context: JobContext, job: Job) => Promise<unknown>;

// Type-erased forms for registries and maps; `registerJob` keeps definition and handler in step.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyJobDefinition = JobDefinition<any>;
export interface RegisteredJob {
  definition: AnyJobDefinition;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  handler: JobHandler<any>;
}

export function registerJob<S extends z.ZodTypeAny>(definition: JobDefinition<S>, handler: JobHandler<S>): RegisteredJob {
  return { definition, handler };
}

export function defineJob<S extends z.ZodTypeAny>(definition: JobDefinition<S>): JobDefinition<S> {
  return definition;
}

/** BullMQ custom ids must not contain ":" nor be plain integers. */
export function assertValidJobId(id: string): string {
  if (id.includes(':') || /^\d+$/.test(id)) throw new Error(`job id "${id}" is not allowed by BullMQ (no ":" and not all digits)`);
  return id;
}
