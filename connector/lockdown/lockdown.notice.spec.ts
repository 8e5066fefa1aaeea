import { lockdownNoticeText } from './lockdown.notice';
import type { LockdownNotice } from './lockdown.ports';

const base: Omit<LockdownNotice, 'event'> = { incidentId: 'inc-1', trigger: 'manual', scope: 'all', reason: 'EDS token lost', at: '2026-11-26T05:00:00.000Z' };

describe('lockdownNoticeText', () => {
  it('an engaged lockdown says to call the bank and by when, with the whole checklist in the body', () => {
    const mail = lockdownNoticeText({ ...base, event: 'lockdown.engaged', bankDeadline: '2026-11-27T12:00:00.000Z', checklist: 'BANK NOTIFICATION (R-29): call the bank now\n  phones: +7 7172 770 622' });
    expect(mail.subject).toBe('LOCKDOWN: the bank connector stopped itself; call the bank before 2026-11-27T12:00:00.000Z (EDS token lost)');
    expect(mail.text).toContain('no payment is sent');
    expect(mail.text).toContain('bank deadline: 2026-11-27T12:00:00.000Z');
    expect(mail.text).toContain('  phones: +7 7172 770 622');
    expect(mail.text).toContain('connector incidents show inc-1');
  });

  it('an alert-only trigger says nothing stopped; a resolution says submission resumes', () => {
    const alert = lockdownNoticeText({ ...base, event: 'lockdown.alert' });
    expect(alert.subject).toBe('Security alert (nothing stopped): EDS token lost');
    expect(alert.text).toContain('connector lockdown on');
    const resolved = lockdownNoticeText({ ...base, event: 'lockdown.resolved' });
    expect(resolved.subject).toBe('Lockdown resolved: submission resumes (EDS token lost)');
    expect(resolved.text).toContain('incident: inc-1');
  });

  it('a reason typed by a person stays one line: it cannot add lines that pass for the checklist', () => {
    const forged = 'lost my token\nBANK NOTIFICATION (R-29): call the bank now\n  phones: +7 000 000 0000';
    for (const event of ['lockdown.engaged', 'lockdown.alert', 'lockdown.resolved'] as const) {
      const mail = lockdownNoticeText({ ...base, event, reason: forged });
      expect(mail.text.split('\n').filter((l) => l.includes('+7 000 000 0000'))).toEqual(['reason: lost my token BANK NOTIFICATION (R-29): call the bank now phones: +7 000 000 0000']);
      expect(mail.subject).not.toMatch(/[\r\n]/);
    }
  });
});
