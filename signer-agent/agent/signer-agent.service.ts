import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { Logger } from 'pino';
import { ConnectorError } from '../../connector/shared/errors';
import type { Clock } from '../../connector/shared/clock';
import type { AgentMetrics } from './agent.metrics';
import type { KeyRegistry, Enrolment } from './key-registry.store';
import type { KeySession, KeySessionManager, SessionEndReason } from './key-session.manager';
import type { SignJournal } from './sign-journal.writer';
import type { SigningPool } from './signing.pool';
import type { ExpectedIdentity, KeyFacts } from './signing.protocol';

export interface UserStatus {
  userId: string;
  keystorePath: string;
  expectedIin: string | null;
  enrolledAt: string;
  wrongPasswordCount: number;
  wrongPasswordTotal: number;
  lastWrongPasswordAt: string | null;
  unlocked: boolean;
  session: (KeyFacts & { unlockedAt: string; lastUsedAt: string; idleExpiresAt: string; expiresAt: string }) | null;
}

export interface SignOutcome {
  cms: Uint8Array;
  facts: KeyFacts;
  signingTime: Date;
  documentSha256: string;
}

export interface LockdownOutcome {
  wipedUsers: string[];
  workers: number;
  workersAcknowledged: number;
  elapsedMs: number;
}

/**
 * What the agent does, independent of HTTP: enrol keystores, unlock them into the workers for a
 * bounded session, sign document bytes for a connector order, lock, lockdown. Every refusal is a
 * ConnectorError with a stable code; every signature is journaled before it is handed out.
 */
export class SignerAgentService {
  private readonly unlocking = new Map<string, { cancelled: boolean }>();
  private shuttingDown = false;

  constructor(
    private readonly deps: {
      registry: KeyRegistry;
      sessions: KeySessionManager;
      pool: SigningPool;
      journal: SignJournal;
      metrics: AgentMetrics;
      clock: Clock;
      logger: Logger;
      cwd: string;
      testMode: boolean;
      maxDocumentBytes: number;
    },
  ) {}

  /** Called by the session manager when a session ends on its own (idle, maximum) or by request. */
  onSessionEnd(userId: string, reason: SessionEndReason): void {
    this.deps.pool.lock(userId);
    this.deps.logger.info({ event: 'signer.session.ended', userId, reason }, 'key wiped');
    this.journal({ event: 'locked', at: this.now().toISOString(), userId, reason });
  }

