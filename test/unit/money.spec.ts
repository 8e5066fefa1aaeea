import { formatAmount, parseAmount, sumTiyn, MoneyError } from '../../connector/shared/money';

describe('money is exact tiyn', () => {
  it.each([
    ['7745.70', 774570],
    ['7745.7', 774570],
    ['7745', 774500],
    ['0.01', 1],
    ['0,10', 10],
    ['150000.00', 15000000],
    ['  42.5 ', 4250],
    ['90071992547409.91', 9007199254740991],
  ])('parses %s as %d tiyn', (text, tiyn) => {
    expect(parseAmount(text)).toBe(tiyn);
  });

  it.each(['', '1.234', '-5', '1e3', 'abc', '1.2.3', '12 345', '0x10', '90071992547409.92'])('refuses %p', (text) => {
    expect(() => parseAmount(text)).toThrow(MoneyError);
  });

  it('never rounds like floats do (0.1 + 0.2)', () => {
    expect(sumTiyn([parseAmount('0.1'), parseAmount('0.2')])).toBe(parseAmount('0.3'));
    expect(formatAmount(sumTiyn([parseAmount('0.1'), parseAmount('0.2')]))).toBe('0.30');
  });

  it('formats tiyn back to a decimal string, round trip', () => {
    for (const text of ['0.00', '0.05', '1.00', '7745.70', '-12.30', '90071992547409.91']) {
      expect(formatAmount(parseAmount(text.replace('-', '')) * (text.startsWith('-') ? -1 : 1))).toBe(text);
    }
    expect(() => formatAmount(1.5)).toThrow(MoneyError);
  });
});
