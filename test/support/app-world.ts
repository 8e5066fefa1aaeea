import type { EntityManager } from '@mikro-orm/postgresql';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { createLogger } from '../../connector/logging/logger';
import { createTestEnv, type TestEnv } from './test-env';

export interface AppWorld {
  readonly env: TestEnv;
  readonly context: AppContext;
  /** A fresh EntityManager on the test's database. */
  db(): EntityManager;
}

/**
 * A test file's own world on the real services: its database and Redis prefix (createTestEnv) and
 * a worker-role AppContext over them, made before the file's tests and closed and dropped after.
 * Call it at the top of a describe block.
 */
export function appWorld(
  label: string,
  extraEnv: NodeJS.ProcessEnv = {},
  options: { role?: 'worker' | 'producer'; quiet?: boolean } = {},
): AppWorld {
  let env: TestEnv | undefined;
  let context: AppContext | undefined;
  beforeAll(async () => {
    env = await createTestEnv(label, extraEnv);
    // quiet: alerts are logged at error level by design; such a test reads the incidents instead.
    context = await createAppContext({ config: env.config, role: options.role ?? 'worker', ...(options.quiet ? { logger: createLogger({ level: 'silent' }) } : {}) });
  }, 60_000);
  afterAll(async () => {
    await context?.close();
    await env?.cleanup();
  });
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`appWorld(${label}): ${what} is made in beforeAll; use it inside a test or hook`);
    return value;
  };
  return {
    get env() {
      return ready(env, 'env');
    },
    get context() {
      return ready(context, 'context');
    },
    db: () => ready(context, 'context').orm.em.fork(),
  };
}
