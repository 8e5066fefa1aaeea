/**
 * Test-only access to NCA RK's published GOST 2015 test material (shared/testdata/nca,
 * README.md there): certificates, the CRL, the KalkanCrypt CMS and the private key d of a
 * PKCS#12. Structures are navigated with node-forge's asn1; the bytes that a signature covers
 * (tbsCertificate, tbsCertList, signed attributes) are sliced from the original DER by a tiny
 * TLV reader, so a lenient re-encoding can never make a test pass that real bytes would fail.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import forge from 'node-forge';

/** The NCA test data: in-repo copy if present, else NCA_TESTDATA_DIR, else the shared folder. */
export const NCA_TESTDATA_DIR = ((): string => {
  const candidates = [
    resolve(__dirname, '..', 'fixtures', 'nca'),
    process.env.NCA_TESTDATA_DIR ?? '',
    '/work/shared/testdata/nca',
  ].filter((c) => c !== '');
  for (const c of candidates) if (existsSync(join(c, 'README.md'))) return c;
  throw new Error(`NCA test data not found in ${candidates.join(', ')}`);
})();

export function ncaFile(relative: string): Buffer {
  return readFileSync(join(NCA_TESTDATA_DIR, relative));
}

export function ncaFiles(dir: string, ext: string): string[] {
  return readdirSync(join(NCA_TESTDATA_DIR, dir))
    .filter((f) => f.endsWith(ext))
    .sort()
    .map((f) => join(dir, f));
}

/** One DER element: where its header starts, where its content starts and ends. */
export interface Tlv {
  tag: number;
  start: number;
  contentStart: number;
  end: number;
}

export function readTlv(der: Uint8Array, at: number): Tlv {
  const tag = der[at];
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tags are not used in these files');
  let p = at + 1;
  let len = der[p++];
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error('unsupported DER length');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p++];
  }
  if (p + len > der.length) throw new Error('DER element overruns its buffer');
  return { tag, start: at, contentStart: p, end: p + len };
}

/** The children of a constructed element. */
export function tlvChildren(der: Uint8Array, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = parent.contentStart; p < parent.end; ) {
    const child = readTlv(der, p);
    out.push(child);
    p = child.end;
  }
  return out;
}

// forge accepts an options object here (its typings only know the older `strict` flag);
// decodeBitStrings: false keeps every BIT STRING as raw bytes instead of guessing at content.
const fromDer = forge.asn1.fromDer as unknown as (
  bytes: forge.util.ByteStringBuffer,
  options: { decodeBitStrings: boolean },
) => forge.asn1.Asn1;
const toForge = (der: Uint8Array): forge.asn1.Asn1 =>
  fromDer(forge.util.createBuffer(Buffer.from(der).toString('binary')), { decodeBitStrings: false });

const forgeBytes = (s: string): Buffer => Buffer.from(s, 'binary');

/** Content of a BIT STRING without its unused-bits byte (which must be 0 here). */
function bitStringBytes(node: forge.asn1.Asn1): Buffer {
  const raw = forgeBytes(node.value as string);
  if (raw[0] !== 0) throw new Error('BIT STRING with unused bits');
  return raw.subarray(1);
}

/** A signed X.509 object (certificate or CRL): signed bytes, algorithm, signature value. */
export interface SignedObject {
  der: Buffer;
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
}

/** Certificate and CRL share the outer shape SEQUENCE { tbs, algorithm, BIT STRING }. */
export function parseSignedObject(der: Uint8Array): SignedObject {
  const buf = Buffer.from(der);
  const outer = readTlv(buf, 0);
  const [tbs] = tlvChildren(buf, outer);
  const node = toForge(buf);
  const [, alg, sig] = node.value as forge.asn1.Asn1[];
  return {
    der: buf,
    tbs: buf.subarray(tbs.start, tbs.end),
    signatureAlgorithm: forge.asn1.derToOid((alg.value as forge.asn1.Asn1[])[0].value as string),
    signature: bitStringBytes(sig),
  };
}

export interface GostCertificate extends SignedObject {
  publicKeyAlgorithm: string;
  publicKeyParamSet: string;
  /** 128 bytes x || y, each little-endian, as inside the subjectPublicKey OCTET STRING. */
  publicKey: Buffer;
}

/** A certificate whose subjectPublicKeyInfo is NCA GOST 2015 (the key is an OCTET STRING in the BIT STRING). */
export function parseGostCertificate(der: Uint8Array): GostCertificate {
  const signed = parseSignedObject(der);
  const tbs = toForge(signed.tbs).value as forge.asn1.Asn1[];
  // tbsCertificate: [0] version, serial, signature, issuer, validity, subject, spki, ...
  const spki = tbs[tbs[0].tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 6 : 5].value as forge.asn1.Asn1[];
  const [algId, keyBits] = spki;
  const [keyOid, params] = algId.value as forge.asn1.Asn1[];
  const paramSet = (params.value as forge.asn1.Asn1[])[0];
  const inner = toForge(bitStringBytes(keyBits));
  if (inner.type !== forge.asn1.Type.OCTETSTRING) throw new Error('GOST public key is not an OCTET STRING');
  return {
    ...signed,
    publicKeyAlgorithm: forge.asn1.derToOid(keyOid.value as string),
    publicKeyParamSet: forge.asn1.derToOid(paramSet.value as string),
    publicKey: forgeBytes(inner.value as string),
  };
}

export interface GostKeystore {
  /** 64 bytes d, little-endian, as stored in the PKCS#8. */
  privateKeyLE: Buffer;
  privateKeyAlgorithm: string;
  certificate: GostCertificate;
}

