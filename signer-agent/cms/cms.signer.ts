import { algorithmIdentifier, explicit, implicitConstructed, octetString, oid, seq, set, setOfSorted, time, unsignedInteger } from '../asn1/der.writer';
import { OID } from '../asn1/oids';
import { assertCertificate, type CertificateCheckResult } from '../certificates/certificate.check';
import type { CrlSet, TrustStore } from '../certificates/trust.store';
import { parseCertificate } from '../certificates/x509.parser';
import type { LoadedKey } from '../keystore/pkcs12.reader';
import { SignerError } from '../signer.errors';
import { contentDigest, findSignerCertificate, parseCms } from './cms.parser';

/**
 * Algorithm identifiers per signer algorithm, as KalkanCrypt writes them (testdata README,
 * `kalkan_rsa+gost2015_attached.p7s`): parameters NULL in every AlgorithmIdentifier.
 */
const ALGORITHMS = {
  'RSA-SHA256': { digest: OID.sha256, signature: OID.sha256WithRSAEncryption },
  'GOST34.10-2015-512': { digest: OID.streebog512, signature: OID.gost2015Signature512 },
} as const;

export interface CmsSignOptions {
  key: LoadedKey;
  /** The exact document bytes (not embedded: the CMS is detached). */
  content: Buffer;
  /** The signing moment, written as the signing-time attribute (whole seconds). */
  signingTime: Date;
  /** An existing CMS to add this signer to; its SignerInfos are copied byte for byte. */
  cosign?: Buffer;
  /** Also embed the CA certificates found in the keystore (default false: signer certificate only). */
  includeChain?: boolean;
}

/** The signed attributes of RFC 5652 5.3 as a DER SET OF (sorted): contentType, signingTime, messageDigest. */
export function signedAttributes(digest: Buffer, signingTime: Date): Buffer {
  return setOfSorted(
    seq(oid(OID.contentType), set(oid(OID.data))),
    seq(oid(OID.signingTime), set(time(signingTime))),
    seq(oid(OID.messageDigest), set(octetString(digest))),
  );
}

/** One SignerInfo (version 1, IssuerAndSerialNumber with the issuer Name copied from the certificate). */
export function buildSignerInfo(key: LoadedKey, content: Buffer, signingTime: Date): Buffer {
  const alg = ALGORITHMS[key.algorithm];
  const attrs = signedAttributes(contentDigest(alg.digest, content), signingTime);
  // RFC 5652 5.4: the signature covers the DER of the attributes as a SET (tag 0x31)...
  const signature = key.sign(attrs);
  const cert = key.certificate;
  return seq(
    unsignedInteger(1),
    // Issuer Name verbatim: re-encoding it is what breaks forge's PKCS#7 on Cyrillic names (forge #847).
    seq(cert.issuerDer, cert.serialDer),
    algorithmIdentifier(alg.digest),
    // ...and is stored as [0] IMPLICIT: same content, context tag.
    Buffer.concat([Buffer.from([0xa0]), attrs.subarray(1)]),
    algorithmIdentifier(alg.signature),
    octetString(signature),
  );
}

function contentInfo(signedData: Buffer): Buffer {
  return seq(oid(OID.signedData), explicit(0, signedData));
}

/**
 * Detached CMS SignedData over `content`, or `cosign` with one more SignerInfo. Makes no
 * certificate check (see signDocument). Co-signing keeps every existing element as encoded
 * and appends: the digest algorithm when new, the certificate when absent, the SignerInfo.
 */
export function createDetachedCms(options: CmsSignOptions): Buffer {
  const { key, content, signingTime } = options;
  const signerInfo = buildSignerInfo(key, content, signingTime);
  const digestAlg = algorithmIdentifier(ALGORITHMS[key.algorithm].digest);
  const ownCerts = [key.certificateDer, ...(options.includeChain ? key.chainDer : [])];
  if (!options.cosign) {
    return contentInfo(
      seq(
        unsignedInteger(1),
        set(digestAlg),
        seq(oid(OID.data)),
        implicitConstructed(0, ...ownCerts),
        set(signerInfo),
      ),
    );
  }
  const existing = parseCms(options.cosign);
  const digestAlgs = existing.digestAlgorithms.map((n) => n.raw);
  if (!existing.digestAlgorithms.some((n) => n.child(0).oid() === ALGORITHMS[key.algorithm].digest)) digestAlgs.push(digestAlg);
  const certs = [...existing.certificatesRaw];
  for (const der of ownCerts) if (!certs.some((c) => c.equals(der))) certs.push(der);
  return contentInfo(
    seq(
      existing.version,
      set(...digestAlgs),
      existing.encapContentInfo,
      implicitConstructed(0, ...certs),
      ...(existing.crlsRaw ? [existing.crlsRaw] : []),
      set(...existing.signerInfos.map((s) => s.raw), signerInfo),
    ),
  );
}

export interface SignDocumentOptions extends CmsSignOptions {
  trust: TrustStore;
  crls?: CrlSet;
  requireRevocation?: boolean;
  expectedIin?: string;
  expectedBin?: string;
}

export interface SignDocumentResult {
  cms: Buffer;
  check: CertificateCheckResult;
  /** The signing-time written (whole seconds). */
  signingTime: Date;
}

/**
 * Signs a document the way `connector sign` and the agent do (INTERFACES.md "Signatures"):
 * the signer's certificate is checked at the signing moment (chain, validity, signing key,
 * financial role, IIN/BIN, revocation) and refused with its code; with `cosign`, only the new
 * signer is judged, but the existing signatures must be over these same bytes (DIGEST_MISMATCH).
 */
export function signDocument(options: SignDocumentOptions): SignDocumentResult {
  const signingTime = new Date(Math.floor(options.signingTime.getTime() / 1000) * 1000);
  const check = assertCertificate(options.key.certificate, {
    trust: options.trust,
    at: signingTime,
    crls: options.crls,
    requireRevocation: options.requireRevocation,
    intermediates: options.key.chainDer.map((der) => parseCertificate(der)),
    expectedIin: options.expectedIin,
    expectedBin: options.expectedBin,
  });
  if (options.cosign) {
    const existing = parseCms(options.cosign);
    if (existing.content && !existing.content.equals(options.content)) {
      throw new SignerError('DIGEST_MISMATCH', 'the CMS to co-sign carries other content than the document given');
    }
    existing.signerInfos.forEach((info, index) => {
      const md = info.attributes.get(OID.messageDigest)?.[0];
      if (md && !md.octets().equals(contentDigest(info.digestAlgorithm, options.content))) {
        const cert = findSignerCertificate(info.sid, existing.certificates);
        throw new SignerError(
          'DIGEST_MISMATCH',
          `signer #${index + 1}${cert ? ` (serial ${cert.serial})` : ''} of the CMS to co-sign signed other bytes than the document given`,
        );
      }
    });
  }
  const cms = createDetachedCms({ ...options, signingTime });
  return { cms, check, signingTime };
}
