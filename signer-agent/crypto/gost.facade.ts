import { SignerError } from '../signer.errors';

/**
 * The GOST 34.10-2015 (512) and Streebog-512 functions this library needs, in NCA's byte
 * conventions (testdata README): public key x||y each little-endian (128 bytes), private key d
 * little-endian (64 bytes), digest = Streebog-512 output as the hash returns it, signature
 * r||s each little-endian (128 bytes).
 *
 * The math lives in `./streebog.hash` and `./gost3410-2015` (built on their own branch). They
 * are loaded on first use so this library builds and its RSA path works before they exist;
 * once present they are used as they are, nothing is re-implemented here.
 */
export interface GostPrimitives {
  gostDigest(data: Uint8Array): Uint8Array;
  gostSignDigest(privateKeyLE: Uint8Array, digest: Uint8Array): Uint8Array;
  gostVerifyDigest(publicKeyLE: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
  gostPublicKeyFromPrivate(privateKeyLE: Uint8Array): Uint8Array;
}

let cached: GostPrimitives | undefined;

export function gostPrimitives(): GostPrimitives {
  if (cached) return cached;
  let hash: Record<string, unknown>;
  let curve: Record<string, unknown>;
  try {
    // Module names are built at run time so the TypeScript build does not require the files.
    hash = require(['.', 'streebog.hash'].join('/')) as Record<string, unknown>;
    curve = require(['.', 'gost3410-2015'].join('/')) as Record<string, unknown>;
  } catch (err) {
    throw new SignerError(
      'UNSUPPORTED_ALGORITHM',
      `GOST 34.10-2015 support is not installed in this build (${(err as Error).message.split('\n')[0]})`,
    );
  }
  // Either module may export a name (the hash helper may sit beside the curve code).
  const pick = <T>(first: Record<string, unknown>, name: string): T => {
    const fn = first[name] ?? hash[name] ?? curve[name];
    if (typeof fn !== 'function') throw new SignerError('UNSUPPORTED_ALGORITHM', `GOST module does not export ${name}()`);
    return fn as T;
  };
  cached = {
    gostDigest: pick(hash, 'gostDigest'),
    gostSignDigest: pick(curve, 'gostSignDigest'),
    gostVerifyDigest: pick(curve, 'gostVerifyDigest'),
    gostPublicKeyFromPrivate: pick(curve, 'gostPublicKeyFromPrivate'),
  };
  return cached;
}

/** Lets tests or an embedding process supply the primitives explicitly. */
export function setGostPrimitives(primitives: GostPrimitives | undefined): void {
  cached = primitives;
}

export function gostAvailable(): boolean {
  try {
    gostPrimitives();
    return true;
  } catch {
    return false;
  }
}
