import { formatAmount, parseAmount, sumTiyn, MAX_AMOUNT, MAX_TIYN, MoneyError } from '../../connector/shared/money';

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

  const refusal = (text: string): MoneyError => {
    try {
      parseAmount(text);
    } catch (err) {
      if (err instanceof MoneyError) return err;
      throw err;
    }
    throw new Error(`${text} was taken`);
  };

  it.each(['12345678901234567890', '9999999999999999.99', '90071992547409.92', '100000000000000000,5'])('%p is refused for its size, naming the largest amount', (text) => {
    const err = refusal(text);
    expect(err.rule).toBe('too_large');
    expect(err.message).toBe(`amount "${text}" exceeds the largest amount 90071992547409.91`);
    expect(err.messageRu).toBe(`Сумма «${text}» больше наибольшей допустимой (90071992547409.91)`);
  });

  it.each(['1.234', '1e3', '12 345', '-5', '00000000000000001.00'])('%p is refused for its form', (text) => {
    const err = refusal(text);
    expect(err.rule).toBe('format');
    expect(err.messageRu).toMatch(/записана неверно: нужны цифры и не более 2 знаков после точки/);
  });

  it('MAX_AMOUNT is MAX_TIYN written out', () => {
    expect(formatAmount(MAX_TIYN)).toBe(MAX_AMOUNT);
    expect(parseAmount(MAX_AMOUNT)).toBe(MAX_TIYN);
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
