import type { AppContext } from '../../connector/app/app-context';
import { lockdownKey } from '../../connector/lockdown/lockdown.flag';

/** Back to no lockdown, as a test that caused one (or ran after one) needs: the record, the Redis flag, the queues. */
export async function resetLockdown(context: Pick<AppContext, 'orm' | 'queues' | 'config'>): Promise<void> {
  await context.orm.em
    .fork()
    .execute("update lockdown_state set state = 'normal', since = null, reason = null, scope = null, trigger = null, incident_id = null, warnings = '[]' where id = 1");
  await context.queues.connection.del(lockdownKey(context.config.redis.prefix));
  await Promise.all(context.queues.all().map((queue) => queue.resume()));
}
