import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { SignerError } from '../signer.errors';
import { parseCrl, type ParsedCrl } from './crl.parser';
import { parseCertificate, pemBlocks, type ParsedCertificate } from './x509.parser';

/** Certificates trusted as anchors. Intermediates are accepted as anchors (OpenSSL -partial_chain). */
export interface TrustStore {
  anchors: ParsedCertificate[];
  /** The files the anchors came from (for messages). */
  sources: string[];
}

/** CRLs given for a check. A file that could not be read stays here as an error: it is never "not revoked" (LESSONS.md 14). */
export interface CrlSet {
  crls: { source: string; crl: ParsedCrl }[];
  unreadable: { source: string; reason: string }[];
}

const CERT_EXTENSIONS = new Set(['.pem', '.cer', '.crt', '.der']);
const CRL_EXTENSIONS = new Set(['.crl', '.pem', '.der']);

/** Reads a PEM file (any number of certificates) or a DER file of one certificate. */
export function readCertificatesFile(path: string): ParsedCertificate[] {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new SignerError('INPUT_UNREADABLE', `trust file ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
  const text = bytes.toString('latin1');
  try {
    if (text.includes('-----BEGIN CERTIFICATE-----')) return pemBlocks(text, 'CERTIFICATE').map((der) => parseCertificate(der));
    return [parseCertificate(bytes)];
  } catch (err) {
    throw new SignerError('INPUT_UNREADABLE', `trust file ${path}: ${(err as Error).message}`);
  }
}

/**
 * Builds a trust store from files (PEM or DER, one or more CA certificates) and directories
 * (their *.pem, *.cer, *.crt, *.der files; other files such as a README are skipped).
 * A path that does not exist or cannot be read is an error (exit 2), never silently empty.
 */
export function loadTrustStore(paths: readonly string[]): TrustStore {
  const anchors: ParsedCertificate[] = [];
  const sources: string[] = [];
  const seen = new Set<string>();
  const add = (file: string) => {
    for (const cert of readCertificatesFile(file)) {
      if (seen.has(cert.fingerprint)) continue;
      seen.add(cert.fingerprint);
      anchors.push(cert);
    }
    sources.push(file);
  };
  for (const path of paths) {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (err) {
      throw new SignerError('INPUT_UNREADABLE', `trust path ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`);
    }
    if (isDir) {
      for (const name of readdirSync(path).sort()) {
        const file = join(path, name);
        if (CERT_EXTENSIONS.has(extname(name).toLowerCase()) && statSync(file).isFile()) add(file);
      }
    } else {
      add(path);
    }
  }
  return { anchors, sources };
}

/**
 * Reads CRL files (DER or PEM "X509 CRL") or directories of them. An unreadable or malformed
 * file is kept as `unreadable` so the check fails closed instead of treating it as absent.
 */
export function loadCrls(paths: readonly string[]): CrlSet {
  const set: CrlSet = { crls: [], unreadable: [] };
  const addFile = (file: string) => {
    try {
      const bytes = readFileSync(file);
      const text = bytes.toString('latin1');
      const ders = text.includes('-----BEGIN X509 CRL-----') ? pemBlocks(text, 'X509 CRL') : [bytes];
      for (const der of ders) set.crls.push({ source: file, crl: parseCrl(der) });
    } catch (err) {
      set.unreadable.push({ source: file, reason: (err as NodeJS.ErrnoException).code ?? (err as Error).message });
    }
  };
  for (const path of paths) {
    let isDir = false;
    try {
      isDir = statSync(path).isDirectory();
    } catch {
      isDir = false;
    }
    if (isDir) {
      for (const name of readdirSync(path).sort()) if (CRL_EXTENSIONS.has(extname(name).toLowerCase())) addFile(join(path, name));
    } else {
      addFile(path);
    }
  }
  return set;
}

export const emptyCrlSet = (): CrlSet => ({ crls: [], unreadable: [] });

/** What decides whether CRL files changed: each file's size and modification time (a missing one too). */
function crlFilesStamp(paths: readonly string[]): string {
  const stampOf = (file: string) => {
    try {
      const st = statSync(file);
      return `${file}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return `${file}:none`;
    }
  };
  const parts: string[] = [];
  for (const path of paths) {
    let names: string[] | null = null;
    try {
      if (statSync(path).isDirectory()) names = readdirSync(path).sort().filter((name) => CRL_EXTENSIONS.has(extname(name).toLowerCase()));
    } catch {
      names = null;
    }
    if (names) for (const name of names) parts.push(stampOf(join(path, name)));
    else parts.push(stampOf(path));
  }
  return parts.join('|');
}

/**
 * CRLs that follow their files: read again when one changes, looked at every `checkEveryMs` at
 * most. The connector's `crl.refresh` job replaces the cached files (write, then rename) while a
 * long-running signer judges certificates with them: a certificate revoked since the start must be
 * refused from the next CRL on, not at the next restart, and a cache file missing at the start (no
 * download yet) is read once it arrives.
 */
export function followedCrls(paths: readonly string[], options: { checkEveryMs?: number; now?: () => number } = {}): () => CrlSet {
  const every = options.checkEveryMs ?? 1_000;
  const now = options.now ?? Date.now;
  let stamp = crlFilesStamp(paths);
  let set = loadCrls(paths);
  let checkedAt = now();
  return () => {
    if (now() - checkedAt < every) return set;
    checkedAt = now();
    const next = crlFilesStamp(paths);
    if (next !== stamp) {
      stamp = next;
      set = loadCrls(paths);
    }
    return set;
  };
}

/** Finds a folder of this package both from the sources (ts-jest) and from dist/ (the built CLI). */
function packageDir(...segments: string[]): string {
  const candidates = [resolve(__dirname, '..', ...segments), resolve(__dirname, '..', '..', '..', 'signer-agent', ...segments)];
  return candidates.find((c) => existsSync(c)) ?? candidates[0];
}

/** NCA's published TEST CAs: trusted only in test mode (their keys and passwords are public). */
export const TEST_TRUST_DIR = packageDir('trust', 'test');
/** NCA's production root and intermediate certificates (see its README). */
export const PRODUCTION_TRUST_DIR = packageDir('trust', 'production');
/** The NCA test CRLs shipped for tests and the demo; used only when given explicitly. */
export const TEST_CRL_DIR = join(TEST_TRUST_DIR, 'crl');

/**
 * The default trust paths (INTERFACES.md: "the configured trust store when none is given"):
 * the production NCA certificates, the configured `signer.trust` paths, and the NCA test CAs
 * only when test mode is on.
 */
export function defaultTrustPaths(config: { testMode: boolean; signer: { trust: readonly string[] } }): string[] {
  const paths = [PRODUCTION_TRUST_DIR, ...config.signer.trust];
  if (config.testMode) paths.push(TEST_TRUST_DIR);
  return paths.filter((p, i) => paths.indexOf(p) === i && (p !== PRODUCTION_TRUST_DIR || existsSync(p)));
}
