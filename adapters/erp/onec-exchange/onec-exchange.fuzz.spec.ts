import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { judgeOnecDocument } from './onec-document.judge';
import { OnecExchangeParser, parseOnecExchange, type ParsedOnecFile } from './onec-exchange.reader';
import type { OnecDocument, OnecEvent, OnecIssue } from './onec-exchange.types';

/**
 * Bad input never crashes the reader and never poisons good input (issue 12, "Bad input"):
 * mutate the sample files (truncation, garbage bytes, duplicated keys, a removed КонецДокумента,
 * huge lines) and check that reading never throws, that every issue names its line and field,
 * and that each document the mutation did not touch still parses exactly as before.
 */
const FIXTURES = join(__dirname, '../../../test/fixtures/onec');
const SAMPLES = [
  'SYNTHETIC_kz_payment_order_1c_to_kl.cp1251.crlf.txt',
  'SYNTHETIC_kz_statement_kl_to_1c.cp1251.crlf.txt',
  'dronm-clbnk__kl_to_1c.txt',
  'dronm-clbnk__to_bank.txt',
];

interface Line {
  bytes: Buffer;
  orig: number | null;
}

function splitLines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let pos = 0;
  while (pos < bytes.length) {
    const lf = bytes.indexOf(0x0a, pos);
    const end = lf < 0 ? bytes.length : lf + 1;
    out.push(bytes.subarray(pos, end));
    pos = end;
  }
  return out;
}

type Mutation =
  | { kind: 'truncate'; at: number }
  | { kind: 'garbage'; line: number; offset: number; bytes: number[] }
  | { kind: 'duplicate'; line: number; changeValue: boolean }
  | { kind: 'removeEnd'; nth: number }
  | { kind: 'hugeLine'; line: number; size: number; withKey: boolean };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('garbage' as const), line: fc.nat(), offset: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat(), changeValue: fc.boolean() }),
  fc.record({ kind: fc.constant('removeEnd' as const), nth: fc.nat() }),
  fc.record({ kind: fc.constant('hugeLine' as const), line: fc.nat(), size: fc.integer({ min: 70_000, max: 300_000 }), withKey: fc.boolean() }),
);

function applyMutations(original: Buffer[], mutations: Mutation[], endLines: number[]): { lines: Line[]; touched: Set<number> } {
  let lines: Line[] = original.map((bytes, i) => ({ bytes, orig: i }));
  const touched = new Set<number>();
  const touch = (l: Line | undefined): void => {
    if (l && l.orig !== null) touched.add(l.orig);
  };
  for (const m of mutations) {
    if (lines.length < 2) break;
    // Line 1 (1CClientBankExchange) stays: without it the file is, rightly, not an exchange file.
    const pick = (n: number): number => 1 + (n % Math.max(1, lines.length - 1));
    switch (m.kind) {
      case 'truncate': {
        const total = lines.reduce((s, l) => s + l.bytes.length, 0);
        let cut = Math.max(lines[0].bytes.length, Math.floor(total * m.at));
        const kept: Line[] = [];
        for (const l of lines) {
          if (cut >= l.bytes.length) {
            kept.push(l);
            cut -= l.bytes.length;
          } else {
            if (cut > 0) kept.push({ bytes: l.bytes.subarray(0, cut), orig: l.orig });
            cut = 0;
            touch(l);
          }
        }
        for (const l of lines.slice(kept.length)) touch(l);
        lines = kept;
        break;
      }
      case 'garbage': {
        const i = pick(m.line);
        const l = lines[i];
        const b = Buffer.from(l.bytes);
        const at = b.length > 0 ? m.offset % b.length : 0;
        const next = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        touch(l);
        touch(lines[i + 1]); // a garbage LF or CR may glue or split lines
        lines[i] = { bytes: next, orig: null };
        break;
      }
      case 'duplicate': {
        const i = pick(m.line);
        const l = lines[i];
        let copy = l.bytes;
        if (m.changeValue) copy = Buffer.concat([l.bytes.subarray(0, Math.max(0, l.bytes.length - 2)), Buffer.from('9\r\n')]);
        touch(l);
        lines.splice(i + 1, 0, { bytes: copy, orig: null });
        break;
      }
      case 'removeEnd': {
        const candidates = lines.map((l, i) => [l, i] as const).filter(([l]) => l.orig !== null && endLines.includes(l.orig));
        if (candidates.length === 0) break;
        const [l, i] = candidates[m.nth % candidates.length];
        touch(l);
        lines.splice(i, 1);
        break;
      }
      case 'hugeLine': {
        const i = pick(m.line);
        const body = Buffer.alloc(m.size, 0x41);
        const bytes = m.withKey ? Buffer.concat([Buffer.from('Key='), body, Buffer.from('\r\n')]) : Buffer.concat([body, Buffer.from('\r\n')]);
        touch(lines[i - 1]);
        touch(lines[i]);
        lines.splice(i, 0, { bytes, orig: null });
        break;
      }
    }
  }
  return { lines, touched };
}

