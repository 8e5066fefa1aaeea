import { createHash } from 'node:crypto';
import { DerNode, parseDer } from '../asn1/der.reader';
import { ATTRIBUTE_SHORT_NAMES, OID } from '../asn1/oids';
import { SignerError } from '../signer.errors';

export interface NameAttribute {
  oid: string;
  /** Short name (CN, SERIALNUMBER, OU, ...) or the OID when unknown. */
  type: string;
  value: string;
}

export interface CertificateExtension {
  critical: boolean;
  value: Buffer;
}

/** Key usage bit names in RFC 5280 4.2.1.3 order. */
export const KEY_USAGE_NAMES = [
  'digitalSignature',
  'nonRepudiation',
  'keyEncipherment',
  'dataEncipherment',
  'keyAgreement',
  'keyCertSign',
  'cRLSign',
  'encipherOnly',
  'decipherOnly',
] as const;
export type KeyUsageName = (typeof KEY_USAGE_NAMES)[number];

/**
 * An X.509 certificate read with our own DER reader, because node-forge cannot parse GOST
 * keys and re-encodes what it reads. Every byte range a signature covers is kept as is.
 */
export interface ParsedCertificate {
  der: Buffer;
  /** TBSCertificate bytes: what the issuer signed. */
  tbs: Buffer;
  /** Serial as upper-case hex without leading zeros. */
  serial: string;
  /** The serial INTEGER element as encoded (copied into CMS IssuerAndSerialNumber). */
  serialDer: Buffer;
  issuerDer: Buffer;
  subjectDer: Buffer;
  issuer: NameAttribute[];
  subject: NameAttribute[];
  notBefore: Date;
  notAfter: Date;
  /** SubjectPublicKeyInfo DER (what node:crypto takes for RSA). */
  spki: Buffer;
  publicKeyAlgorithm: string;
  /** OIDs in the public key algorithm parameters (GOST: curve and hash). */
  publicKeyParameters: string[];
  /** The subjectPublicKey BIT STRING content (GOST: unwrapped from its inner OCTET STRING). */
  publicKey: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  extensions: Map<string, CertificateExtension>;
  keyUsage: KeyUsageName[] | null;
  extendedKeyUsage: string[];
  policies: string[];
  isCa: boolean;
  subjectKeyId: string | null;
  authorityKeyId: string | null;
  /** SHA-256 of the DER, hex: a stable identity for de-duplication. */
  fingerprint: string;
}

export function parseCertificate(der: Buffer): ParsedCertificate {
  try {
    return parseCertificateUnchecked(Buffer.from(der));
  } catch (err) {
    if (err instanceof SignerError) throw err;
    throw new SignerError('INPUT_UNREADABLE', `not an X.509 certificate: ${(err as Error).message}`);
  }
}

