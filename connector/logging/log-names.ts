/**
 * logins are confidential and never logged. An actor or a lockdown scope that carries one
 * (`user:alice`, `admin:bob`, `login:alice`) is logged by its kind only (`user`); `cli:root` (an
 * account of this machine), `system:auth`, `worker`, `all`, `credentials` stay as they are. The audit
 * log, in PostgreSQL, keeps who did what.
 */
export function actorForLog(actor: string): string {
  return /^(user|admin|login):/.test(actor) ? actor.slice(0, actor.indexOf(':')) : actor;
}
