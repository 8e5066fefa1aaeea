import { Slots, StageBatcher } from './stage-batcher';

describe('StageBatcher', () => {
  it('coalesces concurrent calls into batches of at most maxBatch, one outcome each', async () => {
    const batches: number[][] = [];
    const batcher = new StageBatcher<number, number>(async (items) => {
      batches.push(items);
      return items.map((i) => i * 10);
    }, { maxBatch: 4, maxWaitMs: 20 });
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => batcher.run(i)));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6]]);
  });

  it('runs a lone item after maxWaitMs', async () => {
    const batcher = new StageBatcher<string, string>(async (items) => items.map((s) => s.toUpperCase()), { maxBatch: 100, maxWaitMs: 1 });
    await expect(batcher.run('a')).resolves.toBe('A');
  });

  it('fails only the items whose outcome is an error; a failed batch fails each of its items', async () => {
    const batcher = new StageBatcher<number, number>(async (items) => items.map((i) => (i % 2 ? new Error(`odd ${i}`) : i)), { maxBatch: 10, maxWaitMs: 1 });
    const settled = await Promise.allSettled([1, 2, 3].map((i) => batcher.run(i)));
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'fulfilled', 'rejected']);
    expect((settled[0] as PromiseRejectedResult).reason.message).toBe('odd 1');

    const broken = new StageBatcher<number, number>(async () => {
      throw new Error('database unreachable');
    }, { maxBatch: 10, maxWaitMs: 1 });
    const all = await Promise.allSettled([1, 2].map((i) => broken.run(i)));
    expect(all.map((s) => s.status === 'rejected' && (s.reason as Error).message)).toEqual(['database unreachable', 'database unreachable']);
  });

  it('isolating, runs the items of a failed batch again alone: only the item that breaks it fails', async () => {
    const calls: number[][] = [];
    const runner = async (items: number[]) => {
      calls.push(items);
      if (items.includes(13)) throw new Error('value too long for column (13)');
      return items.map((i) => i * 2);
    };
    const isolating = new StageBatcher<number, number>(runner, { maxBatch: 10, maxWaitMs: 1, isolateFailures: true });
    const settled = await Promise.allSettled([12, 13, 14].map((i) => isolating.run(i)));
    expect(settled.map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual([24, 'value too long for column (13)', 28]);
    expect(calls).toEqual([[12, 13, 14], [12], [13], [14]]);

    // Without the option a failed batch fails every item; an error outcome of a lone run fails only it.
    calls.length = 0;
    const plain = new StageBatcher<number, number>(runner, { maxBatch: 10, maxWaitMs: 1 });
    expect((await Promise.allSettled([12, 13].map((i) => plain.run(i)))).map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(calls).toEqual([[12, 13]]);
    const outcomes = new StageBatcher<number, number>(async (items) => {
      if (items.length > 1) throw new Error('batch statement failed');
      return [items[0] === 13 ? new Error('bad 13') : items[0]];
    }, { maxBatch: 10, maxWaitMs: 1, isolateFailures: true });
    expect((await Promise.allSettled([12, 13].map((i) => outcomes.run(i)))).map((s) => (s.status === 'fulfilled' ? s.value : (s.reason as Error).message))).toEqual([12, 'bad 13']);
  });

  it('rejects every item when the runner returns the wrong number of outcomes', async () => {
    const batcher = new StageBatcher<number, number>(async () => [1], { maxBatch: 10, maxWaitMs: 1 });
    const all = await Promise.allSettled([1, 2].map((i) => batcher.run(i)));
    expect(all.every((s) => s.status === 'rejected')).toBe(true);
  });
});

describe('Slots', () => {
  it('lets at most `size` holders run at once, the others in arrival order, and gives a slot back when work fails', async () => {
    const slots = new Slots(2);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const work = (i: number) =>
      slots.hold(async () => {
        started.push(i);
        running += 1;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 5));
        running -= 1;
        if (i === 1) throw new Error('bank down');
        return i;
      });
    const settled = await Promise.allSettled([0, 1, 2, 3, 4].map(work));
    expect(peak).toBe(2);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(settled.map((x) => x.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled']);
    // Both slots came back: two holders run at once again.
    running = 0;
    peak = 0;
    await Promise.all([work(5), work(6), work(7)]);
    expect(peak).toBe(2);
  });
});
