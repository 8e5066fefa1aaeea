import { loadCrls, loadTrustStore, parseCertificate, verifyCms, emptyCrlSet, type CrlSet, type TrustStore } from '../../../signer-agent';
import { pemBlocks } from '../../../signer-agent/certificates/x509.parser';
import type { SignerErrorCode } from '../../../signer-agent';

/**
 * The sandbox's signature check (issue 13): every CMS signature over the exact document bytes,
 * each signer certificate against the bank's trust store (and CRLs) at the signing time and at
 * the bank's day-clock time, a signing key with a financial-signing role, and the signer's IIN/BIN
 * against the payer. The cryptography and the certificate rules are the signer agent's
 * (`signer-agent/cms/cms.verifier.ts`, `signer-agent/certificates/certificate.check.ts`, RSA and
 * GOST 34.10-2015): the bank and the connector judge signatures by one set of rules.
 * A port, so a test can plug in another verifier.
 */
export type VerificationRefusal = 'SIGNATURE_INVALID' | 'CERTIFICATE_INVALID' | 'SIGNER_NOT_AUTHORISED';

export interface SignerIdentity {
  subject: string | null;
  iin: string | null;
  bin: string | null;
  serial: string | null;
  algorithm: string | null;
  signingTime: string | null;
}

export type VerificationResult = { ok: true; signers: SignerIdentity[] } | { ok: false; code: VerificationRefusal; message: string };

export interface SignatureVerifier {
  verify(input: { content: Buffer; signatures: Buffer[]; payerIinBin: string; at: Date }): Promise<VerificationResult>;
}

/** Signer-library codes -> the bank's refusal codes (openapi.yaml, 422). */
const CERTIFICATE_CODES = new Set<SignerErrorCode>(['CHAIN_UNTRUSTED', 'CERT_EXPIRED', 'CERT_NOT_YET_VALID', 'CERT_REVOKED', 'NOT_A_SIGNING_KEY', 'REVOCATION_UNKNOWN']);

function refuse(code: VerificationRefusal, message: string): VerificationResult {
  return { ok: false, code, message };
}

export class CmsSignatureVerifier implements SignatureVerifier {
  constructor(
    private readonly trust: TrustStore,
    private readonly crls: CrlSet = emptyCrlSet(),
    private readonly requireRevocation = false,
  ) {}

  /** Trust from PEM/DER files or directories plus inline PEM texts (tests); CRL files. */
  static from(options: { trustPaths: string[]; trustPem: string[]; crlPaths: string[]; requireRevocation?: boolean }): CmsSignatureVerifier {
    const store = loadTrustStore(options.trustPaths);
    for (const pem of options.trustPem) {
      for (const der of pemBlocks(pem, 'CERTIFICATE')) {
        const cert = parseCertificate(der);
        if (!store.anchors.some((a) => a.fingerprint === cert.fingerprint)) store.anchors.push(cert);
      }
    }
    store.sources.push(...options.trustPem.map((_, i) => `(inline ${i + 1})`));
    return new CmsSignatureVerifier(store, options.crlPaths.length ? loadCrls(options.crlPaths) : emptyCrlSet(), options.requireRevocation);
  }

  async verify(input: { content: Buffer; signatures: Buffer[]; payerIinBin: string; at: Date }): Promise<VerificationResult> {
    if (input.signatures.length === 0) return refuse('SIGNATURE_INVALID', 'the document is not signed');
    const signers: SignerIdentity[] = [];
    for (const [i, sig] of input.signatures.entries()) {
      let result;
      try {
        result = verifyCms(sig, { content: input.content, trust: this.trust, crls: this.crls, at: input.at, requireRevocation: this.requireRevocation });
      } catch (err) {
        return refuse('SIGNATURE_INVALID', `signature ${i + 1} cannot be read: ${(err as Error).message}`);
      }
      if (result.attached) return refuse('SIGNATURE_INVALID', `signature ${i + 1} carries the content; a detached CMS over the document bytes is required`);
      if (result.signers.length === 0) return refuse('SIGNATURE_INVALID', `signature ${i + 1} has no signer`);
      for (const s of result.signers) {
        if (s.verdict !== 'valid') {
          const code = s.code && CERTIFICATE_CODES.has(s.code) ? 'CERTIFICATE_INVALID' : 'SIGNATURE_INVALID';
          return refuse(code, `signature ${i + 1}: ${s.code ?? 'INVALID'}: ${s.message}`);
        }
        signers.push({ subject: s.subject, iin: s.iin, bin: s.bin, serial: s.serial, algorithm: s.algorithm, signingTime: s.signingTime });
      }
    }
    // At least one signer acts for the payer: the organisation's BIN, or an individual's own IIN.
    const forPayer = signers.some((s) => s.bin === input.payerIinBin || (!s.bin && s.iin === input.payerIinBin));
    if (!forPayer) return refuse('SIGNER_NOT_AUTHORISED', `no signer's certificate names the payer's IIN/BIN ${input.payerIinBin}`);
    return { ok: true, signers };
  }
}
