import { mkdirSync } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConnectorError } from '../../connector/shared/errors';

/**
 * One line of the agent's journal. Who signed what, when, with which certificate (issue 11);
 * R-18 makes the signed bytes legally binding, so the journal keeps their sha256. Never a
 * password, a key or the document itself.
 */
export type JournalRecord =
  | {
      event: 'signed';
      at: string;
      userId: string;
      orderId: string;
      signingTime: string;
      algorithm: string;
      serial: string;
      subject: string;
      iin: string | null;
      bin: string | null;
      documentSha256: string;
      documentBytes: number;
      cosign: boolean;
      cmsSha256: string;
      /** The CRL verdict at signing: `unchecked` when no current CRL of the issuer was configured (evidence for ). */
      revocation: 'good' | 'unchecked';
      revocationSource: string | null;
    }
  | { event: 'sign_refused'; at: string; userId: string; orderId: string; documentSha256: string; code: string }
  | { event: 'enrolled'; at: string; userId: string; keystorePath: string; expectedIin: string | null }
  | { event: 'unenrolled'; at: string; userId: string }
  | { event: 'unlocked'; at: string; userId: string; algorithm: string; serial: string; iin: string | null; bin: string | null }
  | { event: 'unlock_refused'; at: string; userId: string; code: string; wrongPasswordCount?: number }
  | { event: 'locked'; at: string; userId: string; reason: 'request' | 'idle_timeout' | 'session_max' | 'worker_lost' | 'shutdown' | 'unenrolled' | 'lockdown' }
  | { event: 'lockdown'; at: string; wipedUsers: string[]; reason: string | null };

/**
 * Append-only JSON-lines file (opened with O_APPEND, mode 0600). Each record is flushed to disk
 * (datasync) before its caller gets an answer: a signature handed out is always on record.
 * Group commit: records that arrive while a flush is running are written and synced together,
 * in arrival order, so a burst of signatures costs a few fsyncs, not one each.
 *
 * Rotation: before each batch the journal checks that its path still names the file it has open
 * (device and inode); when logrotate moved it away, the batch goes to a new file at the path. The
 * batches and `reopen()` (SIGHUP) take turns, so every record lands, synced, in the old file or
 * in the new one, and a reopen never waits for a steady stream of signatures to pause.
 */
export class SignJournal {
  private handle: FileHandle | undefined;
  private queue: Array<{ line: string; resolve: () => void; reject: (err: Error) => void }> = [];
  private flushing: Promise<void> | undefined;
  /** Batches and reopens run one at a time, in the order asked. */
  private turn: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  async open(): Promise<void> {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    try {
      this.handle = await open(this.path, 'a', 0o600);
    } catch (err) {
      throw new ConnectorError('JOURNAL_UNAVAILABLE', `signer journal ${this.path} cannot be opened: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
  }

  append(record: JournalRecord): Promise<void> {
    if (!this.handle) return Promise.reject(new ConnectorError('JOURNAL_UNAVAILABLE', 'signer journal is closed'));
    const line = `${JSON.stringify(record)}\n`;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      this.flushing ??= this.flush();
    });
  }

  /**
   * Opens the journal's path again now (SIGHUP), whether or not the file was moved: later records
   * go to the file at the path. A path that cannot be opened keeps the old file in use (and throws).
   */
  async reopen(): Promise<void> {
    await this.inTurn(async () => {
      if (!this.handle) throw new ConnectorError('JOURNAL_UNAVAILABLE', 'signer journal is closed');
      await this.swap();
    });
  }

  async close(): Promise<void> {
    while (this.flushing) await this.flushing;
    await this.inTurn(async () => {
      await this.handle?.close();
      this.handle = undefined;
    });
  }

  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(work, work);
    this.turn = run.catch(() => undefined);
    return run;
  }

  private async swap(): Promise<void> {
    let next: FileHandle;
    try {
      next = await open(this.path, 'a', 0o600);
    } catch (err) {
      throw new ConnectorError('JOURNAL_UNAVAILABLE', `signer journal ${this.path} cannot be opened again: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    const previous = this.handle;
    this.handle = next;
    await previous?.close();
  }

  /** True when the path no longer names the open file (moved or deleted by a rotation). */
  private async rotated(handle: FileHandle): Promise<boolean> {
    const [atPath, open] = await Promise.all([stat(this.path).catch(() => null), handle.stat()]);
    return !atPath || atPath.ino !== open.ino || atPath.dev !== open.dev;
  }

  private async flush(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        await this.inTurn(() => this.writeBatch());
      }
    } finally {
      // Cleared in the same step as the last look at the queue: a record appended after that look
      // starts a flush of its own. Cleared later (a .finally() on this promise), a record appended
      // in between found a flush still "running", started none, and waited for ever.
      this.flushing = undefined;
    }
  }

  private async writeBatch(): Promise<void> {
    const batch = this.queue.splice(0, this.queue.length);
    if (!batch.length) return;
    try {
      if (!this.handle) throw new ConnectorError('JOURNAL_UNAVAILABLE', 'signer journal is closed');
      // A rotated file is followed; if the new one cannot be opened, the old one keeps the records.
      if (await this.rotated(this.handle)) await this.swap().catch(() => undefined);
      await appendWhole(this.handle, Buffer.from(batch.map((b) => b.line).join(''), 'utf8'));
      for (const b of batch) b.resolve();
    } catch (err) {
      const coded =
        err instanceof ConnectorError
          ? err
          : new ConnectorError(
              'JOURNAL_UNAVAILABLE',
              `signer journal ${this.path} cannot be written: ${(err as NodeJS.ErrnoException).code ?? err}; no signature is handed out until it can (free space on its disk, or make it writable by the agent's user: signer.journalFile)`,
            );
      for (const b of batch) b.reject(coded);
    }
  }
}

/**
 * Writes all of `bytes` at the end of the file and syncs them, or leaves the file as it was. A
 * disk that fills up takes part of a write (the last free block) and refuses the rest: one write
 * call returned that part as success, the record cut in the middle was answered as on record (a
 * signature handed out without its line), and the next record, once space was freed, was glued to
 * the half line. The part written of a batch that fails is cut off again (truncate frees, it needs
 * no space): the journal holds whole lines only.
 */
async function appendWhole(handle: FileHandle, bytes: Buffer): Promise<void> {
  const before = (await handle.stat()).size;
  try {
    for (let at = 0; at < bytes.length; ) {
      const { bytesWritten } = await handle.write(bytes, at, bytes.length - at);
      if (bytesWritten <= 0) throw Object.assign(new Error('no byte of the journal record was written'), { code: 'ENOSPC' });
      at += bytesWritten;
    }
    await handle.datasync();
  } catch (err) {
    await handle.truncate(before).catch(() => undefined);
    throw err;
  }
}
