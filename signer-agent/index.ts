/**
 * The signing and verification library: what the signer agent, the connector's domain and the
 * bank sandbox import (DESIGN.md "Dependency rules": it knows keys, certificates and bytes,
 * never orders).
 */
export { SignerError, SIGNER_ERROR_CODES, isSignerError, type SignerErrorCode } from './signer.errors';
export { openPkcs12, createLoadedKey, type LoadedKey, type SigningKeyMaterial } from './keystore/pkcs12.reader';
export { writePkcs12 } from './keystore/pkcs12.writer';
export {
  certificateInfo,
  extractBin,
  extractIin,
  keyAlgorithmOf,
  type CertificateInfo,
  type KeyAlgorithmName,
  type SignatureAlgorithmName,
} from './certificates/certificate.info';
export {
  assertCertificate,
  checkCertificate,
  GOST_2004_MESSAGE,
  type CertificateCheckOptions,
  type CertificateCheckResult,
  type RevocationStatus,
} from './certificates/certificate.check';
export {
  defaultTrustPaths,
  emptyCrlSet,
  loadCrls,
  loadTrustStore,
  readCertificatesFile,
  PRODUCTION_TRUST_DIR,
  TEST_CRL_DIR,
  TEST_TRUST_DIR,
  type CrlSet,
  type TrustStore,
} from './certificates/trust.store';
export { parseCertificate, formatName, toPem, type ParsedCertificate } from './certificates/x509.parser';
export { parseCrl, type ParsedCrl } from './certificates/crl.parser';
export { createDetachedCms, signDocument, type CmsSignOptions, type SignDocumentOptions, type SignDocumentResult } from './cms/cms.signer';
export { verifyCms, type CmsVerifyResult, type SignerVerdict, type VerifyCmsOptions } from './cms/cms.verifier';
export { parseCms, type ParsedSignedData, type ParsedSignerInfo } from './cms/cms.parser';
