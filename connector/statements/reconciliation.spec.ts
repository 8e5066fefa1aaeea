import { KzBusinessCalendar } from '../calendar/kz-business-calendar';
import { decideLines, draftErroneousExecutionNotice, draftUnauthorisedDebitNotice, paymentNoticeTerm, type LineForMatch, type OrderForMatch } from './reconciliation';

const order = (over: Partial<OrderForMatch> = {}): OrderForMatch => ({
  id: 'o1',
  state: 'submitted',
  number: '101',
  docDate: '2026-11-25',
  amountTiyn: 774570,
  beneficiaryIban: 'KZ07826000000000042A',
  beneficiaryName: 'ТОО Поставщик',
  beneficiaryIinBin: '190840000015',
  knp: '710',
  externalId: 'ext-1',
  bankReference: null,
  submitAttempts: 1,
  ...over,
});

const line = (over: Partial<LineForMatch> = {}): LineForMatch => ({
  id: 'l1',
  bankLineId: 'B1',
  direction: 'debit',
  amount: 774570,
  status: 'booked',
  kind: 'payment',
  bookingDate: '2026-11-25',
  counterpartyName: 'ТОО Поставщик',
  counterpartyIban: 'KZ07826000000000042A',
  purpose: 'Оплата',
  documentNumber: '101',
  documentDate: '2026-11-25',
  bankReference: null,
  externalId: null,
  ...over,
});

