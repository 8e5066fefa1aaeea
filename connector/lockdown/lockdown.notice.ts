import { singleLine } from '../shared/text';
import type { LockdownNotice } from './lockdown.ports';

/**
 * A lockdown notice as a person reads it (the admins' e-mail): a subject that says what to do
 * first, and a body with the facts, the bank checklist when there is one, and where to look next.
 */
export function lockdownNoticeText(notice: LockdownNotice): { subject: string; text: string } {
  const reason = singleLine(notice.reason);
  const facts = [
    `reason: ${reason}`,
    `trigger: ${notice.trigger}`,
    `scope: ${notice.scope ?? '-'}`,
    `incident: ${notice.incidentId}`,
    `at: ${notice.at}`,
  ];
  const lookup = [`connector lockdown status`, `connector incidents show ${notice.incidentId}`];
  switch (notice.event) {
    case 'lockdown.engaged':
      return {
        subject: `LOCKDOWN: the bank connector stopped itself; call the bank${notice.bankDeadline ? ` before ${notice.bankDeadline}` : ''} (${reason})`,
        text: [
          'The bank connector stopped at the first sign of compromise: no payment is sent, no key is unlocked, every session ended.',
          'New orders from the ERP are kept as `held` and go on after an admin resolves the lockdown.',
          '',
          ...facts,
          ...(notice.bankDeadline ? [`bank deadline: ${notice.bankDeadline}`] : []),
          '',
          ...(notice.checklist ? [notice.checklist, ''] : []),
          'See:',
          ...lookup.map((l) => `  ${l}`),
        ].join('\n'),
      };
    case 'lockdown.alert':
      return {
        subject: `Security alert (nothing stopped): ${reason}`,
        text: [
          'A lockdown trigger fired, configured as alert only: the connector goes on working. Check whether the credentials or a key may be compromised; if so, run connector lockdown on.',
          '',
          ...facts,
          '',
          'See:',
          `  connector incidents show ${notice.incidentId}`,
        ].join('\n'),
      };
    case 'lockdown.resolved':
      return {
        subject: `Lockdown resolved: submission resumes (${reason})`,
        text: ['An admin resolved the lockdown: held orders are validated again and submission resumes, exactly once.', '', ...facts, '', 'See:', ...lookup.map((l) => `  ${l}`)].join('\n'),
      };
    default: {
      const never: never = notice.event;
      throw new Error(`unknown lockdown notice ${String(never)}`);
    }
  }
}
