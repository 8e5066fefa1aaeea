import type { EntityManager } from '@mikro-orm/postgresql';
import { openIncident } from '../incidents/incident.service';

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

/**
 * R-27/R-29: reconciliation sees a debit nobody ordered only on the accounts whose statements are
 * fetched (`statementAccounts`): those named in `pipeline.accounts`, else those with recent orders.
 * An account the bank lists for this Client ID outside that set is a blind spot: a payment from it
 * that nobody authorised would go unseen. Each one opens an incident (once per account: a person
 * who resolved it, because the account is watched some other way, is not asked again), naming the
 * account and how to watch it. Closed accounts cannot be debited and are left out.
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
): Promise<{ listed: number; unfollowed: string[]; opened: string[] }> {
  const listed = await bank.listAccounts();
  const watched = new Set(followed);
  const unfollowed = listed.filter((a) => !watched.has(a.iban) && a.status.toLowerCase() !== 'closed');
  const opened: string[] = [];
  for (const account of unfollowed) {
    const how = options.configured
      ? 'add it to pipeline.accounts'
      : 'name it in pipeline.accounts, with every other account to watch (once the list is given, only the accounts on it are followed)';
    const { incident, created } = await openIncident(em, {
      kind: ACCOUNT_NOT_FOLLOWED,
      severity: 'medium',
      title: `Account ${account.iban}${account.name ? ` (${account.name})` : ''} is not watched: the bank lists it for this Client ID, but its statements are not fetched, so a debit nobody ordered would go unseen (R-29). To watch it, ${how}; if it is watched some other way, resolve this incident.`,
      evidence: { account: account.iban, currency: account.currency, status: account.status, followed: [...followed], followedFrom: options.configured ? 'pipeline.accounts' : 'accounts with recent orders' },
      dedupeKey: `account-not-followed:${account.iban}`,
      onRepeat: 'ignore',
      once: true,
      actor: 'worker',
      now: options.now,
    });
    if (created) opened.push(incident.id);
  }
  return { listed: listed.length, unfollowed: unfollowed.map((a) => a.iban), opened };
}
