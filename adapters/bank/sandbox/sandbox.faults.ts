import { z } from 'zod';

/**
 * Fault switches of the sandbox (admin API `PUT /_sandbox/faults`). Counters ("next N requests")
 * make tests deterministic; rates make the demo and soak runs realistic. Kept in memory on
 * purpose: a restart clears injected faults, never the bank's state.
 */
export const faultsSchema = z
  .object({
    /** Probability (0..1) that a contract request fails with 500 INTERNAL_ERROR before it is processed. */
    errorRate: z.number().min(0).max(1).default(0),
    /** The next N contract requests fail with 500 before being processed. */
    fail5xxNext: z.number().int().min(0).default(0),
    /** The next N contract requests get 409 OFF_CONTRACT before being processed: a bank answering outside its contract (not an outage, so orders end `failed` after their attempts). */
    offContractNext: z.number().int().min(0).default(0),
    /** The next N contract requests get 429 RATE_LIMITED with Retry-After. */
    rateLimitNext: z.number().int().min(0).default(0),
    retryAfterSeconds: z.number().int().min(0).max(3600).default(1),
    /** A maintenance window: until this instant every contract request gets 503 MAINTENANCE with Retry-After. */
    maintenanceUntil: z.string().datetime({ offset: true }).nullable().default(null),
    /** The next N submits are accepted (committed) and then never answered: the ambiguous case. */
    timeoutAfterAcceptNext: z.number().int().min(0).default(0),
    /** Every contract response is delayed this long. */
    slowMs: z.number().int().min(0).max(600_000).default(0),
    /** The next `count` submits (at: submit), executions (at: execution) or token requests (at: token, HTTP 403) are refused with `code` (e.g. AML_REFUSAL). */
    refuse: z
      .object({ code: z.string().regex(/^[A-Z_]+$/), count: z.number().int().min(0), at: z.enum(['submit', 'execution', 'token']).default('submit') })
      .nullable()
      .default(null),
    /** The next `count` status answers carry this externalId and/or documentId instead of the document's own: a bank mixing its answers up. */
    mixStatus: z
      .object({ count: z.number().int().min(0), externalId: z.string().min(1).max(200).optional(), documentId: z.string().min(1).max(200).optional() })
      .nullable()
      .default(null),
  })
  .strict();

export type Faults = z.infer<typeof faultsSchema>;

export type FaultAnswer = { status: number; code: string; message: string; retryAfterSeconds?: number };

export class FaultSwitches {
  state: Faults = faultsSchema.parse({});

  constructor(private readonly random: () => number = Math.random) {}

  update(patch: unknown): Faults {
    this.state = faultsSchema.parse({ ...this.state, ...(patch as object) });
    return this.state;
  }

  reset(): Faults {
    this.state = faultsSchema.parse({});
    return this.state;
  }

  /** The fault answer for a contract request arriving now, if any (consumes one "next" count). */
  take(now: Date = new Date()): FaultAnswer | undefined {
    const f = this.state;
    if (f.maintenanceUntil && now.getTime() < Date.parse(f.maintenanceUntil)) {
      const seconds = Math.max(1, Math.ceil((Date.parse(f.maintenanceUntil) - now.getTime()) / 1000));
      return { status: 503, code: 'MAINTENANCE', message: 'planned maintenance of the Business API', retryAfterSeconds: seconds };
    }
    if (f.rateLimitNext > 0) {
      f.rateLimitNext -= 1;
      return { status: 429, code: 'RATE_LIMITED', message: 'too many requests', retryAfterSeconds: f.retryAfterSeconds };
    }
    if (f.fail5xxNext > 0) {
      f.fail5xxNext -= 1;
      return { status: 500, code: 'INTERNAL_ERROR', message: 'internal error (injected)' };
    }
    if (f.offContractNext > 0) {
      f.offContractNext -= 1;
      return { status: 409, code: 'OFF_CONTRACT', message: 'an answer outside the contract (injected)' };
    }
    if (f.errorRate > 0 && this.random() < f.errorRate) return { status: 500, code: 'INTERNAL_ERROR', message: 'internal error (injected)' };
    return undefined;
  }

  takeTimeoutAfterAccept(): boolean {
    if (this.state.timeoutAfterAcceptNext > 0) {
      this.state.timeoutAfterAcceptNext -= 1;
      return true;
    }
    return false;
  }

  /** The ids the next status answer carries instead of the document's own, if any (consumes one count). */
  takeStatusMixUp(): { externalId?: string; documentId?: string } | undefined {
    const m = this.state.mixStatus;
    if (m && m.count > 0) {
      m.count -= 1;
      return { externalId: m.externalId, documentId: m.documentId };
    }
    return undefined;
  }

  takeRefusal(at: 'submit' | 'execution' | 'token'): string | undefined {
    const r = this.state.refuse;
    if (r && r.at === at && r.count > 0) {
      r.count -= 1;
      return r.code;
    }
    return undefined;
  }
}
