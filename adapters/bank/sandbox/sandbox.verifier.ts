import { createHash, createPublicKey, verify as cryptoVerify } from 'node:crypto';
import forge from 'node-forge';

/**
 * The sandbox's signature check as a port. The bank verifies each submitted document: every CMS
 * signature over the exact bytes, each signer certificate against its trust store as of the
 * submission time, and the signer's IIN/BIN against the payer (issue 13).
 *
 * The real implementation is the signer agent's verifier (`signer-agent/cms/cms.verifier.ts` and
 * `signer-agent/certificates/certificate.check.ts`, branch `signer`), which also knows GOST
 * 34.10-2015 and revocation. Until that is merged, `InterimRsaCmsVerifier` below stands in:
 * RSA + SHA-2 CMS with signed attributes only, chain of one to a trust-store certificate, no CRLs.
 * It refuses (never accepts) what it cannot check: unsigned documents, GOST, unknown algorithms.
 */
export type VerificationRefusal = 'SIGNATURE_INVALID' | 'CERTIFICATE_INVALID' | 'SIGNER_NOT_AUTHORISED';

export interface SignerIdentity {
  subject: string;
  iin?: string;
  bin?: string;
  serialNumber: string;
}

export type VerificationResult = { ok: true; signers: SignerIdentity[] } | { ok: false; code: VerificationRefusal; message: string };

export interface SignatureVerifier {
  verify(input: { content: Buffer; signatures: Buffer[]; payerIinBin: string; at: Date }): Promise<VerificationResult>;
}

const OID = {
  signedData: '1.2.840.113549.1.7.2',
  messageDigest: '1.2.840.113549.1.9.4',
  serialNumber: '2.5.4.5',
  organizationalUnit: '2.5.4.11',
};
const DIGESTS: Record<string, string> = {
  '2.16.840.1.101.3.4.2.1': 'sha256',
  '2.16.840.1.101.3.4.2.2': 'sha384',
  '2.16.840.1.101.3.4.2.3': 'sha512',
};

type Asn1 = forge.asn1.Asn1;

function oidOf(node: Asn1 | undefined): string | undefined {
  if (!node || node.type !== forge.asn1.Type.OID || typeof node.value !== 'string') return undefined;
  return forge.asn1.derToOid(node.value);
}

function kids(node: Asn1 | undefined): Asn1[] {
  return node && Array.isArray(node.value) ? (node.value as Asn1[]) : [];
}

function refuse(code: VerificationRefusal, message: string): VerificationResult {
  return { ok: false, code, message };
}

function utf8(binary: string): string {
  try {
    return forge.util.decodeUtf8(binary);
  } catch {
    return binary;
  }
}

/** IIN from SERIALNUMBER=IIN<12>, BIN from OU=BIN<12> (NCA subject layout, testdata/nca/README.md). */
export function identityOf(cert: forge.pki.Certificate): SignerIdentity {
  const attr = (oid: string) => cert.subject.attributes.find((a) => a.type === oid)?.value as string | undefined;
  const sn = attr(OID.serialNumber);
  const ou = attr(OID.organizationalUnit);
  return {
    subject: cert.subject.attributes.map((a) => `${a.shortName ?? a.type}=${utf8(String(a.value))}`).join(', '),
    iin: sn && /^IIN\d{12}$/.test(sn) ? sn.slice(3) : undefined,
    bin: ou && /^BIN\d{12}$/.test(ou) ? ou.slice(3) : undefined,
    serialNumber: cert.serialNumber,
  };
}

export class InterimRsaCmsVerifier implements SignatureVerifier {
  private readonly anchors: forge.pki.Certificate[];

  constructor(trustPem: string[]) {
    this.anchors = trustPem.map((pem) => forge.pki.certificateFromPem(pem));
  }

  async verify(input: { content: Buffer; signatures: Buffer[]; payerIinBin: string; at: Date }): Promise<VerificationResult> {
    if (input.signatures.length === 0) return refuse('SIGNATURE_INVALID', 'the document is not signed');
    const signers: SignerIdentity[] = [];
    for (const [i, sig] of input.signatures.entries()) {
      const one = this.verifyOne(input.content, sig, input.at, i + 1);
      if (!one.ok) return one;
      signers.push(...one.signers);
    }
    // At least one signer must act for the payer: the organisation's BIN, or the individual's IIN.
    const forPayer = signers.some((s) => s.bin === input.payerIinBin || (!s.bin && s.iin === input.payerIinBin));
    if (!forPayer) return refuse('SIGNER_NOT_AUTHORISED', `no signer's certificate names the payer's IIN/BIN ${input.payerIinBin}`);
    return { ok: true, signers };
  }

