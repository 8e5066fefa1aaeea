/**
 * Generates an NCA-like test PKI: a test CA (RSA-2048, and GOST 34.10-2015 512) with its CRL,
 * and user PKCS#12 keystores with the real NCA profile (testdata README): subject CN, SURNAME,
 * SERIALNUMBER=IIN..., C=KZ, [O, OU=BIN...], G; key usage digitalSignature+nonRepudiation for
 * signing keys (digitalSignature+keyEncipherment, EKU clientAuth for AUTH keys); EKU with the
 * NCA role OIDs; policy 1.2.398.3.3.2.3 (sign) / .2.4 (auth). For the demo and for cases the
 * real NCA test files do not cover (a signing key valid now, an organisation key without the
 * financial-signing role, a revoked key with a current CRL). Test material only: never trust
 * these CAs outside test mode.
 *
 *   node dist/scripts/make-test-pki.js OUT_DIR [--days N] [--password P]
 */
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  algorithmIdentifier,
  bitString,
  boolean,
  explicit,
  octetString,
  oid,
  printableString,
  seq,
  set,
  time,
  unsignedInteger,
  utf8String,
} from '../signer-agent/asn1/der.writer';
import { OID } from '../signer-agent/asn1/oids';
import { toPem } from '../signer-agent/certificates/x509.parser';
import { gostPublicKeyFromPrivate, gostSign } from '../signer-agent/crypto/gost3410-2015';
import { writePkcs12 } from '../signer-agent/keystore/pkcs12.writer';

export type TestKeyAlgorithm = 'RSA' | 'GOST';

export interface TestPkiUser {
  /** File name stem: `<name>.p12`. */
  name: string;
  algorithm?: TestKeyAlgorithm;
  surname: string;
  givenName: string;
  /** 12 digits; default: a checksum-valid IIN derived from the name. */
  iin?: string;
  /** Organisation certificates: 12-digit BIN and the organisation name. */
  bin?: string;
  organization?: string;
  /** NCA role OIDs (1.2.398.3.3.4.1.x); default individual, or organisation + CEO when a BIN is given. */
  roles?: string[];
  /** 'sign' (default) or 'auth' (an AUTH key: refused for documents). */
  purpose?: 'sign' | 'auth';
  notBefore?: Date;
  notAfter?: Date;
  /** Listed in the CA's CRL as revoked at this moment. */
  revokedAt?: Date;
  /** Listed in the CA's CRL as on hold (reason certificateHold) from this moment; a `laterCrl` no longer lists it. */
  heldAt?: Date;
  password?: string;
}

export interface TestPkiOptions {
  /** Validity start of the CAs and default for users (default: now - 1 day). */
  notBefore?: Date;
  /** Validity end of users (default: notBefore + `days`). */
  notAfter?: Date;
  days?: number;
  /** Default keystore password. */
  password?: string;
  /** Which CAs to make (default both). */
  algorithms?: TestKeyAlgorithm[];
  users?: TestPkiUser[];
  /** The CRL's thisUpdate (default now) and nextUpdate (default thisUpdate + 7 days). */
  crlThisUpdate?: Date;
  crlNextUpdate?: Date;
  /**
   * Also a delta CRL per CA (`ca-<alg>-delta.crl`, deltaCRLIndicator critical) listing the users
   * named in `revoked` (revoked at its thisUpdate), over the base CRL numbered `baseNumber`
   * (default the complete CRL's own number). Default times: now .. now + 1 day.
   */
  deltaCrl?: { revoked?: string[]; thisUpdate?: Date; nextUpdate?: Date; baseNumber?: number };
  /** One more extension in the complete CRL (an empty SEQUENCE as its value): e.g. one no reader knows, critical. */
  crlExtraExtension?: { oid: string; critical: boolean };
  /** Also a later complete CRL per CA (`ca-<alg>-later.crl`): the revoked users still listed, every hold released. */
  laterCrl?: { thisUpdate: Date; nextUpdate?: Date };
}

export interface TestPkiKeystore {
  name: string;
  path: string;
  password: string;
  algorithm: TestKeyAlgorithm;
  serial: string;
  iin: string;
  bin: string | null;
  certificatePath: string;
}

