import { maskIins } from '../../queue/jobs/sign-order.job';

describe('the sign stage logs a refusal without the persons\' IINs', () => {
  it('cuts each IIN/BIN of the agent\'s message to its last 4 digits', () => {
    expect(maskIins("the certificate's IIN 850315300019 is not the expected 900101400023")).toBe("the certificate's IIN ********0019 is not the expected ********0023");
  });

  it('leaves other numbers as they are: serials, amounts, longer or shorter digit runs', () => {
    const text = 'serial 1234567890123456789, IIK KZ69998CTA0000000101, amount 150000.00, order 17';
    expect(maskIins(text)).toBe(text);
  });
});
