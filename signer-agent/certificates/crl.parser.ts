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
}

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
    const extensions = parts[i]?.tag === 0xa0 ? parts[i].child(0).children() : [];
    for (const ext of extensions) {
      if (ext.child(0).oid() !== '2.5.29.35') continue;
      const keyId = parseDer(ext.children()[ext.children().length - 1].octets())
        .children()
        .find((c) => c.tag === 0x80);
      if (keyId) authorityKeyId = keyId.content.toString('hex').toUpperCase();
    }
    return {
      authorityKeyId,
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
  return `CRL of ${formatName(crl.issuer)} (${crl.thisUpdate.toISOString()} .. ${next})`;
}
