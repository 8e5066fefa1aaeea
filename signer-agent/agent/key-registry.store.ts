import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConnectorError } from '../../connector/shared/errors';

/**
 * The agent's registry of enrolled keystores (issue 11: "users enroll their keystore file, path
 * per user id"). It holds paths and counters only: never a password, never key material.
 * The wrong-password counter lives here (not only in memory) so that restarting the agent does
 * not reset it: the users issue ties it to the user's lock-out.
 */
export const enrolmentSchema = z.object({
  keystorePath: z.string().min(1),
  expectedIin: z.string().regex(/^\d{12}$/).nullable().default(null),
  enrolledAt: z.string(),
  /** Consecutive wrong passwords since the last successful unlock. */
  wrongPasswordCount: z.number().int().min(0).default(0),
  /** All wrong passwords ever recorded for this enrolment. */
  wrongPasswordTotal: z.number().int().min(0).default(0),
  lastWrongPasswordAt: z.string().nullable().default(null),
});
export type Enrolment = z.infer<typeof enrolmentSchema>;

const registrySchema = z.object({
  version: z.literal(1),
  users: z.record(z.string(), enrolmentSchema),
});

export class KeyRegistry {
  private users = new Map<string, Enrolment>();

  constructor(private readonly path: string) {}

  /** Loads the registry; a missing file is an empty registry, a broken one stops the agent (fail closed). */
  load(): this {
    if (!existsSync(this.path)) return this;
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(this.path, 'utf8'));
    } catch (err) {
      throw new ConnectorError('SIGNER_REGISTRY_INVALID', `signer key registry ${this.path} cannot be read as JSON: ${(err as Error).message}`);
    }
    const result = registrySchema.safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0];
      throw new ConnectorError('SIGNER_REGISTRY_INVALID', `signer key registry ${this.path}: ${issue.path.join('.')}: ${issue.message}`);
    }
    this.users = new Map(Object.entries(result.data.users));
    return this;
  }

  get(userId: string): Enrolment | undefined {
    const entry = this.users.get(userId);
    return entry ? { ...entry } : undefined;
  }

  list(): Array<{ userId: string } & Enrolment> {
    return [...this.users.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([userId, e]) => ({ userId, ...e }));
  }

  /** Enrols or re-enrols; a new keystore path starts a fresh counter, the same path keeps it. */
  enroll(userId: string, keystorePath: string, expectedIin: string | null, at: Date): Enrolment {
    const previous = this.users.get(userId);
    const keep = previous && previous.keystorePath === keystorePath;
    const entry: Enrolment = {
      keystorePath,
      expectedIin,
      enrolledAt: at.toISOString(),
      wrongPasswordCount: keep ? previous.wrongPasswordCount : 0,
      wrongPasswordTotal: keep ? previous.wrongPasswordTotal : 0,
      lastWrongPasswordAt: keep ? previous.lastWrongPasswordAt : null,
    };
    this.users.set(userId, entry);
    this.save();
    return { ...entry };
  }

  remove(userId: string): boolean {
    const had = this.users.delete(userId);
    if (had) this.save();
    return had;
  }

  recordWrongPassword(userId: string, at: Date): Enrolment {
    const entry = this.require(userId);
    entry.wrongPasswordCount += 1;
    entry.wrongPasswordTotal += 1;
    entry.lastWrongPasswordAt = at.toISOString();
    this.save();
    return { ...entry };
  }

  recordUnlock(userId: string): void {
    const entry = this.require(userId);
    if (entry.wrongPasswordCount === 0) return;
    entry.wrongPasswordCount = 0;
    this.save();
  }

  private require(userId: string): Enrolment {
    const entry = this.users.get(userId);
    if (!entry) throw new ConnectorError('NOT_ENROLLED', `user ${userId} has no enrolled keystore`);
    return entry;
  }

  /** Write-then-rename so that a crash never leaves half a registry; mode 0600 (paths are still private). */
  private save(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const body = { version: 1 as const, users: Object.fromEntries([...this.users.entries()].sort(([a], [b]) => a.localeCompare(b))) };
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, this.path);
  }
}
