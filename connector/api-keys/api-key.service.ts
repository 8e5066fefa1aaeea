import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { ApiKey } from '../persistence/entities';
import { ConnectorError } from '../shared/errors';
import { appendAudit } from '../audit/audit.log';
import { checkIban } from '../requisites/iban.validator';
import { requisiteRefusal } from '../requisites/requisite-rule';

/** API keys for ERPs: shown once at creation, only their SHA-256 stored, scoped to payer accounts. */
const KEY_PREFIX = 'ck_';

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export interface CreatedApiKey {
  key: string;
  record: ApiKey;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

/** The same rules as `connector validate --iban`: a mistyped account would scope the key to no account. */
function checkAccounts(accounts: readonly string[]): void {
  for (const account of accounts) {
    const iban = checkIban(account);
    if (!iban.ok) throw requisiteRefusal('INVALID_ACCOUNT', 'accounts', account, iban);
  }
}

export async function createApiKey(em: EntityManager, name: string, accounts: string[], actor: string): Promise<CreatedApiKey> {
  if (!NAME.test(name)) throw new ConnectorError('INVALID_NAME', `API key name "${name}" must be 1-64 letters, digits, "_", "-" or "."`, 2);
  checkAccounts(accounts);
  const existing = await em.findOne(ApiKey, { name });
  if (existing?.revokedAt) {
    // The name stays the revoked key's: its orders' source (api:<name>) and audit records name it.
    throw new ConnectorError('NAME_TAKEN', `the API key named "${name}" was revoked on ${existing.revokedAt.toISOString()}; a revoked key's name is not given again (its orders and audit records keep it): choose another name, e.g. "${name}-2"`);
  }
  if (existing) throw new ConnectorError('NAME_TAKEN', `an API key named "${name}" already exists; revoke it or choose another name`);
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const record = em.create(ApiKey, {
    id: randomUUID(),
    name,
    keyHash: hashApiKey(key),
    keyPrefix: key.slice(0, KEY_PREFIX.length + 6),
    accounts: [...new Set(accounts)],
    createdAt: new Date(),
  });
  await em.flush();
  await appendAudit(em, { actor, action: 'api_key.created', subject: name, details: { accounts: record.accounts } });
  return { key, record };
}

export async function listApiKeys(em: EntityManager): Promise<ApiKey[]> {
  return em.find(ApiKey, {}, { orderBy: { createdAt: 'asc' } });
}

export async function revokeApiKey(em: EntityManager, name: string, actor: string): Promise<void> {
  const record = await em.findOne(ApiKey, { name });
  if (!record) throw new ConnectorError('NOT_FOUND', `no API key named "${name}"`);
  if (record.revokedAt) return;
  record.revokedAt = new Date();
  await em.flush();
  await appendAudit(em, { actor, action: 'api_key.revoked', subject: name });
}

/**
 * `api-keys grant NAME --accounts IBAN,...` / `api-keys revoke-accounts`: the payer accounts a key
 * may submit for, changed without a new key (INTERFACES.md: a key created without accounts may
 * submit for none "until one is granted"). Audited; returns the key's accounts after.
 */
export async function changeApiKeyAccounts(em: EntityManager, name: string, change: { grant?: string[]; revoke?: string[] }, actor: string): Promise<string[]> {
  checkAccounts(change.grant ?? []);
  // One transaction, the key's row locked: two changes at once both hold.
  return em.transactional(async (tx) => {
    const record = await tx.findOne(ApiKey, { name }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!record) throw new ConnectorError('NOT_FOUND', `no API key named "${name}"`);
    if (record.revokedAt) throw new ConnectorError('KEY_REVOKED', `the API key "${name}" is revoked; create a new one`);
    const notGranted = (change.revoke ?? []).filter((a) => !record.accounts.includes(a));
    if (notGranted.length) throw new ConnectorError('ACCOUNT_NOT_GRANTED', `the API key "${name}" has no account ${notGranted.join(', ')}; it has: ${record.accounts.join(', ') || 'none'}`);
    const revoke = new Set(change.revoke ?? []);
    const accounts = [...new Set([...record.accounts.filter((a) => !revoke.has(a)), ...(change.grant ?? [])])];
    record.accounts = accounts;
    await tx.flush();
    await appendAudit(tx, { actor, action: 'api_key.accounts_changed', subject: name, details: { granted: change.grant ?? [], revoked: change.revoke ?? [], accounts } });
    return accounts;
  });
}

/** The key's record when it is known and not revoked; null otherwise (the caller answers 401). */
export async function authenticateApiKey(em: EntityManager, presented: string): Promise<ApiKey | null> {
  if (!presented.startsWith(KEY_PREFIX) || presented.length > 200) return null;
  const record = await em.findOne(ApiKey, { keyHash: hashApiKey(presented) });
  if (!record || record.revokedAt) return null;
  return record;
}
