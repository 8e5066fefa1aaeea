import { verify as cryptoVerify } from 'node:crypto';
import { OID } from '../asn1/oids';
import { checkCertificate, GOST_2004_MESSAGE, type RevocationStatus } from '../certificates/certificate.check';
import { certificateInfo, keyAlgorithmOf, type CertificateInfo } from '../certificates/certificate.info';
import { rsaPublicKey } from '../certificates/signature.verify';
import type { CrlSet, TrustStore } from '../certificates/trust.store';
import type { ParsedCertificate } from '../certificates/x509.parser';
import { gostPrimitives } from '../crypto/gost.facade';
import { SignerError, type SignerErrorCode } from '../signer.errors';
import { contentDigest, findSignerCertificate, parseCms, type ParsedSignerInfo } from './cms.parser';

export interface VerifyCmsOptions {
  /** The document for a detached CMS; for an attached CMS it replaces the embedded content when given. */
  content?: Buffer;
  trust: TrustStore;
  crls?: CrlSet;
  /** The moment of verification (INTERFACES.md: `--at`, default now). */
  at: Date;
  requireRevocation?: boolean;
}

/** One signer's verdict; the first nine fields are exactly the `verify --json` shape of INTERFACES.md. */
export interface SignerVerdict {
  subject: string | null;
  iin: string | null;
  bin: string | null;
  algorithm: string | null;
  signingTime: string | null;
  serial: string | null;
  verdict: 'valid' | 'invalid';
  code: SignerErrorCode | null;
  message: string;
  warnings: string[];
  revocation: RevocationStatus;
  certificate: ParsedCertificate | null;
}

export interface CmsVerifyResult {
  /** True when there is at least one signer and every signer is valid. */
  valid: boolean;
  attached: boolean;
  signers: SignerVerdict[];
}