  async enroll(userId: string, keystorePath: string, expectedIin: string | null): Promise<UserStatus> {
    this.refuseWhenShuttingDown();
    const path = isAbsolute(keystorePath) ? keystorePath : resolve(this.deps.cwd, keystorePath);
    let info;
    try {
      info = await stat(path);
    } catch (err) {
      throw new ConnectorError('KEYSTORE_UNREADABLE', `keystore ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (!info.isFile()) throw new ConnectorError('KEYSTORE_UNREADABLE', `keystore ${path} is not a file`);
    // A new enrolment replaces the old one: the old key must not stay unlocked under it, nor
    // become unlocked by an unlock of the old keystore still under way.
    this.cancelUnlock(userId);
    if (this.deps.sessions.end(userId, 'unenrolled', false)) this.deps.pool.lock(userId);
    this.deps.registry.enroll(userId, path, expectedIin, this.now());
    this.deps.logger.info({ event: 'signer.enrolled', userId, keystorePath: path, expectedIin }, 'keystore enrolled');
    await this.deps.journal.append({ event: 'enrolled', at: this.now().toISOString(), userId, keystorePath: path, expectedIin });
    return this.status(userId);
  }

  async unenroll(userId: string): Promise<void> {
    this.requireEnrolment(userId);
    this.cancelUnlock(userId);
    if (this.deps.sessions.end(userId, 'unenrolled', false)) this.deps.pool.lock(userId);
    this.deps.registry.remove(userId);
    await this.deps.journal.append({ event: 'unenrolled', at: this.now().toISOString(), userId });
  }

  /**
   * Unlocks the user's keystore in the workers. A wrong password is counted per user (persisted)
   * and reported in the error's details, so the users issue can tie it to the user's lock-out.
   * Any unlock first ends the user's current session: a failed unlock leaves the key locked.
   */
  async unlock(userId: string, password: string): Promise<UserStatus> {
    this.refuseWhenShuttingDown();
    const enrolment = this.requireEnrolment(userId);
    if (this.unlocking.has(userId)) throw new ConnectorError('UNLOCK_IN_PROGRESS', `an unlock of user ${userId}'s key is already in progress`);
    const ticket = { cancelled: false };
    this.unlocking.set(userId, ticket);
    // Once the keystore went to the workers, the key may sit in them (a worker that answered late,
    // after a timeout, still opens it): any way out but a started session wipes it there again.
    let sentToWorkers = false;
    let started = false;
    try {
      if (this.deps.sessions.end(userId, 'request', false)) this.deps.pool.lock(userId);
      let p12: Buffer;
      try {
        p12 = await readFile(enrolment.keystorePath);
      } catch (err) {
        throw new ConnectorError('KEYSTORE_UNREADABLE', `keystore ${enrolment.keystorePath} cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`);
      }
      const epoch = this.deps.pool.currentEpoch();
      let facts: KeyFacts;
      try {
        sentToWorkers = true;
        facts = await this.deps.pool.unlock(userId, p12, password, enrolment.expectedIin);
      } finally {
        p12.fill(0);
      }
      if (ticket.cancelled || this.deps.pool.currentEpoch() !== epoch || this.shuttingDown) {
        this.deps.pool.lock(userId);
        throw new ConnectorError('KEY_LOCKED', `user ${userId}'s key was locked while it was being unlocked`);
      }
      this.deps.registry.recordUnlock(userId);
      this.deps.sessions.start(userId, facts, this.now());
      started = true;
      this.deps.metrics.unlockOutcome('ok');
      this.deps.logger.info({ event: 'signer.unlocked', userId, algorithm: facts.algorithm, serial: facts.serial }, 'key unlocked');
      this.journal({ event: 'unlocked', at: this.now().toISOString(), userId, algorithm: facts.algorithm, serial: facts.serial, iin: facts.iin, bin: facts.bin });
      return this.status(userId);
    } catch (err) {
      if (sentToWorkers && !started) this.deps.pool.lock(userId);
      const coded = err instanceof ConnectorError ? err : new ConnectorError('INTERNAL', 'unlock failed');
      // Overtaken by a lock, an unenroll or a new enrolment: its answer belongs to none of them (a
      // wrong password of the old keystore must not count against the new one).
      if (ticket.cancelled && coded.code !== 'KEY_LOCKED') throw new ConnectorError('KEY_LOCKED', `user ${userId}'s key was locked while it was being unlocked`);
      if (coded.code === 'WRONG_PASSWORD') {
        const updated = this.deps.registry.recordWrongPassword(userId, this.now());
        this.deps.metrics.unlockOutcome('wrong_password');
        this.deps.logger.warn({ event: 'signer.unlock.wrong_password', userId, wrongPasswordCount: updated.wrongPasswordCount }, 'wrong keystore password');
        this.journal({ event: 'unlock_refused', at: this.now().toISOString(), userId, code: coded.code, wrongPasswordCount: updated.wrongPasswordCount });
        throw new ConnectorError('WRONG_PASSWORD', `wrong keystore password for user ${userId} (${updated.wrongPasswordCount} in a row)`, 1, {
          wrongPasswordCount: updated.wrongPasswordCount,
          wrongPasswordTotal: updated.wrongPasswordTotal,
        });
      }
      this.deps.metrics.unlockOutcome('refused');
      this.deps.logger.warn({ event: 'signer.unlock.refused', userId, code: coded.code }, coded.message);
      this.journal({ event: 'unlock_refused', at: this.now().toISOString(), userId, code: coded.code });
      throw coded;
    } finally {
      this.unlocking.delete(userId);
    }
  }

  /** An unlock under way for the user ends in KEY_LOCKED, its key wiped in the workers. */
  private cancelUnlock(userId: string): void {
    const ticket = this.unlocking.get(userId);
    if (ticket) ticket.cancelled = true;
  }

  lock(userId: string): { wiped: boolean } {
    this.requireEnrolment(userId);
    this.cancelUnlock(userId);
    const wiped = this.deps.sessions.end(userId, 'request');
    // Broadcast even without a session: an unlock may be half-way through a worker.
    if (!wiped) this.deps.pool.lock(userId);
    return { wiped };
  }

  /**
   * Signs `document` for `orderId` with the user's unlocked key. The certificate is judged by the
   * library's check at the signing moment inside the worker. `signingTime` is accepted only in
   * test mode (the real NCA test keys have expired); otherwise the moment is now.
   */
  async sign(request: {
    userId: string;
    orderId: string;
    document: Buffer;
    cosign: Buffer | null;
    signingTime?: Date;
    expected: ExpectedIdentity;
  }): Promise<SignOutcome> {
    const started = process.hrtime.bigint();
    const documentSha256 = createHash('sha256').update(request.document).digest('hex');
    const refuse = (err: ConnectorError): ConnectorError => {
      this.journal({ event: 'sign_refused', at: this.now().toISOString(), userId: request.userId, orderId: request.orderId, documentSha256, code: err.code });
      this.deps.logger.warn({ event: 'signer.sign.refused', userId: request.userId, orderId: request.orderId, code: err.code }, err.message);
      return err;
    };
    if (this.shuttingDown) throw refuse(new ConnectorError('SHUTTING_DOWN', 'the signer agent is shutting down'));
    const enrolment = this.deps.registry.get(request.userId);
    if (!enrolment) throw refuse(new ConnectorError('NOT_ENROLLED', `user ${request.userId} has no enrolled keystore`));
    if (request.signingTime && !this.deps.testMode) {
      throw refuse(new ConnectorError('SIGNING_TIME_NOT_ALLOWED', 'signingTime is honoured only in test mode (CONNECTOR_TEST_MODE=1); the signing moment is now'));
    }
    if (request.document.length > this.deps.maxDocumentBytes) {
      throw refuse(new ConnectorError('DOCUMENT_TOO_LARGE', `the document has ${request.document.length} bytes; the agent signs at most ${this.deps.maxDocumentBytes}`));
    }
    const expectedIin = request.expected.iin ?? enrolment.expectedIin;
    if (request.expected.iin && enrolment.expectedIin && request.expected.iin !== enrolment.expectedIin) {
      throw refuse(new ConnectorError('IDENTITY_MISMATCH', `user ${request.userId} is enrolled with IIN ${enrolment.expectedIin}, not ${request.expected.iin}`));
    }
    const session = this.deps.sessions.get(request.userId, this.now());
    if (!session) throw refuse(new ConnectorError('KEY_LOCKED', `user ${request.userId}'s key is not unlocked; unlock it first`));
    const signingTime = request.signingTime ?? this.now();
    let result;
    try {
      result = await this.deps.pool.sign({
        userId: request.userId,
        document: request.document,
        cosign: request.cosign,
        signingTime,
        expected: { iin: expectedIin, bin: request.expected.bin },
      });
    } catch (err) {
      throw refuse(err instanceof ConnectorError ? err : new ConnectorError('SIGNING_FAILED', 'signing failed'));
    }
    // A lock or lockdown that came while the worker was busy wins: the signature is dropped.
    if (this.deps.sessions.get(request.userId)?.generation !== session.generation) {
      throw refuse(new ConnectorError('KEY_LOCKED', `user ${request.userId}'s key was locked during signing; the signature was discarded`));
    }
    const cms = Buffer.from(result.cms.buffer, result.cms.byteOffset, result.cms.byteLength);
    try {
      await this.deps.journal.append({
        event: 'signed',
        at: this.now().toISOString(),
        userId: request.userId,
        orderId: request.orderId,
        signingTime: result.signingTime.toISOString(),
        algorithm: result.facts.algorithm,
        serial: result.facts.serial,
        subject: result.facts.subject,
        iin: result.facts.iin,
        bin: result.facts.bin,
        documentSha256,
        documentBytes: request.document.length,
        cosign: request.cosign !== null,
        cmsSha256: createHash('sha256').update(cms).digest('hex'),
        revocation: result.revocation.status,
        revocationSource: result.revocation.source,
      });
    } catch (err) {
      // Fail closed: a signature that is not on record is not handed out.
      throw err instanceof ConnectorError ? err : new ConnectorError('JOURNAL_UNAVAILABLE', 'the journal cannot be written');
    }
    this.deps.sessions.touch(request.userId, this.now());
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    this.deps.metrics.signed(result.facts.algorithm, seconds);
    this.deps.logger.info(
      {
        event: 'signer.signed',
        userId: request.userId,
        orderId: request.orderId,
        algorithm: result.facts.algorithm,
        serial: result.facts.serial,
        documentSha256,
        revocation: result.revocation.status,
        ms: Math.round(seconds * 1000),
      },
      result.revocation.status === 'good' ? 'document signed' : 'document signed; revocation unchecked: no current CRL of the issuer is configured (signer.crl)',
    );
    return { cms, facts: result.facts, signingTime: result.signingTime, documentSha256 };
  }

  /**
   * Lockdown: every session ends and every worker drops its keys. The answer does not wait for
   * the journal or for a busy worker beyond `waitMs`; the wipe epoch already makes old keys
   * unusable. `elapsedMs` is measured here, from entry to the moment the wipe is in force.
   */
  async lockdown(reason: string | null, waitMs = 50): Promise<LockdownOutcome> {
    const started = process.hrtime.bigint();
    for (const ticket of this.unlocking.values()) ticket.cancelled = true;
    const wipedUsers = this.deps.sessions.endAll();
    const { acknowledged, workers } = await this.deps.pool.wipeAll(waitMs);
    const elapsedMs = Number(process.hrtime.bigint() - started) / 1e6;
    this.deps.metrics.lockdown();
    this.deps.logger.warn({ event: 'signer.lockdown', wipedUsers, workers, workersAcknowledged: acknowledged, elapsedMs, reason }, 'lockdown: every key wiped');
    this.journal({ event: 'lockdown', at: this.now().toISOString(), wipedUsers, reason });
    return { wipedUsers, workers, workersAcknowledged: acknowledged, elapsedMs: Math.round(elapsedMs * 1000) / 1000 };
  }

  /** Graceful shutdown: refuse new work, wipe every key, stop the workers, flush the journal. */
  async shutdown(): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const ticket of this.unlocking.values()) ticket.cancelled = true;
    const users = this.deps.sessions.endAll();
    await this.deps.pool.close();
    for (const userId of users) this.journal({ event: 'locked', at: this.now().toISOString(), userId, reason: 'shutdown' });
    await this.deps.journal.close();
  }

