import type { JobContext } from './job-context';
import { appendAudits, type AuditInput } from '../connector/audit/audit.log';
import { StageBatcher, stageBatcher } from './stage-batcher';

/**
 * The audit append of a busy stage (every submission records one): the appends of this process's
 * concurrent jobs share one lock and one insert. Each caller still waits until its record is
 * written; the chain is the same as one append at a time.
 */
export function appendAuditBatched(context: JobContext, input: AuditInput): Promise<{ seq: number; hash: string }> {
  const batcher = stageBatcher(context, 'audit', () => new StageBatcher<AuditInput, { seq: number; hash: string }>((inputs) => appendAudits(context.orm.em.fork(), inputs), { maxBatch: 256, maxWaitMs: 2 }));
  return batcher.run(input);
}
