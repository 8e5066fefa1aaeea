import { parseDer } from '../asn1/der.reader';
import { SignerError } from '../signer.errors';
import { formatName, parseName, type NameAttribute } from './x509.parser';

export interface RevokedEntry {
  serial: string;
  revokedAt: Date;
  /** RFC 5280 5.3.1 reason code when present (6 = certificateHold). */
  reason: number | null;
}

/** A CertificateList (RFC 5280 5.1) read with the exact TBS bytes its issuer signed. */
export interface ParsedCrl {
  der: Buffer;
  tbs: Buffer;
  signatureAlgorithm: string;
  signature: Buffer;
  issuerDer: Buffer;
  issuer: NameAttribute[];
  thisUpdate: Date;
  nextUpdate: Date | null;
  /** Keyed by upper-case hex serial. */
  revoked: Map<string, RevokedEntry>;
  /** Authority key identifier (hex) when the CRL carries one: tells CA keys of the same name apart. */
  authorityKeyId: string | null;
  /** cRLNumber (2.5.29.20), when present. */
  crlNumber: bigint | null;
  /**
   * A delta CRL's BaseCRLNumber (deltaCRLIndicator, 2.5.29.27), null for a complete CRL. A delta
   * lists only what changed since that base: alone it never says a certificate is not revoked.
   */
  deltaOf: bigint | null;
  /**
   * What keeps this CRL from saying "not revoked" about every certificate of its issuer: an
   * issuing distribution point (2.5.29.28: a partition of the CA's certificates), or a critical
   * extension this reader does not know (RFC 5280 5.2: such a CRL must not be relied on).
   */
  incomplete: string[];
}

const AUTHORITY_KEY_ID = '2.5.29.35';
const CRL_NUMBER = '2.5.29.20';
const DELTA_CRL_INDICATOR = '2.5.29.27';
const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
/** RFC 5280 5.3.1: in a delta CRL, "removeFromCRL" lifts a hold; it is no revocation. */
export const REASON_REMOVE_FROM_CRL = 8;

export function parseCrl(der: Buffer): ParsedCrl {
  try {
    const root = parseDer(Buffer.from(der)).expect(0x30, 'CertificateList');
    const [tbsNode, sigAlg, sig] = root.children();
    const parts = tbsNode.expect(0x30, 'TBSCertList').children();
    let i = 0;
    if (parts[0].tag === 0x02) i++; // version
    i++; // signature algorithm
    const issuerNode = parts[i++].expect(0x30, 'issuer');
    const thisUpdate = parts[i++].time();
    let nextUpdate: Date | null = null;
    if (parts[i] && (parts[i].tag === 0x17 || parts[i].tag === 0x18)) nextUpdate = parts[i++].time();
    const revoked = new Map<string, RevokedEntry>();
    if (parts[i] && parts[i].tag === 0x30) {
      for (const entry of parts[i++].children()) {
        const [serialNode, dateNode, extNode] = entry.children();
        let reason: number | null = null;
        if (extNode) {
          for (const ext of extNode.children()) {
            if (ext.child(0).oid() === '2.5.29.21') reason = parseDer(ext.children()[ext.children().length - 1].octets()).content[0] ?? null;
          }
        }
        const serial = serialNode.integerHex();
        revoked.set(serial, { serial, revokedAt: dateNode.time(), reason });
      }
    }
    let authorityKeyId: string | null = null;
    let crlNumber: bigint | null = null;
    let deltaOf: bigint | null = null;
    const incomplete: string[] = [];
    const extensions = parts[i]?.tag === 0xa0 ? parts[i].child(0).children() : [];
    for (const ext of extensions) {
      const extParts = ext.children();
      const oid = extParts[0].oid();
      const critical = extParts.length === 3 && extParts[1].tag === 0x01 && extParts[1].content[0] !== 0;
      const value = () => parseDer(extParts[extParts.length - 1].octets());
      if (oid === AUTHORITY_KEY_ID) {
        const keyId = value()
          .children()
          .find((c) => c.tag === 0x80);
        if (keyId) authorityKeyId = keyId.content.toString('hex').toUpperCase();
      } else if (oid === CRL_NUMBER) crlNumber = BigInt(`0x${value().integerHex()}`);
      else if (oid === DELTA_CRL_INDICATOR) deltaOf = BigInt(`0x${value().integerHex()}`);
      else if (oid === ISSUING_DISTRIBUTION_POINT) incomplete.push('an issuing distribution point (a partition of the CA\'s certificates)');
      else if (critical) incomplete.push(`a critical extension ${oid} this reader does not know`);
    }
    return {
      authorityKeyId,
      crlNumber,
      deltaOf,
      incomplete,
      der: root.raw,
      tbs: tbsNode.raw,
      signatureAlgorithm: sigAlg.child(0).oid(),
      signature: sig.bitStringBytes(),
      issuerDer: issuerNode.raw,
      issuer: parseName(issuerNode),
      thisUpdate,
      nextUpdate,
      revoked,
    };
  } catch (err) {
    if (err instanceof SignerError) throw err;
    throw new SignerError('INPUT_UNREADABLE', `not a CRL: ${(err as Error).message}`);
  }
}

export function describeCrl(crl: ParsedCrl): string {
  const next = crl.nextUpdate ? crl.nextUpdate.toISOString() : 'no next update';
  return `${crl.deltaOf !== null ? 'delta ' : ''}CRL of ${formatName(crl.issuer)} (${crl.thisUpdate.toISOString()} .. ${next})`;
}
