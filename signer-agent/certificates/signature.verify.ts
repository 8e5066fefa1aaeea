import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { OID } from '../asn1/oids';
import { gostPrimitives } from '../crypto/gost.facade';
import type { ParsedCertificate } from './x509.parser';

const RSA_SIGNATURE_HASH: Readonly<Record<string, string>> = {
  [OID.sha1WithRSAEncryption]: 'sha1',
  [OID.sha256WithRSAEncryption]: 'sha256',
  [OID.sha384WithRSAEncryption]: 'sha384',
  [OID.sha512WithRSAEncryption]: 'sha512',
};

const keyCache = new Map<string, KeyObject>();

/** node:crypto public key of an RSA certificate (cached by certificate fingerprint). */
export function rsaPublicKey(cert: ParsedCertificate): KeyObject {
  let key = keyCache.get(cert.fingerprint);
  if (!key) {
    key = createPublicKey({ key: cert.spki, format: 'der', type: 'spki' });
    if (keyCache.size > 1000) keyCache.clear();
    keyCache.set(cert.fingerprint, key);
  }
  return key;
}

export type IssuedSignatureResult = 'valid' | 'invalid' | 'unsupported';

/**
 * Checks a signature an issuer made over `tbs` (a certificate's or a CRL's TBS bytes).
 * RSA via node:crypto (OpenSSL); GOST 34.10-2015 512 via the GOST module in NCA's byte
 * conventions (signature r||s little-endian, digest = Streebog-512 of the TBS bytes).
 */
export function verifyIssuedSignature(
  tbs: Buffer,
  signatureAlgorithm: string,
  signature: Buffer,
  issuer: ParsedCertificate,
): IssuedSignatureResult {
  const rsaHash = RSA_SIGNATURE_HASH[signatureAlgorithm];
  if (rsaHash) {
    if (issuer.publicKeyAlgorithm !== OID.rsaEncryption) return 'invalid';
    try {
      return verify(rsaHash, tbs, rsaPublicKey(issuer), signature) ? 'valid' : 'invalid';
    } catch {
      return 'invalid';
    }
  }
  if (signatureAlgorithm === OID.gost2015Signature512) {
    if (issuer.publicKeyAlgorithm !== OID.gost2015Key512) return 'invalid';
    const gost = gostPrimitives();
    return gost.gostVerifyDigest(issuer.publicKey, gost.gostDigest(tbs), signature) ? 'valid' : 'invalid';
  }
  return 'unsupported';
}
