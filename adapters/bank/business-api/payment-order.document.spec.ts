import fc from 'fast-check';
import {
  buildPaymentOrderDocument,
  canonicalRequisites,
  DocumentError,
  parsePaymentOrderDocument,
  requisitesFromOrder,
} from './payment-order.document';
import { sampleOrder } from '../test/fixtures';

describe('the canonical signed payment order', () => {
  it('round-trips every requisite and the external id', async () => {
    const order = sampleOrder({ valueDate: '2026-11-26', kbk: '105102', amount: '7745.7' });
    const bytes = buildPaymentOrderDocument(order, 'ord-2026-0001');
    const back = await parsePaymentOrderDocument(bytes);
    expect(back.externalId).toBe('ord-2026-0001');
    expect(back.requisites).toEqual(requisitesFromOrder(order));
    expect(back.requisites.amount).toBe('7745.70');
  });

  it('is UTF-8 with a fixed declaration and element order, and is byte-stable', () => {
    const a = buildPaymentOrderDocument(sampleOrder(), 'x-1');
    const b = buildPaymentOrderDocument(sampleOrder(), 'x-1');
    expect(Buffer.isBuffer(a)).toBe(true);
    expect(a.equals(b)).toBe(true);
    const xml = a.toString('utf8');
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<PaymentOrder xmlns="urn:connector:kz:payment-order:1" version="1">')).toBe(true);
    const order = ['<ExternalId>', '<Number>', '<Date>', '<ValueDate/>', '<Amount>', '<Currency>', '<Payer>', '<Beneficiary>', '<Knp>', '<Kbk/>', '<Purpose>'];
    const positions = order.map((tag) => xml.indexOf(tag));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
    expect(xml).toContain('ТОО "Ромашка" &amp; &lt;Партнёры&gt;');
  });

  it('keeps any printable purpose exactly (property)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ unit: 'grapheme', maxLength: 80 }), async (purpose) => {
        const clean = purpose.replace(/\r/g, '');
        const bytes = buildPaymentOrderDocument(sampleOrder({ purpose: clean }), 'p-1');
        const back = await parsePaymentOrderDocument(bytes);
        expect(back.requisites.purpose).toBe(clean);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses text XML cannot carry and bad amounts instead of signing something else', () => {
    expect(() => buildPaymentOrderDocument(sampleOrder({ purpose: 'a\u0001b' }), 'e-1')).toThrow(DocumentError);
    expect(() => buildPaymentOrderDocument(sampleOrder({ purpose: 'a\r\nb' }), 'e-1')).toThrow(/carriage return/);
    expect(() => buildPaymentOrderDocument(sampleOrder({ amount: '1.234' }), 'e-1')).toThrow(/amount/);
    expect(() => buildPaymentOrderDocument(sampleOrder(), 'bad id!')).toThrow(/externalId/);
  });

  it('refuses malformed, reordered, foreign or non-UTF-8 bytes', async () => {
    const good = buildPaymentOrderDocument(sampleOrder(), 'm-1').toString('utf8');
    const bad = [
      'not xml',
      good.replace('<Knp>710</Knp>', ''),
      good.replace(/(<Knp>710<\/Knp>)\n(\s*<Kbk\/>)/, '$2\n$1'),
      good.replace('urn:connector:kz:payment-order:1', 'urn:other'),
      good.replace('<Amount>7745.70</Amount>', '<Amount>7745.7</Amount>'),
      good.replace('</PaymentOrder>', '<Extra>1</Extra></PaymentOrder>'),
    ];
    for (const text of bad) await expect(parsePaymentOrderDocument(Buffer.from(text, 'utf8'))).rejects.toBeInstanceOf(DocumentError);
    const latin1 = Buffer.concat([Buffer.from(good.slice(0, 60), 'utf8'), Buffer.from([0xff, 0xfe]), Buffer.from(good.slice(60), 'utf8')]);
    await expect(parsePaymentOrderDocument(latin1)).rejects.toThrow(/UTF-8/);
  });

  it('canonical requisites differ when any requisite differs', () => {
    const r = requisitesFromOrder(sampleOrder());
    const changed = { ...r, beneficiary: { ...r.beneficiary, iban: r.beneficiary.iban.replace(/.$/, '9') } };
    expect(canonicalRequisites(r)).toBe(canonicalRequisites(requisitesFromOrder(sampleOrder())));
    expect(canonicalRequisites(changed)).not.toBe(canonicalRequisites(r));
  });
});
