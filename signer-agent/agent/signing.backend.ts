import { defaultTrustPaths, followedCrls, loadTrustStore, type TrustStore } from '../certificates/trust.store';
import { signDocument } from '../cms/cms.signer';
import { openPkcs12, type LoadedKey } from '../keystore/pkcs12.reader';
import { SignerError } from '../signer.errors';
import type { ExpectedIdentity, KeyFacts, SignedRevocation, WorkerSetup } from './signing.protocol';

/** A key unlocked inside a worker: the library's LoadedKey plus what the agent reports about it. */
export interface UnlockedKey {
  readonly loaded: LoadedKey;
  readonly facts: KeyFacts;
  wipe(): void;
}

export interface SigningBackend {
  /** Opens the keystore (WRONG_PASSWORD, UNSUPPORTED_ALGORITHM...) and matches the enrolled IIN (IDENTITY_MISMATCH). */
  open(p12: Uint8Array, password: string, expectedIin: string | null): UnlockedKey;
  /** Judges the certificate at `signingTime` with the library's one check, then builds the detached CMS (or adds a signer to `cosign`). */
  sign(key: UnlockedKey, document: Uint8Array, signingTime: Date, cosign: Uint8Array | null, expected: ExpectedIdentity): { cms: Uint8Array; signingTime: Date; revocation: SignedRevocation };
}

/**
 * The signer library (signer-agent/keystore, certificates, cms) as the worker uses it. The trust
 * store is loaded once per worker: the configured store, plus NCA's test CAs only in test mode
 * (defaultTrustPaths). The CRLs follow their files (followedCrls): the connector's refresh job
 * replaces them while the agent runs.
 */
export function createSigningBackend(setup: Pick<WorkerSetup, 'testMode' | 'trust' | 'crl' | 'requireRevocation'>): SigningBackend {
  const trust: TrustStore = loadTrustStore(defaultTrustPaths({ testMode: setup.testMode, signer: { trust: setup.trust } }));
  const crls = followedCrls(setup.crl);
  return {
    open(p12, password, expectedIin) {
      const loaded = openPkcs12(Buffer.from(p12.buffer, p12.byteOffset, p12.byteLength), password);
      try {
        if (expectedIin && loaded.info.iin !== expectedIin) {
          throw new SignerError('IDENTITY_MISMATCH', `the keystore's certificate carries IIN ${loaded.info.iin ?? '(none)'}, not the enrolled ${expectedIin}`);
        }
        const facts: KeyFacts = {
          algorithm: loaded.algorithm,
          subject: loaded.info.subject,
          iin: loaded.info.iin,
          bin: loaded.info.bin,
          serial: loaded.info.serial,
          notBefore: loaded.info.notBefore,
          notAfter: loaded.info.notAfter,
        };
        return { loaded, facts, wipe: () => loaded.wipe() };
      } catch (err) {
        loaded.wipe();
        throw err;
      }
    },
    sign(key, document, signingTime, cosign, expected) {
      // Issue 11: the certificate is judged at the signing moment, every time, by the library's one
      // check (inside signDocument); with cosign, the existing signers must cover these bytes.
      const result = signDocument({
        key: key.loaded,
        content: Buffer.from(document.buffer, document.byteOffset, document.byteLength),
        signingTime,
        cosign: cosign ? Buffer.from(cosign.buffer, cosign.byteOffset, cosign.byteLength) : undefined,
        trust,
        crls: crls(),
        requireRevocation: setup.requireRevocation,
        expectedIin: expected.iin ?? undefined,
        expectedBin: expected.bin ?? undefined,
      });
      // A signature is only made on a passing check: its revocation status is good or (allowed) unchecked.
      const revocation: SignedRevocation = { status: result.check.revocation === 'good' ? 'good' : 'unchecked', source: result.check.revocationSource };
      return { cms: new Uint8Array(result.cms.buffer, result.cms.byteOffset, result.cms.byteLength), signingTime: result.signingTime, revocation };
    },
  };
}
