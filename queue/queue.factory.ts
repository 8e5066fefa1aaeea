import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import IORedis, { type RedisOptions } from 'ioredis';
import type { z } from 'zod';
import type { ConnectorConfig } from '../config/config.schema';
import { QUEUE_NAMES, type QueueName } from './queue-names';
import { assertValidJobId, type JobDefinition } from './job-definition';

/**
 * Redis connections. Workers need maxRetriesPerRequest: null (BullMQ going-to-production);
 * producers keep a bounded retry so an API call fails fast when Redis is down.
 */
export function redisConnection(config: ConnectorConfig, role: 'worker' | 'producer'): IORedis {
  const options: RedisOptions = {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableReadyCheck: true,
    connectTimeout: 5_000,
    lazyConnect: false,
  };
  return new IORedis(config.redis.url, options);
}

export class QueueSet {
  private readonly queues = new Map<QueueName, Queue>();
  constructor(
    readonly config: ConnectorConfig,
    readonly connection: IORedis,
    /** Connection trouble is reported here (a logger), never as an unhandled 'error' event. */
    onError: (queue: QueueName, err: Error) => void = () => undefined,
  ) {
    for (const name of QUEUE_NAMES) {
      const queue = new Queue(name, { connection: connection as unknown as ConnectionOptions, prefix: config.redis.prefix });
      queue.on('error', (err) => onError(name, err));
      this.queues.set(name, queue);
    }
  }

  get(name: QueueName): Queue {
    const queue = this.queues.get(name);
    if (!queue) throw new Error(`unknown queue ${name}`);
    return queue;
  }

  all(): Queue[] {
    return [...this.queues.values()];
  }

  defaultJobOptions(): JobsOptions {
    return {
      attempts: this.config.queue.attempts,
      backoff: { type: 'exponential', delay: this.config.queue.backoffMs },
      // Completed jobs go away so the same id can run again when the sweeper asks for it;
      // failed ones stay for inspection (the order itself records the error in PostgreSQL).
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600, count: 10_000 },
    };
  }

  /**
   * Options of the jobs a job scheduler makes (the sweep, the outbox scan, webhooks, statements,
   * CRLs: about 60,000 a day at the defaults). Without them BullMQ keeps every completed one in
   * Redis for good (about 1 KB each, some 20 GB a year) and, with `noeviction`, Redis would
   * refuse writes once full. No retries: the next run comes at the next tick.
   */
  scheduledJobOptions(): JobsOptions {
    return { removeOnComplete: true, removeOnFail: { age: 7 * 24 * 3600, count: 1_000 } };
  }

  /** Adds one job of `definition`, validating its payload first (never an unchecked payload in Redis). */
  async add<S extends z.ZodTypeAny>(definition: JobDefinition<S>, payload: z.input<S>, options: JobsOptions = {}): Promise<void> {
    const data = definition.payload.parse(payload);
    const jobId = assertValidJobId(definition.jobId(data));
    await this.get(definition.queue).add(definition.name, data, { ...this.defaultJobOptions(), jobId, ...options });
  }

  /**
   * Adds the job unless one with its id is still to run (waiting, delayed, active...): a finished
   * one with that id (completed, or failed and kept for inspection) would make `add` a silent
   * no-op (LESSONS.md 11), so it is removed first. True when added.
   */
  async addUnlessPending<S extends z.ZodTypeAny>(definition: JobDefinition<S>, payload: z.input<S>, options: JobsOptions = {}): Promise<boolean> {
    const data = definition.payload.parse(payload);
    const jobId = options.jobId ?? definition.jobId(data);
    const existing = await this.get(definition.queue).getJob(jobId);
    if (existing) {
      if (PENDING_STATES.has(await existing.getState())) return false;
      await existing.remove().catch(() => undefined);
    }
    await this.add(definition, payload, { ...options, jobId });
    return true;
  }

  /** Whether a job with this id is still to run. */
  async isPending(queue: QueueName, jobId: string): Promise<boolean> {
    const job = await this.get(queue).getJob(jobId);
    return job ? PENDING_STATES.has(await job.getState()) : false;
  }

  async addBulk<S extends z.ZodTypeAny>(definition: JobDefinition<S>, payloads: z.input<S>[], options: JobsOptions = {}): Promise<void> {
    if (payloads.length === 0) return;
    const jobs = payloads.map((payload) => {
      const data = definition.payload.parse(payload);
      return { name: definition.name, data, opts: { ...this.defaultJobOptions(), jobId: assertValidJobId(definition.jobId(data)), ...options } };
    });
    await this.get(definition.queue).addBulk(jobs);
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}

/** BullMQ states of a job that is still to run. */
const PENDING_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children']);
