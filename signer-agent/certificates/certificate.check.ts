import { OID } from '../asn1/oids';
import { SignerError, type SignerErrorCode } from '../signer.errors';
import { certificateInfo, keyAlgorithmOf, type CertificateInfo } from './certificate.info';
import { describeCrl, REASON_REMOVE_FROM_CRL } from './crl.parser';
import { verifyIssuedSignature } from './signature.verify';
import { emptyCrlSet, type CrlSet, type TrustStore } from './trust.store';
import { formatName, parseCertificate, type NameAttribute, type ParsedCertificate } from './x509.parser';

export type RevocationStatus = 'good' | 'revoked' | 'unchecked' | 'failed';

export interface CertificateCheckOptions {
  trust: TrustStore;
  /**
   * The moment(s) at which the certificate and its chain must be valid. Signing: the signing
   * moment. Verification: the claimed signing-time and the moment of verification
   * (INTERFACES.md "Signatures": without a trusted timestamp both must hold).
   */
  at: Date | readonly Date[];
  crls?: CrlSet;
  /** A revocation check that could not be made becomes REVOCATION_UNKNOWN instead of a warning. */
  requireRevocation?: boolean;
  /** Certificates that may complete the chain (from the CMS or the keystore); never trusted by themselves. */
  intermediates?: readonly ParsedCertificate[];
  /** When given, the certificate's IIN must be exactly this (the user's). */
  expectedIin?: string;
  /**
   * When given, the payer the certificate must act for: an organisation's certificate by its BIN;
   * a certificate without a BIN (an individual, e.g. an individual entrepreneur paying from their own
   * account) by its IIN, the payer's number then. IINs and BINs never coincide (a BIN's fifth digit
   * is 4-6, an IIN's is the first of a day of the month), so one number names one party.
   */
  expectedBin?: string;
  /**
   * 'document' (default): the key must be a signing key (digitalSignature + nonRepudiation) and
   * an organisation certificate must carry a role allowing financial signing (R-15).
   * 'any': only chain, validity and revocation (e.g. inspecting what a key is).
   */
  purpose?: 'document' | 'any';
}

export interface CertificateCheckResult {
  ok: boolean;
  /** null when ok. */
  code: SignerErrorCode | null;
  /** Why it failed (names the rule and what to do), or a short confirmation. */
  message: string;
  warnings: string[];
  revocation: RevocationStatus;
  /** The CRL that decided the revocation status (source and its validity window), when one did. */
  revocationSource: string | null;
  /** Leaf first; the trust anchor last when the chain was built. */
  chain: ParsedCertificate[];
  info: CertificateInfo;
}

const MAX_CHAIN = 8;
/** RFC 5280 5.3.1 CRLReason certificateHold: a suspension, lifted when a later complete CRL drops the entry. */
const REASON_CERTIFICATE_HOLD = 6;
type ParsedCrlEntry = CrlSet['crls'][number];

const iso = (d: Date) => d.toISOString();

function nameKey(name: NameAttribute[]): string {
  return name.map((a) => `${a.oid}=${a.value.trim().toLowerCase().replace(/\s+/g, ' ')}`).join('/');
}

function sameName(aDer: Buffer, aName: NameAttribute[], bDer: Buffer, bName: NameAttribute[]): boolean {
  // Byte equality first (NCA's own encoding); the normalised comparison of RFC 5280 7.1 as fallback.
  return aDer.equals(bDer) || nameKey(aName) === nameKey(bName);
}

function mayHaveIssued(issuer: ParsedCertificate, child: ParsedCertificate): boolean {
  if (!sameName(issuer.subjectDer, issuer.subject, child.issuerDer, child.issuer)) return false;
  if (child.authorityKeyId && issuer.subjectKeyId && child.authorityKeyId !== issuer.subjectKeyId) return false;
  return true;
}

