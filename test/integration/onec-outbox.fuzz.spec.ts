import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import * as iconv from 'iconv-lite';
import { createAppContext, type AppContext } from '../../connector/app/app-context';
import { parseAmount } from '../../connector/shared/money';
import { scanOnecOutbox } from '../../queue/jobs/scan-onec-outbox.job';
import { createTestEnv, type TestEnv } from '../support/test-env';
import { onecOrderLines } from '../support/orders.fixture';

/**
 * The 1C outbox scan (the worker's job) on randomly damaged exports, on a real folder, PostgreSQL
 * and Redis: whatever the bytes, the scan never fails, no file is left behind (each is archived or
 * goes to error/ with its report), and every order taken in has the amount its own document says.
 * The reader's own fuzzing (onec-exchange.fuzz.spec.ts) does not reach what the database makes of
 * what it read: a document number too long for the natural key's index failed the whole file.
 */
describe('1C outbox scan on damaged exports', () => {
  let env: TestEnv;
  let context: AppContext;
  let outbox: string;

  const doc = (number: string, amount: string): string[] => onecOrderLines(number, { amount });
  const lines = ['1CClientBankExchange', 'ВерсияФормата=1.03', 'Кодировка=Windows', ...doc('F-1', '1500.00'), ...doc('F-2', '7745.70'), ...doc('F-3', '12'), 'КонецФайла'];

  type Mutation =
    | { kind: 'byte'; line: number; at: number; byte: number }
    | { kind: 'drop'; line: number; at: number }
    | { kind: 'noise'; line: number; size: number; seed: number }
    | { kind: 'duplicate'; line: number }
    | { kind: 'remove'; line: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('byte' as const), line: fc.nat(), at: fc.nat(), byte: fc.oneof(fc.constantFrom(0x0a, 0x0d, 0x3d, 0x20, 0x2e, 0x2c, 0x2d, 0x00, 0x30, 0x39), fc.integer({ min: 0, max: 255 })) }),
    fc.record({ kind: fc.constant('drop' as const), line: fc.nat(), at: fc.nat() }),
    // Random text appended to a value: short, or longer than PostgreSQL can index (about 2.7 KB).
    fc.record({ kind: fc.constant('noise' as const), line: fc.nat(), size: fc.oneof(fc.integer({ min: 1, max: 80 }), fc.integer({ min: 3000, max: 9000 })), seed: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), line: fc.nat() }),
    fc.record({ kind: fc.constant('remove' as const), line: fc.nat() }),
  );

  /** `size` characters of text that does not compress (as a counterexample replays: derived from `seed`). */
  const noise = (seed: number, size: number): string => {
    let out = '';
    for (let i = 0; out.length < size; i += 1) out += createHash('sha256').update(`${seed}/${i}`).digest('base64url');
    return out.slice(0, size);
  };
  const mutate = (mutations: Mutation[]): Buffer => {
    // Line 1 stays (without it the file is rightly no exchange file), so does the last (КонецФайла: else the scan waits for 1C to finish).
    const bytes = lines.map((l) => iconv.encode(l, 'cp1251'));
    for (const m of mutations) {
      const i = 1 + (m.line % (bytes.length - 2));
      const b = bytes[i];
      const at = b.length === 0 || !('at' in m) ? 0 : m.at % b.length;
      if (m.kind === 'byte') bytes[i] = Buffer.concat([b.subarray(0, at), Buffer.from([m.byte]), b.subarray(at + 1)]);
      else if (m.kind === 'drop') bytes[i] = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
      else if (m.kind === 'noise') bytes[i] = Buffer.concat([b, Buffer.from(noise(m.seed, m.size))]);
      else if (m.kind === 'duplicate') bytes.splice(i, 0, Buffer.from(b));
      else if (bytes.length > 3) bytes.splice(i, 1);
    }
    return Buffer.concat(bytes.flatMap((b) => [b, Buffer.from('\r\n')]));
  };

  beforeAll(async () => {
    env = await createTestEnv('onecfuzz');
    outbox = join(env.workDir, 'outbox');
    mkdirSync(outbox);
    context = await createAppContext({ config: { ...env.config, onec: { ...env.config.onec, outboxDir: outbox, stableMs: 1_000 } }, role: 'worker' });
  });
  afterAll(async () => {
    await context.close();
    await env.cleanup();
  });

  it('never fails, leaves no file behind, and takes in only the amounts the documents say', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        run += 1;
        const em = context.orm.em.fork();
        await em.execute("delete from payment_order where source = 'onec'");
        // Each case on its own: a file an earlier case left in processing/ would fail this one too.
        rmSync(join(outbox, 'processing'), { recursive: true, force: true });
        const path = join(outbox, `1c_to_kl_${run}.txt`);
        writeFileSync(path, mutate(mutations));
        const old = new Date(Date.now() - 60_000);
        utimesSync(path, old, old);

        const results = await scanOnecOutbox(context, context.redis);
        expect(results).not.toBe('locked');
        expect((results as Array<{ outcome: string }>).map((r) => r.outcome)).not.toContain('waiting');
        expect(readdirSync(outbox).filter((n) => n !== 'archive' && n !== 'error' && n !== 'processing')).toEqual([]);
        expect(readdirSync(join(outbox, 'processing'))).toEqual([]);

        const taken = await em.execute<Array<{ number: string; amount_tiyn: string; raw_document: string }>>("select number, amount_tiyn, raw_document from payment_order where source = 'onec'");
        for (const order of taken) {
          const sums = order.raw_document.split(/\r?\n/).filter((l) => /^\s*сумма\s*=/i.test(l));
          // One Сумма line, or the same one repeated (a warning): the amount is what it says.
          expect(sums.length).toBeGreaterThan(0);
          for (const sum of sums) expect({ number: order.number, amount: Number(order.amount_tiyn) }).toEqual({ number: order.number, amount: parseAmount(sum.slice(sum.indexOf('=') + 1)) });
        }
      }),
      { numRuns: Number(process.env.FC_RUNS ?? 150) },
    );
  });
});