export interface TestPkiResult {
  dir: string;
  /** CA certificate (PEM) per algorithm; give these as --trust. */
  caCertificates: Partial<Record<TestKeyAlgorithm, string>>;
  /** CRL (DER) per algorithm; give these as --crl. */
  crls: Partial<Record<TestKeyAlgorithm, string>>;
  /** Delta CRL (DER) per algorithm, when `deltaCrl` was asked for. */
  deltaCrls?: Partial<Record<TestKeyAlgorithm, string>>;
  /** The later complete CRL (DER) per algorithm, when `laterCrl` was asked for. */
  laterCrls?: Partial<Record<TestKeyAlgorithm, string>>;
  keystores: TestPkiKeystore[];
}

/** IIN/BIN check digit (Kazakhstan: weights 1..11, then 3..11,1,2 when the first sum gives 10). */
export function withKzChecksum(first11: string): string | null {
  const d = first11.split('').map(Number);
  const sum = (weights: number[]) => d.reduce((acc, digit, i) => acc + digit * weights[i], 0) % 11;
  let check = sum([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
  if (check === 10) check = sum([3, 4, 5, 6, 7, 8, 9, 10, 11, 1, 2]);
  return check === 10 ? null : `${first11}${check}`;
}

/** A checksum-valid IIN (born 1985-04-12, male, 20th century) whose middle digits come from `seed`. */
export function testIin(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  for (let i = 0; ; i++) {
    const middle = String((h.readUInt32BE(0) + i) % 10000).padStart(4, '0');
    const iin = withKzChecksum(`8504123${middle}`);
    if (iin) return iin;
  }
}

/** A checksum-valid BIN (registered 2005-06, legal entity) whose tail comes from `seed`. */
export function testBin(seed: string): string {
  const h = createHash('sha256').update(seed).digest();
  for (let i = 0; ; i++) {
    const tail = String((h.readUInt32BE(4) + i) % 100000).padStart(5, '0');
    const bin = withKzChecksum(`050640${tail}`);
    if (bin) return bin;
  }
}

interface Issuer {
  algorithm: TestKeyAlgorithm;
  subjectDer: Buffer;
  keyId: Buffer;
  sign(tbs: Buffer): Buffer;
  signatureAlgorithm: Buffer;
}

interface KeyPair {
  algorithm: TestKeyAlgorithm;
  spki: Buffer;
  /** The key identifier: SHA-1 of the public key bits (RFC 5280 4.2.1.2 method 1). */
  keyId: Buffer;
  privateKeyInfo: Buffer;
  sign(tbs: Buffer): Buffer;
  signatureAlgorithm: Buffer;
}

function rsaKeyPair(): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    algorithm: 'RSA',
    spki,
    keyId: createHash('sha1').update(spki).digest(),
    privateKeyInfo: privateKey.export({ format: 'der', type: 'pkcs8' }),
    sign: (tbs) => cryptoSign('sha256', tbs, privateKey as KeyObject),
    signatureAlgorithm: algorithmIdentifier(OID.sha256WithRSAEncryption),
  };
}

/** GOST 34.10-2015 512 in NCA's layout: d and x||y little-endian, parameters (curve A, Streebog-512). */
function gostKeyPair(): KeyPair {
  const d = randomBytes(64);
  d[63] &= 0x3f; // d < 2^510 < q, never zero in practice
  const publicKey = Buffer.from(gostPublicKeyFromPrivate(d));
  const algorithm = seq(oid(OID.gost2015Key512), seq(oid(OID.gost2015Curve512A), oid(OID.streebog512)));
  return {
    algorithm: 'GOST',
    spki: seq(algorithm, bitString(octetString(publicKey))),
    keyId: createHash('sha1').update(publicKey).digest(),
    privateKeyInfo: seq(unsignedInteger(0), algorithm, octetString(octetString(d))),
    sign: (tbs) => Buffer.from(gostSign(d, tbs)),
    signatureAlgorithm: algorithmIdentifier(OID.gost2015Signature512),
  };
}

const keyPair = (algorithm: TestKeyAlgorithm): KeyPair => (algorithm === 'RSA' ? rsaKeyPair() : gostKeyPair());

const rdn = (type: string, value: Buffer): Buffer => set(seq(oid(type), value));

/** KeyUsage BIT STRING from bit numbers (DER: trailing zero bits dropped). */
function keyUsage(bits: number[]): Buffer {
  const bytes = Buffer.alloc(2);
  for (const b of bits) bytes[b >> 3] |= 0x80 >> (b & 7);
  const used = bytes[1] ? bytes : bytes.subarray(0, 1);
  const last = used[used.length - 1];
  let unused = 0;
  while (unused < 8 && !(last & (1 << unused))) unused++;
  return bitString(used, unused);
}

const extension = (type: string, critical: boolean, value: Buffer): Buffer =>
  seq(oid(type), ...(critical ? [boolean(true)] : []), octetString(value));

