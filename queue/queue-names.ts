/**
 * The BullMQ topology: one queue per stage, so a stage can be paused, scaled and inspected on
 * its own. Every queue lives under the configured prefix (CONNECTOR_REDIS_PREFIX): keys are
 * `<prefix>:<queue>:...`.
 */
export const QUEUE_NAMES = ['intake', 'validate', 'sign', 'submit', 'track', 'statements', 'writeback', 'maintenance'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];
