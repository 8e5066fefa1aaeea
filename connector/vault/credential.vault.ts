import { createHash, timingSafeEqual } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { appendAudit } from '../audit/audit.log';
import { openIncident } from '../incidents/incident.service';
import { CredentialVault, type CredentialsRevokedSource } from '../persistence/entities';
import { ConnectorError } from '../shared/errors';
import type { Clock } from '../shared/clock';
import { loadMasterKey } from './master-key.store';
import { holdMasterKeyForSealing } from './master-key.lock';
import { SecretBox } from './secret-box';

/**
 * The bank's Client ID / Client Secret (R-1, R-2, R-4): one pair per installation, the secret
 * sealed with AES-256-GCM under the master key. Two clocks run against the pair (R-1, R-2):
 * days since it was generated, and days since it was last used successfully; the bank may block
 * it at 90 days of either. Admins are warned from day 75 and urgently at day 85.
 */
export const SECRET_PURPOSE = 'bank.clientSecret';
const DAY_MS = 86_400_000;
export const WARN_FROM_DAY = 75;
export const URGENT_FROM_DAY = 85;
export const BANK_LIMIT_DAYS = 90;

/** Exactly what the admin must do (R-2, clauses 2.1.1-2.1.2 of the bank's terms). */
export const REGENERATE_HINT =
  'log in to Internet-banking (terms 2.1.1-2.1.2: 2.1.1 sign in with your usual identification method; 2.1.2 open the API tab and generate the Client ID / Client Secret again), then run: connector credentials rotate --secret-stdin (add --client-id NEW_ID if the bank issued a new Client ID)';

/** The master key in use cannot open the stored Client Secret (each message names the key file). */
export type MasterKeyProblemCode = 'MASTER_KEY_MISSING' | 'MASTER_KEY_MISMATCH' | 'MASTER_KEY_INVALID' | 'MASTER_KEY_PERMISSIONS' | 'MASTER_KEY_UNREADABLE' | 'VAULT_CORRUPT';

export interface CredentialWarning {
  level: 'warning' | 'urgent' | 'blocked';
  code: 'CREDENTIALS_AGING' | 'CREDENTIALS_IDLE' | 'CREDENTIALS_REVOKED' | 'CREDENTIALS_MISSING' | MasterKeyProblemCode;
  message: string;
}

export interface CredentialStatus {
  configured: boolean;
  clientId: string | null;
  generatedAt: string | null;
  lastUsedAt: string | null;
  /** Whole days since generation / since last successful use (generation when never used). */
  ageDays: number | null;
  idleDays: number | null;
  revokedAt: string | null;
  revokedReason: string | null;
  /** Who made the pair unusable: `bank` (its answer, R-2) or `lockdown` (R-29/R-31; the bank said nothing). */
  revokedBy: CredentialsRevokedSource | null;
  /** The master key file the stored secret was opened with (absolute); null when not tried. */
  masterKeyFile: string | null;
  usable: boolean;
  warnings: CredentialWarning[];
}

/**
 * Tries to open the stored Client Secret with the master key file at `path` (absolute), never
 * creating that file, and drops the clear text at once: null when it opens, else the blocking
 * warning that names the file. A missing key id or AES-GCM's failed authentication is the signal
 * (R-4: the secret is never shown to tell a wrong key).
 */
