import { Writable } from 'node:stream';
import { Job } from 'bullmq';
import { Client } from 'pg';
import { z } from 'zod';
import { createTestEnv, eventually, type TestEnv } from '../support/test-env';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { VaultBankCredentials } from '../../connector/app/vault-bank-credentials';
import { createLogger } from '../../connector/logging/logger';
import { loadConfig } from '../../config/load-config';
import { startWorkers, type RunningWorkers } from '../../queue/worker.runner';
import { defineJob, registerJob } from '../../queue/job-definition';
import { transientDatabaseError } from '../../connector/shared/pg-errors';

/**
 * knex writes a failed statement into the error's message with every bound value inlined
 * (`<sql with values> - <pg message>`), and a statement that binds a secret fails in normal
 * operation now (lock_timeout, statement_timeout, a deadlock, a dropped connection). The secret
 * then went wherever the message went: the process log, BullMQ's failedReason and stacktrace in
 * Redis, an order's last error, the CLI's stderr. Proven here on real PostgreSQL and Redis with the
 * statement that binds the vault's sealed Client Secret (VaultBankCredentials.onTokenIssued).
 */
describe('a failed statement never carries the secrets it binds', () => {
  const CIPHERTEXT = 'v1:k1:CANARY-sealed-client-secret-6b1f0e';
  const LOCK_TIMEOUT_MS = 500;
  let env: TestEnv;
  let context: AppContext;
  let workers: RunningWorkers | undefined;
  let holder: Client | undefined;
  const lines: string[] = [];

  beforeAll(async () => {
    env = await createTestEnv('dberrsecrets');
    const config = loadConfig({
      env: env.env,
      cwd: env.workDir,
      overrides: { 'database.lockTimeoutMs': LOCK_TIMEOUT_MS, 'queue.attempts': 2, 'queue.backoffMs': 100 },
    });
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    context = await createAppContext({ config, role: 'worker', logger: createLogger({ level: 'debug' }, sink) });
    await context.orm.em
      .fork()
      .execute("insert into credential_vault (id, client_id, secret_enc, generated_at, updated_at, updated_by) values (1, 'client-1', ?, now(), now(), 'test')", [CIPHERTEXT]);
  });
  afterEach(async () => {
    await holder?.query('rollback').catch(() => undefined);
    await holder?.end().catch(() => undefined);
    holder = undefined;
    await workers?.close(5_000);
    workers = undefined;
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  /** A second session holds the vault's row lock (a `credentials rotate` or a lockdown in progress). */
  async function lockVault(): Promise<Client> {
    const client = new Client({ connectionString: env.config.database.url });
    await client.connect();
    await client.query('begin');
    await client.query('select id from credential_vault where id = 1 for update');
    return client;
  }

  const everything = (err: Error) => `${err.message}\n${err.stack}\n${JSON.stringify(err)}`;

  it('the error of a statement binding the sealed secret names the table and the limit, not the value', async () => {
    holder = await lockVault();
    const vault = new VaultBankCredentials(context.config, context.orm, context.clock);
    const err = (await vault.onTokenIssued().then(
      () => new Error('no error'),
      (e: Error) => e,
    )) as Error;
    expect(err.message).toMatch(/lock timeout/);
    expect(err.message).toMatch(/update credential_vault/);
    // Still told apart as transient (the worker retries it, never fails an order on it).
    expect(transientDatabaseError(err)).toMatch(/lock_timeout/);
    expect(everything(err)).not.toContain('CANARY');
  });

  it('keeps the secret out of the worker log and of the job record BullMQ keeps in Redis', async () => {
    holder = await lockVault();
    const definition = defineJob({ name: 'test.vault-use', queue: 'maintenance', payload: z.object({ n: z.number() }), jobId: () => 'vault-use-1' });
    const vault = new VaultBankCredentials(context.config, context.orm, context.clock);
    workers = startWorkers(context, context.redis, [registerJob(definition, () => vault.onTokenIssued())]);
    await context.queues.get('maintenance').add(definition.name, { n: 1 }, { jobId: 'vault-use-1', attempts: 2, backoff: { type: 'fixed', delay: 100 } });
    // The first attempt met the lock and failed (BullMQ recorded it and retries).
    const job = await eventually(
      async () => {
        const found = await Job.fromId(context.queues.get('maintenance'), 'vault-use-1');
        return found?.failedReason ? found : undefined;
      },
      { what: 'the first attempt recorded as failed', timeoutMs: 20_000 },
    );
    await eventually(async () => lines.some((l) => l.includes('job.failed')) && lines.some((l) => l.includes('job.database_transient')), { what: 'the failure logged' });
    const raw = await context.redis.hgetall(`${context.config.redis.prefix}:maintenance:vault-use-1`);
    expect(JSON.stringify(raw)).not.toContain('CANARY');
    expect(lines.join('')).not.toContain('CANARY');
    // What an operator needs is still there: which statement, on which table, hit which limit.
    expect(job.failedReason).toMatch(/update credential_vault - canceling statement due to lock timeout/);
    expect(lines.join('')).toMatch(/update credential_vault - canceling statement due to lock timeout/);
  });
});
