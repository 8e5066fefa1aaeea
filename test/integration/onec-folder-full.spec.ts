import { join } from 'node:path';
import type { Job } from 'bullmq';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { loadConfig } from '../../config/load-config';
import { handleWriteBack, ONEC_FOLDER_UNWRITABLE, ONEC_WRITE_FAILURES_BEFORE_INCIDENT } from '../../queue/jobs/write-back.job';
import { createTestEnv, type TestEnv } from '../support/test-env';

/** The 1C folder's disk as the write-back sees it: full, or remounted read-only, for every write while set. */
const mockFolder: { failWith: string | null } = { failWith: null };
jest.mock('../../connector/shared/atomic-file', () => {
  const actual = jest.requireActual<typeof import('../../connector/shared/atomic-file')>('../../connector/shared/atomic-file');
  return {
    ...actual,
    writeFileAtomic: async (...args: Parameters<typeof actual.writeFileAtomic>) => {
      if (mockFolder.failWith) throw Object.assign(new Error(`${mockFolder.failWith}: write ${args[0]}`), { code: mockFolder.failWith });
      return actual.writeFileAtomic(...args);
    },
  };
});

/**
 * A 1C folder that exists and the worker may write, on a disk that is full or was remounted
 * read-only (the share's server said so): the admin is told that, not to create the folder or
 * give the worker's user rights it already has.
 */
describe('write-back into a 1C folder on a full or read-only disk', () => {
  let env: TestEnv;
  let context: AppContext;
  let inbox: string;

  beforeAll(async () => {
    env = await createTestEnv('onecfull');
    inbox = join(env.workDir, 'inbox');
    const config = loadConfig({ env: env.env, cwd: env.workDir, overrides: { 'onec.inboxDir': inbox, 'onec.outboxDir': join(env.workDir, 'outbox') } });
    context = await createAppContext({ config, role: 'worker' });
  });
  afterAll(async () => {
    mockFolder.failWith = null;
    await context.close();
    await env.cleanup();
  });

  const job = { id: 'writeback-test', attemptsMade: 0, opts: {} } as unknown as Job;
  const incidents = () => context.orm.em.fork().execute<Array<{ title: string; status: string }>>("select title, status from incident where kind = 'onec_folder_unwritable'");

  it.each([
    ['ENOSPC', /disk .*is full/],
    ['EROFS', /read-only/],
  ])('%s: the error and the incident say what is wrong with the disk, not that the folder is missing or not writable by the worker', async (code, says) => {
    mockFolder.failWith = code;
    for (let attempt = 1; attempt <= ONEC_WRITE_FAILURES_BEFORE_INCIDENT; attempt += 1) {
      const failed = await handleWriteBack({}, context, job).then(
        () => null,
        (err: Error & { code?: string }) => err,
      );
      expect(failed).toMatchObject({ code: ONEC_FOLDER_UNWRITABLE, message: expect.stringContaining(`(${code})`) });
      expect(failed?.message).toMatch(says);
      expect(failed?.message).not.toMatch(/missing where it cannot be created|not writable by the user/);
    }
    const open = (await incidents()).filter((i) => i.status === 'open');
    expect(open).toHaveLength(1);
    expect(open[0].title).toMatch(says);
    expect(open[0].title).not.toMatch(/create the folder or let the worker's user write there/);
    // Space freed / remounted: the next write-back writes and closes it.
    mockFolder.failWith = null;
    await expect(handleWriteBack({}, context, job)).resolves.toMatchObject({ status: true });
    expect((await incidents()).filter((i) => i.status === 'open')).toEqual([]);
    await context.orm.em.fork().execute("delete from writeback_mark where target = 'onec.status'");
  });
});
