/**
 * The bank-notification checklist (R-29, terms 4.3, 6.1.12): until the bank is told, everything done
 * through the connector counts as the client's own act (3.11). Stored in the incident and printed.
 */
export const BANK_PHONES = ['+7 7172 770 622', '+7 800 080 0711', '7711'] as const;

export interface ChecklistDocument {
  number: string;
  date: string;
  amount: string;
  /** Of the amount (absent in checklists recorded before it was kept: tenge then). */
  currency?: string;
  payerAccount: string;
  state: string;
  externalId: string;
  bankReference: string | null;
  at: string;
}

export interface BankChecklist {
  whatHappened: string;
  phones: readonly string[];
  deadline: string;
  ask: string[];
  scope: string;
  data: {
    detectedAt: string;
    trigger: string;
    /** Documents the bank may have received in the last days, and those held now. */
    recentDocuments: ChecklistDocument[];
    heldOrders: number;
    clientId: string | null;
    users: string[];
  };
  afterwards: string[];
}

export function buildBankChecklist(input: {
  reason: string;
  trigger: string;
  scope: string;
  detectedAt: Date;
  deadline: Date;
  recentDocuments: ChecklistDocument[];
  heldOrders: number;
  clientId: string | null;
  users: string[];
  /** Users whose EDS a trigger named (`user:LOGIN`), also when the scope is `users`. */
  edsOf?: string[];
}): BankChecklist {
  const ask = ['block access to the Business API for our Client ID until we confirm new credentials (terms 4.3, 6.1.12)'];
  if (input.scope === 'all' || input.scope.startsWith('user:')) ask.push(`revoke the EDS (NCA RK certificates) of: ${input.users.length ? input.users.join(', ') : 'every signer of the company'}`);
  else if (input.scope === 'users' && input.edsOf?.length) ask.push(`revoke the EDS (NCA RK certificates) of: ${input.edsOf.join(', ')}`);
  if (input.scope === 'all' || input.scope === 'credentials') ask.push('block the Client ID / Client Secret pair; we will generate a new one in Internet-banking (2.1.1-2.1.2)');
  ask.push('tell us of any document received since the time below that we did not send; give us a reference number for this notice');
  return {
    whatHappened: input.reason,
    phones: BANK_PHONES,
    deadline: input.deadline.toISOString(),
    ask,
    scope: input.scope,
    data: {
      detectedAt: input.detectedAt.toISOString(),
      trigger: input.trigger,
      recentDocuments: input.recentDocuments,
      heldOrders: input.heldOrders,
      clientId: input.clientId,
      users: input.users,
    },
    afterwards: [
      'connector lockdown resolve --incident ID --bank-notified-at ISO --bank-reference TEXT [--notified-by TEXT]',
      ...(input.scope === 'all' || input.scope === 'credentials' ? ['connector credentials rotate --secret-stdin (a new Client Secret, generated after the lockdown)'] : []),
      ...(input.scope.startsWith('user:') ? [input.scope.slice(5)] : input.scope === 'users' ? (input.edsOf ?? []) : []).map(
        (login) => `re-enroll ${login}'s new EDS key (connector users unblock, then users enroll-key) or revoke their signing rights (connector users revoke)`,
      ),
    ],
  };
}

/** Human text of the checklist (CLI stderr, webhook body summary). */
export function formatBankChecklist(c: BankChecklist): string {
  const lines = [
    'BANK NOTIFICATION (R-29): call the bank now',
    `  phones: ${c.phones.join(', ')}`,
    `  deadline: ${c.deadline} (1 business day; until then every act through the connector counts as the company's own, terms 3.11)`,
    `  what happened: ${c.whatHappened}`,
    '  ask the bank to:',
    ...c.ask.map((a) => `    - ${a}`),
    `  data to give: detected at ${c.data.detectedAt} (trigger ${c.data.trigger}); Client ID ${c.data.clientId ?? '(not stored)'}; ${c.data.heldOrders} orders held, not sent`,
    ...c.data.recentDocuments.slice(0, 20).map((d) => `    - document ${d.number} of ${d.date}, ${d.amount} ${d.currency ?? 'KZT'} from ${d.payerAccount}, ${d.state}${d.bankReference ? ` (bank ref ${d.bankReference})` : ''} at ${d.at}`),
    ...(c.data.recentDocuments.length > 20 ? [`    ... ${c.data.recentDocuments.length - 20} more in the incident (connector incidents show ID --json)`] : []),
    '  afterwards:',
    ...c.afterwards.map((a) => `    - ${a}`),
  ];
  return lines.join('\n');
}
