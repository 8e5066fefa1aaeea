/**
 * Object identifiers used by the signer. NCA (pki.gov.kz) OIDs are from the NCA certificate
 * profiles as seen in the test files (shared testdata README); the rest are RFC 5280/5652/8017.
 */
export const OID = {
  // CMS (RFC 5652)
  data: '1.2.840.113549.1.7.1',
  signedData: '1.2.840.113549.1.7.2',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  // RSA / SHA-2 (RFC 8017, RFC 5754)
  rsaEncryption: '1.2.840.113549.1.1.1',
  sha1WithRSAEncryption: '1.2.840.113549.1.1.5',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
  sha256: '2.16.840.1.101.3.4.2.1',
  // NCA RK GOST (KZ arc 1.2.398.3.10)
  gost2015Key512: '1.2.398.3.10.1.1.2.2',
  gost2015Curve512A: '1.2.398.3.10.1.1.2.2.1',
  gost2015Signature512: '1.2.398.3.10.1.1.2.3.2',
  streebog512: '1.2.398.3.10.1.3.3',
  gost2004Key: '1.2.398.3.10.1.1.1.1',
  // X.509 (RFC 5280)
  commonName: '2.5.4.3',
  surname: '2.5.4.4',
  serialNumber: '2.5.4.5',
  country: '2.5.4.6',
  locality: '2.5.4.7',
  state: '2.5.4.8',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  title: '2.5.4.12',
  givenName: '2.5.4.42',
  emailAddress: '1.2.840.113549.1.9.1',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  basicConstraints: '2.5.29.19',
  certificatePolicies: '2.5.29.32',
  subjectKeyIdentifier: '2.5.29.14',
  authorityKeyIdentifier: '2.5.29.35',
  crlNumber: '2.5.29.20',
  deltaCrlIndicator: '2.5.29.27',
  issuingDistributionPoint: '2.5.29.28',
  crlReason: '2.5.29.21',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  // NCA role OIDs carried in the EKU (testdata README)
  roleIndividual: '1.2.398.3.3.4.1.1',
  roleOrganization: '1.2.398.3.3.4.1.2',
  roleCeo: '1.2.398.3.3.4.1.2.1',
  roleMaySign: '1.2.398.3.3.4.1.2.2',
  roleFinancialSigning: '1.2.398.3.3.4.1.2.3',
  roleHr: '1.2.398.3.3.4.1.2.4',
  roleEmployee: '1.2.398.3.3.4.1.2.5',
  // NCA certificate policies: 1.2.398.3.3.2.3 signing, 1.2.398.3.3.2.4 authentication
  policySign: '1.2.398.3.3.2.3',
  policyAuth: '1.2.398.3.3.2.4',
} as const;

export const NCA_ROLE_NAMES: Readonly<Record<string, string>> = {
  [OID.roleIndividual]: 'individual',
  [OID.roleOrganization]: 'organisation',
  [OID.roleCeo]: 'CEO (first head)',
  [OID.roleMaySign]: 'may sign',
  [OID.roleFinancialSigning]: 'may sign financial documents',
  [OID.roleHr]: 'HR',
  [OID.roleEmployee]: 'employee',
};

/** Roles of an organisation certificate that allow signing payment documents. */
export const FINANCIAL_SIGNING_ROLES: ReadonlySet<string> = new Set([OID.roleCeo, OID.roleFinancialSigning]);

export const ATTRIBUTE_SHORT_NAMES: Readonly<Record<string, string>> = {
  [OID.commonName]: 'CN',
  [OID.surname]: 'SURNAME',
  [OID.serialNumber]: 'SERIALNUMBER',
  [OID.country]: 'C',
  [OID.locality]: 'L',
  [OID.state]: 'ST',
  [OID.organization]: 'O',
  [OID.organizationalUnit]: 'OU',
  [OID.title]: 'T',
  [OID.givenName]: 'G',
  [OID.emailAddress]: 'E',
};
