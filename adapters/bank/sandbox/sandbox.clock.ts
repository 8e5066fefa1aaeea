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

function addDays(isoDate: string, days: number): string {
  return new Date(Date.parse(`${isoDate}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

function isWeekend(isoDate: string): boolean {
  const dow = new Date(`${isoDate}T00:00:00Z`).getUTCDay();
  return dow === 0 || dow === 6;
}

/**
 * The operational day a document received at `at` belongs to (R-20: documents are formed 24/7,
 * executed within the bank's operational day): after the cut-off, the next day; with
 * `businessDaysOnly`, a Saturday or Sunday moves to Monday. Public holidays are not modelled.
 */
export function operationalDay(at: Date, cutoff?: string, businessDaysOnly = false): string {
  let day = cutoff && kzTime(at) >= cutoff ? addDays(kzDate(at), 1) : kzDate(at);
  if (businessDaysOnly) while (isWeekend(day)) day = addDays(day, 1);
  return day;
}
