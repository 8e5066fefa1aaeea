import { SignerError } from '../signer.errors';

/**
 * The GOST 34.10-2015 (512) and Streebog-512 functions this library needs, in NCA's byte
 * conventions (testdata README): public key x||y each little-endian (128 bytes), private key d
 * little-endian (64 bytes), digest = Streebog-512 output as the hash returns it, signature
 * r||s each little-endian (128 bytes).
 *
 * The math lives in `./streebog.hash` and `./gost3410-2015` (built on their own branch). They
 * are loaded on first use so that this library builds, and its RSA path works, whichever of
 * them is present; nothing is re-implemented here.
 */
export interface GostPrimitives {
  gostDigest(data: Uint8Array): Uint8Array;
  gostSignDigest(privateKeyLE: Uint8Array, digest: Uint8Array): Uint8Array;
  gostVerifyDigest(publicKeyLE: Uint8Array, digest: Uint8Array, signature: Uint8Array): boolean;
  gostPublicKeyFromPrivate(privateKeyLE: Uint8Array): Uint8Array;
}

type Module = Record<string, unknown>;

function load(name: string): Module | null {
  try {
    // The name is built at run time so that the TypeScript build does not require the file.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(['.', name].join('/')) as Module;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' && String((err as Error).message).includes(name)) return null;
    throw err;
  }
}

function missing(what: string): never {
  throw new SignerError('UNSUPPORTED_ALGORITHM', `GOST 34.10-2015 support is not installed in this build (${what} missing)`);
}

let cached: GostPrimitives | undefined;

export function gostPrimitives(): GostPrimitives {
  if (cached) return cached;
  const hash = load('streebog.hash');
  const curve = load('gost3410-2015');
  const find = (name: string): ((...args: never[]) => unknown) | null => {
    for (const mod of [curve, hash]) {
      const fn = mod?.[name];
      if (typeof fn === 'function') return fn as (...args: never[]) => unknown;
    }
    return null;
  };
  const digest = (find('gostDigest') ?? find('streebog512')) as GostPrimitives['gostDigest'] | null;
  const signDigest = find('gostSignDigest') as GostPrimitives['gostSignDigest'] | null;
  const verifyDigest = find('gostVerifyDigest') as GostPrimitives['gostVerifyDigest'] | null;
  const publicFromPrivate = find('gostPublicKeyFromPrivate') as GostPrimitives['gostPublicKeyFromPrivate'] | null;
  cached = {
    gostDigest: digest ?? (() => missing('Streebog-512')),
    gostSignDigest: signDigest ?? (() => missing('gostSignDigest')),
    gostVerifyDigest: verifyDigest ?? (() => missing('gostVerifyDigest')),
    gostPublicKeyFromPrivate: publicFromPrivate ?? (() => missing('gostPublicKeyFromPrivate')),
  };
  return cached;
}

/** Lets tests or an embedding process supply the primitives explicitly (undefined: load again). */
export function setGostPrimitives(primitives: GostPrimitives | undefined): void {
  cached = primitives;
}

/** True when signing and verification with GOST 34.10-2015 are available in this build. */
export function gostAvailable(): boolean {
  try {
    const g = gostPrimitives();
    g.gostPublicKeyFromPrivate(new Uint8Array(64).fill(1));
    return true;
  } catch {
    return false;
  }
}
