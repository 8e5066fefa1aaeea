import { createHmac, randomBytes } from 'node:crypto';
import forge from 'node-forge';
import { explicit, octetString, oid, seq, set, tlv, unsignedInteger, algorithmIdentifier } from '../asn1/der.writer';

const OIDS = {
  data: '1.2.840.113549.1.7.1',
  certBag: '1.2.840.113549.1.12.10.1.3',
  pkcs8ShroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  localKeyId: '1.2.840.113549.1.9.21',
  friendlyName: '1.2.840.113549.1.9.20',
  sha1: '1.3.14.3.2.26',
};

const bmpString = (text: string): Buffer => {
  const le = Buffer.from(text, 'utf16le');
  le.swap16();
  return tlv(0x1e, le);
};

const dataContentInfo = (content: Buffer): Buffer => seq(oid(OIDS.data), explicit(0, octetString(content)));

/**
 * Writes a PKCS#12 keystore the way NCA's test keystores are made (testdata README): key bag
 * pbeWithSHAAnd3-KeyTripleDES-CBC, MAC HMAC-SHA1. Certificates are embedded as their exact
 * DER (never re-encoded); the private key is any PKCS#8 PrivateKeyInfo (RSA or GOST 2015).
 * For test keystores and the demo: the password protects public test material only.
 */
export function writePkcs12(options: {
  privateKeyInfoDer: Buffer;
  certificateDer: Buffer;
  chainDer?: Buffer[];
  password: string;
  friendlyName?: string;
  iterations?: number;
}): Buffer {
  const iterations = options.iterations ?? 2048;
  const keyId = randomBytes(20);
  const attributes = set(
    seq(oid(OIDS.localKeyId), set(octetString(keyId))),
    ...(options.friendlyName ? [seq(oid(OIDS.friendlyName), set(bmpString(options.friendlyName)))] : []),
  );
  const certBag = (der: Buffer, attrs?: Buffer) =>
    seq(oid(OIDS.certBag), explicit(0, seq(oid(OIDS.x509Certificate), explicit(0, octetString(der)))), ...(attrs ? [attrs] : []));
  const encrypted = forge.pki.encryptPrivateKeyInfo(
    forge.asn1.fromDer(forge.util.createBuffer(options.privateKeyInfoDer.toString('binary'))),
    options.password,
    { algorithm: '3des', count: iterations, saltSize: 8 },
  );
  const encryptedDer = Buffer.from(forge.asn1.toDer(encrypted).getBytes(), 'binary');
  const keyBag = seq(oid(OIDS.pkcs8ShroudedKeyBag), explicit(0, encryptedDer), attributes);
  const authSafe = seq(
    dataContentInfo(seq(certBag(options.certificateDer, attributes), ...(options.chainDer ?? []).map((der) => certBag(der)))),
    dataContentInfo(seq(keyBag)),
  );
  // PKCS#12 B.2 key derivation (id 3 = MAC key), as node-forge implements it.
  const salt = randomBytes(8);
  const macKey = forge.pkcs12.generateKey(options.password, forge.util.createBuffer(salt.toString('binary')), 3, iterations, 20);
  const mac = createHmac('sha1', Buffer.from(macKey.getBytes(), 'binary')).update(authSafe).digest();
  const macData = seq(seq(algorithmIdentifier(OIDS.sha1), octetString(mac)), octetString(salt), unsignedInteger(iterations));
  return seq(unsignedInteger(3), dataContentInfo(authSafe), macData);
}
