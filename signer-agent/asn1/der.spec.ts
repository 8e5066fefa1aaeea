import fc from 'fast-check';
import { decodeOid, parseDer } from './der.reader';
import { octetString, oid, seq, time, unsignedInteger } from './der.writer';

describe('DER reader and writer', () => {
  it('OIDs survive encode -> decode (any arc sizes)', () => {
    const arcs = fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: 0, max: 39 }), fc.array(fc.integer({ min: 0, max: 2 ** 40 }), { maxLength: 8 }));
    fc.assert(
      fc.property(arcs, ([a, b, rest]) => {
        const dotted = [a, b, ...rest].join('.');
        expect(decodeOid(parseDer(oid(dotted)).content)).toBe(dotted);
      }),
    );
    // As in NCA's certificates (10 content bytes; 398 is the two-byte arc 83 0e).
    expect(oid('1.2.398.3.10.1.1.2.3.2').toString('hex')).toBe('060a2a830e030a0101020302');
  });

  it('lengths in short and long form; raw keeps exact bytes; integers keep their sign bit', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 70_000 }), (bytes) => {
        const encoded = seq(octetString(bytes), unsignedInteger(Buffer.from(bytes.length ? bytes : [0])));
        const node = parseDer(encoded);
        expect(node.raw.equals(encoded)).toBe(true);
        expect(node.child(0).octets().equals(Buffer.from(bytes))).toBe(true);
        expect(node.child(1).content[0] & 0x80).toBe(0);
      }),
      { numRuns: 50 },
    );
  });

  it('UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280), both read back', () => {
    for (const iso of ['2022-09-27T10:11:12.000Z', '1999-12-31T23:59:59.000Z', '2050-01-01T00:00:00.000Z']) {
      const node = parseDer(time(new Date(iso)));
      expect(node.tag).toBe(iso.startsWith('2050') ? 0x18 : 0x17);
      expect(node.time().toISOString()).toBe(iso);
    }
  });

  it('refuses truncated input, trailing bytes and indefinite lengths with INPUT_UNREADABLE', () => {
    const good = seq(octetString(Buffer.from('abc')));
    expect(() => parseDer(good.subarray(0, good.length - 1))).toThrow(expect.objectContaining({ code: 'INPUT_UNREADABLE' }));
    expect(() => parseDer(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing/);
    expect(() => parseDer(Buffer.from([0x30, 0x80, 0x00, 0x00]))).toThrow(/indefinite/);
  });
});
