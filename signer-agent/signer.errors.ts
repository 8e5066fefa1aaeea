import { ConnectorError } from '../connector/shared/errors';

/**
 * Failure codes of signing and verification, fixed by INTERFACES.md "Signatures"; the last
 * three are additions (INTERFACES.md allows adding names): an identity that does not match the
 * one the caller expected, and inputs (keystore, trust, CRL, CMS) that cannot be read (exit 2).
 */
export const SIGNER_ERROR_CODES = [
  'BAD_SIGNATURE',
  'DIGEST_MISMATCH',
  'CHAIN_UNTRUSTED',
  'CERT_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'NOT_A_SIGNING_KEY',
  'UNSUPPORTED_ALGORITHM',
  'REVOCATION_UNKNOWN',
  'WRONG_PASSWORD',
  'IDENTITY_MISMATCH',
  'INPUT_UNREADABLE',
] as const;

export type SignerErrorCode = (typeof SIGNER_ERROR_CODES)[number];

/** Codes that mean "the input could not be read" (CLI exit 2); every other code is a refusal (exit 1). */
const UNREADABLE: ReadonlySet<SignerErrorCode> = new Set<SignerErrorCode>(['INPUT_UNREADABLE']);

/** A coded signing/verification failure. Messages name the rule and never hold key material or passwords. */
export class SignerError extends ConnectorError {
  declare readonly code: SignerErrorCode;
  constructor(code: SignerErrorCode, message: string, details?: unknown) {
    super(code, message, UNREADABLE.has(code) ? 2 : 1, details);
    this.name = 'SignerError';
  }
}

export function isSignerError(err: unknown, code?: SignerErrorCode): err is SignerError {
  return err instanceof SignerError && (code === undefined || err.code === code);
}
