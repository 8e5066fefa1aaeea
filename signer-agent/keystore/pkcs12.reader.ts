import { createPrivateKey, createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { parseDer } from '../asn1/der.reader';
import { OID } from '../asn1/oids';
import { GOST_2004_MESSAGE } from '../certificates/certificate.check';
import { certificateInfo, type CertificateInfo, type SignatureAlgorithmName } from '../certificates/certificate.info';
import { parseCertificate, type ParsedCertificate } from '../certificates/x509.parser';
import { gostPrimitives } from '../crypto/gost.facade';
import { SignerError } from '../signer.errors';

/**
 * Private key material in the only forms this library holds it: a node:crypto KeyObject for
 * RSA (OpenSSL memory, freed when dropped) or the 64-byte little-endian d of a GOST key in a
 * Uint8Array that `wipe()` zeroes. Both can be posted to a worker thread.
 */
export type SigningKeyMaterial =
  | { algorithm: 'RSA-SHA256'; privateKey: KeyObject }
  | { algorithm: 'GOST34.10-2015-512'; d: Uint8Array };

/** An opened keystore: the signer's certificate, its chain, and a key that signs until wiped. */
export interface LoadedKey {
  readonly algorithm: SignatureAlgorithmName;
  readonly certificate: ParsedCertificate;
  readonly certificateDer: Buffer;
  /** Other certificates in the keystore (CA certificates), DER. */
  readonly chainDer: Buffer[];
  readonly info: CertificateInfo;
  /**
   * Signs `data` (for CMS: the DER of the signed attributes as a SET). RSA: PKCS#1 v1.5 with
   * SHA-256 by node:crypto. GOST: Streebog-512 of data, signed as r||s little-endian (128 bytes).
   */
  sign(data: Buffer): Buffer;
  /** The private material, for moving the key into a worker thread. Throws once wiped. */
  material(): SigningKeyMaterial;
  /** Zeroes what can be zeroed (GOST d) and drops every reference to the key; sign() then throws. */
  wipe(): void;
  readonly wiped: boolean;
}

/** Builds a LoadedKey from material (e.g. inside a worker thread that received it by postMessage). */
export function createLoadedKey(material: SigningKeyMaterial, certificateDer: Buffer, chainDer: Buffer[] = []): LoadedKey {
  const certificate = parseCertificate(certificateDer);
  let current: SigningKeyMaterial | null = material;
  const key: LoadedKey = {
    algorithm: material.algorithm,
    certificate,
    certificateDer: certificate.der,
    chainDer,
    info: certificateInfo(certificate),
    sign(data: Buffer): Buffer {
      if (!current) throw new SignerError('NOT_A_SIGNING_KEY', 'the key has been wiped (locked); unlock it again');
      if (current.algorithm === 'RSA-SHA256') return cryptoSign('sha256', data, current.privateKey);
      const gost = gostPrimitives();
      return Buffer.from(gost.gostSignDigest(current.d, gost.gostDigest(data)));
    },
    material(): SigningKeyMaterial {
      if (!current) throw new SignerError('NOT_A_SIGNING_KEY', 'the key has been wiped (locked); unlock it again');
      return current;
    },
    wipe(): void {
      if (current?.algorithm === 'GOST34.10-2015-512') current.d.fill(0);
      current = null;
    },
    get wiped(): boolean {
      return current === null;
    },
  };
  return key;
}

type Bag = forge.pkcs12.Bag & { asn1?: forge.asn1.Asn1 };

function bagsOf(p12: forge.pkcs12.Pkcs12Pfx, type: string): Bag[] {
  return (p12.getBags({ bagType: type })[type] ?? []) as Bag[];
}

function localKeyId(bag: Bag): string | null {
  const id = (bag.attributes as Record<string, string[] | undefined>).localKeyId?.[0];
  return id ? Buffer.from(id, 'binary').toString('hex') : null;
}

const derOf = (asn1: forge.asn1.Asn1): Buffer => Buffer.from(forge.asn1.toDer(asn1).getBytes(), 'binary');

/** Overwrites the limbs of forge's BigIntegers of an RSA private key (best effort: JS may have copied them). */
function scrubForgeKey(key: forge.pki.rsa.PrivateKey): void {
  for (const name of ['d', 'p', 'q', 'dP', 'dQ', 'qInv'] as const) {
    const big = key[name] as unknown as { data?: number[] } | undefined;
    if (big?.data) big.data.fill(0);
  }
}

/** A keystore decrypted: its certificates (DER, with their localKeyId) and its first key bag, not yet read. */
interface DecryptedKeystore {
  certificates: { der: Buffer; keyId: string | null }[];
  keyBag: Bag;
  keyId: string | null;
}

/** Decrypts the bags (WRONG_PASSWORD when the MAC does not verify) and finds the key and the certificates. */
function decryptPkcs12(p12Bytes: Buffer, password: string): DecryptedKeystore {
  let pfx: forge.pkcs12.Pkcs12Pfx;
  try {
    const asn1 = forge.asn1.fromDer(forge.util.createBuffer(p12Bytes.toString('binary')));
    pfx = forge.pkcs12.pkcs12FromAsn1(asn1, true, password);
  } catch (err) {
    const message = (err as Error).message ?? String(err);
    if (/invalid password|mac could not be verified/i.test(message)) {
      throw new SignerError('WRONG_PASSWORD', 'the keystore password is wrong (the PKCS#12 integrity check failed)');
    }
    throw new SignerError('INPUT_UNREADABLE', `not a readable PKCS#12 keystore: ${message.split('\n')[0]}`);
  }

  const certificates: { der: Buffer; keyId: string | null }[] = [];
  for (const bag of bagsOf(pfx, forge.pki.oids.certBag)) {
    const der = bag.cert ? derOf(forge.pki.certificateToAsn1(bag.cert)) : bag.asn1 ? derOf(bag.asn1) : null;
    if (der) certificates.push({ der, keyId: localKeyId(bag) });
  }
  const keyBags = [...bagsOf(pfx, forge.pki.oids.pkcs8ShroudedKeyBag), ...bagsOf(pfx, forge.pki.oids.keyBag)];
  if (keyBags.length === 0) throw new SignerError('INPUT_UNREADABLE', 'the keystore holds no private key');
  if (certificates.length === 0) throw new SignerError('INPUT_UNREADABLE', 'the keystore holds no certificate');
  return { certificates, keyBag: keyBags[0], keyId: localKeyId(keyBags[0]) };
}

/** The algorithm OID of a key forge could not interpret (PrivateKeyInfo.privateKeyAlgorithm); the key itself is not read. */
function keyAlgorithmOid(keyBag: Bag): string | null {
  if (keyBag.key || !keyBag.asn1) return null;
  const pkcs8 = derOf(keyBag.asn1);
  try {
    return parseDer(pkcs8).child(1).child(0).oid();
  } finally {
    pkcs8.fill(0);
  }
}

/**
 * Opens an NCA PKCS#12 keystore (RSA or GOST 34.10-2015 512) with node-forge and returns the
 * signer key. forge cannot interpret GOST keys or certificates, but it decrypts the bags and
 * leaves the structures in `bag.asn1` (testdata README); they are read here with our own DER reader.
 * WRONG_PASSWORD when the MAC does not verify; UNSUPPORTED_ALGORITHM for GOST 34.310-2004.
 */
export function openPkcs12(p12Bytes: Buffer, password: string): LoadedKey {
  return openDecrypted(decryptPkcs12(p12Bytes, password));
}

function openDecrypted({ certificates, keyBag, keyId }: DecryptedKeystore): LoadedKey {

  let material: SigningKeyMaterial;
  let publicKeyMatches: (cert: ParsedCertificate) => boolean;
  if (keyBag.key) {
    const forgeKey = keyBag.key as forge.pki.rsa.PrivateKey;
    const pkcs1 = derOf(forge.pki.privateKeyToAsn1(forgeKey));
    const privateKey = createPrivateKey({ key: pkcs1, format: 'der', type: 'pkcs1' });
    pkcs1.fill(0);
    scrubForgeKey(forgeKey);
    const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
    material = { algorithm: 'RSA-SHA256', privateKey };
    publicKeyMatches = (cert) => cert.spki.equals(spki);
  } else if (keyBag.asn1) {
    const pkcs8 = derOf(keyBag.asn1);
    try {
      const info = parseDer(pkcs8);
      const algorithm = info.child(1).child(0).oid();
      if (algorithm === OID.gost2004Key) throw new SignerError('UNSUPPORTED_ALGORITHM', GOST_2004_MESSAGE);
      if (algorithm !== OID.gost2015Key512) {
        throw new SignerError('UNSUPPORTED_ALGORITHM', `key algorithm ${algorithm} is not supported (RSA or GOST 34.10-2015 512 expected)`);
      }
      // PrivateKeyInfo.privateKey wraps an OCTET STRING holding d, 64 bytes little-endian (testdata README).
      let field = info.child(2).octets();
      if (field[0] === 0x04) field = parseDer(field).octets();
      if (field.length !== 64) throw new SignerError('INPUT_UNREADABLE', `GOST private key of ${field.length} bytes; expected 64`);
      const d = new Uint8Array(field);
      material = { algorithm: 'GOST34.10-2015-512', d };
      publicKeyMatches = (cert) => Buffer.from(gostPrimitives().gostPublicKeyFromPrivate(d)).equals(cert.publicKey);
    } finally {
      pkcs8.fill(0);
    }
  } else {
    throw new SignerError('INPUT_UNREADABLE', 'the keystore private key could not be decoded');
  }

  const parsed = certificates.map((c) => ({ ...c, cert: parseCertificate(c.der) }));
  const byId = keyId ? parsed.filter((c) => c.keyId === keyId) : [];
  let signer = byId.length === 1 ? byId[0] : undefined;
  if (!signer) {
    signer = parsed.find((c) => {
      try {
        return publicKeyMatches(c.cert);
      } catch {
        return false;
      }
    });
  }
  if (!signer) throw new SignerError('INPUT_UNREADABLE', 'no certificate in the keystore matches its private key');
  if (signer.cert.publicKeyAlgorithm === OID.gost2004Key) throw new SignerError('UNSUPPORTED_ALGORITHM', GOST_2004_MESSAGE);
  if (byId.length === 1 && !publicKeyMatches(signer.cert)) {
    throw new SignerError('INPUT_UNREADABLE', 'the keystore certificate does not match its private key');
  }
  const chain = parsed.filter((c) => c !== signer).map((c) => c.der);
  return createLoadedKey(material, signer.der, chain);
}

/** What a keystore holds, for a person to see (`connector keys inspect`); nothing here can sign. */
export interface KeystoreContents {
  /** The key's certificate. */
  readonly info: CertificateInfo;
  readonly certificateDer: Buffer;
  /** Other certificates in the keystore (CA certificates), DER. */
  readonly chainDer: Buffer[];
  /** False for a key this connector never signs with (GOST 34.310-2004): `sign` and enrolment refuse it. */
  readonly canSign: boolean;
  /** Why it cannot sign, for the person to read. */
  readonly warnings: string[];
}

/**
 * The certificate of a keystore, also of one `openPkcs12` refuses to open for signing: an admin
 * handed an old GOST 34.310-2004 key must be able to see whose it is and until when (INTERFACES.md:
 * `keys inspect` shows algorithm, subject, IIN, BIN, role OIDs, key usage, validity; only `sign`
 * refuses GOST 2004). Such a key is never read beyond its algorithm OID, and there is no GOST 2004
 * math here to check that the certificate matches it: the certificate is the one the keystore pairs
 * with the key (the same localKeyId), else its only GOST 2004 end-entity certificate.
 * Every other keystore is opened as for signing (same checks, same errors) and wiped at once.
 */
export function inspectPkcs12(p12Bytes: Buffer, password: string): KeystoreContents {
  const keystore = decryptPkcs12(p12Bytes, password);
  const parsed = keystore.certificates.map((c) => ({ ...c, cert: parseCertificate(c.der) }));
  const byId = keystore.keyId ? parsed.filter((c) => c.keyId === keystore.keyId) : [];
  const legacy = parsed.filter((c) => c.cert.publicKeyAlgorithm === OID.gost2004Key && !c.cert.isCa);
  const signer = byId.length === 1 ? byId[0] : legacy.length === 1 ? legacy[0] : undefined;
  const gost2004 = keyAlgorithmOid(keystore.keyBag) === OID.gost2004Key || signer?.cert.publicKeyAlgorithm === OID.gost2004Key;
  if (!gost2004) {
    const key = openDecrypted(keystore);
    try {
      return { info: key.info, certificateDer: key.certificateDer, chainDer: key.chainDer, canSign: true, warnings: [] };
    } finally {
      key.wipe();
    }
  }
  if (!signer) throw new SignerError('INPUT_UNREADABLE', 'the keystore holds a GOST 34.310-2004 key, and no certificate it can be told to belong to');
  return {
    info: certificateInfo(signer.cert),
    certificateDer: signer.der,
    chainDer: parsed.filter((c) => c !== signer).map((c) => c.der),
    canSign: false,
    warnings: [`this key cannot sign: ${GOST_2004_MESSAGE}`],
  };
}
