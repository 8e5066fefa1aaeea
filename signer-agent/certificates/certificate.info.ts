import { FINANCIAL_SIGNING_ROLES, NCA_ROLE_NAMES, OID } from '../asn1/oids';
import { formatName, type KeyUsageName, type ParsedCertificate } from './x509.parser';

export type SignatureAlgorithmName = 'RSA-SHA256' | 'GOST34.10-2015-512';
/** What a certificate's key is; the last two are reported but never used for signing. */
export type KeyAlgorithmName = SignatureAlgorithmName | 'GOST34.310-2004' | 'UNKNOWN';

/** What a person needs to see about a certificate (keys inspect, verify output, the agent's records). */
export interface CertificateInfo {
  /** Readable subject, e.g. "CN=ТЕСТОВ ТЕСТ, SURNAME=ТЕСТОВ, SERIALNUMBER=IIN123456789011, C=KZ, G=ТЕСТОВИЧ". */
  subject: string;
  commonName: string | null;
  issuer: string;
  /** 12 digits from SERIALNUMBER=IIN..., null when absent. */
  iin: string | null;
  /** 12 digits from OU=BIN..., null when absent (an individual's certificate). */
  bin: string | null;
  organization: string | null;
  /** NCA role OIDs (1.2.398.3.3.4.1.x) found in the extended key usage. */
  roles: string[];
  roleNames: string[];
  /** True when the certificate belongs to an organisation (BIN or the organisation role). */
  organisation: boolean;
  /** For an organisation certificate: a role that allows signing financial documents (CEO or "financial"). */
  financialSigningRole: boolean;
  keyUsage: KeyUsageName[];
  extendedKeyUsage: string[];
  policies: string[];
  notBefore: string;
  notAfter: string;
  /** Upper-case hex. */
  serial: string;
  algorithm: KeyAlgorithmName;
  keyAlgorithmOid: string;
  isCa: boolean;
}

export function keyAlgorithmOf(cert: ParsedCertificate): KeyAlgorithmName {
  switch (cert.publicKeyAlgorithm) {
    case OID.rsaEncryption:
      return 'RSA-SHA256';
    case OID.gost2015Key512:
      return 'GOST34.10-2015-512';
    case OID.gost2004Key:
      return 'GOST34.310-2004';
    default:
      return 'UNKNOWN';
  }
}

function attribute(cert: ParsedCertificate, oid: string): string[] {
  return cert.subject.filter((a) => a.oid === oid).map((a) => a.value);
}

/** IIN: SERIALNUMBER "IIN" + 12 digits (NCA profile). */
export function extractIin(cert: ParsedCertificate): string | null {
  for (const v of attribute(cert, OID.serialNumber)) {
    const m = /^IIN(\d{12})$/.exec(v.trim());
    if (m) return m[1];
  }
  return null;
}

/** BIN: OU "BIN" + 12 digits (NCA profile). */
export function extractBin(cert: ParsedCertificate): string | null {
  for (const v of attribute(cert, OID.organizationalUnit)) {
    const m = /^BIN(\d{12})$/.exec(v.trim());
    if (m) return m[1];
  }
  return null;
}

export function certificateInfo(cert: ParsedCertificate): CertificateInfo {
  const roles = cert.extendedKeyUsage.filter((o) => o.startsWith('1.2.398.3.3.4.1'));
  const bin = extractBin(cert);
  return {
    subject: formatName(cert.subject),
    commonName: attribute(cert, OID.commonName)[0] ?? null,
    issuer: formatName(cert.issuer),
    iin: extractIin(cert),
    bin,
    organization: attribute(cert, OID.organization)[0] ?? null,
    roles,
    roleNames: roles.map((r) => NCA_ROLE_NAMES[r] ?? r),
    organisation: bin !== null || roles.includes(OID.roleOrganization),
    financialSigningRole: roles.some((r) => FINANCIAL_SIGNING_ROLES.has(r)),
    keyUsage: cert.keyUsage ?? [],
    extendedKeyUsage: cert.extendedKeyUsage,
    policies: cert.policies,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    serial: cert.serial,
    algorithm: keyAlgorithmOf(cert),
    keyAlgorithmOid: cert.publicKeyAlgorithm,
    isCa: cert.isCa,
  };
}