class Refusal extends Error {
  constructor(
    readonly code: SignerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const RSA_SIGNATURE_OIDS = new Set<string>([OID.rsaEncryption, OID.sha256WithRSAEncryption]);
const GOST_SIGNATURE_OIDS = new Set<string>([OID.gost2015Signature512, OID.gost2015Key512]);

/** Checks the cryptography of one SignerInfo: algorithms, message digest, signature value. */
function verifySignerCrypto(info: ParsedSignerInfo, cert: ParsedCertificate, content: Buffer, contentType: string): void {
  const algorithm = keyAlgorithmOf(cert);
  if (algorithm === 'GOST34.310-2004') throw new Refusal('UNSUPPORTED_ALGORITHM', GOST_2004_MESSAGE);
  const rsa = algorithm === 'RSA-SHA256';
  const gost = algorithm === 'GOST34.10-2015-512';
  if (
    !(rsa && info.digestAlgorithm === OID.sha256 && RSA_SIGNATURE_OIDS.has(info.signatureAlgorithm)) &&
    !(gost && info.digestAlgorithm === OID.streebog512 && GOST_SIGNATURE_OIDS.has(info.signatureAlgorithm))
  ) {
    throw new Refusal(
      'UNSUPPORTED_ALGORITHM',
      `digest ${info.digestAlgorithm} with signature ${info.signatureAlgorithm} on a ${algorithm} key is not supported ` +
        '(RSA with SHA-256, or GOST 34.10-2015 512 with Streebog-512)',
    );
  }
  const digest = contentDigest(info.digestAlgorithm, content);
  let signedBytes = content;
  if (info.signedAttributesSet) {
    const md = info.attributes.get(OID.messageDigest);
    if (!md || md.length !== 1) throw new Refusal('BAD_SIGNATURE', 'the signed attributes carry no message digest');
    if (!md[0].octets().equals(digest)) {
      throw new Refusal('DIGEST_MISMATCH', 'the document differs from what was signed (message digest mismatch)');
    }
    const ct = info.attributes.get(OID.contentType);
    if (!ct || ct[0].oid() !== contentType) throw new Refusal('BAD_SIGNATURE', 'the content-type attribute is missing or differs from the content');
    signedBytes = info.signedAttributesSet;
  }
  let ok: boolean;
  if (rsa) {
    try {
      ok = cryptoVerify('sha256', signedBytes, rsaPublicKey(cert), info.signature);
    } catch {
      ok = false;
    }
  } else {
    const g = gostPrimitives();
    // Without signed attributes the signature covers the content digest directly.
    const hashed = info.signedAttributesSet ? g.gostDigest(signedBytes) : digest;
    ok = info.signature.length === 128 && g.gostVerifyDigest(cert.publicKey, hashed, info.signature);
  }
  if (!ok) {
    if (!info.signedAttributesSet) throw new Refusal('DIGEST_MISMATCH', 'the signature does not match the document');
    throw new Refusal('BAD_SIGNATURE', 'the signature value does not verify with the signer certificate');
  }
}

/**
 * The cryptography of the signer(s) of a CMS named by certificate `serial` (upper-case hex), over
 * `content`: algorithms, message digest and signature value with the certificate the CMS carries;
 * no trust, validity or revocation check (the caller has had the certificate checked already, as the
 * pipeline has by the signer agent). Null when it holds; else why not, with a SignerErrorCode
 * (CHAIN_UNTRUSTED when no signer of that serial, or its certificate, is in the CMS).
 */
export function verifySignerCryptography(cms: Buffer, content: Buffer, serial: string): { code: SignerErrorCode; message: string } | null {
  const checked = checkSigner(cms, content, serial);
  return 'certificate' in checked ? null : checked;
}

/**
 * `verifySignerCryptography` and, when it holds, who signed: the certificate the CMS carries for
 * that serial, read in the same parse (the evidence of who signed, whatever a signer agent's answer
 * says, R-18).
 */
export function checkSigner(cms: Buffer, content: Buffer, serial: string): { code: SignerErrorCode; message: string } | { certificate: CertificateInfo } {
  const parsed = parseCms(cms);
  const infos = parsed.signerInfos.filter((info) => 'serial' in info.sid && info.sid.serial === serial);
  if (infos.length === 0) return { code: 'CHAIN_UNTRUSTED', message: `no signer with certificate serial ${serial} in the CMS` };
  let signer: ParsedCertificate | undefined;
  for (const info of infos) {
    const cert = findSignerCertificate(info.sid, parsed.certificates);
    if (!cert) return { code: 'CHAIN_UNTRUSTED', message: `the certificate of serial ${serial} is not included in the CMS` };
    try {
      verifySignerCrypto(info, cert, content, parsed.contentType);
    } catch (err) {
      if (err instanceof Refusal) return { code: err.code, message: err.message };
      throw err;
    }
    signer ??= cert;
  }
  return { certificate: certificateInfo(signer as ParsedCertificate) };
}

function signingTimeOf(info: ParsedSignerInfo): Date | null {
  const node = info.attributes.get(OID.signingTime)?.[0];
  return node ? node.time() : null;
}

/**
 * Verifies every signer of a CMS SignedData (attached or detached, RSA and GOST 2015) and
 * judges each as INTERFACES.md "Signatures" says: the signature and digest hold, and the
 * certificate passes the one certificate check both at the claimed signing-time and at the
 * moment of verification. Throws SignerError INPUT_UNREADABLE only when the input cannot be read.
 */
export function verifyCms(cms: Buffer, options: VerifyCmsOptions): CmsVerifyResult {
  const parsed = parseCms(cms);
  const content = options.content ?? parsed.content;
  if (!content) throw new SignerError('INPUT_UNREADABLE', 'the signature is detached: the signed document must be given (--in)');
  const signers = parsed.signerInfos.map((info): SignerVerdict => {
    const cert = findSignerCertificate(info.sid, parsed.certificates) ?? null;
    let signingTime: Date | null = null;
    const base = (): Omit<SignerVerdict, 'verdict' | 'code' | 'message' | 'warnings' | 'revocation'> => {
      const ci = cert ? certificateInfo(cert) : null;
      return {
        subject: ci?.subject ?? null,
        iin: ci?.iin ?? null,
        bin: ci?.bin ?? null,
        algorithm: ci ? ci.algorithm : null,
        signingTime: signingTime ? signingTime.toISOString() : null,
        serial: ci?.serial ?? ('serial' in info.sid ? info.sid.serial : null),
        certificate: cert,
      };
    };
    try {
      try {
        signingTime = signingTimeOf(info);
      } catch {
        throw new Refusal('BAD_SIGNATURE', 'the signing-time attribute cannot be read');
      }
      if (!cert) throw new Refusal('CHAIN_UNTRUSTED', 'the signer certificate is not included in the CMS');
      verifySignerCrypto(info, cert, content, parsed.contentType);
      const check = checkCertificate(cert, {
        trust: options.trust,
        at: signingTime ? [signingTime, options.at] : [options.at],
        crls: options.crls,
        requireRevocation: options.requireRevocation,
        intermediates: parsed.certificates,
      });
      if (!check.ok) {
        return { ...base(), verdict: 'invalid', code: check.code, message: check.message, warnings: check.warnings, revocation: check.revocation };
      }
      const when = signingTime ? `signed ${signingTime.toISOString()}, ` : 'no signing-time, ';
      return {
        ...base(),
        verdict: 'valid',
        code: null,
        message: `valid (${when}checked at ${options.at.toISOString()}, revocation ${check.revocation})`,
        warnings: check.warnings,
        revocation: check.revocation,
      };
    } catch (err) {
      if (err instanceof Refusal || err instanceof SignerError) {
        return { ...base(), verdict: 'invalid', code: err.code, message: err.message, warnings: [], revocation: 'unchecked' };
      }
      throw err;
    }
  });
  return { valid: signers.length > 0 && signers.every((s) => s.verdict === 'valid'), attached: parsed.content !== null, signers };
}
