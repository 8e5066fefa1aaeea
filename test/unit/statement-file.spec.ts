import { renderOnecStatement } from '../../adapters/erp/onec-exchange/onec-statement.writer';
import { parseOnecExchange } from '../../adapters/erp/onec-exchange/onec-exchange.reader';
import type { StatementData } from '../../connector/statements/statement.model';
import { mergeStatementTexts } from '../../queue/jobs/write-back.job';

const statement = (account: string, amount: number): StatementData => ({
  account,
  currency: 'KZT',
  periodFrom: '2026-11-25',
  periodTo: '2026-11-25',
  kind: 'booked',
  openingBalance: 100_000,
  closingBalance: 100_000 + amount,
  source: 'bank-json',
  lines: [
    {
      bankLineId: `L-${account}`,
      bookingDate: '2026-11-25',
      valueDate: '2026-11-25',
      direction: 'credit',
      amount,
      currency: 'KZT',
      status: 'booked',
      kind: 'payment',
      counterparty: { name: 'ТОО Покупатель', iinBin: '190840000015', iban: 'KZ78722S000000067890', bic: 'CASPKZKA' },
      purpose: 'Оплата',
      documentNumber: '5',
      documentDate: '2026-11-25',
    },
  ],
});

describe('one kl_to_1c.txt for several accounts', () => {
  const owner = { name: 'ТОО Ромашка', iinBin: '050640872810', bic: 'TSESKZKA' };
  const createdAt = new Date('2026-11-25T04:00:00Z');
  const accounts = ['KZ88998CTB0000000001', 'KZ34998CTB0000000003'];
  const texts = [statement(accounts[0], 500), statement(accounts[1], 700)].map((s) => renderOnecStatement(s, { encoding: 'utf8', owner, createdAt }));

  it('keeps one header listing every account, a balance section per account and every document', () => {
    const merged = mergeStatementTexts(texts, accounts);
    const parsed = parseOnecExchange(Buffer.from(merged, 'utf8'));
    expect(parsed.file.complete).toBe(true);
    expect(parsed.file.errors).toEqual([]);
    expect(merged.match(/^РасчСчет=/gm)).toHaveLength(2 + 2); // header (2 accounts) + one per balance section
    expect(merged.match(/^1CClientBankExchange$/gm)).toHaveLength(1);
    expect(merged.match(/^КонецФайла$/gm)).toHaveLength(1);
    expect(parsed.balances).toHaveLength(2);
    expect(parsed.documents.map((d) => d.order.amount)).toEqual(['5.00', '7.00']);
  });

  it('leaves a single account as the writer made it', () => {
    expect(mergeStatementTexts(texts.slice(0, 1), accounts.slice(0, 1))).toBe(texts[0]);
  });
});
