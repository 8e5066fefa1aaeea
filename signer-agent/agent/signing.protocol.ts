/**
 * Messages between the agent's main thread and its signing workers. Key material exists only on
 * the worker side: the main thread sends the keystore bytes and password once (unlock) and then
 * only document bytes; it gets back certificate facts and CMS bytes.
 */

/** What the agent tells its callers about an unlocked key's certificate (no secret in it). */
export interface KeyFacts {
  algorithm: string;
  subject: string;
  iin: string | null;
  bin: string | null;
  serial: string;
  notBefore: string;
  notAfter: string;
}

/** Identity the certificate must carry (the enrolled user's IIN, the payer's BIN), checked at the signing moment. */
export interface ExpectedIdentity {
  iin: string | null;
  bin: string | null;
}

export interface WorkerSetup {
  /** SharedArrayBuffer of one Int32: the wipe epoch. A lockdown bumps it; a worker holding keys of an older epoch drops them before any use. */
  epoch: SharedArrayBuffer;
  testMode: boolean;
  trust: string[];
  crl: string[];
  requireRevocation: boolean;
}

export type WorkerRequest =
  | { id: number; type: 'unlock'; userId: string; p12: Uint8Array; password: string; expectedIin: string | null; epoch: number }
  | {
      id: number;
      type: 'sign';
      userId: string;
      document: Uint8Array;
      cosign: Uint8Array | null;
      signingTime: string;
      expected: ExpectedIdentity;
    }
  | { id: number; type: 'lock'; userId: string }
  | { id: number; type: 'wipeAll' }
  | { id: number; type: 'ping' };

export interface SignResult {
  cms: Uint8Array;
  facts: KeyFacts;
  /** The signing-time written into the CMS (whole seconds). */
  signingTime: Date;
  /** What the CRLs said of the certificate at the signing moment, and which CRL said it. */
  revocation: SignedRevocation;
}

/** `unchecked`: no current complete CRL of the issuer was configured (allowed without signer.requireRevocation). */
export interface SignedRevocation {
  status: 'good' | 'unchecked';
  source: string | null;
}

export type WorkerReply =
  | { id: number; ok: true; facts?: KeyFacts; cms?: Uint8Array; signingTime?: string; revocation?: SignedRevocation; wiped?: number }
  | { id: number; ok: false; code: string; message: string };