  private verifyOne(content: Buffer, der: Buffer, at: Date, n: number): VerificationResult {
    let root: Asn1;
    try {
      root = forge.asn1.fromDer(forge.util.createBuffer(der.toString('binary')), true);
    } catch {
      return refuse('SIGNATURE_INVALID', `signature ${n} is not DER`);
    }
    const [ctype, explicit] = kids(root);
    if (oidOf(ctype) !== OID.signedData) return refuse('SIGNATURE_INVALID', `signature ${n} is not CMS SignedData`);
    const sd = kids(explicit)[0];
    const parts = kids(sd);
    // SignedData: version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
    const encap = parts[2];
    if (kids(encap).length > 1) return refuse('SIGNATURE_INVALID', `signature ${n} is not detached (it carries content)`);
    const certsNode = parts.find((p) => p.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && p.type === 0);
    const signerInfos = kids(parts[parts.length - 1]);
    if (signerInfos.length === 0) return refuse('SIGNATURE_INVALID', `signature ${n} has no signer`);
    const certs: forge.pki.Certificate[] = [];
    for (const c of kids(certsNode)) {
      try {
        certs.push(forge.pki.certificateFromAsn1(c));
      } catch {
        return refuse('CERTIFICATE_INVALID', `signature ${n}: the signer certificate uses an algorithm the interim verifier cannot check (GOST needs the signer agent's verifier)`);
      }
    }
    const signers: SignerIdentity[] = [];
    for (const si of signerInfos) {
      const f = kids(si);
      const sid = kids(f[1]);
      const serialHex = sid[1] && typeof sid[1].value === 'string' ? forge.util.bytesToHex(sid[1].value).replace(/^00/, '') : '';
      const cert = certs.find((c) => c.serialNumber.replace(/^00/, '') === serialHex);
      if (!cert) return refuse('SIGNATURE_INVALID', `signature ${n}: the signer certificate is not included`);
      const digestName = DIGESTS[oidOf(kids(f[2])[0]) ?? ''];
      if (!digestName) return refuse('SIGNATURE_INVALID', `signature ${n}: unsupported digest algorithm`);
      const attrs = f.find((x) => x.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && x.type === 0);
      if (!attrs) return refuse('SIGNATURE_INVALID', `signature ${n}: no signed attributes`);
      let md: string | undefined;
      for (const a of kids(attrs)) {
        const [aoid, aset] = kids(a);
        if (oidOf(aoid) === OID.messageDigest) md = kids(aset)[0]?.value as string;
      }
      const expected = createHash(digestName).update(content).digest('binary');
      if (md !== expected) return refuse('SIGNATURE_INVALID', `signature ${n} does not cover these document bytes`);
      // The signature is over the DER of the attributes re-tagged as a SET (RFC 5652 5.4).
      const set = forge.asn1.create(forge.asn1.Class.UNIVERSAL, forge.asn1.Type.SET, true, kids(attrs));
      const signedBytes = Buffer.from(forge.asn1.toDer(set).getBytes(), 'binary');
      const sigNode = f.find((x, i) => i > 3 && x.tagClass === forge.asn1.Class.UNIVERSAL && x.type === forge.asn1.Type.OCTETSTRING);
      if (!sigNode || typeof sigNode.value !== 'string') return refuse('SIGNATURE_INVALID', `signature ${n}: no signature value`);
      let publicKey;
      try {
        publicKey = createPublicKey(forge.pki.publicKeyToPem(cert.publicKey));
      } catch {
        return refuse('CERTIFICATE_INVALID', `signature ${n}: unreadable public key`);
      }
      if (!cryptoVerify(digestName, signedBytes, publicKey, Buffer.from(sigNode.value, 'binary'))) {
        return refuse('SIGNATURE_INVALID', `signature ${n}: the signature value does not verify`);
      }
      const certProblem = this.checkCertificate(cert, at);
      if (certProblem) return refuse('CERTIFICATE_INVALID', `signature ${n}: ${certProblem}`);
      signers.push(identityOf(cert));
    }
    return { ok: true, signers };
  }

  private checkCertificate(cert: forge.pki.Certificate, at: Date): string | undefined {
    if (at < cert.validity.notBefore || at > cert.validity.notAfter) return `the certificate is not valid at ${at.toISOString()}`;
    const issuer = this.anchors.find((a) => {
      try {
        return a.verify(cert);
      } catch {
        return false;
      }
    });
    if (!issuer) return 'the certificate was not issued by a CA in the bank\'s trust store';
    if (at < issuer.validity.notBefore || at > issuer.validity.notAfter) return 'the issuing CA certificate is not valid at the signing time';
    return undefined;
  }
}
