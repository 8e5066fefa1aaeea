import { createHash } from 'node:crypto';
import { DerNode, parseDer } from '../asn1/der.reader';
import { OID } from '../asn1/oids';
import { formatName, parseCertificate, parseName, pemBlocks, type ParsedCertificate } from '../certificates/x509.parser';
import { gostPrimitives } from '../crypto/gost.facade';
import { SignerError } from '../signer.errors';

export type SignerIdentifier = { issuerDer: Buffer; serial: string } | { subjectKeyId: string };

export interface ParsedSignerInfo {
  /** The SignerInfo exactly as encoded (co-signing copies it verbatim). */
  raw: Buffer;
  sid: SignerIdentifier;
  digestAlgorithm: string;
  /** Signed attributes re-tagged as a SET (0x31): the bytes the signature covers (RFC 5652 5.4). */
  signedAttributesSet: Buffer | null;
  /** Attribute values by OID. */
  attributes: Map<string, DerNode[]>;
  signatureAlgorithm: string;
  signature: Buffer;
}

export interface ParsedSignedData {
  version: Buffer;
  digestAlgorithms: DerNode[];
  contentType: string;
  /** EncapsulatedContentInfo as encoded. */
  encapContentInfo: Buffer;
  /** Attached content, null for a detached signature. */
  content: Buffer | null;
  certificatesRaw: Buffer[];
  certificates: ParsedCertificate[];
  /** [1] crls element as encoded, when present. */
  crlsRaw: Buffer | null;
  signerInfos: ParsedSignerInfo[];
}

/** Accepts DER, PEM ("CMS" / "PKCS7") or bare base64 (what KalkanCrypt and NCALayer often hand out). */
export function cmsBytes(input: Buffer): Buffer {
  if (input[0] === 0x30) return input;
  const text = input.toString('latin1').trim();
  for (const label of ['CMS', 'PKCS7']) {
    const blocks = pemBlocks(text, label);
    if (blocks.length) return blocks[0];
  }
  if (/^[A-Za-z0-9+/=\s]+$/.test(text)) {
    const decoded = Buffer.from(text.replace(/\s+/g, ''), 'base64');
    if (decoded[0] === 0x30) return decoded;
  }
  throw new SignerError('INPUT_UNREADABLE', 'not a CMS signature (expected DER, PEM or base64)');
}

export function parseCms(input: Buffer): ParsedSignedData {
  try {
    const root = parseDer(cmsBytes(input)).expect(0x30, 'ContentInfo');
    if (root.child(0).oid() !== OID.signedData) throw new SignerError('INPUT_UNREADABLE', 'the CMS is not SignedData');
    const sd = root.child(1).expect(0xa0, 'content').child(0).expect(0x30, 'SignedData');
    const parts = sd.children();
    const encap = parts[2].expect(0x30, 'EncapsulatedContentInfo');
    const eContent = encap.children()[1];
    let i = 3;
    const certificatesRaw: Buffer[] = [];
    let crlsRaw: Buffer | null = null;
    if (parts[i]?.tag === 0xa0) {
      for (const c of parts[i++].children()) if (c.tag === 0x30) certificatesRaw.push(c.raw);
    }
    if (parts[i]?.tag === 0xa1) crlsRaw = parts[i++].raw;
    const signerInfosNode = parts[i].expect(0x31, 'signerInfos');
    return {
      version: parts[0].raw,
      digestAlgorithms: parts[1].expect(0x31, 'digestAlgorithms').children(),
      contentType: encap.child(0).oid(),
      encapContentInfo: encap.raw,
      content: eContent ? eContent.child(0).octets() : null,
      certificatesRaw,
      certificates: certificatesRaw.map((der) => parseCertificate(der)),
      crlsRaw,
      signerInfos: signerInfosNode.children().map(parseSignerInfo),
    };
  } catch (err) {
    if (err instanceof SignerError) throw err;
    throw new SignerError('INPUT_UNREADABLE', `not a readable CMS SignedData: ${(err as Error).message}`);
  }
}

/**
 * The certificate serial (upper-case hex) each SignerInfo of a CMS names, null for one named by
 * key id; reads only the SignerInfos (no certificate is parsed), for a cheap "who signed" check.
 */
export function cmsSignerSerials(input: Buffer): Array<string | null> {
  try {
    const root = parseDer(cmsBytes(input)).expect(0x30, 'ContentInfo');
    const parts = root.child(1).expect(0xa0, 'content').child(0).expect(0x30, 'SignedData').children();
    const signerInfos = parts[parts.length - 1].expect(0x31, 'signerInfos');
    return signerInfos.children().map((info) => {
      const sid = info.expect(0x30, 'SignerInfo').child(1);
      return sid.tag === 0x30 ? sid.child(1).integerHex() : null;
    });
  } catch (err) {
    if (err instanceof SignerError) throw err;
    throw new SignerError('INPUT_UNREADABLE', `not a readable CMS SignedData: ${(err as Error).message}`);
  }
}

function parseSignerInfo(node: DerNode): ParsedSignerInfo {
  const parts = node.expect(0x30, 'SignerInfo').children();
  const sidNode = parts[1];
  const sid: SignerIdentifier =
    sidNode.tag === 0x30
      ? { issuerDer: sidNode.child(0).raw, serial: sidNode.child(1).integerHex() }
      : { subjectKeyId: sidNode.content.toString('hex').toUpperCase() };
  let i = 3;
  let signedAttributesSet: Buffer | null = null;
  const attributes = new Map<string, DerNode[]>();
  if (parts[i]?.tag === 0xa0) {
    const attrs = parts[i++];
    signedAttributesSet = Buffer.concat([Buffer.from([0x31]), attrs.raw.subarray(1)]);
    for (const attr of attrs.children()) attributes.set(attr.child(0).oid(), attr.child(1).children());
  }
  const signatureAlgorithm = parts[i++].child(0).oid();
  const signature = parts[i++].octets();
  return { raw: node.raw, sid, digestAlgorithm: parts[2].child(0).oid(), signedAttributesSet, attributes, signatureAlgorithm, signature };
}

/** The message digest of the content under a CMS digest algorithm (SHA-256 or Streebog-512). */
export function contentDigest(digestAlgorithm: string, content: Buffer): Buffer {
  if (digestAlgorithm === OID.sha256) return createHash('sha256').update(content).digest();
  if (digestAlgorithm === OID.streebog512) return Buffer.from(gostPrimitives().gostDigest(content));
  throw new SignerError('UNSUPPORTED_ALGORITHM', `digest algorithm ${digestAlgorithm} is not supported (SHA-256 or Streebog-512 expected)`);
}

export function findSignerCertificate(sid: SignerIdentifier, certificates: readonly ParsedCertificate[]): ParsedCertificate | undefined {
  if ('subjectKeyId' in sid) return certificates.find((c) => c.subjectKeyId === sid.subjectKeyId);
  const bySerial = certificates.filter((c) => c.serial === sid.serial);
  const exact = bySerial.find((c) => c.issuerDer.equals(sid.issuerDer));
  if (exact) return exact;
  // Another encoding of the same issuer Name (e.g. PrintableString where the certificate has UTF8String):
  // compare the readable names.
  try {
    const wanted = formatName(parseName(parseDer(sid.issuerDer))).toLowerCase();
    return bySerial.find((c) => formatName(c.issuer).toLowerCase() === wanted);
  } catch {
    return undefined;
  }
}
