/**
 * The sandbox's operational-day clock: simulated time that runs at a configurable speed from an
 * anchor and can be set or advanced by the admin API. Persisted (anchor + speed) so that a
 * restarted sandbox keeps its day.
 */
export interface ClockState {
  anchorSimMs: number;
  anchorRealMs: number;
  speed: number;
}

export class SandboxClock {
  constructor(private state: ClockState, private readonly realNow: () => number = Date.now) {}

  now(): Date {
    const real = this.realNow();
    return new Date(this.state.anchorSimMs + (real - this.state.anchorRealMs) * this.state.speed);
  }

  snapshot(): ClockState {
    return { ...this.state };
  }

  /** Re-anchors at the current simulated time, then applies the change. */
  set(change: { now?: Date; speed?: number }): ClockState {
    const current = this.now().getTime();
    this.state = {
      anchorSimMs: change.now ? change.now.getTime() : current,
      anchorRealMs: this.realNow(),
      speed: change.speed ?? this.state.speed,
    };
    return this.snapshot();
  }

  advance(ms: number): ClockState {
    return this.set({ now: new Date(this.now().getTime() + ms) });
  }
}

/** Kazakhstan time is UTC+5 all year (since 2024-03-01 one zone for the whole country). */
const KZ_OFFSET_MS = 5 * 3_600_000;

export function kzDate(at: Date): string {
  return new Date(at.getTime() + KZ_OFFSET_MS).toISOString().slice(0, 10);
}

export function kzTime(at: Date): string {
  return new Date(at.getTime() + KZ_OFFSET_MS).toISOString().slice(11, 16);
}

/** The operational day a document received at `at` belongs to: after the cut-off, the next day. */
export function operationalDay(at: Date, cutoff?: string): string {
  if (cutoff && kzTime(at) >= cutoff) return kzDate(new Date(at.getTime() + 86_400_000));
  return kzDate(at);
}
