/**
 * What the lockdown asks of the world outside the domain (DESIGN.md dependency rules: the domain
 * defines the port, queue/ implements it, the entry point wires it). Every call is bounded: a part
 * that cannot be reached becomes a warning, never a reason for the lock not to hold.
 */
export interface LockdownQueuePort {
  /** BullMQ's own global pause of every queue under the prefix (operator tools see it paused). */
  pauseAll(): Promise<string[]>;
  resumeAll(): Promise<string[]>;
  /** After resolution: orders released from `held` go back to validation. */
  requeueValidate(orderIds: string[]): Promise<void>;
  /** Orders a worker had claimed (`submitting`) but did not send because of the lock. */
  requeueSubmit(orderIds: string[]): Promise<void>;
}

export interface LockdownAgentPort {
  /**
   * Wipes every unlocked key in the signer agent; returns the users whose keys were wiped. `reason`
   * goes to the agent's log and journal: a code, never a login or free text.
   */
  wipeAll(reason: string): Promise<{ wipedUsers: string[] }>;
}

export interface LockdownSessionPort {
  endAll(): Promise<number>;
  /** Blocks the user and ends their sessions; returns warnings from parts not reached. */
  blockUser(login: string, reason: string): Promise<{ sessionsEnded: number; warnings: string[] }>;
}

export interface LockdownNotice {
  event: 'lockdown.engaged' | 'lockdown.alert' | 'lockdown.resolved';
  incidentId: string;
  trigger: string;
  scope: string | null;
  reason: string;
  at: string;
  bankDeadline?: string | null;
  /** The bank-notification checklist as text (lockdown.engaged). */
  checklist?: string;
}

export interface LockdownNotifierPort {
  /** Admins' alert (webhook, e-mail). Resolves with what was delivered and a warning for each channel that was not. */
  notify(notice: LockdownNotice): Promise<{ delivered: string[]; warnings: string[] }>;
}

export interface LockdownPorts {
  queues: LockdownQueuePort;
  agent: LockdownAgentPort;
  sessions: LockdownSessionPort;
  notifier: LockdownNotifierPort;
}
