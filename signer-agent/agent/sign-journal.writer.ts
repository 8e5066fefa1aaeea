import { mkdirSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
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
    }
  | { event: 'sign_refused'; at: string; userId: string; orderId: string; documentSha256: string; code: string }
  | { event: 'enrolled'; at: string; userId: string; keystorePath: string; expectedIin: string | null }
  | { event: 'unenrolled'; at: string; userId: string }
  | { event: 'unlocked'; at: string; userId: string; algorithm: string; serial: string; iin: string | null; bin: string | null }
  | { event: 'unlock_refused'; at: string; userId: string; code: string; wrongPasswordCount?: number }
  | { event: 'locked'; at: string; userId: string; reason: 'request' | 'idle_timeout' | 'session_max' | 'worker_lost' | 'shutdown' | 'unenrolled' | 'lockdown' }
  | { event: 'lockdown'; at: string; wipedUsers: string[]; reason: string | null };

/**
 * Append-only JSON-lines file (opened with O_APPEND, mode 0600). Writes are serialised through
 * one promise chain so lines never interleave, and each is flushed to disk (datasync) before
 * the caller gets its signature: a signature handed out is always on record.
 */
export class SignJournal {
  private handle: FileHandle | undefined;
  private tail: Promise<void> = Promise.resolve();

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
    const line = `${JSON.stringify(record)}\n`;
    const write = this.tail.then(async () => {
      if (!this.handle) throw new ConnectorError('JOURNAL_UNAVAILABLE', 'signer journal is closed');
      await this.handle.write(line);
      await this.handle.datasync();
    });
    // The chain continues after a failure; the failing caller sees its own error.
    this.tail = write.catch(() => undefined);
    return write.catch((err: unknown) => {
      if (err instanceof ConnectorError) throw err;
      throw new ConnectorError('JOURNAL_UNAVAILABLE', `signer journal ${this.path} cannot be written: ${(err as NodeJS.ErrnoException).code ?? err}`);
    });
  }

  async close(): Promise<void> {
    await this.tail;
    await this.handle?.close();
    this.handle = undefined;
  }
}
