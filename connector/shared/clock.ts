/**
 * Injectable time. Production uses the system clock; tests and the demo may start the clock at
 * CONNECTOR_FAKE_NOW (honoured only in test mode, enforced by config) and move it.
 */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that starts at `start` and runs at real speed from there; `advance()` moves it. */
export class OffsetClock implements Clock {
  private offsetMs: number;
  constructor(start: Date, private readonly base: Clock = systemClock) {
    this.offsetMs = start.getTime() - base.now().getTime();
  }
  now(): Date {
    return new Date(this.base.now().getTime() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
  set(at: Date): void {
    this.offsetMs = at.getTime() - this.base.now().getTime();
  }
}

/** A clock that moves only when told (unit tests). */
export class ManualClock implements Clock {
  constructor(private current: Date) {}
  now(): Date {
    return new Date(this.current.getTime());
  }
  advance(ms: number): void {
    this.current = new Date(this.current.getTime() + ms);
  }
  set(at: Date): void {
    this.current = new Date(at.getTime());
  }
}

export function clockFromConfig(config: { testMode: boolean; fakeNow?: string }): Clock {
  return config.testMode && config.fakeNow ? new OffsetClock(new Date(config.fakeNow)) : systemClock;
}
