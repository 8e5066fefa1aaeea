import { mandatedLogins, requiredLevels } from '../../connector/signing/signing-policy';

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
});
