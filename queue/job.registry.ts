import type { AnyJobDefinition, JobHandler, RegisteredJob } from './job-definition';

export class JobRegistryError extends Error {}

/**
 * Fails at boot when a job name is declared twice or has no handler (immich's setup()), so a
 * mistake never shows up as jobs silently piling up in Redis.
 */
export function buildJobRegistry(jobs: RegisteredJob[], declared: AnyJobDefinition[] = jobs.map((j) => j.definition)): Map<string, RegisteredJob> {
  const registry = new Map<string, RegisteredJob>();
  for (const job of jobs) {
    if (typeof job.handler !== 'function') throw new JobRegistryError(`job ${job.definition.name} has no handler`);
    if (registry.has(job.definition.name)) throw new JobRegistryError(`job ${job.definition.name} has two handlers`);
    registry.set(job.definition.name, job);
  }
  for (const definition of declared) {
    if (!registry.has(definition.name)) throw new JobRegistryError(`job ${definition.name} has no handler`);
  }
  return registry;
}

export type { JobHandler };
