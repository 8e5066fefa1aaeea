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

  constructor(private readonly unlockedKeys: () => number) {}

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
    return `${out.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
