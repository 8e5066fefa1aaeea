import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { loadConfig } from '../../config/load-config';
import { handleWriteBack, ONEC_FOLDER_UNWRITABLE, ONEC_WRITE_FAILURES_BEFORE_INCIDENT, STATUS_FILE } from '../../queue/jobs/write-back.job';
import { createTestEnv, type TestEnv } from '../support/test-env';

/**
 * A 1C folder the worker cannot write into (onec.inboxDir), on real folders. Tests may run as root,
 * whom chmod does not stop: the folder's parent is made a regular file, so creating the folder or a
 * file in it fails with ENOTDIR for every user, root included; removing that file heals it.
 */
describe('write-back into an unwritable 1C folder', () => {
  let env: TestEnv;
  let context: AppContext;
  let parent: string;
  let inbox: string;

  beforeAll(async () => {
    env = await createTestEnv('onecfolder');
    parent = join(env.workDir, 'share');
    inbox = join(parent, 'inbox');
    const config = loadConfig({ env: env.env, cwd: env.workDir, overrides: { 'onec.inboxDir': inbox, 'onec.outboxDir': join(env.workDir, 'outbox') } });
    context = await createAppContext({ config, role: 'worker' });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  const job = { id: 'writeback-test', attemptsMade: 0, opts: {} } as unknown as Job;
  const incidents = () =>
    context.orm.em.fork().execute<Array<{ id: string; status: string; kind: string; title: string; evidence: { folder: string; code: string }; resolved_by: string | null; timeline: Array<{ text: string }> }>>(
      "select id, status, kind, title, evidence, resolved_by, timeline from incident where kind = 'onec_folder_unwritable'",
    );

  it('opens one incident after repeated failed writes, naming the folder, and closes it once a write succeeds', async () => {
    rmSync(parent, { recursive: true, force: true });
    writeFileSync(parent, 'a file where the 1C share should be mounted');
    for (let attempt = 1; attempt <= ONEC_WRITE_FAILURES_BEFORE_INCIDENT + 1; attempt += 1) {
      await expect(handleWriteBack({}, context, job)).rejects.toMatchObject({ code: ONEC_FOLDER_UNWRITABLE, message: expect.stringContaining(`cannot write ${join(inbox, STATUS_FILE)} for 1C (ENOTDIR)`) });
      // Not at the first failure: a person is told once it repeats.
      expect((await incidents()).length).toBe(attempt < ONEC_WRITE_FAILURES_BEFORE_INCIDENT ? 0 : 1);
    }
    const [open] = await incidents();
    expect(open).toMatchObject({ status: 'open', evidence: { folder: inbox, code: 'ENOTDIR' }, title: expect.stringContaining(`cannot write its files for 1C into ${inbox}`) });

    // The share is back: the next write-back writes the file and closes the incident.
    rmSync(parent);
    mkdirSync(parent);
    await expect(handleWriteBack({}, context, job)).resolves.toMatchObject({ status: true });
    expect(existsSync(join(inbox, STATUS_FILE))).toBe(true);
    const [closed] = await incidents();
    expect(closed).toMatchObject({ id: open.id, status: 'resolved', resolved_by: 'worker' });
    expect(closed.timeline[closed.timeline.length - 1].text).toContain(`a file for 1C was written into ${inbox} again`);
  });

  it('counts failures in a row: a success in between starts the count again', async () => {
    // Each write-back below has a file to write: an unchanged status report is not written again.
    const changed = () => context.orm.em.fork().execute("delete from writeback_mark where target = 'onec.status'");
    rmSync(parent, { recursive: true, force: true });
    writeFileSync(parent, 'blocked again');
    for (let attempt = 1; attempt < ONEC_WRITE_FAILURES_BEFORE_INCIDENT; attempt += 1) {
      await changed();
      await expect(handleWriteBack({}, context, job)).rejects.toMatchObject({ code: ONEC_FOLDER_UNWRITABLE });
    }
    rmSync(parent);
    mkdirSync(parent);
    await changed();
    await expect(handleWriteBack({}, context, job)).resolves.toMatchObject({ status: true });
    rmSync(parent, { recursive: true, force: true });
    writeFileSync(parent, 'blocked once more');
    await changed();
    await expect(handleWriteBack({}, context, job)).rejects.toMatchObject({ code: ONEC_FOLDER_UNWRITABLE });
    expect((await incidents()).filter((i) => i.status === 'open')).toEqual([]);
    rmSync(parent);
  });
});