describe('decideLines', () => {
  it.each<[string, LineForMatch[], OrderForMatch[], unknown[]]>([
    ['our external id on the line confirms the order', [line({ externalId: 'ext-1', documentNumber: null })], [order()], [{ kind: 'order', orderId: 'o1', how: 'reference', execute: true }]],
    ['the bank reference confirms it too', [line({ bankReference: 'ACB1', documentNumber: null })], [order({ bankReference: 'ACB1' })], [{ kind: 'order', how: 'reference' }]],
    ['number + date + amount + counterparty when the bank names nothing', [line()], [order()], [{ kind: 'order', how: 'requisites', execute: true }]],
    ['deemed executed becomes executed', [line()], [order({ state: 'deemed_executed' })], [{ kind: 'order', execute: true }]],
    ['already executed: linked, nothing to move', [line()], [order({ state: 'executed' })], [{ kind: 'order', execute: false }]],
    ['still submitting (answer not recorded yet): linked, not moved', [line({ externalId: 'ext-1' })], [order({ state: 'submitting' })], [{ kind: 'order', execute: false }]],
    ['failed after it was sent: the debit confirms it (the ERP must not show it failed)', [line({ externalId: 'ext-1' })], [order({ state: 'failed', failedFrom: 'submitted' })], [{ kind: 'order', execute: true }]],
    ['failed while sending: the debit confirms it', [line()], [order({ state: 'failed', failedFrom: 'submitting' })], [{ kind: 'order', execute: true }]],
    ['failed before it was sent: the debit is unexplained (R-29), linked to the order it names', [line()], [order({ state: 'failed', failedFrom: 'signed', submitAttempts: 0 })], [{ kind: 'unexplained', unsentOrderId: 'o1' }]],
    ['claimed for sending but failed before any send was counted: unexplained too', [line({ externalId: 'ext-1' })], [order({ state: 'failed', failedFrom: 'submitting', submitAttempts: 0 })], [{ kind: 'unexplained', unsentOrderId: 'o1' }]],
    ['another amount under our reference is an erroneous execution', [line({ externalId: 'ext-1', amount: 874570 })], [order()], [{ kind: 'mismatch', differences: [{ field: 'amount', signed: '7745.70', executed: '8745.70' }] }]],
    ['another beneficiary under our reference too', [line({ externalId: 'ext-1', counterpartyIban: 'KZ99' })], [order()], [{ kind: 'mismatch', differences: [{ field: 'beneficiaryIban' }] }]],
    ['a debit for an order the bank refused', [line({ externalId: 'ext-1' })], [order({ state: 'rejected' })], [{ kind: 'mismatch', differences: [{ field: 'state' }] }]],
    ['number + date of one order with another amount is that order executed otherwise (R-27)', [line({ amount: 1 })], [order()], [{ kind: 'mismatch', orderId: 'o1', differences: [{ field: 'amount' }] }]],
    ['number + date of one order with another beneficiary too', [line({ counterpartyIban: 'KZ99' })], [order()], [{ kind: 'mismatch', orderId: 'o1', differences: [{ field: 'beneficiaryIban' }] }]],
    ['number + date shared by twins, amount of neither: not guessed', [line({ amount: 1 })], [order(), order({ id: 'o2', amountTiyn: 2 })], [{ kind: 'unexplained' }]],
    ['requisites must all agree: another date', [line({ documentDate: '2026-11-24' })], [order()], [{ kind: 'unexplained' }]],
    ['a debit no order explains', [line({ documentNumber: null })], [], [{ kind: 'unexplained' }]],
    [
      'a second debit under our reference of one order paid by the first: executed twice, not "nobody ordered it"',
      [line({ externalId: 'ext-1' }), line({ id: 'l2', bankLineId: 'B2', externalId: 'ext-1' })],
      [order()],
      [{ kind: 'order', orderId: 'o1' }, { kind: 'unexplained', lineId: 'l2', repeatsOrderId: 'o1' }],
    ],
    [
      'a second debit of our budget payment, marked as tax by the bank, is no withholding: executed twice',
      [line({ kind: 'tax', externalId: 'ext-1' }), line({ id: 'l2', bankLineId: 'B2', kind: 'tax', externalId: 'ext-1' })],
      [order()],
      [{ kind: 'order', orderId: 'o1' }, { kind: 'unexplained', lineId: 'l2', repeatsOrderId: 'o1' }],
    ],
    ['a tax line naming no order of ours stays an expected tax', [line({ kind: 'tax', documentNumber: '999' })], [order()], [{ kind: 'tax' }]],
    [
      'a second debit with all the requisites of one order paid by the first: executed twice too',
      [line(), line({ id: 'l2', bankLineId: 'B2' })],
      [order()],
      [{ kind: 'order', orderId: 'o1' }, { kind: 'unexplained', lineId: 'l2', repeatsOrderId: 'o1' }],
    ],
    ['a fee naming the payment is linked to it (R-25)', [line({ id: 'f', kind: 'fee', amount: 30000, externalId: 'ext-1' })], [order()], [{ kind: 'fee', orderId: 'o1' }]],
    ['a fee naming nothing is still a fee, not an alarm', [line({ id: 'f', kind: 'fee', amount: 30000, documentNumber: null })], [], [{ kind: 'fee', orderId: null }]],
    ['a tax line is expected', [line({ kind: 'tax', documentNumber: null })], [], [{ kind: 'tax' }]],
    ['an incoming payment is a credit', [line({ direction: 'credit', documentNumber: null })], [], [{ kind: 'credit' }]],
    ['pending lines are not decided', [line({ status: 'pending' })], [order()], []],
  ])('%s', (_name, lines, orders, expected) => {
    const decisions = decideLines(lines, orders);
    expect(decisions).toHaveLength(expected.length);
    expected.forEach((e, i) => expect(decisions[i]).toMatchObject(e as object));
  });

  // Budget payments all go to the one Treasury account: the beneficiary's BIN (which tax office) and
  // the KNP (which tax) are what tell a right payment from a wrong one.
  describe('a budget payment to the Treasury account', () => {
    const TREASURY = 'KZ24070105KSN0000000';
    const tax = (over: Partial<OrderForMatch> = {}) =>
      order({ beneficiaryIban: TREASURY, beneficiaryName: 'РГУ "УГД по Есильскому району"', beneficiaryIinBin: '120940001232', knp: '911', ...over });
    const taxLine = (over: Partial<LineForMatch> = {}) => line({ counterpartyIban: TREASURY, counterpartyIinBin: '120940001232', knp: '911', ...over });

    it.each<[string, LineForMatch, unknown]>([
      [
        'executed to another tax office (another BIN, same account) under our reference: erroneous execution naming the BIN',
        taxLine({ externalId: 'ext-1', counterpartyIinBin: '091240005670' }),
        { kind: 'mismatch', orderId: 'o1', differences: [{ field: 'beneficiaryIinBin', signed: '120940001232', executed: '091240005670' }] },
      ],
      [
        'executed as another tax (another KNP) under our reference: erroneous execution naming the KNP',
        taxLine({ externalId: 'ext-1', knp: '912' }),
        { kind: 'mismatch', orderId: 'o1', differences: [{ field: 'knp', signed: '911', executed: '912' }] },
      ],
      [
        'matched by its requisites (number + date + amount + account) with another BIN: still erroneous',
        taxLine({ counterpartyIinBin: '091240005670' }),
        { kind: 'mismatch', orderId: 'o1', differences: [{ field: 'beneficiaryIinBin' }] },
      ],
      ['the bank omits BIN and KNP: nothing to compare, executed', taxLine({ externalId: 'ext-1', counterpartyIinBin: '', knp: null }), { kind: 'order', how: 'reference', execute: true }],
      ['the bank omits them as blanks: executed', taxLine({ externalId: 'ext-1', counterpartyIinBin: '   ', knp: ' ' }), { kind: 'order', how: 'reference', execute: true }],
      ['the same BIN and KNP, padded by the bank: executed', taxLine({ externalId: 'ext-1', counterpartyIinBin: ' 120940001232 ', knp: '911 ' }), { kind: 'order', how: 'reference', execute: true }],
      ['an identifier that is no IIN/BIN (a customer number in camt.053 Othr/Id): not compared, executed', taxLine({ externalId: 'ext-1', counterpartyIinBin: 'CUST-000123' }), { kind: 'order', how: 'reference', execute: true }],
      ['all as signed: executed', taxLine({ externalId: 'ext-1' }), { kind: 'order', how: 'reference', execute: true }],
    ])('%s', (_name, l, expected) => {
      const decisions = decideLines([l], [tax()]);
      expect(decisions).toHaveLength(1);
      expect(decisions[0]).toMatchObject(expected as object);
      if (decisions[0].kind === 'mismatch') expect(decisions[0].differences).toHaveLength(1);
    });

    it('a KNP the bank writes without its leading zero ("10" for pension contributions "010") is the same code; another code is not', () => {
      const pension = order({ knp: '010' });
      expect(decideLines([line({ externalId: 'ext-1', knp: '10' })], [pension])[0]).toMatchObject({ kind: 'order', how: 'reference', execute: true });
      expect(decideLines([line({ externalId: 'ext-1', knp: '11' })], [pension])[0]).toMatchObject({ kind: 'mismatch', differences: [{ field: 'knp', signed: '010', executed: '11' }] });
    });
  });

  it('failed before it was sent, named by number + date only (another amount): unexplained as for a signed order, not linked', () => {
    expect(decideLines([line({ amount: 1 })], [order({ state: 'failed', failedFrom: 'signed', submitAttempts: 0 })])).toEqual([{ kind: 'unexplained', lineId: 'l1' }]);
  });

  it('one order explains one debit: the bank paying it twice leaves the second unexplained', () => {
    const decisions = decideLines([line({ id: 'a', externalId: 'ext-1' }), line({ id: 'b', bankLineId: 'B2', externalId: 'ext-1' })], [order()]);
    expect(decisions.map((d) => d.kind)).toEqual(['order', 'unexplained']);
  });

  it('a reference match is never taken by an earlier line matching on requisites', () => {
    const decisions = decideLines([line({ id: 'a' }), line({ id: 'b', bankLineId: 'B2', externalId: 'ext-1' })], [order()]);
    expect(decisions).toEqual([
      // All the order's requisites, the order paid by the other: a second execution of it.
      { kind: 'unexplained', lineId: 'a', repeatsOrderId: 'o1' },
      { kind: 'order', lineId: 'b', orderId: 'o1', how: 'reference', execute: true },
    ]);
  });

  it("an exact payment takes its order before an earlier stranger's debit that only shares its number and date", () => {
    // Neither echoes a reference; the stranger's 50 000.00 to another account sorts first.
    const decisions = decideLines([line({ id: 'a', amount: 5_000_000, counterpartyIban: 'KZ86125KZT5004100100' }), line({ id: 'b', bankLineId: 'B2' })], [order()]);
    expect(decisions).toEqual([
      { kind: 'unexplained', lineId: 'a' },
      { kind: 'order', lineId: 'b', orderId: 'o1', how: 'requisites', execute: true },
    ]);
  });

  it('number + date alone still explains a wrong debit when no line of the run pays the order exactly', () => {
    const decisions = decideLines([line({ id: 'a', amount: 5_000_000 }), line({ id: 'b', bankLineId: 'B2', documentNumber: '102' })], [order()]);
    expect(decisions.map((d) => d.kind)).toEqual(['mismatch', 'unexplained']);
  });
});