export function masterKeyProblem(row: Pick<CredentialVault, 'secretEnc'>, path: string): CredentialWarning | null {
  try {
    new SecretBox(loadMasterKey(path)).decrypt(row.secretEnc, SECRET_PURPOSE);
    return null;
  } catch (err) {
    const coded = err instanceof ConnectorError;
    const code = (coded ? err.code : 'MASTER_KEY_UNREADABLE') as MasterKeyProblemCode;
    const why = coded ? err.message : `the master key file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
    return { level: 'blocked', code, message: `the stored Client Secret cannot be opened, so no order can be sent to the bank: ${why}` };
  }
}

function days(from: Date, to: Date): number {
  return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

function clockWarnings(kind: 'CREDENTIALS_AGING' | 'CREDENTIALS_IDLE', n: number, what: string): CredentialWarning[] {
  if (n >= URGENT_FROM_DAY) {
    return [{ level: 'urgent', code: kind, message: `${what} ${n} days ago; the bank may block the pair at ${BANK_LIMIT_DAYS} days. Now: ${REGENERATE_HINT}` }];
  }
  if (n >= WARN_FROM_DAY) {
    return [{ level: 'warning', code: kind, message: `${what} ${n} days ago (the bank may block the pair at ${BANK_LIMIT_DAYS} days). Before then: ${REGENERATE_HINT}` }];
  }
  return [];
}

/**
 * Why a revoked pair is unusable, in the words of whoever said so: the bank's answer (R-2), or a
 * lockdown that marked it compromised (R-29/R-31), which is not the bank speaking.
 */
export function revokedMessage(row: Pick<CredentialVault, 'revokedAt' | 'revokedReason' | 'revokedSource' | 'updatedBy'>): string {
  const reason = row.revokedReason ?? 'no reason given';
  if (row.revokedSource === 'lockdown') {
    return `a lockdown marked the Client ID / Secret compromised on ${row.revokedAt?.toISOString() ?? '?'} (by ${row.updatedBy}: ${reason}); the bank did not block them, but submission is stopped until the Client Secret is rotated: ${REGENERATE_HINT}`;
  }
  return `the bank answered that the Client ID / Secret are blocked or revoked (${reason}); submission is stopped: ${REGENERATE_HINT}`;
}

/**
 * Pure: the status of a stored pair at `now`; with `key`, what opening it with that master key
 * file gave (masterKeyProblem): a key that cannot open it makes the pair unusable.
 */
export function credentialStatusOf(row: CredentialVault | null, now: Date, key?: { file: string; problem: CredentialWarning | null }): CredentialStatus {
  if (!row) {
    return {
      configured: false,
      clientId: null,
      generatedAt: null,
      lastUsedAt: null,
      ageDays: null,
      idleDays: null,
      revokedAt: null,
      revokedReason: null,
      revokedBy: null,
      masterKeyFile: null,
      usable: false,
      warnings: [{ level: 'blocked', code: 'CREDENTIALS_MISSING', message: 'no Client ID / Client Secret stored: run connector credentials set --client-id ID --secret-stdin' }],
    };
  }
  const ageDays = days(row.generatedAt, now);
  const idleDays = days(row.lastUsedAt ?? row.generatedAt, now);
  const warnings: CredentialWarning[] = [];
  if (key?.problem) warnings.push(key.problem);
  if (row.revokedAt) {
    warnings.push({
      level: 'blocked',
      code: 'CREDENTIALS_REVOKED',
      message: revokedMessage(row),
    });
  }
  warnings.push(...clockWarnings('CREDENTIALS_AGING', ageDays, 'the Client Secret was generated'));
  warnings.push(...clockWarnings('CREDENTIALS_IDLE', idleDays, row.lastUsedAt ? 'the Business API was last used successfully' : 'the pair has not been used since it was generated'));
  return {
    configured: true,
    clientId: row.clientId,
    generatedAt: row.generatedAt.toISOString(),
    lastUsedAt: row.lastUsedAt?.toISOString() ?? null,
    ageDays,
    idleDays,
    revokedAt: row.revokedAt?.toISOString() ?? null,
    revokedReason: row.revokedReason ?? null,
    revokedBy: row.revokedAt ? (row.revokedSource ?? 'bank') : null,
    masterKeyFile: key?.file ?? null,
    usable: !row.revokedAt && !key?.problem,
    warnings,
  };
}

const CLIENT_ID = /^[\x21-\x7e]{1,200}$/;

function checkSecret(secret: string): void {
  if (secret.length < 8 || secret.length > 4096 || /[\r\n]/.test(secret)) {
    throw new ConnectorError('INVALID_SECRET', 'the Client Secret must be one line of 8-4096 characters', 2);
  }
}

/** Constant time: both sides hashed first, so neither a length nor a first differing byte shows in the timing. */
function sameSecret(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * The stored Client Secret, or null when `box` cannot open it (a lost or other master key): then
 * there is nothing to compare with, and replacing it is what `credentials set` is for (sealing-key.ts).
 */
function openedOrNull(box: SecretBox, row: Pick<CredentialVault, 'secretEnc'>): string | null {
  try {
    return box.decrypt(row.secretEnc, SECRET_PURPOSE);
  } catch {
    return null;
  }
}

/**
 * The secret already stored was refused (R-29/R-31): it may be the one that leaked, and storing it
 * again would restart its clocks and lift a revocation or a lockdown's "compromised" mark.
 */
function secretUnchanged(): ConnectorError {
  return new ConnectorError(
    'SECRET_UNCHANGED',
    "this is the Client Secret already stored; storing it again would not replace a secret that may have leaked (R-29/R-31) nor restart its clocks (R-1). Generate a new Client ID / Client Secret pair in the bank's Internet-banking (terms 2.1.1-2.1.2: sign in, open the API tab, generate again) and store that one",
  );
}

export interface VaultDeps {
  em: EntityManager;
  box: SecretBox;
  clock: Clock;
}

/**
 * `credentials set`: stores the pair (replacing any earlier one: R-1, one pair per installation).
 * The Client Secret already stored is refused (SECRET_UNCHANGED, as rotate): `set` restarts the
 * clocks and lifts a revocation, so the same secret would satisfy a lockdown's rotation step
 * while the leaked pair stayed in use.
 */
export async function setCredentials(
  deps: VaultDeps,
  input: {
    clientId: string;
    clientSecret: string;
    actor: string;
    generatedAt?: Date;
    /** The demo's sandbox pair only (its bank knows no other): stored again after a lockdown marked it. */
    reuseRevoked?: boolean;
  },
): Promise<CredentialStatus> {
  if (!CLIENT_ID.test(input.clientId)) throw new ConnectorError('INVALID_CLIENT_ID', 'the Client ID must be 1-200 visible ASCII characters', 2);
  checkSecret(input.clientSecret);
  const now = deps.clock.now();
  return deps.em.transactional(async (tx) => {
    await holdMasterKeyForSealing(tx);
    const existing = await tx.findOne(CredentialVault, { id: 1 });
    const stored = existing ? openedOrNull(deps.box, existing) : null;
    const same = existing !== null && stored !== null && sameSecret(stored, input.clientSecret);
    // The secret a lockdown or the bank marked, stored again, would pass the resolve's rotation step
    // with the leaked pair usable again (R-29/R-31): refused, whatever the Client ID.
    if (same && existing.revokedAt && !input.reuseRevoked) throw secretUnchanged();
    // The pair in use, stored again (a provisioning script run twice): nothing changes, and its age
    // (R-1, R-2: generated when the bank issued it) is not restarted.
    // Given again with the day it was generated (`--generated-at`, a correction): only that changes.
    if (same && !existing.revokedAt && existing.clientId === input.clientId) {
      if (input.generatedAt && input.generatedAt.getTime() !== existing.generatedAt.getTime()) {
        Object.assign(existing, { generatedAt: input.generatedAt, updatedAt: now, updatedBy: input.actor });
        await tx.flush();
        await appendAudit(tx, { actor: input.actor, action: 'credentials.generated_at', subject: input.clientId, details: { generatedAt: input.generatedAt.toISOString() }, at: now });
      }
      return credentialStatusOf(existing, now);
    }
    const sealed = deps.box.encrypt(input.clientSecret, SECRET_PURPOSE);
    const generatedAt = input.generatedAt ?? (same ? existing.generatedAt : now);
    if (existing) {
      Object.assign(existing, { clientId: input.clientId, secretEnc: sealed, generatedAt, lastUsedAt: null, revokedAt: null, revokedReason: null, revokedSource: null, updatedAt: now, updatedBy: input.actor });
    } else {
      tx.create(CredentialVault, { id: 1, clientId: input.clientId, secretEnc: sealed, generatedAt, lastUsedAt: null, revokedAt: null, revokedReason: null, revokedSource: null, updatedAt: now, updatedBy: input.actor });
    }
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'credentials.set', subject: input.clientId, details: { replaced: Boolean(existing), keyId: deps.box.currentKeyId, generatedAt: generatedAt.toISOString() }, at: now });
    return credentialStatusOf(await tx.findOneOrFail(CredentialVault, { id: 1 }), now);
  });
}

/** `credentials rotate`: a new Client Secret for the same Client ID, regenerated in Internet-banking (2.1.1-2.1.2). */
export async function rotateSecret(deps: VaultDeps, input: { clientSecret: string; clientId?: string; actor: string; generatedAt?: Date }): Promise<CredentialStatus> {
  checkSecret(input.clientSecret);
  if (input.clientId !== undefined && !CLIENT_ID.test(input.clientId)) throw new ConnectorError('INVALID_CLIENT_ID', 'the Client ID must be 1-200 visible ASCII characters', 2);
  const now = deps.clock.now();
  return deps.em.transactional(async (tx) => {
    await holdMasterKeyForSealing(tx);
    const row = await tx.findOne(CredentialVault, { id: 1 });
    if (!row) throw new ConnectorError('CREDENTIALS_MISSING', 'no Client ID stored yet: run connector credentials set --client-id ID --secret-stdin first');
    const previous = deps.box.decrypt(row.secretEnc, SECRET_PURPOSE);
    if (input.clientId) row.clientId = input.clientId;
    if (sameSecret(previous, input.clientSecret)) throw secretUnchanged();
    Object.assign(row, { secretEnc: deps.box.encrypt(input.clientSecret, SECRET_PURPOSE), generatedAt: input.generatedAt ?? now, lastUsedAt: null, revokedAt: null, revokedReason: null, revokedSource: null, updatedAt: now, updatedBy: input.actor });
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'credentials.rotated', subject: row.clientId, details: { keyId: deps.box.currentKeyId }, at: now });
    return credentialStatusOf(row, now);
  });
}

/** With `masterKeyFile` (absolute), the stored secret is also opened with that key file (masterKeyProblem). */
export async function credentialStatus(deps: Pick<VaultDeps, 'em' | 'clock'> & { masterKeyFile?: string }): Promise<CredentialStatus> {
  const row = await deps.em.fork().findOne(CredentialVault, { id: 1 });
  const key = row && deps.masterKeyFile ? { file: deps.masterKeyFile, problem: masterKeyProblem(row, deps.masterKeyFile) } : undefined;
  return credentialStatusOf(row, deps.clock.now(), key);
}

/** The bank answered "blocked/revoked" (R-2): the pair is unusable until rotated; submission stops. */
export async function markCredentialsRevoked(deps: Pick<VaultDeps, 'em' | 'clock'>, input: { reason: string; actor: string }): Promise<void> {
  const now = deps.clock.now();
  await deps.em.transactional(async (tx) => {
    const row = await tx.findOne(CredentialVault, { id: 1 });
    if (!row || row.revokedAt) return;
    row.revokedAt = now;
    row.revokedReason = input.reason.slice(0, 500);
    row.revokedSource = 'bank';
    row.updatedAt = now;
    row.updatedBy = input.actor;
    await tx.flush();
    await appendAudit(tx, { actor: input.actor, action: 'credentials.revoked', subject: row.clientId, details: { reason: row.revokedReason }, at: now });
    // The admin must act (R-2): an incident says exactly what to do, once per revocation.
    await openIncident(tx, {
      kind: 'credentials_revoked',
      severity: 'critical',
      title: `The bank blocked or revoked Client ID ${row.clientId}; submission is stopped. ${REGENERATE_HINT}`,
      evidence: { clientId: row.clientId, reason: row.revokedReason, revokedAt: now.toISOString() },
      dedupeKey: `credentials_revoked:${row.clientId}:${row.generatedAt.toISOString()}`,
      actor: input.actor,
      now,
    });
  });
}

export async function credentialsUsable(deps: Pick<VaultDeps, 'em' | 'clock'>): Promise<boolean> {
  return (await credentialStatus(deps)).usable;
}

/** Re-seals the stored secret under the current master key (after `vault rotate-key`). */
export async function resealCredentials(deps: VaultDeps, actor: string): Promise<boolean> {
  return deps.em.transactional(async (tx) => {
    const row = await tx.findOne(CredentialVault, { id: 1 });
    if (!row || !deps.box.isStale(row.secretEnc)) return false;
    row.secretEnc = deps.box.encrypt(deps.box.decrypt(row.secretEnc, SECRET_PURPOSE), SECRET_PURPOSE);
    await tx.flush();
    await appendAudit(tx, { actor, action: 'credentials.resealed', subject: row.clientId, details: { keyId: deps.box.currentKeyId }, at: deps.clock.now() });
    return true;
  });
}

const CLOCK_INCIDENT_PREFIX = 'credentials-clock:';

/**
 * R-1/R-2: the pair's clocks as incidents, so that the admins are told (the incident digest mails
 * them) rather than having to look: one incident per clock and threshold (day 75, day 85) of the
 * stored pair, with the day the bank may block it as the deadline. Once a clock no longer warns
 * (the pair was used, or rotated), its open incidents are resolved. Idempotent; the sweeper runs it.
 */
export async function raiseCredentialClockIncidents(deps: Pick<VaultDeps, 'em' | 'clock'>): Promise<{ opened: number; resolved: number }> {
  const em = deps.em.fork();
  const now = deps.clock.now();
  const row = await em.findOne(CredentialVault, { id: 1 });
  const status = credentialStatusOf(row, now);
  const current: string[] = [];
  let opened = 0;
  if (row && !row.revokedAt) {
    for (const warning of status.warnings) {
      if (warning.code !== 'CREDENTIALS_AGING' && warning.code !== 'CREDENTIALS_IDLE') continue;
      const since = warning.code === 'CREDENTIALS_AGING' ? row.generatedAt : (row.lastUsedAt ?? row.generatedAt);
      const key = `${CLOCK_INCIDENT_PREFIX}${warning.code}:${warning.level}:${since.toISOString()}`;
      current.push(key);
      const { created } = await openIncident(em, {
        kind: warning.code === 'CREDENTIALS_AGING' ? 'credentials_aging' : 'credentials_idle',
        severity: warning.level === 'urgent' ? 'high' : 'medium',
        title: warning.message,
        evidence: { clientId: row.clientId, since: since.toISOString(), code: warning.code, level: warning.level },
        dedupeKey: key,
        deadlineAt: new Date(since.getTime() + BANK_LIMIT_DAYS * DAY_MS),
        actor: 'system:credential-clock',
        now,
        // The sweeper looks every 30 s while the clock warns: one incident, not one entry per look.
        onRepeat: 'ignore',
      });
      if (created) opened += 1;
    }
  }
  const stale = await em.execute<Array<{ id: string }>>(
    `update incident set status = 'resolved', resolved_at = ?, resolved_by = 'system:credential-clock'
      where status = 'open' and dedupe_key like ? ${current.length ? `and dedupe_key not in (${current.map(() => '?').join(', ')})` : ''}
      returning id`,
    [now, `${CLOCK_INCIDENT_PREFIX}%`, ...current],
  );
  return { opened, resolved: stale.length };
}
