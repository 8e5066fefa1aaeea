import { AgentMetrics } from './agent.metrics';

describe('AgentMetrics', () => {
  it('renders signatures per algorithm and failures per code in Prometheus text format', () => {
    const metrics = new AgentMetrics(() => 2);
    metrics.signed('RSA-SHA256', 0.01);
    metrics.signed('RSA-SHA256', 0.03);
    metrics.signed('GOST34.10-2015-512', 0.002);
    metrics.failed('WRONG_PASSWORD');
    metrics.failed('WRONG_PASSWORD');
    metrics.failed('CERT_EXPIRED');
    metrics.lockdown();
    const text = metrics.render();
    expect(text).toContain('signer_signatures_total{algorithm="RSA-SHA256"} 2\n');
    expect(text).toContain('signer_signatures_total{algorithm="GOST34.10-2015-512"} 1\n');
    expect(text).toContain('signer_failures_total{code="WRONG_PASSWORD"} 2\n');
    expect(text).toContain('signer_failures_total{code="CERT_EXPIRED"} 1\n');
    expect(text).toContain('signer_keys_unlocked 2\n');
    expect(text).toContain('signer_lockdowns_total 1\n');
    expect(text).toContain('signer_sign_duration_seconds_count 3\n');
    expect(text).toMatch(/# TYPE signer_signatures_total counter/);
  });
});
