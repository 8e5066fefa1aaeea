import { buildBankChecklist, formatBankChecklist } from './bank-checklist';
import { parseScope } from './lockdown.service';

describe('lockdown scope', () => {
  it.each([
    ['all', 'all'],
    ['credentials', 'credentials'],
    ['user:Ivanov.A', 'user:ivanov.a'],
    [undefined, 'all'],
  ])('%s -> %s', (input, expected) => {
    expect(parseScope(input)).toBe(expected);
  });

  it.each(['everything', 'user:', 'user:a b', 'USER:x', 'user:x:y'])('refuses %s as a usage error', (input) => {
    expect(() => parseScope(input)).toThrow(expect.objectContaining({ code: 'INVALID_SCOPE', exitCode: 2 }));
  });
});

describe('bank-notification checklist (R-29)', () => {
  const base = {
    reason: 'EDS token lost',
    trigger: 'manual',
    detectedAt: new Date('2026-11-25T10:00:00Z'),
    deadline: new Date('2026-11-26T12:00:00Z'),
    recentDocuments: [{ number: '17', date: '2026-11-25', amount: '1500.00', payerAccount: 'KZ01', state: 'submitted', externalId: 'e1', bankReference: 'ACB1', at: '2026-11-25T09:00:00.000Z' }],
    heldOrders: 3,
    clientId: 'client-1',
    users: ['ceo'],
  };

  it('asks to revoke the EDS of the users in scope, not to block the Client Secret', () => {
    const c = buildBankChecklist({ ...base, scope: 'user:ceo' });
    expect(c.phones).toEqual(['+7 7172 770 622', '+7 800 080 0711', '7711']);
    expect(c.ask.join('\n')).toMatch(/revoke the EDS .* ceo/);
    expect(c.ask.join('\n')).not.toMatch(/Client ID \/ Client Secret pair/);
    expect(c.afterwards.join('\n')).toMatch(/re-enroll ceo/);
  });

  it('asks to block the Client ID / Secret when credentials are in scope, and says to rotate', () => {
    const c = buildBankChecklist({ ...base, scope: 'credentials', users: [] });
    expect(c.ask.join('\n')).toMatch(/Client ID \/ Client Secret pair/);
    expect(c.ask.join('\n')).not.toMatch(/revoke the EDS/);
    expect(c.afterwards.join('\n')).toMatch(/credentials rotate --secret-stdin/);
  });

  it('prints the phones, the deadline and the documents to give', () => {
    const text = formatBankChecklist(buildBankChecklist({ ...base, scope: 'all' }));
    expect(text).toMatch(/\+7 7172 770 622, \+7 800 080 0711, 7711/);
    expect(text).toMatch(/deadline: 2026-11-26T12:00:00.000Z/);
    expect(text).toMatch(/document 17 of 2026-11-25, 1500.00 KZT from KZ01, submitted \(bank ref ACB1\)/);
  });
});
