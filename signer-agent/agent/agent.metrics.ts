import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/**
 * The agent's Prometheus metrics (issue 11: "signatures per algorithm, failures by code").
 * Hand-written text exposition format 0.0.4: a handful of counters needs no client library.
 */
export class AgentMetrics {
  private readonly signatures = new Map<string, number>();
  private readonly failures = new Map<string, number>();
  private readonly unlocks = new Map<string, number>();
  private lockdowns = 0;
  private signSecondsSum = 0;
  private signCount = 0;

  /** Event-loop delay of the main thread: the proof that signing stays off it (LESSONS.md 10). */
  private readonly loopDelay: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 });

  constructor(private readonly unlockedKeys: () => number) {
    this.loopDelay.enable();
  }

  /** Largest event-loop delay seen since start, in milliseconds. */
  eventLoopDelayMaxMs(): number {
    return this.loopDelay.max / 1e6;
  }

  /** Start-up (worker spawn, route compilation) is not serving time: measure from listening on. */
  resetLoopDelay(): void {
    this.loopDelay.reset();
  }

  stop(): void {
    this.loopDelay.disable();
  }

  signed(algorithm: string, seconds: number): void {
    this.signatures.set(algorithm, (this.signatures.get(algorithm) ?? 0) + 1);
    this.signSecondsSum += seconds;
    this.signCount += 1;
  }

  /** Any refusal of the agent with its code (sign, unlock, enrol). */
  failed(code: string): void {
    this.failures.set(code, (this.failures.get(code) ?? 0) + 1);
  }

  unlockOutcome(outcome: 'ok' | 'wrong_password' | 'refused'): void {
    this.unlocks.set(outcome, (this.unlocks.get(outcome) ?? 0) + 1);
  }

  lockdown(): void {
    this.lockdowns += 1;
  }

  render(): string {
    const out: string[] = [];
    const counter = (name: string, help: string, label: string, values: Map<string, number>) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [value, n] of [...values.entries()].sort(([a], [b]) => a.localeCompare(b))) {
        out.push(`${name}{${label}="${escapeLabel(value)}"} ${n}`);
      }
    };
    counter('signer_signatures_total', 'Signatures made, by algorithm.', 'algorithm', this.signatures);
    counter('signer_failures_total', 'Refusals and failures, by code.', 'code', this.failures);
    counter('signer_unlocks_total', 'Unlock attempts, by outcome.', 'outcome', this.unlocks);
    out.push('# HELP signer_lockdowns_total Lockdown commands received.', '# TYPE signer_lockdowns_total counter', `signer_lockdowns_total ${this.lockdowns}`);
    out.push('# HELP signer_keys_unlocked Keys unlocked right now.', '# TYPE signer_keys_unlocked gauge', `signer_keys_unlocked ${this.unlockedKeys()}`);
    out.push(
      '# HELP signer_sign_duration_seconds Time from request to signature, including the worker queue.',
      '# TYPE signer_sign_duration_seconds summary',
      `signer_sign_duration_seconds_sum ${this.signSecondsSum.toFixed(6)}`,
      `signer_sign_duration_seconds_count ${this.signCount}`,
    );
    out.push(
      '# HELP signer_event_loop_delay_seconds Main-thread event-loop delay since the agent listens (signing runs in worker threads).',
      '# TYPE signer_event_loop_delay_seconds gauge',
      `signer_event_loop_delay_seconds{quantile="0.5"} ${(this.loopDelay.percentile(50) / 1e9).toFixed(6)}`,
      `signer_event_loop_delay_seconds{quantile="0.99"} ${(this.loopDelay.percentile(99) / 1e9).toFixed(6)}`,
      `signer_event_loop_delay_seconds{quantile="1"} ${(this.loopDelay.max / 1e9).toFixed(6)}`,
    );
    return `${out.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
