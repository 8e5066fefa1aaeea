import { createGostVerifier, gostDigest, gostPublicKeyFromPrivate, gostSignDigest, gostVerifyDigest } from './gost3410-2015';

/**
 * The GOST 34.10-2015 (512) and Streebog-512 functions the signing library uses, in NCA's byte
 * conventions (testdata README; proven in gost3410-2015.spec.ts): public key x||y each
 * little-endian (128 bytes), private key d little-endian (64 bytes), digest = Streebog-512
 * output as the hash returns it, signature r||s each little-endian (128 bytes).
 * One seam, so tests can count calls or an embedding process can substitute an implementation.
 */
export interface GostPrimitives {
  gostDigest(data: Uint8Array): Uint8Array;
  gostSignDigest(privateKeyLE: Uint8Array, digest: Uint8Array): Uint8Array;
  gostVerifyDigest(publicKeyLE: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
  gostPublicKeyFromPrivate(privateKeyLE: Uint8Array): Uint8Array;
}

type Verifier = (digest: Uint8Array, signature: Uint8Array) => boolean;

/**
 * Keys verified repeatedly (the NCA CA key on every certificate and CRL, a known signer in the
 * agent or the sandbox) get a precomputed verifier from the third use on: building one costs
 * tens of milliseconds, which a one-shot CLI verification should not pay.
 */
const PRECOMPUTE_AFTER_USES = 3;
const MAX_VERIFIERS = 64;
const uses = new Map<string, number>();
const verifiers = new Map<string, Verifier>();

function verifyDigestCached(publicKey: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean {
  try {
    const id = Buffer.from(publicKey).toString('hex');
    const known = verifiers.get(id);
    if (known) return known(digest, signature);
    const count = (uses.get(id) ?? 0) + 1;
    if (count < PRECOMPUTE_AFTER_USES) {
      if (uses.size > 10_000) uses.clear();
      uses.set(id, count);
      return gostVerifyDigest(publicKey, digest, signature);
    }
    uses.delete(id);
    if (verifiers.size >= MAX_VERIFIERS) verifiers.delete(verifiers.keys().next().value as string);
    const verifier = createGostVerifier(publicKey);
    verifiers.set(id, verifier);
    return verifier(digest, signature);
  } catch {
    // A malformed key or signature (GostError) is a signature that does not verify.
    return false;
  }
}

const builtIn: GostPrimitives = {
  gostDigest,
  gostSignDigest,
  gostVerifyDigest: verifyDigestCached,
  gostPublicKeyFromPrivate,
};

let current: GostPrimitives = builtIn;

export function gostPrimitives(): GostPrimitives {
  return current;
}

/** Substitutes the primitives (tests); undefined restores the built-in ones. */
export function setGostPrimitives(primitives: GostPrimitives | undefined): void {
  current = primitives ?? builtIn;
}
