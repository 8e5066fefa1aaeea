import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkStatementBalance } from '../../../connector/statements/statement.model';
import { Camt053Error, readCamt053 } from './camt053.reader';
import { mapBankStatement } from './statement.mapper';

const sample = readFileSync(join(__dirname, 'testdata', 'camt053-sample.xml'), 'utf8');

describe('camt.053 reader', () => {
  it('maps balances, our payment, its fee, an incoming payment and a pending line', async () => {
    const [st] = await readCamt053(sample);
    expect(st).toMatchObject({ account: 'KZ88998CTB0000000001', currency: 'KZT', periodFrom: '2026-11-25', periodTo: '2026-11-25', openingBalance: 1_000_000_000, closingBalance: 1_000_070_050, source: 'camt053' });
    expect(st.lines).toHaveLength(4);
    expect(st.lines[0]).toEqual({
      bankLineId: '20261125-00000001', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: 150000, currency: 'KZT',
      status: 'booked', kind: 'payment', counterparty: { name: 'ТОО Поставщик', iinBin: '950440000000', iban: 'KZ608260000000000042', bic: 'ALMNKZKA' },
      purpose: 'Оплата по счёту №5 от 20.11.2026, в т.ч. НДС 12%', knp: '710', documentNumber: '1001', externalId: 'ext-1001', bankReference: 'ACB202611250000001',
    });
    expect(st.lines[1]).toMatchObject({ kind: 'fee', amount: 30000, bankReference: 'ACB202611250000001' });
    expect(st.lines[2]).toMatchObject({ direction: 'credit', counterparty: { iinBin: '870650000005', bic: 'HSBKKZKX' } });
    expect(st.lines[2].externalId).toBeUndefined();
    expect(st.lines[3]).toMatchObject({ bankLineId: 'PENDING-D0000000042', status: 'pending', purpose: 'Платёж в обработке' });
    expect(checkStatementBalance(st).ok).toBe(true);
  });

  it('reads later versions: prefixed namespace, Sts/Cd, BICFI, DBIT balances', async () => {
    const v8 = sample
      .replace('urn:iso:std:iso:20022:tech:xsd:camt.053.001.02', 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08')
      .replace(/<(\/?)([A-Za-z]+)/g, '<$1c:$2')
      .replace('<c:Document xmlns=', '<c:Document xmlns:c=')
      .replace(/<c:Sts>BOOK<\/c:Sts>/g, '<c:Sts><c:Cd>BOOK</c:Cd></c:Sts>')
      .replace(/<c:BIC>/g, '<c:BICFI>').replace(/<\/c:BIC>/g, '</c:BICFI>');
    const [st] = await readCamt053(v8);
    expect(st.lines[0]).toMatchObject({ status: 'booked', counterparty: { bic: 'ALMNKZKA' } });
    const overdrawn = sample.replace(/(<Cd>OPBD<\/Cd>[\s\S]*?<CdtDbtInd>)CRDT/, '$1DBIT');
    expect((await readCamt053(overdrawn))[0].openingBalance).toBe(-1_000_000_000);
  });

  it('takes the booked opening (OPBD) whatever the order of the balances, not the opening available one (OPAV)', async () => {
    const opav = '<Bal><Tp><CdOrPrtry><Cd>OPAV</Cd></CdOrPrtry></Tp><Amt Ccy="KZT">9990000.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-11-25</Dt></Dt></Bal>';
    const [st] = await readCamt053(sample.replace('<Bal>', `${opav}\n      <Bal>`));
    expect(st.openingBalance).toBe(1_000_000_000);
    expect(checkStatementBalance(st).ok).toBe(true);
  });

  it('dates given as instants in another zone are Kazakhstan dates (the statement day is Almaty\'s)', async () => {
    const utc = sample
      .replace('<FrDtTm>2026-11-25T00:00:00+05:00</FrDtTm>', '<FrDtTm>2026-11-24T19:00:00Z</FrDtTm>')
      .replace('<ToDtTm>2026-11-25T23:59:59+05:00</ToDtTm>', '<ToDtTm>2026-11-25T18:59:59Z</ToDtTm>')
      .replace('<BookgDt><Dt>2026-11-25</Dt></BookgDt>', '<BookgDt><DtTm>2026-11-24T20:15:00Z</DtTm></BookgDt>')
      .replace('<ValDt><Dt>2026-11-25</Dt></ValDt>', '<ValDt><DtTm>2026-11-25T00:30:00+06:00</DtTm></ValDt>');
    const [st] = await readCamt053(utc);
    expect(st).toMatchObject({ periodFrom: '2026-11-25', periodTo: '2026-11-25' });
    expect(st.lines[0]).toMatchObject({ bookingDate: '2026-11-25', valueDate: '2026-11-24' });
    // A wall-clock time without a zone is the bank's own (Kazakhstan) time.
    const [local] = await readCamt053(sample.replace('<BookgDt><Dt>2026-11-25</Dt></BookgDt>', '<BookgDt><DtTm>2026-11-25T00:10:00</DtTm></BookgDt>'));
    expect(local.lines[0].bookingDate).toBe('2026-11-25');
  });

  it('refuses what is not a statement, naming where', async () => {
    await expect(readCamt053('<Document/>')).rejects.toThrow(Camt053Error);
    await expect(readCamt053('<<<')).rejects.toThrow(/well-formed/);
    await expect(readCamt053(sample.replace('<Amt Ccy="KZT">300.00</Amt>', '<Amt Ccy="KZT">300.001</Amt>'))).rejects.toThrow(/Stmt 1 Ntry 2/);
    await expect(readCamt053(sample.replace(/<Bal>[\s\S]*?CLBD[\s\S]*?<\/Bal>/, ''))).rejects.toThrow(/closing/);
  });
});

describe('camt.053 batch entries (one Ntry, several TxDtls)', () => {
  const batch = readFileSync(join(__dirname, 'testdata', 'camt053-batch.xml'), 'utf8');

  it('gives one line per transaction, each with its own amount, party and references, under ids derived from the entry', async () => {
    const [st] = await readCamt053(batch);
    expect(st.lines.map((l) => [l.bankLineId, l.amount, l.direction, l.externalId, l.counterparty.iban])).toEqual([
      ['20261125-00000010/1', 150000, 'debit', 'ext-1001', 'KZ608260000000000042'],
      ['20261125-00000010/2', 200000, 'debit', 'ext-1002', 'KZ456010000000000888'],
      ['SAL-20261125-7/1', 10000, 'debit', undefined, 'KZ456010000000000111'],
      ['SAL-20261125-7/2', 20000, 'debit', undefined, 'KZ456010000000000222'],
      ['SAL-20261125-7/3', 30025, 'debit', undefined, 'KZ456010000000000333'],
      // A single transaction keeps the entry's own id (lines stored before stay the same lines).
      ['20261125-00000012', 5000, 'debit', 'ext-1003', 'KZ608260000000000042'],
    ]);
    expect(st.lines[1]).toMatchObject({
      bookingDate: '2026-11-25', currency: 'KZT', status: 'booked', kind: 'payment', knp: '859', documentNumber: '1002', bankReference: 'ACB202611250000012',
      purpose: 'Оплата по договору 12', counterparty: { name: 'ТОО Подрядчик', iinBin: '030540000007', bic: 'HSBKKZKX' },
    });
    // Without a purpose of its own, a salary transfer says what the entry is.
    expect(st.lines[2]).toMatchObject({ purpose: 'Зарплатная ведомость №7', counterparty: { name: 'Иванов И.', iinBin: '870650000005' } });
    // Each transaction is counted once, the entry itself not again.
    expect(checkStatementBalance(st)).toEqual({ ok: true, expectedClosing: 584975 });
    // A re-fetch gives the same ids: storage by bank line id stays idempotent.
    expect((await readCamt053(batch))[0].lines.map((l) => l.bankLineId)).toEqual(st.lines.map((l) => l.bankLineId));
  });

  it("refuses a batch whose transactions do not add up to the entry's amount, or lack one, naming Stmt, Ntry and the rule", async () => {
    const short = batch.replace('<Amt Ccy="KZT">2000.00</Amt>', '<Amt Ccy="KZT">1999.99</Amt>');
    await expect(readCamt053(short)).rejects.toThrow(/^Stmt 1 Ntry 1: its 2 TxDtls amount to -3499\.99, not the entry's -3500\.00: a batch entry's transactions must add up to its amount$/);
    const missing = batch.replace('<Amt Ccy="KZT">200.00</Amt>', '');
    await expect(readCamt053(missing)).rejects.toThrow(/^Stmt 1 Ntry 2 TxDtls 2: a batch entry's transaction needs its amount/);
    const foreign = batch.replace('<Amt Ccy="KZT">200.00</Amt>', '<Amt Ccy="USD">200.00</Amt>');
    await expect(readCamt053(foreign)).rejects.toThrow(/^Stmt 1 Ntry 2 TxDtls 2: amount in USD/);
    await expect(readCamt053(short)).rejects.toThrow(Camt053Error);
  });
});

describe('statement JSON mapper', () => {
  it('maps signed balances and keeps fee and pending lines', () => {
    const st = mapBankStatement({
      account: 'KZ88998CTB0000000001', currency: 'KZT', from: '2026-11-25', to: '2026-11-25', kind: 'intraday',
      openingBalance: '-10.00', closingBalance: '-310.00',
      lines: [
        { lineId: 'L1', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: '300.00', currency: 'KZT', status: 'booked', kind: 'fee', counterparty: { name: 'Bank', iinBin: '', iban: '', bic: 'TSESKZKA' }, purpose: 'fee', bankReference: 'R1' },
        { lineId: 'P1', bookingDate: '2026-11-25', valueDate: '2026-11-25', direction: 'debit', amount: '5.00', currency: 'KZT', status: 'pending', kind: 'payment', counterparty: { name: 'X', iinBin: '', iban: '', bic: '' }, purpose: 'p' },
      ],
    });
    expect(st).toMatchObject({ openingBalance: -1000, closingBalance: -31000, kind: 'intraday', source: 'bank-json' });
    expect(st.lines.map((l) => [l.bankLineId, l.kind, l.status, l.amount])).toEqual([['L1', 'fee', 'booked', 30000], ['P1', 'payment', 'pending', 500]]);
    expect(checkStatementBalance(st).ok).toBe(true);
  });
});
