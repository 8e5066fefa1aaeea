import type { EntityManager } from '@mikro-orm/postgresql';
import { Incident } from '../persistence/entities';
import { openIncident, resolveIncident } from '../incidents/incident.service';
import { compactIban } from '../requisites/iban.validator';

/** An account as the bank lists it for the Client ID (`GET /accounts`). */
export interface ListedAccount {
  iban: string;
  currency: string;
  name?: string;
  status: string;
}

export interface AccountLister {
  listAccounts(): Promise<ListedAccount[]>;
}

export const ACCOUNT_NOT_FOLLOWED = 'account_not_followed';
/** The one incident of an installation without `pipeline.accounts` (accounts followed only while they have orders). */
const UNCONFIGURED_KEY = 'account-not-followed:unconfigured';
const accountKey = (iban: string) => `account-not-followed:${compactIban(iban)}`;

export interface UnfollowedReport {
  listed: number;
  /** Listed accounts, not closed, whose statements are not fetched now. */
  unfollowed: string[];
  opened: string[];
  /** Incidents the connector closed: their account is followed now, closed or no longer listed. */
  resolved: string[];
}

/**
 * R-27/R-29: reconciliation sees a debit nobody ordered only on the accounts whose statements are
 * fetched (`statementAccounts`): those named in `pipeline.accounts`, else those with orders on
 * their way or taken in lately. An account the bank lists for this Client ID outside that set is a
 * blind spot: a payment from it that nobody authorised would go unseen. Closed accounts cannot be
 * debited and are left out.
 * - With `pipeline.accounts` given (`configured`), the set changes only when an admin changes it:
 *   one incident per listed account not on it, closed by the connector once the account is on the
 *   list (or closed, or gone); one a person resolved (the account is watched some other way) is not
 *   opened again.
 * - Without it, accounts come and go from the set with their orders, so one incident says that the
 *   statements follow the orders and names the accounts not followed at the time (once; closed by
 *   the connector when the list is given).
 *
 * Following every listed account instead is not done on purpose: an account the company also pays
 * from by hand in Internet-banking would raise an unexplained debit, a lockdown trigger, at each of
 * those payments. Which accounts are the connector's to watch is the admin's decision.
 */
export async function reportUnfollowedAccounts(
  em: EntityManager,
  bank: AccountLister,
  followed: readonly string[],
  options: { configured: boolean; now: Date },
): Promise<UnfollowedReport> {
  const { configured, now } = options;
  const listed = await bank.listAccounts();
  const watched = new Set(followed.map(compactIban));
  const open = listed.filter((a) => a.status.toLowerCase() !== 'closed');
  const unfollowed = open.filter((a) => !watched.has(compactIban(a.iban)));
  const opened: string[] = [];
  const note = async (input: Parameters<typeof openIncident>[1]) => {
    const { incident, created } = await openIncident(em, input);
    if (created) opened.push(incident.id);
  };
  const common = { kind: ACCOUNT_NOT_FOLLOWED, severity: 'medium' as const, onRepeat: 'ignore' as const, once: true, actor: 'worker', now };
  if (configured) {
    for (const account of unfollowed) {
      await note({
        ...common,
        title: `Account ${account.iban}${account.name ? ` (${account.name})` : ''} is not watched: the bank lists it for this Client ID, but it is not in pipeline.accounts, so its statements are not fetched and a debit nobody ordered would go unseen (R-29). To watch it, add it to pipeline.accounts; if it is watched some other way, resolve this incident.`,
        evidence: { account: account.iban, currency: account.currency, status: account.status, followed: [...followed], followedFrom: 'pipeline.accounts' },
        dedupeKey: accountKey(account.iban),
      });
    }
  } else if (unfollowed.length > 0) {
    await note({
      ...common,
      title: `pipeline.accounts names no account, so statements are fetched only for accounts with orders on their way or final for less than 3 days; of the ${open.length} account(s) the bank lists for this Client ID, ${unfollowed.length} are not watched now (${unfollowed.map((a) => a.iban).join(', ')}): a debit nobody ordered from them would go unseen (R-29). Name every account to watch in pipeline.accounts; if they are watched some other way, resolve this incident.`,
      evidence: { accounts: unfollowed.map((a) => ({ account: a.iban, currency: a.currency, status: a.status })), followed: [...followed], followedFrom: 'accounts with recent orders' },
      dedupeKey: UNCONFIGURED_KEY,
    });
  }
  // What no longer holds is closed by the connector: an account on the list now (or closed, or no
  // longer the client's), and the unconfigured notice once the list is given.
  // An empty list tells nothing (a bank that answers so for a moment would close every one).
  const stillUnfollowed = new Set(unfollowed.map((a) => accountKey(a.iban)));
  const stale = (listed.length === 0 ? [] : await em.find(Incident, { kind: ACCOUNT_NOT_FOLLOWED, status: 'open' })).filter((i) =>
    i.dedupeKey === UNCONFIGURED_KEY ? configured : configured && !stillUnfollowed.has(i.dedupeKey ?? ''),
  );
  const resolved: string[] = [];
  for (const incident of stale) {
    const why = incident.dedupeKey === UNCONFIGURED_KEY ? 'pipeline.accounts now names the accounts to watch' : 'the account is followed now, closed, or no longer listed by the bank';
    const { resolved: done } = await resolveIncident(em, { id: incident.id, actor: 'worker', note: why, now });
    if (done) resolved.push(incident.id);
  }
  return { listed: listed.length, unfollowed: unfollowed.map((a) => a.iban), opened, resolved };
}
