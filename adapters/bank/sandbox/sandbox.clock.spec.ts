import { kzDate, operationalDay, SandboxClock } from './sandbox.clock';

describe('the sandbox day clock', () => {
  it('runs at its speed from an anchor, can be set and advanced', () => {
    let real = 1_000;
    const clock = new SandboxClock({ anchorSimMs: Date.parse('2026-11-25T04:00:00Z'), anchorRealMs: 1_000, speed: 60 }, () => real);
    real += 1_000;
    expect(clock.now().toISOString()).toBe('2026-11-25T04:01:00.000Z');
    clock.set({ speed: 0 });
    real += 5_000;
    expect(clock.now().toISOString()).toBe('2026-11-25T04:01:00.000Z');
    clock.advance(3_600_000);
    expect(clock.now().toISOString()).toBe('2026-11-25T05:01:00.000Z');
  });

  it('dates in Kazakhstan time (UTC+5)', () => {
    expect(kzDate(new Date('2026-11-25T18:59:59Z'))).toBe('2026-11-25');
    expect(kzDate(new Date('2026-11-25T19:00:00Z'))).toBe('2026-11-26');
  });

  it('puts documents after the cut-off, and of weekends, on the next operational day (R-20)', () => {
    expect(operationalDay(new Date('2026-11-25T11:59:00Z'), '17:00')).toBe('2026-11-25'); // 16:59 KZ
    expect(operationalDay(new Date('2026-11-25T12:00:00Z'), '17:00')).toBe('2026-11-26'); // 17:00 KZ
    expect(operationalDay(new Date('2026-11-27T13:00:00Z'), '17:00', true)).toBe('2026-11-30'); // Friday 18:00 -> Monday
    expect(operationalDay(new Date('2026-11-28T05:00:00Z'), undefined, true)).toBe('2026-11-30'); // Saturday
    expect(operationalDay(new Date('2026-11-28T05:00:00Z'))).toBe('2026-11-28'); // 24/7 demo mode
  });
});