class CheckFailure extends Error {
  constructor(
    readonly code: SignerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Builds leaf -> ... -> anchor, verifying every signature on the way. */
function buildChain(leaf: ParsedCertificate, trust: TrustStore, intermediates: readonly ParsedCertificate[]): ParsedCertificate[] {
  const chain = [leaf];
  let current = leaf;
  const problems: string[] = [];
  for (let depth = 0; depth < MAX_CHAIN; depth++) {
    if (trust.anchors.some((a) => a.fingerprint === current.fingerprint)) return chain;
    const tryIssuers = (pool: readonly ParsedCertificate[]): ParsedCertificate | undefined => {
      for (const candidate of pool) {
        if (chain.some((c) => c.fingerprint === candidate.fingerprint) || !mayHaveIssued(candidate, current)) continue;
        const result = verifyIssuedSignature(current.tbs, current.signatureAlgorithm, current.signature, candidate);
        if (result === 'valid') return candidate;
        problems.push(
          result === 'unsupported'
            ? `signature algorithm ${current.signatureAlgorithm} of "${formatName(current.subject)}" is not supported`
            : `the signature of "${formatName(candidate.subject)}" on "${formatName(current.subject)}" does not verify`,
        );
      }
      return undefined;
    };
    const anchor = tryIssuers(trust.anchors);
    if (anchor) {
      chain.push(anchor);
      return chain;
    }
    const next = tryIssuers(intermediates);
    if (!next) break;
    chain.push(next);
    current = next;
  }
  const where = trust.sources.length ? `the trust store (${trust.sources.join(', ')})` : 'an empty trust store (give --trust or configure signer.trust)';
  throw new CheckFailure(
    'CHAIN_UNTRUSTED',
    `no chain from "${formatName(current.issuer)}" (issuer of "${formatName(current.subject)}") to ${where}` +
      (problems.length ? `: ${problems.join('; ')}` : ''),
  );
}

function checkValidity(chain: ParsedCertificate[], moments: readonly Date[]): void {
  for (const moment of moments) {
    chain.forEach((cert, index) => {
      const who = index === 0 ? 'the certificate' : `the CA certificate "${formatName(cert.subject)}"`;
      if (moment.getTime() < cert.notBefore.getTime()) {
        throw new CheckFailure('CERT_NOT_YET_VALID', `${who} is valid from ${iso(cert.notBefore)}, not yet at ${iso(moment)}`);
      }
      if (moment.getTime() > cert.notAfter.getTime()) {
        throw new CheckFailure('CERT_EXPIRED', `${who} expired on ${iso(cert.notAfter)} (judged at ${iso(moment)})`);
      }
    });
  }
  for (const ca of chain.slice(1)) {
    if (!ca.isCa || (ca.keyUsage && !ca.keyUsage.includes('keyCertSign'))) {
      throw new CheckFailure('CHAIN_UNTRUSTED', `"${formatName(ca.subject)}" is not a CA certificate (basicConstraints/keyCertSign)`);
    }
  }
}

function checkSigningUse(cert: ParsedCertificate, info: CertificateInfo): void {
  const ku = cert.keyUsage;
  if (!ku || !ku.includes('digitalSignature') || !ku.includes('nonRepudiation')) {
    const eku = cert.extendedKeyUsage.includes(OID.clientAuth) ? ', EKU clientAuth' : '';
    throw new CheckFailure(
      'NOT_A_SIGNING_KEY',
      `not a signing certificate (key usage ${ku ? ku.join('+') : 'absent'}${eku}): documents need a key with ` +
        'digitalSignature+nonRepudiation; an NCA AUTH key is for login only, use the signing (RSA) key or a GOST 2015 key',
    );
  }
  if (info.organisation && !info.financialSigningRole) {
    throw new CheckFailure(
      'NOT_A_SIGNING_KEY',
      `organisation certificate (BIN ${info.bin ?? 'unknown'}) without a role that allows signing financial documents ` +
        `(roles: ${info.roleNames.join(', ') || 'none'}); it needs the CEO (1.2.398.3.3.4.1.2.1) or ` +
        'financial-signing (1.2.398.3.3.4.1.2.3) role',
    );
  }
}

function checkIdentity(info: CertificateInfo, expectedIin?: string, expectedBin?: string): void {
  if (expectedIin !== undefined && info.iin !== expectedIin) {
    throw new CheckFailure('IDENTITY_MISMATCH', `the certificate's IIN ${info.iin ?? '(none)'} is not the expected ${expectedIin}`);
  }
  if (expectedBin !== undefined && info.bin !== expectedBin && !(info.bin == null && info.iin === expectedBin)) {
    throw new CheckFailure(
      'IDENTITY_MISMATCH',
      info.bin == null
        ? `the certificate is an individual's (IIN ${info.iin ?? '(none)'}, no BIN): it signs only for a payer of that IIN, not ${expectedBin}`
        : `the certificate's BIN ${info.bin} is not the expected ${expectedBin}`,
    );
  }
}

/**
 * Revocation of the end-entity certificate by the CRLs given (LESSONS.md 14-15: only CRLs given
 * or configured; a check that could not be made is never "not revoked").
 */
function checkRevocation(
  chain: ParsedCertificate[],
  crls: CrlSet,
  moments: readonly Date[],
  requireRevocation: boolean,
  warnings: string[],
  decided: { source: string | null },
): RevocationStatus {
  const leaf = chain[0];
  const issuer = chain[1];
  const latest = new Date(Math.max(...moments.map((m) => m.getTime())));
  const failures: string[] = crls.unreadable.map((u) => `CRL ${u.source} cannot be read (${u.reason})`);
  const verified: CrlSet['crls'] = [];
  for (const entry of crls.crls) {
    if (!sameName(entry.crl.issuerDer, entry.crl.issuer, leaf.issuerDer, leaf.issuer)) continue;
    // Same CA name, another CA key (NCA re-keys its CAs): that CRL speaks for other certificates.
    if (entry.crl.authorityKeyId && issuer?.subjectKeyId && entry.crl.authorityKeyId !== issuer.subjectKeyId) continue;
    const result = issuer ? verifyIssuedSignature(entry.crl.tbs, entry.crl.signatureAlgorithm, entry.crl.signature, issuer) : 'invalid';
    if (result !== 'valid') {
      failures.push(`CRL ${entry.source} does not verify against its issuer "${formatName(leaf.issuer)}"`);
      continue;
    }
    verified.push(entry);
  }
  const complete = verified.filter((e) => e.crl.deltaOf === null && e.crl.incomplete.length === 0);
  // A hold is lifted by a later complete CRL (issued by the judged moment) that no longer lists it.
  const holdReleased = (listedIn: ParsedCrlEntry) =>
    complete.some(
      (c) => c.crl.thisUpdate.getTime() > listedIn.crl.thisUpdate.getTime() && c.crl.thisUpdate.getTime() <= latest.getTime() && !c.crl.revoked.has(leaf.serial),
    );
  // A revocation any verified CRL of the issuer lists counts (a delta's or a partition's too). A
  // delta's "removeFromCRL" entry is no revocation; a hold the complete CRL lists stays until a
  // complete CRL drops it (fail closed).
  for (const entry of verified) {
    const revoked = entry.crl.revoked.get(leaf.serial);
    if (revoked && revoked.reason === REASON_CERTIFICATE_HOLD && holdReleased(entry)) continue;
    if (revoked && revoked.reason !== REASON_REMOVE_FROM_CRL && revoked.revokedAt.getTime() <= latest.getTime()) {
      const hold = revoked.reason === REASON_CERTIFICATE_HOLD ? ' (on hold)' : '';
      decided.source = `${entry.source}: ${describeCrl(entry.crl)}`;
      throw new CheckFailure(
        'CERT_REVOKED',
        `the certificate (serial ${leaf.serial}) was revoked${hold} on ${iso(revoked.revokedAt)} per ${describeCrl(entry.crl)} from ${entry.source}`,
      );
    }
  }
  if (failures.length) throw new CheckFailure('REVOCATION_UNKNOWN', `revocation could not be checked: ${failures.join('; ')}`);
  // "Not revoked" takes a current complete CRL (RFC 5280 5.2.4: a delta lists only what changed
  // since its base), or a current delta over a complete CRL at least as new as the delta's base.
  const isFresh = (e: CrlSet['crls'][number]) => !e.crl.nextUpdate || e.crl.nextUpdate.getTime() >= latest.getTime();
  const good =
    complete.find(isFresh) ??
    verified.find((d) => d.crl.deltaOf !== null && d.crl.incomplete.length === 0 && isFresh(d) && complete.some((b) => b.crl.crlNumber !== null && b.crl.crlNumber >= d.crl.deltaOf!));
  if (good) {
    decided.source = `${good.source}: ${describeCrl(good.crl)}`;
    return 'good';
  }
  const unusable = verified.map((e) => {
    const { crl } = e;
    if (crl.incomplete.length) return `${describeCrl(crl)} has ${crl.incomplete.join(' and ')}`;
    if (!isFresh(e)) return `${describeCrl(crl)} is stale at ${iso(latest)}`;
    return `${describeCrl(crl)} lists only changes since CRL number ${crl.deltaOf}, and no complete CRL that new was given`;
  });
  const why = `revocation unchecked: no current complete CRL of "${formatName(leaf.issuer)}" was given${unusable.length ? ` (${unusable.join('; ')})` : ''}`;
  if (requireRevocation) throw new CheckFailure('REVOCATION_UNKNOWN', `${why}; revocation is required`);
  warnings.push(why);
  return 'unchecked';
}

/**
 * THE certificate check (signing, verification and the bank sandbox all use this one):
 * algorithm, chain to the trust anchors with every signature verified, validity of the chain
 * at each moment, signing key usage and financial role, expected IIN/BIN, revocation by CRL.
 * Never throws for a certificate problem: the result carries the one code that applies first
 * in that order.
 */
export function checkCertificate(certificate: ParsedCertificate | Buffer, options: CertificateCheckOptions): CertificateCheckResult {
  const cert = Buffer.isBuffer(certificate) ? parseCertificate(certificate) : certificate;
  const info = certificateInfo(cert);
  const moments = Array.isArray(options.at) ? (options.at as readonly Date[]) : [options.at as Date];
  const warnings: string[] = [];
  let chain: ParsedCertificate[] = [cert];
  let revocation: RevocationStatus = 'unchecked';
  const decided: { source: string | null } = { source: null };
  try {
    if (moments.length === 0 || moments.some((m) => Number.isNaN(m.getTime()))) throw new Error('no valid moment to judge the certificate at');
    const algorithm = keyAlgorithmOf(cert);
    if (algorithm === 'GOST34.310-2004') throw new CheckFailure('UNSUPPORTED_ALGORITHM', GOST_2004_MESSAGE);
    if (algorithm === 'UNKNOWN') throw new CheckFailure('UNSUPPORTED_ALGORITHM', `key algorithm ${cert.publicKeyAlgorithm} is not supported (RSA or GOST 34.10-2015 512 expected)`);
    chain = buildChain(cert, options.trust, options.intermediates ?? []);
    checkValidity(chain, moments);
    if ((options.purpose ?? 'document') === 'document') checkSigningUse(cert, info);
    checkIdentity(info, options.expectedIin, options.expectedBin);
    revocation = checkRevocation(chain, options.crls ?? emptyCrlSet(), moments, options.requireRevocation ?? false, warnings, decided);
    const revocationSource = decided.source;
    return { ok: true, code: null, message: `certificate ${cert.serial} is valid`, warnings, revocation, revocationSource, chain, info };
  } catch (err) {
    if (err instanceof CheckFailure) {
      if (err.code === 'CERT_REVOKED') revocation = 'revoked';
      if (err.code === 'REVOCATION_UNKNOWN') revocation = 'failed';
      return { ok: false, code: err.code, message: err.message, warnings, revocation, revocationSource: decided.source, chain, info };
    }
    if (err instanceof SignerError) {
      return { ok: false, code: err.code, message: err.message, warnings, revocation, revocationSource: decided.source, chain, info };
    }
    throw err;
  }
}

/** checkCertificate, throwing the SignerError of the failed rule. */
export function assertCertificate(certificate: ParsedCertificate | Buffer, options: CertificateCheckOptions): CertificateCheckResult {
  const result = checkCertificate(certificate, options);
  if (!result.ok) throw new SignerError(result.code ?? 'CHAIN_UNTRUSTED', result.message, { serial: result.info.serial });
  return result;
}

export const GOST_2004_MESSAGE =
  'GOST 34.310-2004 keys (OID 1.2.398.3.10.1.1.1.1) are not supported: NCA RK has replaced GOST 34.310-2004 ' +
  'with GOST 34.10-2015; obtain a new GOST 34.10-2015 key from NCA (pki.gov.kz)';