function serialNumber(): Buffer {
  const s = randomBytes(20);
  s[0] &= 0x7f;
  s[0] |= 0x10;
  return s;
}

function certificate(options: {
  issuer: Issuer | null;
  subjectDer: Buffer;
  key: KeyPair;
  notBefore: Date;
  notAfter: Date;
  extensions: Buffer[];
}): { der: Buffer; serial: Buffer } {
  const serial = serialNumber();
  const signer: Issuer = options.issuer ?? {
    algorithm: options.key.algorithm,
    subjectDer: options.subjectDer,
    keyId: options.key.keyId,
    sign: options.key.sign,
    signatureAlgorithm: options.key.signatureAlgorithm,
  };
  const tbs = seq(
    explicit(0, unsignedInteger(2)),
    unsignedInteger(serial),
    signer.signatureAlgorithm,
    signer.subjectDer,
    seq(time(options.notBefore), time(options.notAfter)),
    options.subjectDer,
    options.key.spki,
    explicit(3, seq(...options.extensions)),
  );
  return { der: seq(tbs, signer.signatureAlgorithm, bitString(signer.sign(tbs))), serial };
}

/** The number of a CRL made at `thisUpdate` (seconds since 1970: a later CRL has a larger number). */
export const testCrlNumber = (thisUpdate: Date): number => Math.floor(thisUpdate.getTime() / 1000);

function crl(
  issuer: Issuer,
  revoked: { serial: Buffer; at: Date; reason?: number }[],
  thisUpdate: Date,
  nextUpdate: Date,
  options: { number?: number; deltaOf?: number; extra?: { oid: string; critical: boolean } } = {},
): Buffer {
  const { deltaOf, extra } = options;
  const entries = revoked.map((r) =>
    seq(unsignedInteger(r.serial), time(r.at), ...(r.reason === undefined ? [] : [seq(extension(OID.crlReason, false, Buffer.from([0x0a, 0x01, r.reason])))])),
  );
  const tbs = seq(
    unsignedInteger(1),
    issuer.signatureAlgorithm,
    issuer.subjectDer,
    time(thisUpdate),
    time(nextUpdate),
    ...(entries.length ? [seq(...entries)] : []),
    explicit(
      0,
      seq(
        extension(OID.authorityKeyIdentifier, false, seq(Buffer.concat([Buffer.from([0x80, issuer.keyId.length]), issuer.keyId]))),
        extension(OID.crlNumber, false, unsignedInteger(options.number ?? testCrlNumber(thisUpdate))),
        ...(deltaOf === undefined ? [] : [extension(OID.deltaCrlIndicator, true, unsignedInteger(deltaOf))]),
        ...(extra ? [extension(extra.oid, extra.critical, seq())] : []),
      ),
    ),
  );
  return seq(tbs, issuer.signatureAlgorithm, bitString(issuer.sign(tbs)));
}

const DAY = 86_400_000;
/** RFC 5280 5.3.1 CRLReason certificateHold. */
const CERTIFICATE_HOLD = 6;

/** The demo's users: each covers one case (see the README of the generated folder). */
export function defaultTestUsers(): TestPkiUser[] {
  const bin = testBin('demo-company');
  const org = 'ТОО "ДЕМО КОМПАНИЯ"';
  return [
    { name: 'rsa-individual', algorithm: 'RSA', surname: 'АХМЕТОВ', givenName: 'ЕРЛАН', iin: testIin('rsa-individual') },
    { name: 'rsa-ceo', algorithm: 'RSA', surname: 'СЕРИКОВА', givenName: 'АЙГЕРИМ', bin, organization: org, roles: [OID.roleOrganization, OID.roleCeo] },
    { name: 'rsa-accountant', algorithm: 'RSA', surname: 'ИВАНОВА', givenName: 'МАРИНА', bin, organization: org, roles: [OID.roleOrganization, OID.roleFinancialSigning] },
    { name: 'rsa-employee-no-finance', algorithm: 'RSA', surname: 'ПЕТРОВ', givenName: 'ОЛЕГ', bin, organization: org, roles: [OID.roleOrganization, OID.roleEmployee] },
    { name: 'rsa-auth', algorithm: 'RSA', surname: 'АХМЕТОВ', givenName: 'ЕРЛАН', iin: testIin('rsa-individual'), purpose: 'auth' },
    { name: 'rsa-revoked', algorithm: 'RSA', surname: 'ЖУМАБАЕВ', givenName: 'ДАНИЯР', revokedAt: new Date(Date.now() - 3_600_000) },
    { name: 'gost-ceo', algorithm: 'GOST', surname: 'СЕРИКОВА', givenName: 'АЙГЕРИМ', bin, organization: org, roles: [OID.roleOrganization, OID.roleCeo] },
    { name: 'gost-accountant', algorithm: 'GOST', surname: 'ИВАНОВА', givenName: 'МАРИНА', bin, organization: org, roles: [OID.roleOrganization, OID.roleFinancialSigning] },
  ];
}

