import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import axios from 'axios';
import { describeCrl, parseCrl, type ParsedCrl } from './crl.parser';
import { verifyIssuedSignature } from './signature.verify';
import type { TrustStore } from './trust.store';

/**
 * Configured CRL URLs (LESSONS.md 14-15: NCA renamed its CRL addresses once; OCSP flaps, so CRLs
 * are cached and refreshed on a schedule). An entry of `signer.crl` that is an http(s) URL is
 * downloaded into `signer.crlCacheDir` by the scheduler's `crl.refresh` job; every consumer
 * (CLI, agent, sandbox) reads the cached file. Nothing is fetched unless configured. A download
 * replaces the cached file only when it parses, is signed by a trusted CA, is of the same CA and
 * kind (complete or delta) as the cached copy, and is not older than it; until the first good download the cached file is missing, which the
 * certificate check treats as "revocation could not be checked", never as "not revoked".
 */
const URL_PATTERN = /^https?:\/\//i;

export function isCrlUrl(entry: string): boolean {
  return URL_PATTERN.test(entry);
}

export function crlCacheFile(url: string, cacheDir: string, cwd: string = process.cwd()): string {
  const dir = isAbsolute(cacheDir) ? cacheDir : resolve(cwd, cacheDir);
  return join(dir, `${createHash('sha256').update(url).digest('hex').slice(0, 32)}.crl`);
}

/** The CRL files to read: configured files as they are, configured URLs as their cached copies. */
export function crlPathsFromConfig(config: { signer: { crl: readonly string[]; crlCacheDir: string } }, cwd: string = process.cwd()): string[] {
  return config.signer.crl.map((entry) => (isCrlUrl(entry) ? crlCacheFile(entry, config.signer.crlCacheDir, cwd) : isAbsolute(entry) ? entry : resolve(cwd, entry)));
}

export type CrlRefreshStatus = 'updated' | 'unchanged' | 'rejected' | 'failed';
export interface CrlRefreshResult {
  url: string;
  file: string;
  status: CrlRefreshStatus;
  reason?: string;
  thisUpdate?: string;
  nextUpdate?: string | null;
  /** True when the copy in use is past its nextUpdate (revocation answers are stale). */
  stale: boolean;
}

function pemOrDer(bytes: Buffer): Buffer {
  const text = bytes.toString('latin1');
  const m = /-----BEGIN X509 CRL-----([\s\S]*?)-----END X509 CRL-----/.exec(text);
  return m ? Buffer.from(m[1].replace(/\s+/g, ''), 'base64') : bytes;
}

function readCached(file: string): ParsedCrl | null {
  if (!existsSync(file)) return null;
  try {
    return parseCrl(readFileSync(file));
  } catch {
    return null;
  }
}

export type CrlDownloader = (url: string) => Promise<Buffer>;

export const httpDownloader: CrlDownloader = async (url) => {
  const res = await axios.get<ArrayBuffer>(url, { responseType: 'arraybuffer', timeout: 30_000, maxContentLength: 64 * 1024 * 1024, proxy: false, validateStatus: (s) => s === 200 });
  return Buffer.from(res.data);
};

export async function refreshCrl(url: string, file: string, trust: TrustStore, now: Date, download: CrlDownloader = httpDownloader): Promise<CrlRefreshResult> {
  const cached = readCached(file);
  const staleNow = (crl: ParsedCrl | null) => !crl || (crl.nextUpdate !== null && crl.nextUpdate.getTime() < now.getTime());
  const keep = (status: CrlRefreshStatus, reason: string): CrlRefreshResult => ({
    url,
    file,
    status,
    reason,
    thisUpdate: cached?.thisUpdate.toISOString(),
    nextUpdate: cached?.nextUpdate?.toISOString() ?? null,
    stale: staleNow(cached),
  });
  let crl: ParsedCrl;
  let der: Buffer;
  try {
    der = pemOrDer(await download(url));
  } catch (err) {
    return keep('failed', `download failed: ${(err as Error).message}`);
  }
  try {
    crl = parseCrl(der);
  } catch (err) {
    return keep('rejected', `not a CRL: ${(err as Error).message}`);
  }
  const issuer = trust.anchors.find((a) => a.subjectDer.equals(crl.issuerDer) && (!crl.authorityKeyId || !a.subjectKeyId || a.subjectKeyId === crl.authorityKeyId));
  if (!issuer) return keep('rejected', 'its issuer is not in the trust store');
  if (verifyIssuedSignature(crl.tbs, crl.signatureAlgorithm, crl.signature, issuer) !== 'valid') return keep('rejected', 'its signature does not verify against the issuing CA');
  // The file at this URL speaks for one CA (and is a complete CRL or a delta). Another trusted CA's
  // CRL, or a delta in place of the complete CRL, would drop every revocation the cached copy lists:
  // a revoked certificate of the first CA would then sign as "revocation unchecked" (LESSONS.md 14).
  if (cached) {
    const sameCa = cached.issuerDer.equals(crl.issuerDer) && (!cached.authorityKeyId || !crl.authorityKeyId || cached.authorityKeyId === crl.authorityKeyId);
    if (!sameCa || (cached.deltaOf === null) !== (crl.deltaOf === null)) {
      return keep(
        'rejected',
        `the download is a ${describeCrl(crl)}, the cached copy a ${describeCrl(cached)}: a CRL of another CA (or a delta in place of a complete CRL) would drop the revocations the cached copy lists; ` +
          `if ${url} really serves another CA's CRL now, delete ${file} and add the new URL to signer.crl beside the old one`,
      );
    }
  }
  if (cached && crl.thisUpdate.getTime() < cached.thisUpdate.getTime()) return keep('rejected', `older than the cached copy (${crl.thisUpdate.toISOString()} < ${cached.thisUpdate.toISOString()})`);
  if (cached && cached.der.equals(der)) return keep('unchanged', 'same CRL as cached');
  mkdirSync(resolve(file, '..'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, der);
  renameSync(tmp, file);
  return { url, file, status: 'updated', thisUpdate: crl.thisUpdate.toISOString(), nextUpdate: crl.nextUpdate?.toISOString() ?? null, stale: staleNow(crl) };
}