/**
 * Opens an NCA GOST PKCS#12. node-forge decrypts both bags (3DES key bag, RC2-40 certificate
 * bag) but cannot interpret GOST keys: bag.key / bag.cert are null and bag.asn1 holds the
 * decrypted PrivateKeyInfo / CertBag.
 */
export function openGostKeystore(relative: string, password: string): GostKeystore {
  const p12 = forge.pkcs12.pkcs12FromAsn1(
    forge.asn1.fromDer(forge.util.createBuffer(ncaFile(relative).toString('binary'))),
    false,
    password,
  );
  let privateKeyLE: Buffer | undefined;
  let privateKeyAlgorithm = '';
  let certificate: GostCertificate | undefined;
  for (const sc of p12.safeContents) {
    for (const bag of sc.safeBags) {
      const node = (bag as unknown as { asn1: forge.asn1.Asn1 }).asn1;
      if (bag.type === forge.pki.oids.pkcs8ShroudedKeyBag) {
        // PrivateKeyInfo ::= SEQUENCE { version, AlgorithmIdentifier, privateKey OCTET STRING }
        const [, alg, key] = node.value as forge.asn1.Asn1[];
        privateKeyAlgorithm = forge.asn1.derToOid((alg.value as forge.asn1.Asn1[])[0].value as string);
        const inner = toForge(forgeBytes(key.value as string));
        if (inner.type !== forge.asn1.Type.OCTETSTRING) throw new Error('GOST private key is not an OCTET STRING');
        privateKeyLE = forgeBytes(inner.value as string);
      } else if (bag.type === forge.pki.oids.certBag) {
        // For a certificate bag forge keeps the decoded Certificate itself, not its DER; forge
        // re-encodes it byte-exactly (it keeps BIT STRING originals), which the CA signature
        // check on these bytes confirms: a changed byte would fail it.
        certificate = parseGostCertificate(forgeBytes(forge.asn1.toDer(node).getBytes()));
      }
    }
  }
  if (!privateKeyLE || !certificate) throw new Error(`${relative}: key or certificate bag missing`);
  return { privateKeyLE, privateKeyAlgorithm, certificate };
}

export interface CmsSigner {
  digestAlgorithm: string;
  signatureAlgorithm: string;
  /** The [0] IMPLICIT signedAttrs, re-tagged as SET OF (0x31): what the signature covers (RFC 5652 5.4). */
  signedAttrsAsSet: Buffer;
  messageDigest: Buffer;
  signature: Buffer;
  issuerAndSerial: { serialHex: string };
}

export interface ParsedCms {
  content: Buffer;
  certificates: Buffer[];
  signers: CmsSigner[];
}

const OID_MESSAGE_DIGEST = '1.2.840.113549.1.9.4';

/** An attached SignedData (RFC 5652), only as far as these tests need. */
export function parseAttachedCms(der: Uint8Array): ParsedCms {
  const buf = Buffer.from(der);
  const contentInfo = tlvChildren(buf, readTlv(buf, 0));
  const explicit0 = readTlv(buf, contentInfo[1].start);
  const signedData = tlvChildren(buf, readTlv(buf, explicit0.contentStart));
  // version, digestAlgorithms, encapContentInfo, [0] certificates?, [1] crls?, signerInfos
  const encap = tlvChildren(buf, signedData[2]);
  const eContent = readTlv(buf, encap[1].contentStart); // [0] EXPLICIT OCTET STRING
  const content = buf.subarray(eContent.contentStart, eContent.end);
  const certificates = signedData
    .filter((t) => t.tag === 0xa0)
    .flatMap((t) => tlvChildren(buf, t).map((c) => buf.subarray(c.start, c.end)));
  const signerInfos = tlvChildren(buf, signedData[signedData.length - 1]);
  const signers = signerInfos.map((si): CmsSigner => {
    const parts = tlvChildren(buf, si);
    // version, sid, digestAlgorithm, [0] signedAttrs, signatureAlgorithm, signature, [1]?
    const attrs = parts[3];
    if (attrs.tag !== 0xa0) throw new Error('signer without signed attributes');
    const signedAttrsAsSet = Buffer.from(buf.subarray(attrs.start, attrs.end));
    signedAttrsAsSet[0] = 0x31;
    const node = (i: number): forge.asn1.Asn1 => toForge(buf.subarray(parts[i].start, parts[i].end));
    const oidOf = (i: number): string =>
      forge.asn1.derToOid(((node(i).value as forge.asn1.Asn1[])[0].value as string));
    let messageDigest: Buffer | undefined;
    for (const attr of toForge(signedAttrsAsSet).value as forge.asn1.Asn1[]) {
      const [type, values] = attr.value as forge.asn1.Asn1[];
      if (forge.asn1.derToOid(type.value as string) === OID_MESSAGE_DIGEST) {
        messageDigest = forgeBytes((values.value as forge.asn1.Asn1[])[0].value as string);
      }
    }
    if (!messageDigest) throw new Error('signer without messageDigest');
    const sid = node(1).value as forge.asn1.Asn1[];
    return {
      digestAlgorithm: oidOf(2),
      signatureAlgorithm: oidOf(4),
      signedAttrsAsSet,
      messageDigest,
      signature: forgeBytes(node(5).value as string),
      issuerAndSerial: { serialHex: forgeBytes(sid[1].value as string).toString('hex') },
    };
  });
  return { content, certificates, signers };
}

/** Serial number of a certificate, hex, as in an IssuerAndSerialNumber. */
export function certificateSerialHex(der: Uint8Array): string {
  const tbs = toForge(parseSignedObject(der).tbs).value as forge.asn1.Asn1[];
  const serial = tbs[tbs[0].tagClass === forge.asn1.Class.CONTEXT_SPECIFIC ? 1 : 0];
  return forgeBytes(serial.value as string).toString('hex');
}