/**
 * Generates the test PKI into `dir`: `ca-rsa.pem`, `ca-gost.pem`, `ca-rsa.crl`, `ca-gost.crl`,
 * `<user>.p12` (+ `<user>.pem`, the certificate) and `pki.json` (what was made, with the
 * passwords: test material only).
 */
export function makeTestPki(dir: string, options: TestPkiOptions = {}): TestPkiResult {
  mkdirSync(dir, { recursive: true });
  const notBefore = options.notBefore ?? new Date(Date.now() - DAY);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + (options.days ?? 365) * DAY);
  const password = options.password ?? 'Test1234';
  const users = options.users ?? defaultTestUsers();
  const algorithms = options.algorithms ?? ['RSA', 'GOST'];
  const result: TestPkiResult = { dir, caCertificates: {}, crls: {}, keystores: [] };
  const deltaRevoked: Record<TestKeyAlgorithm, { serial: Buffer; at: Date }[]> = { RSA: [], GOST: [] };
  const issuers: Partial<Record<TestKeyAlgorithm, { issuer: Issuer; certificateDer: Buffer; revoked: { serial: Buffer; at: Date; reason?: number }[] }>> = {};

  for (const algorithm of algorithms) {
    const key = keyPair(algorithm);
    const label = algorithm === 'RSA' ? 'RSA' : 'GOST';
    const subjectDer = seq(rdn(OID.commonName, utf8String(`ҰЛТТЫҚ КУӘЛАНДЫРУШЫ ОРТАЛЫҚ (${label}) CONNECTOR TEST`)), rdn(OID.country, printableString('KZ')));
    const ca = certificate({
      issuer: null,
      subjectDer,
      key,
      notBefore,
      notAfter: new Date(Math.max(notAfter.getTime(), notBefore.getTime()) + 5 * 365 * DAY),
      extensions: [
        extension(OID.basicConstraints, true, seq(boolean(true))),
        extension(OID.keyUsage, true, keyUsage([5, 6])),
        extension(OID.subjectKeyIdentifier, false, octetString(key.keyId)),
      ],
    });
    const path = join(dir, `ca-${algorithm.toLowerCase()}.pem`);
    writeFileSync(path, toPem(ca.der));
    result.caCertificates[algorithm] = path;
    issuers[algorithm] = {
      issuer: { algorithm, subjectDer, keyId: key.keyId, sign: key.sign, signatureAlgorithm: key.signatureAlgorithm },
      certificateDer: ca.der,
      revoked: [],
    };
  }

  for (const user of users) {
    const algorithm = user.algorithm ?? 'RSA';
    const ca = issuers[algorithm];
    if (!ca) throw new Error(`user ${user.name}: no ${algorithm} CA requested`);
    const key = keyPair(algorithm);
    const iin = user.iin ?? testIin(user.name);
    const organisation = user.bin !== undefined;
    const roles = user.roles ?? (organisation ? [OID.roleOrganization, OID.roleCeo] : [OID.roleIndividual]);
    const auth = user.purpose === 'auth';
    const subjectDer = seq(
      rdn(OID.commonName, utf8String(`${user.surname} ${user.givenName}`)),
      rdn(OID.surname, utf8String(user.surname)),
      rdn(OID.serialNumber, printableString(`IIN${iin}`)),
      rdn(OID.country, printableString('KZ')),
      ...(organisation ? [rdn(OID.organization, utf8String(user.organization ?? 'ТОО "ТЕСТ"')), rdn(OID.organizationalUnit, utf8String(`BIN${user.bin}`))] : []),
      rdn(OID.givenName, utf8String(user.givenName)),
    );
    const cert = certificate({
      issuer: ca.issuer,
      subjectDer,
      key,
      notBefore: user.notBefore ?? notBefore,
      notAfter: user.notAfter ?? notAfter,
      extensions: [
        extension(OID.keyUsage, true, auth ? keyUsage([0, 2]) : keyUsage([0, 1])),
        extension(OID.extKeyUsage, false, seq(oid(auth ? OID.clientAuth : OID.emailProtection), ...roles.map((r) => oid(r)))),
        extension(OID.certificatePolicies, false, seq(seq(oid(auth ? OID.policyAuth : OID.policySign)))),
        extension(OID.subjectKeyIdentifier, false, octetString(key.keyId)),
        extension(OID.authorityKeyIdentifier, false, seq(Buffer.concat([Buffer.from([0x80, ca.issuer.keyId.length]), ca.issuer.keyId]))),
      ],
    });
    if (user.revokedAt) ca.revoked.push({ serial: cert.serial, at: user.revokedAt });
    if (user.heldAt) ca.revoked.push({ serial: cert.serial, at: user.heldAt, reason: CERTIFICATE_HOLD });
    if (options.deltaCrl?.revoked?.includes(user.name)) deltaRevoked[algorithm].push({ serial: cert.serial, at: options.deltaCrl.thisUpdate ?? new Date() });
    const userPassword = user.password ?? password;
    const p12 = writePkcs12({
      privateKeyInfoDer: key.privateKeyInfo,
      certificateDer: cert.der,
      chainDer: [ca.certificateDer],
      password: userPassword,
      friendlyName: user.name,
    });
    key.privateKeyInfo.fill(0);
    const path = join(dir, `${user.name}.p12`);
    const certificatePath = join(dir, `${user.name}.pem`);
    writeFileSync(path, p12, { mode: 0o600 });
    writeFileSync(certificatePath, toPem(cert.der));
    result.keystores.push({
      name: user.name,
      path,
      password: userPassword,
      algorithm,
      serial: cert.serial.toString('hex').toUpperCase().replace(/^0+/, ''),
      iin,
      bin: user.bin ?? null,
      certificatePath,
    });
  }

  const thisUpdate = options.crlThisUpdate ?? new Date();
  const nextUpdate = options.crlNextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY);
  for (const algorithm of algorithms) {
    const ca = issuers[algorithm]!;
    const path = join(dir, `ca-${algorithm.toLowerCase()}.crl`);
    writeFileSync(path, crl(ca.issuer, ca.revoked, thisUpdate, nextUpdate, { extra: options.crlExtraExtension }));
    result.crls[algorithm] = path;
    if (options.laterCrl) {
      const later = options.laterCrl.thisUpdate;
      const laterPath = join(dir, `ca-${algorithm.toLowerCase()}-later.crl`);
      const released = ca.revoked.filter((r) => r.reason !== CERTIFICATE_HOLD);
      writeFileSync(laterPath, crl(ca.issuer, released, later, options.laterCrl.nextUpdate ?? new Date(later.getTime() + 7 * DAY)));
      (result.laterCrls ??= {})[algorithm] = laterPath;
    }
    if (options.deltaCrl) {
      const deltaThis = options.deltaCrl.thisUpdate ?? new Date();
      const deltaPath = join(dir, `ca-${algorithm.toLowerCase()}-delta.crl`);
      const base = options.deltaCrl.baseNumber ?? testCrlNumber(thisUpdate);
      // A delta is numbered after every complete CRL it follows (RFC 5280 5.2.3: one sequence for both).
      const number = Math.max(testCrlNumber(deltaThis), testCrlNumber(thisUpdate) + 1, base + 1);
      writeFileSync(deltaPath, crl(ca.issuer, deltaRevoked[algorithm], deltaThis, options.deltaCrl.nextUpdate ?? new Date(deltaThis.getTime() + DAY), { number, deltaOf: base }));
      (result.deltaCrls ??= {})[algorithm] = deltaPath;
    }
  }
  writeFileSync(join(dir, 'pki.json'), `${JSON.stringify(result, null, 2)}\n`);
  return result;
}

function main(argv: string[]): void {
  const args = [...argv];
  const dir = args.shift();
  if (!dir || dir.startsWith('-')) {
    process.stderr.write('usage: node dist/scripts/make-test-pki.js OUT_DIR [--days N] [--password P]\n');
    process.exitCode = 2;
    return;
  }
  const options: TestPkiOptions = {};
  for (let i = 0; i < args.length; i += 2) {
    if (args[i] === '--days') options.days = Number(args[i + 1]);
    else if (args[i] === '--password') options.password = args[i + 1];
    else {
      process.stderr.write(`unknown option ${args[i]}\n`);
      process.exitCode = 2;
      return;
    }
  }
  const result = makeTestPki(dir, options);
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

if (require.main === module) main(process.argv.slice(2));

