import { mandatedLogins, policyAmountTiyn, requiredLevels } from '../../connector/signing/signing-policy';
import { decideSign } from '../../connector/users/authority';
import { MAX_AMOUNT, parseAmount } from '../../connector/shared/money';

describe('signing policy (config signing.rules / signing.mandates)', () => {
  const A = 'KZ88998CTB0000000001';
  const B = 'KZ34998CTB0000000003';
  const rules = [
    { account: '*', fromAmount: '0', signatures: 1 as const },
    { account: '*', fromAmount: '1000000', signatures: 2 as const },
    { account: B, fromAmount: '0', signatures: 2 as const },
  ];

  it.each([
    [A, 0, ['first']],
    [A, 99_999_999, ['first']],
    [A, 100_000_000, ['first', 'second']],
    [A, 250_000_000, ['first', 'second']],
    [B, 100, ['first', 'second']],
  ])('account %s, %d tiyn needs %j', (account, tiyn, levels) => {
    expect(requiredLevels(rules, account, tiyn)).toEqual(levels);
  });

  it('falls back to one signature when no rule applies', () => {
    expect(requiredLevels([], A, 500)).toEqual(['first']);
  });

  it('lists only the mandates covering the account and the amount', () => {
    const mandates = [
      { login: 'ceo', account: '*', upTo: '5000000' },
      { login: 'acc', account: A, upTo: '100000.00' },
    ];
    expect(mandatedLogins(mandates, A, 10_000_000)).toEqual(['ceo', 'acc']);
    expect(mandatedLogins(mandates, A, 10_000_001)).toEqual(['ceo']);
    expect(mandatedLogins(mandates, B, 10_000)).toEqual(['ceo']);
    expect(mandatedLogins(mandates, B, 500_000_001)).toEqual([]);
    expect(mandatedLogins([], A, 1)).toEqual([]);
  });
  it('an order in another currency stays above a limit or mandate written as the largest amount (fail closed)', () => {
    // "No practical limit" written as the largest amount the connector takes: 90071992547409.91.
    const dollars = policyAmountTiyn({ amountTiyn: 150_000_00, currency: 'USD' });
    expect(mandatedLogins([{ login: 'ceo', account: '*', upTo: MAX_AMOUNT }], A, dollars)).toEqual([]);
    expect(requiredLevels(rules, A, dollars)).toEqual(['first', 'second']);
    const signer = {
      user: { id: 'u1', login: 'ceo', role: 'signer', blockedReason: null, lastActivityAt: null },
      rights: [{ account: '*', rights: 'manage', signLimitTiyn: parseAmount(MAX_AMOUNT), signLevel: 'first' }],
    } as unknown as Parameters<typeof decideSign>[0];
    expect(decideSign(signer, A, dollars)).toMatchObject({ allowed: false, reason: 'OVER_LIMIT' });
    // The same figure in tenge is within both.
    const tenge = policyAmountTiyn({ amountTiyn: 150_000_00, currency: 'KZT' });
    expect(mandatedLogins([{ login: 'ceo', account: '*', upTo: MAX_AMOUNT }], A, tenge)).toEqual(['ceo']);
    expect(decideSign(signer, A, tenge)).toMatchObject({ allowed: true, level: 'first' });
  });
});
