import type { EntityManager } from '@mikro-orm/postgresql';
import { AppUser, UserAccountRight } from '../persistence/entities';
import type { Clock } from '../shared/clock';
import { isInactive } from './password.policy';
import { isUuid } from '../shared/uuid';

/**
 * The one source of who may see and sign what. The pipeline's signing policy asks
 * `mayUserSign` for every signature it counts; the API asks `accountsVisibleTo` for every request.
 */
export type SignLevel = 'first' | 'second';

export interface SignDecision {
  allowed: boolean;
  level: SignLevel | null;
  /** Why not (stable code), or null when allowed. */
  reason: 'USER_NOT_FOUND' | 'USER_DISABLED' | 'USER_BLOCKED_INACTIVE' | 'ROLE_CANNOT_SIGN' | 'NO_RIGHT_ON_ACCOUNT' | 'INFO_ONLY' | 'NO_SIGNATURE_LEVEL' | 'OVER_LIMIT' | null;
  limitTiyn: number | null;
}

/** Roles that may hold a signature right at all; operators prepare and send, viewers look. */
const SIGNING_ROLES = new Set(['signer', 'admin']);

/** The right that applies to an account: an explicit one wins over "all accounts". */
export function rightFor<R extends Pick<UserAccountRight, 'account'>>(rights: R[], account: string): R | undefined {
  return rights.find((r) => r.account === account) ?? rights.find((r) => r.account === '*');
}

/** Accounts a user may see: 'all', or the IBANs granted (info or manage). A blocked user sees none. */
export function accountsVisibleTo(user: Pick<AppUser, 'blockedReason'>, rights: Array<Pick<UserAccountRight, 'account'>>): string[] | 'all' {
  if (user.blockedReason) return [];
  if (rights.some((r) => r.account === '*')) return 'all';
  return [...new Set(rights.map((r) => r.account))].sort();
}

/**
 * Accounts a user may act on (submit orders for): 'manage' rights only, and never for a viewer
 * "information only" users look, they do not prepare or send).
 */
export function accountsManageableBy(user: Pick<AppUser, 'blockedReason' | 'role'>, rights: Array<Pick<UserAccountRight, 'account' | 'rights'>>): string[] | 'all' {
  if (user.blockedReason || user.role === 'viewer') return [];
  const manage = rights.filter((r) => r.rights === 'manage');
  if (manage.some((r) => r.account === '*')) return 'all';
  return [...new Set(manage.map((r) => r.account))].sort();
}

/**
 * With 'manage' on all accounts, the accounts an explicit narrower right ('info') takes out: the
 * explicit right wins over "all accounts" (`rightFor`), for submitting as for signing.
 */
export function accountsNarrowedFrom(rights: Array<Pick<UserAccountRight, 'account' | 'rights'>>): string[] {
  if (!rights.some((r) => r.account === '*' && r.rights === 'manage')) return [];
  return [...new Set(rights.filter((r) => r.account !== '*' && r.rights !== 'manage').map((r) => r.account))].sort();
}

export async function loadRights(em: EntityManager, userId: string): Promise<UserAccountRight[]> {
  return em.find(UserAccountRight, { userId }, { orderBy: { account: 'asc' } });
}

/**
 * May this user's signature count on an order of `amountTiyn` from `account`, and at which level?
 * A disabled or inactivity-blocked user's signature never counts, including on
 * orders they signed before being disabled but that are not yet submitted: the pipeline asks
 * again before submission.
 */
export async function mayUserSign(em: EntityManager, userId: string, account: string, amountTiyn: number, clock?: Clock): Promise<SignDecision> {
  return decideSign(await loadSigner(em, userId), account, amountTiyn, clock);
}

/** A user and their account rights, as `decideSign` needs them; null when there is no such user. */
export interface SignerRecord {
  user: AppUser;
  rights: UserAccountRight[];
}

/**
 * A user and their account rights, in one statement (the pipeline asks for every batch it signs or
 * submits). By id (a uuid; anything else finds nobody) or by login.
 */
export async function loadSigner(em: EntityManager, key: string | { login: string }): Promise<SignerRecord | null> {
  const byLogin = typeof key !== 'string';
  if (!byLogin && !isUuid(key)) return null;
  const fork = em.fork();
  const rows = await fork.execute<Array<Record<string, unknown> & { signer_rights: RightJson[] | string }>>(
    `select u.*, coalesce((select json_agg(json_build_object('id', r.id, 'account', r.account, 'rights', r.rights, 'sign_limit_tiyn', r.sign_limit_tiyn,
            'sign_level', r.sign_level, 'granted_at', r.granted_at, 'granted_by', r.granted_by) order by r.account) from user_account_right r where r.user_id = u.id), '[]'::json) as signer_rights
       from app_user u where ${byLogin ? 'u.login' : 'u.id'} = ?`,
    [byLogin ? key.login : key],
  );
  if (rows.length === 0) return null;
  const { signer_rights: raw, ...userRow } = rows[0];
  const user = fork.map(AppUser, userRow);
  const rights = (typeof raw === 'string' ? (JSON.parse(raw) as RightJson[]) : raw).map((r) =>
    Object.assign(new UserAccountRight(), {
      id: Number(r.id),
      userId: user.id,
      account: r.account,
      rights: r.rights,
      signLimitTiyn: r.sign_limit_tiyn === null ? null : Number(r.sign_limit_tiyn),
      signLevel: r.sign_level,
      grantedAt: new Date(r.granted_at),
      grantedBy: r.granted_by,
    }),
  );
  return { user, rights };
}

interface RightJson {
  id: number | string;
  account: string;
  rights: string;
  sign_limit_tiyn: number | string | null;
  sign_level: SignLevel | null;
  granted_at: string;
  granted_by: string;
}

/** `mayUserSign` over an already loaded signer (a batch loads each user once). */
export function decideSign(signer: SignerRecord | null, account: string, amountTiyn: number, clock?: Clock): SignDecision {
  const deny = (reason: NonNullable<SignDecision['reason']>, limitTiyn: number | null = null, level: SignLevel | null = null): SignDecision => ({ allowed: false, level, reason, limitTiyn });
  if (!signer) return deny('USER_NOT_FOUND');
  const { user } = signer;
  if (user.blockedReason === 'admin') return deny('USER_DISABLED');
  if (user.blockedReason === 'inactive' || (clock && isInactive(user.lastActivityAt, clock.now()))) return deny('USER_BLOCKED_INACTIVE');
  if (!SIGNING_ROLES.has(user.role)) return deny('ROLE_CANNOT_SIGN');
  const right = rightFor(signer.rights, account);
  if (!right) return deny('NO_RIGHT_ON_ACCOUNT');
  if (right.rights !== 'manage') return deny('INFO_ONLY');
  const limit = right.signLimitTiyn ?? null;
  if (!right.signLevel) return deny('NO_SIGNATURE_LEVEL', limit);
  if (limit !== null && amountTiyn > limit) return deny('OVER_LIMIT', limit, right.signLevel);
  return { allowed: true, level: right.signLevel, reason: null, limitTiyn: limit };
}

/** accountsVisibleTo by user id (statements, reports): [] for an unknown user. */
export async function accountsVisibleToUser(em: EntityManager, userId: string): Promise<string[] | 'all'> {
  const signer = await loadSigner(em, userId);
  return signer ? accountsVisibleTo(signer.user, signer.rights) : [];
}