function parseInChunks(bytes: Buffer, chunk: number): ParsedOnecFile {
  const parser = new OnecExchangeParser({ fileName: 'mutated.txt' });
  const events: OnecEvent[] = [];
  for (let i = 0; i < bytes.length; i += chunk) events.push(...parser.push(bytes.subarray(i, i + chunk)));
  events.push(...parser.end());
  const end = events.find((e) => e.type === 'end') as Extract<OnecEvent, { type: 'end' }>;
  return {
    header: end.header,
    balances: events.flatMap((e) => (e.type === 'balance' ? [e.balance] : [])),
    documents: events.flatMap((e) => (e.type === 'document' ? [e.document] : [])),
    file: end.file,
  };
}

function expectLocated(issue: OnecIssue, minLine: number): void {
  expect(typeof issue.line).toBe('number');
  expect(issue.line).toBeGreaterThanOrEqual(minLine);
  expect(typeof issue.field).toBe('string');
  expect(issue.field.length).toBeGreaterThan(0);
  expect(issue.code).toMatch(/^[A-Z_]+$/);
  expect(issue.message.length).toBeGreaterThan(0);
}

const comparable = (d: OnecDocument) => ({ kind: d.kind, statement: d.statement, order: d.order, errors: d.errors.map((e) => e.code), closed: d.closed });

describe.each(SAMPLES)('mutated %s', (sample) => {
  const bytes = readFileSync(join(FIXTURES, sample));
  const original = parseOnecExchange(bytes);
  const originalLines = splitLines(bytes);
  const endLines = original.documents.map((d) => d.endLine - 1);
  const firstSection = Math.min(...original.documents.map((d) => d.line - 1), ...original.balances.map((b) => b.line - 1));

  it('never throws, names line and field, and keeps untouched documents intact', () => {
    fc.assert(
      fc.property(fc.array(mutationArb, { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 4096 }), (mutations, chunk) => {
        const { lines, touched } = applyMutations(originalLines, mutations, endLines);
        const mutated = Buffer.concat(lines.map((l) => l.bytes));
        const parsed = parseInChunks(mutated, chunk);
        for (const issue of [...parsed.file.errors, ...parsed.file.warnings]) expectLocated(issue, 0);
        for (const doc of parsed.documents) {
          for (const issue of [...doc.errors, ...doc.warnings]) expectLocated(issue, 1);
          const judged = judgeOnecDocument(doc, { now: new Date('2025-03-05T04:00:00Z') });
          for (const issue of [...judged.errors, ...judged.warnings]) expectLocated(issue, 1);
        }
        if (!parsed.file.exchange) return;
        for (const doc of original.documents) {
          let untouched = true;
          for (let i = doc.line - 1; i <= doc.endLine - 1; i += 1) if (touched.has(i)) untouched = false;
          // A document without its own kind takes it from the header's Документ= lines: its context.
          if (doc.warnings.some((w) => w.code === 'MISSING_KIND')) for (let i = 0; i < firstSection; i += 1) if (touched.has(i)) untouched = false;
          if (!untouched) continue;
          const same = parsed.documents.find((d) => d.text === doc.text);
          expect(same).toBeDefined();
          expect(comparable(same as OnecDocument)).toEqual(comparable(doc));
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 150) },
    );
  });
});