describe('draft notices', () => {
  const deadline = new Date('2026-11-26T12:00:00Z');
  it('the unauthorised-debit notice names the operation, amount, counterparty and the bank phones (R-29)', () => {
    const text = draftUnauthorisedDebitNotice({ account: 'KZ11', line: line({ bankLineId: '20261125-00000009', amount: 123400, counterpartyName: 'Неизвестный' }), deadline });
    expect(text).toContain('20261125-00000009');
    // With its currency: the same figure in dollars is another debit (a multi-currency account).
    expect(text).toContain('списано 1234.00 KZT');
    expect(draftUnauthorisedDebitNotice({ account: 'KZ11', line: line({ amount: 123400, currency: 'USD' }), deadline })).toContain('списано 1234.00 USD');
    expect(text).toContain('Неизвестный');
    expect(text).toContain('+7 7172 770 622');
    expect(text).toContain(deadline.toISOString());
  });
  it('the erroneous-execution notice gives the signed and the executed requisites (R-27)', () => {
    const text = draftErroneousExecutionNotice({ order: order(), line: line(), differences: [{ field: 'amount', signed: '7745.70', executed: '8745.70' }], deadline });
    expect(text).toContain('№ 101 от 2026-11-25');
    expect(text).toContain('сумма 7745.70 KZT');
    expect(text).toContain('amount: подписано 7745.70 KZT, исполнено 8745.70 KZT');
    const usd = draftErroneousExecutionNotice({ order: order({ currency: 'USD' }), line: line({ currency: 'USD' }), differences: [{ field: 'amount', signed: '7745.70', executed: '8745.70' }], deadline });
    expect(usd).toContain('сумма 7745.70 USD');
    expect(usd).toContain('подписано 7745.70 USD, исполнено 8745.70 USD');
    expect(text).toContain('3 операционных дней');
  });
  it('the erroneous-execution notice gives the signed BIN and KNP, and the executed ones that differ (R-27)', () => {
    const text = draftErroneousExecutionNotice({ order: order(), line: line(), differences: [{ field: 'beneficiaryIinBin', signed: '190840000015', executed: '091240005670' }], deadline });
    expect(text).toContain('ИИН/БИН 190840000015');
    expect(text).toContain('КНП 710');
    expect(text).toContain('beneficiaryIinBin: подписано 190840000015, исполнено 091240005670');
  });
});