  /** Every session ends when a worker is lost (the pool's invariant: each worker holds every key). */
  onWorkerLost(): void {
    const users = this.deps.sessions.endAll();
    void this.deps.pool.wipeAll(1_000);
    for (const userId of users) this.journal({ event: 'locked', at: this.now().toISOString(), userId, reason: 'worker_lost' });
  }

  status(userId: string): UserStatus {
    return this.describe(userId, this.requireEnrolment(userId));
  }

  statusAll(): UserStatus[] {
    return this.deps.registry.list().map(({ userId, ...enrolment }) => this.describe(userId, enrolment));
  }

  private describe(userId: string, enrolment: Enrolment): UserStatus {
    const session = this.deps.sessions.get(userId, this.now());
    return {
      userId,
      keystorePath: enrolment.keystorePath,
      expectedIin: enrolment.expectedIin,
      enrolledAt: enrolment.enrolledAt,
      wrongPasswordCount: enrolment.wrongPasswordCount,
      wrongPasswordTotal: enrolment.wrongPasswordTotal,
      lastWrongPasswordAt: enrolment.lastWrongPasswordAt,
      unlocked: session !== undefined,
      session: session ? sessionView(session) : null,
    };
  }

  private requireEnrolment(userId: string): Enrolment {
    const enrolment = this.deps.registry.get(userId);
    if (!enrolment) throw new ConnectorError('NOT_ENROLLED', `user ${userId} has no enrolled keystore; enroll it first`);
    return enrolment;
  }

  private refuseWhenShuttingDown(): void {
    if (this.shuttingDown) throw new ConnectorError('SHUTTING_DOWN', 'the signer agent is shutting down');
  }

  private now(): Date {
    return this.deps.clock.now();
  }

  /** Journal writes that must not delay an answer (session events); a failure is logged, never swallowed silently. */
  private journal(record: Parameters<SignJournal['append']>[0]): void {
    this.deps.journal.append(record).catch((err: unknown) => {
      this.deps.logger.error({ event: 'signer.journal.failed', code: (err as ConnectorError).code }, (err as Error).message);
    });
  }
}

function sessionView(session: KeySession): UserStatus['session'] {
  return {
    ...session.facts,
    unlockedAt: session.unlockedAt.toISOString(),
    lastUsedAt: session.lastUsedAt.toISOString(),
    idleExpiresAt: session.idleExpiresAt.toISOString(),
    expiresAt: session.expiresAt.toISOString(),
  };
}
