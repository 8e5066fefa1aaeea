import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import forge from 'node-forge';

/**
 * A test CA of our own for the sandbox (testdata/nca/README.md: the NCA test end-entity
 * certificates have expired, so the demo and the contract tests need a CA that issues fresh
 * RSA signing certificates in the NCA subject layout: SERIALNUMBER=IIN..., OU=BIN...).
 * Keys come from node:crypto (fast); forge only assembles certificates and the CMS structure
 * (DESIGN.md: forge builds the CMS around a signature OpenSSL computed). Test/demo material only.
 */
export interface TestCa {
  certPem: string;
  cert: forge.pki.Certificate;
  key: forge.pki.rsa.PrivateKey;
}

export interface TestSigner {
  certPem: string;
  cert: forge.pki.Certificate;
  keyPem: string;
}

function serial(): string {
  return `01${randomBytes(8).toString('hex')}`;
}

function rsaPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    privatePem: privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function createTestCa(name = 'Sandbox Test CA', validFrom = new Date(Date.now() - 86_400_000), years = 10): TestCa {
  const pair = rsaPair();
  const key = forge.pki.privateKeyFromPem(pair.privatePem) as forge.pki.rsa.PrivateKey;
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = validFrom;
  cert.validity.notAfter = new Date(validFrom.getTime() + years * 365 * 86_400_000);
  const attrs = [{ name: 'commonName', value: name }, { name: 'countryName', value: 'KZ' }];
  cert.setSubject(attrs);
  cert.setIssuer(attrs);
  cert.setExtensions([{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true }]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), cert, key };
}

export function issueSigner(
  ca: TestCa,
  who: { commonName: string; iin: string; bin?: string; roles?: string[] },
  validFrom = new Date(Date.now() - 3_600_000),
  days = 365,
): TestSigner {
  const pair = rsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = validFrom;
  cert.validity.notAfter = new Date(validFrom.getTime() + days * 86_400_000);
  const subject: forge.pki.CertificateField[] = [
    // forge writes binary strings: Cyrillic must be UTF-8 encoded first, as a UTF8String.
    { name: 'commonName', value: forge.util.encodeUtf8(who.commonName), valueTagClass: forge.asn1.Type.UTF8 as unknown as forge.asn1.Class },
    { type: '2.5.4.5', value: `IIN${who.iin}` },
    { name: 'countryName', value: 'KZ' },
  ];
  if (who.bin) subject.push({ type: '2.5.4.11', value: `BIN${who.bin}` });
  cert.setSubject(subject);
  cert.setIssuer(ca.cert.subject.attributes);
  // NCA profile: a signing key (digitalSignature + nonRepudiation) and, for an organisation, the
  // roles "organisation" + "CEO" in EKU (testdata/nca/README.md), which financial signing needs.
  const eku: Record<string, unknown> = { name: 'extKeyUsage', emailProtection: true };
  const roles = who.roles ?? (who.bin ? ['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.1'] : ['1.2.398.3.3.4.1.1']);
  for (const role of roles) eku[role] = true;
  cert.setExtensions([{ name: 'keyUsage', digitalSignature: true, nonRepudiation: true, critical: true }, eku]);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), cert, keyPem: pair.privatePem };
}

const { asn1 } = forge;
const seq = (v: forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, v);
const set = (v: forge.asn1.Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, v);
const oid = (o: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const nul = () => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.NULL, false, '');
const int = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, bytes);
const octets = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);

/** Detached CMS SignedData (DER) over `content`: SHA-256 + RSA, signed attributes, the signer certificate included. */
export function signDetached(content: Buffer, signer: TestSigner, at = new Date()): Buffer {
  const digest = createHash('sha256').update(content).digest('binary');
  const attrs = [
    seq([oid('1.2.840.113549.1.9.3'), set([oid('1.2.840.113549.1.7.1')])]),
    seq([oid('1.2.840.113549.1.9.5'), set([asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(at))])]),
    seq([oid('1.2.840.113549.1.9.4'), set([octets(digest)])]),
  ];
  const toSign = Buffer.from(asn1.toDer(set(attrs)).getBytes(), 'binary');
  const signature = cryptoSign('sha256', toSign, signer.keyPem).toString('binary');
  const sha256 = seq([oid('2.16.840.1.101.3.4.2.1'), nul()]);
  const signerInfo = seq([
    int(String.fromCharCode(1)),
    seq([forge.pki.distinguishedNameToAsn1(signer.cert.issuer), int(forge.util.hexToBytes(signer.cert.serialNumber))]),
    sha256,
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, attrs),
    seq([oid('1.2.840.113549.1.1.1'), nul()]),
    octets(signature),
  ]);
  const signedData = seq([
    int(String.fromCharCode(1)),
    set([seq([oid('2.16.840.1.101.3.4.2.1'), nul()])]),
    seq([oid('1.2.840.113549.1.7.1')]),
    asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [forge.pki.certificateToAsn1(signer.cert)]),
    set([signerInfo]),
  ]);
  const contentInfo = seq([oid('1.2.840.113549.1.7.2'), asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, true, [signedData])]);
  return Buffer.from(asn1.toDer(contentInfo).getBytes(), 'binary');
}

/** A TLS server or client certificate from the test CA (mutual-TLS tests of the bank client). */
export function issueTlsCertificate(ca: TestCa, who: { commonName: string; ip?: string; client?: boolean }): { certPem: string; keyPem: string } {
  const pair = rsaPair();
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(pair.publicPem);
  cert.serialNumber = serial();
  cert.validity.notBefore = new Date(Date.now() - 3_600_000);
  cert.validity.notAfter = new Date(Date.now() + 30 * 86_400_000);
  cert.setSubject([{ name: 'commonName', value: who.commonName }]);
  cert.setIssuer(ca.cert.subject.attributes);
  const extensions: Record<string, unknown>[] = [
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: !who.client, clientAuth: !!who.client },
  ];
  if (who.ip) extensions.push({ name: 'subjectAltName', altNames: [{ type: 7, ip: who.ip }] });
  cert.setExtensions(extensions);
  cert.sign(ca.key, forge.md.sha256.create());
  return { certPem: forge.pki.certificateToPem(cert), keyPem: pair.privatePem };
}
