import type { AppContext } from './app-context';
import { SecretBox } from '../vault/secret-box';
import { phantomKeyFrom, RedisPhantomLogins, type PhantomLoginCounter } from '../users/phantom-logins';
import { sessionStoreFor, type SessionStore } from '../users/session.store';
import { signerAgentPortFromConfig, type SignerAgentPort } from '../users/signer-agent.port';
import type { UserDeps } from '../users/user.service';
import { reportSecurityEvent } from '../../queue/lockdown.trigger';
import { requeueOrder } from '../../queue/jobs/sweep-orders.job';

/**
 * Wiring of the users capability for one process: one SecretBox (master key read once, lazily:
 * a process that never touches a TOTP seed never needs the key file), one session store, the
 * signer agent port, the phantom-login counts shared in Redis. Tests pass their own signer agent port.
 */
export interface UsersWiring {
  sessions: SessionStore;
  signerAgent: SignerAgentPort;
  box: () => SecretBox;
  phantoms: PhantomLoginCounter;
}

const wirings = new WeakMap<AppContext, UsersWiring>();

export function usersWiring(context: AppContext, overrides: Partial<UsersWiring> = {}): UsersWiring {
  let wiring = wirings.get(context);
  if (!wiring) {
    let box: SecretBox | undefined;
    wiring = {
      sessions: overrides.sessions ?? sessionStoreFor(context),
      signerAgent: overrides.signerAgent ?? signerAgentPortFromConfig(context.config),
      box: overrides.box ?? (() => (box ??= SecretBox.fromConfig(context.config))),
      phantoms: overrides.phantoms ?? new RedisPhantomLogins(context.redis, context.config.redis.prefix, phantomKeyFrom(context.config, context.logger)),
    };
    wirings.set(context, wiring);
  }
  return wiring;
}

/** UserDeps on a fresh EntityManager (one per request / command). */
export function userDeps(context: AppContext, wiring: UsersWiring = usersWiring(context)): UserDeps {
  return {
    em: context.orm.em.fork(),
    clock: context.clock,
    config: context.config,
    logger: context.logger,
    box: wiring.box,
    sessions: wiring.sessions,
    signerAgent: wiring.signerAgent,
    phantoms: wiring.phantoms,
    // Issue 16: brute force across accounts locks the connector down (or alerts, per config).
    onSecurityEvent: async (event) => {
      await reportSecurityEvent(context, event);
    },
    // an order sent back to be signed is looked at now. Best effort: the change is committed,
    // and the sweeper queues the order's sign stage all the same (Redis away, a CLI without it).
    // Bounded: a Redis that does not answer must not hold up the block.
    onOrdersBackToSigning: async (orderIds) => {
      const warn = (err: Error) => context.logger.warn({ event: 'order.sign.enqueue_failed', orders: orderIds.length, err: err.message });
      let timer: NodeJS.Timeout | undefined;
      const requeued = (async () => {
        for (const orderId of orderIds) await requeueOrder(context.queues, 'awaiting_signatures', orderId, { now: true });
      })().catch(warn);
      const timeout = new Promise<void>((resolve) => {
        timer = setTimeout(() => resolve(warn(new Error('Redis did not answer within 5 s'))), 5_000);
      });
      await Promise.race([requeued, timeout]).finally(() => clearTimeout(timer));
    },
  };
}