function parseCertificateUnchecked(der: Buffer): ParsedCertificate {
  const root = parseDer(der).expect(0x30, 'Certificate');
  const [tbsNode, sigAlgNode, sigNode] = root.children();
  if (!tbsNode || !sigAlgNode || !sigNode) throw new SignerError('INPUT_UNREADABLE', 'not an X.509 certificate: expected 3 elements');
  const tbsChildren = tbsNode.expect(0x30, 'TBSCertificate').children();
  let i = 0;
  if (tbsChildren[0]?.tag === 0xa0) i++; // [0] version
  const serialNode = tbsChildren[i++];
  i++; // signature AlgorithmIdentifier (repeated outside)
  const issuerNode = tbsChildren[i++].expect(0x30, 'issuer');
  const validity = tbsChildren[i++].expect(0x30, 'validity');
  const subjectNode = tbsChildren[i++].expect(0x30, 'subject');
  const spkiNode = tbsChildren[i++].expect(0x30, 'subjectPublicKeyInfo');
  const extensions = new Map<string, CertificateExtension>();
  for (; i < tbsChildren.length; i++) {
    const node = tbsChildren[i];
    if (node.tag !== 0xa3) continue; // issuer/subject unique ids are ignored
    for (const ext of node.child(0).children()) {
      const parts = ext.children();
      const critical = parts.length === 3 && parts[1].tag === 0x01 && parts[1].content[0] !== 0;
      extensions.set(parts[0].oid(), { critical, value: parts[parts.length - 1].octets() });
    }
  }
  const algNode = spkiNode.child(0);
  const publicKeyAlgorithm = algNode.child(0).oid();
  const publicKeyParameters = collectOids(algNode.children()[1]);
  let publicKey = spkiNode.child(1).bitStringBytes();
  if (publicKeyAlgorithm === OID.gost2015Key512 || publicKeyAlgorithm === OID.gost2004Key) {
    // NCA GOST keys: the BIT STRING wraps an OCTET STRING holding x||y (little-endian each).
    const inner = parseDer(publicKey);
    if (inner.tag === 0x04) publicKey = inner.content;
  }
  const keyUsageExt = extensions.get(OID.keyUsage);
  const ekuExt = extensions.get(OID.extKeyUsage);
  const policiesExt = extensions.get(OID.certificatePolicies);
  const basic = extensions.get(OID.basicConstraints);
  const ski = extensions.get(OID.subjectKeyIdentifier);
  const aki = extensions.get(OID.authorityKeyIdentifier);
  const basicChildren = basic ? parseDer(basic.value).children() : [];
  const akiKeyId = aki ? parseDer(aki.value).children().find((c) => c.tag === 0x80) : undefined;
  return {
    der,
    tbs: tbsNode.raw,
    serial: serialNode.integerHex(),
    serialDer: serialNode.raw,
    issuerDer: issuerNode.raw,
    subjectDer: subjectNode.raw,
    issuer: parseName(issuerNode),
    subject: parseName(subjectNode),
    notBefore: validity.child(0).time(),
    notAfter: validity.child(1).time(),
    spki: spkiNode.raw,
    publicKeyAlgorithm,
    publicKeyParameters,
    publicKey,
    signatureAlgorithm: sigAlgNode.child(0).oid(),
    signature: sigNode.bitStringBytes(),
    extensions,
    keyUsage: keyUsageExt
      ? parseDer(keyUsageExt.value)
          .bitFlags()
          .flatMap((on, bit) => (on && KEY_USAGE_NAMES[bit] ? [KEY_USAGE_NAMES[bit]] : []))
      : null,
    extendedKeyUsage: ekuExt ? parseDer(ekuExt.value).children().map((c) => c.oid()) : [],
    policies: policiesExt ? parseDer(policiesExt.value).children().map((c) => c.child(0).oid()) : [],
    isCa: basicChildren[0]?.tag === 0x01 && basicChildren[0].content[0] !== 0,
    subjectKeyId: ski ? parseDer(ski.value).octets().toString('hex').toUpperCase() : null,
    authorityKeyId: akiKeyId ? akiKeyId.content.toString('hex').toUpperCase() : null,
    fingerprint: createHash('sha256').update(der).digest('hex'),
  };
}

function collectOids(node: DerNode | undefined): string[] {
  if (!node) return [];
  if (node.tag === 0x06) return [node.oid()];
  if (node.constructed) return node.children().flatMap((c) => collectOids(c));
  return [];
}

export function parseName(node: DerNode): NameAttribute[] {
  const out: NameAttribute[] = [];
  for (const rdn of node.children()) {
    for (const atv of rdn.children()) {
      const type = atv.child(0).oid();
      out.push({ oid: type, type: ATTRIBUTE_SHORT_NAMES[type] ?? type, value: atv.child(1).text() });
    }
  }
  return out;
}

/** A readable one-line name, most specific first as NCA tools show it: "CN=..., SERIALNUMBER=..., C=KZ". */
export function formatName(name: NameAttribute[]): string {
  return name.map((a) => `${a.type}=${a.value}`).join(', ');
}

/** Splits PEM text into DER blocks of the given label (CERTIFICATE, X509 CRL). */
export function pemBlocks(text: string, label: string): Buffer[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, 'g');
  const out: Buffer[] = [];
  for (const m of text.matchAll(re)) out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
  return out;
}

export function toPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