describe("R-27's deadline: 3 operational days from discovery, no later than 3 years from the execution (terms 6.1.16)", () => {
  const calendar = KzBusinessCalendar.shipped({ cutoff: '17:00' });
  // Wednesday 2026-11-25, 15:00 in Almaty; 3 operational days from it end Monday 2026-11-30 at 17:00.
  const now = new Date('2026-11-25T10:00:00Z');
  it.each([
    ['executed the same day: 3 operational days', '2026-11-25', '2026-11-30T12:00:00.000Z', '2029-11-25T19:00:00.000Z', false],
    ['the 3 years end before the 3 days: the end of the anniversary in Almaty', '2023-11-27', '2026-11-27T19:00:00.000Z', '2026-11-27T19:00:00.000Z', false],
    ['the 3 years ended: the deadline is their end, passed', '2023-11-20', '2026-11-20T19:00:00.000Z', '2026-11-20T19:00:00.000Z', true],
    ['executed on 29 February: the 3 years end on the 28th', '2024-02-29', '2026-11-30T12:00:00.000Z', '2027-02-28T19:00:00.000Z', false],
  ])('%s', (_name, executedOn, deadline, limit, lapsed) => {
    const term = paymentNoticeTerm(calendar, now, executedOn, 3);
    expect({ deadline: term.deadline.toISOString(), limit: term.limit.toISOString(), lapsed: term.lapsed }).toEqual({ deadline, limit, lapsed });
  });

  it('the R-27 notice states the 3-year limit, and that it passed when it did', () => {
    const differences = [{ field: 'amount' as const, signed: '7745.70', executed: '8745.70' }];
    const inTime = paymentNoticeTerm(calendar, now, '2026-11-25', 3);
    expect(draftErroneousExecutionNotice({ order: order(), line: line(), differences, deadline: inTime.deadline, term: inTime })).toContain(
      'Не позднее 3 лет с даты исполнения (2026-11-25): до 2029-11-25T19:00:00.000Z (п. 6.1.16).',
    );
    const late = paymentNoticeTerm(calendar, now, '2023-11-20', 3);
    const text = draftErroneousExecutionNotice({ order: order(), line: line({ bookingDate: '2023-11-20' }), differences, deadline: late.deadline, term: late });
    expect(text).toContain('не позднее 2026-11-20T19:00:00.000Z');
    expect(text).toContain('Срок 3 года с даты исполнения (2023-11-20), установленный п. 6.1.16, истёк 2026-11-20T19:00:00.000Z');
  });
});
