import { crlPathsFromConfig } from '../../../signer-agent/certificates/crl.refresher';
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { loadConfig } from '../../../config/load-config';
import { clockFromConfig } from '../../shared/clock';
import { UsageError } from '../../shared/errors';
import { writeFileAtomic } from '../../shared/atomic-file';
import { outFileError, outFilePath } from '../out-file';
import { readSecretFromStdin, runAction } from '../run-action';
import { defaultTrustPaths, loadCrls, loadTrustStore, type CrlSet, type TrustStore } from '../../../signer-agent/certificates/trust.store';
import { signDocument } from '../../../signer-agent/cms/cms.signer';
import { verifyCms } from '../../../signer-agent/cms/cms.verifier';
import { inspectPkcs12, openPkcs12 } from '../../../signer-agent/keystore/pkcs12.reader';
import { SignerError } from '../../../signer-agent/signer.errors';
import { parseKzInstant } from '../../calendar/kz-time';

/**
 * `connector sign`, `connector verify`, `connector keys inspect` (INTERFACES.md "CLI conventions"
 * and "Signatures"). Passwords come only from stdin; exit 0 done/valid, 1 refused/invalid,
 * 2 usage or unreadable input.
 */

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new SignerError('INPUT_UNREADABLE', `${what} ${path} cannot be read: ${(err as NodeJS.ErrnoException).code ?? err}`);
  }
}

function parseAt(value: string | undefined, fallback: () => Date): Date {
  if (value === undefined) return fallback();
  // Without an offset (a date alone: its start), Kazakhstan time: never the zone of the machine.
  const date = parseKzInstant(value, { dateOnly: true });
  if (!date) throw new UsageError(`--at "${value}" is not an ISO time; expected e.g. 2022-09-01T00:00:00Z (without an offset, Kazakhstan time)`);
  return date;
}

async function password(flag: boolean | undefined): Promise<string> {
  if (!flag) throw new UsageError('the keystore password is read from standard input only: add --password-stdin and pipe it in');
  return readSecretFromStdin('keystore password');
}

interface TrustOptions {
  trust?: string[];
  crl?: string[];
  requireRevocation?: boolean;
  at?: string;
}

/** Trust and CRLs: those given, else the configured ones (plus the NCA test CAs in test mode). */
function trustContext(opts: TrustOptions): { trust: TrustStore; crls: CrlSet; requireRevocation: boolean; at: Date } {
  const config = loadConfig();
  const trust = loadTrustStore(opts.trust?.length ? opts.trust : defaultTrustPaths(config));
  // Configured CRL URLs are refreshed into files by the agent's scheduler; the CLI reads files only.
  const crlPaths = opts.crl?.length ? opts.crl : crlPathsFromConfig(config);
  const at = parseAt(opts.at, () => clockFromConfig(config).now());
  return { trust, crls: loadCrls(crlPaths), requireRevocation: Boolean(opts.requireRevocation) || config.signer.requireRevocation, at };
}

function warn(lines: readonly string[]): void {
  for (const line of lines) process.stderr.write(`WARNING: ${line}\n`);
}


export function registerSignerCommands(program: Command): void {
  program
    .command('sign')
    .description('Sign a document: writes a detached CMS (DER). Refuses expired, not yet valid, revoked, untrusted or non-signing certificates.')
    .requiredOption('--p12 <file>', 'PKCS#12 keystore (RSA or GOST 34.10-2015)')
    .option('--password-stdin', 'read the keystore password from standard input (the only way to give it)')
    .requiredOption('--in <doc>', 'the document: its exact bytes are signed')
    .requiredOption('--out <sig.p7s>', 'where to write the CMS (DER)')
    .option('--cosign <existing.p7s>', 'add this signer to an existing CMS; the signers already in it are kept byte for byte')
    .option('--at <iso>', 'the signing moment: validity is judged there and it is written as signing-time (default now)')
    .option('--trust <path>', 'CA certificate(s): PEM/DER file or directory; repeatable (default: configured trust store)', collect)
    .option('--crl <file>', 'CRL file (DER or PEM); repeatable (default: configured CRLs)', collect)
    .option('--require-revocation', 'refuse (REVOCATION_UNKNOWN) when no current CRL covers the certificate')
    .action(
      runAction(async (opts: TrustOptions & { p12: string; passwordStdin?: boolean; in: string; out: string; cosign?: string }) => {
        const out = outFilePath('--out', opts.out, 'document.p7s');
        const secret = await password(opts.passwordStdin);
        const p12 = readInput(opts.p12, 'keystore');
        const content = readInput(opts.in, 'document');
        const cosign = opts.cosign ? readInput(opts.cosign, 'CMS to co-sign') : undefined;
        const ctx = trustContext(opts);
        const key = openPkcs12(p12, secret);
        try {
          const result = signDocument({
            key,
            content,
            signingTime: ctx.at,
            cosign,
            trust: ctx.trust,
            crls: ctx.crls,
            requireRevocation: ctx.requireRevocation,
          });
          await writeFileAtomic(out, result.cms, { mode: 0o644 }).catch((err: unknown) => {
            throw outFileError('--out', out, err);
          });
          warn(result.check.warnings);
          process.stderr.write(
            `signed ${opts.in} -> ${opts.out}: ${result.check.info.subject} (${key.algorithm}, serial ${result.check.info.serial}), ` +
              `signing-time ${result.signingTime.toISOString()}, revocation ${result.check.revocation}\n`,
          );
          return 0;
        } finally {
          key.wipe();
        }
      }),
    );

  program
    .command('verify')
    .description('Verify every signature of a CMS (attached or detached, RSA and GOST 2015); exit 0 when all are valid, 1 otherwise.')
    .requiredOption('--in <doc>', 'the signed document (for a detached CMS)')
    .requiredOption('--sig <sig.p7s>', 'the CMS (DER, PEM or base64)')
    .option('--trust <path>', 'CA certificate(s): PEM/DER file or directory; repeatable (default: configured trust store)', collect)
    .option('--crl <file>', 'CRL file (DER or PEM); repeatable (default: configured CRLs)', collect)
    .option('--at <iso>', 'the moment of verification (default now); each certificate must be valid at its signing-time and here')
    .option('--require-revocation', 'a signer without a current CRL is REVOCATION_UNKNOWN instead of valid with a warning')
    .option('--json', 'print {"valid","signers":[...]} on stdout')
    .action(
      runAction(async (opts: TrustOptions & { in: string; sig: string; json?: boolean }) => {
        const content = readInput(opts.in, 'document');
        const cms = readInput(opts.sig, 'signature');
        const ctx = trustContext(opts);
        const result = verifyCms(cms, { content, trust: ctx.trust, crls: ctx.crls, at: ctx.at, requireRevocation: ctx.requireRevocation });
        result.signers.forEach((s, i) => warn(s.warnings.map((w) => `signer #${i + 1}: ${w}`)));
        if (opts.json) {
          const signers = result.signers.map((s) => ({
            subject: s.subject,
            iin: s.iin,
            bin: s.bin,
            // INTERFACES.md: one of RSA-SHA256, GOST34.10-2015-512; a signer on any other key (GOST
            // 34.310-2004: UNSUPPORTED_ALGORITHM, its message naming it) is null, as one without a certificate.
            algorithm: s.algorithm === 'RSA-SHA256' || s.algorithm === 'GOST34.10-2015-512' ? s.algorithm : null,
            signingTime: s.signingTime,
            serial: s.serial,
            verdict: s.verdict,
            code: s.code,
            message: s.message,
          }));
          process.stdout.write(`${JSON.stringify({ valid: result.valid, signers })}\n`);
        } else {
          result.signers.forEach((s, i) => {
            const who = `${s.subject ?? 'unknown signer'} (${s.algorithm ?? '?'}, serial ${s.serial ?? '?'}, signing-time ${s.signingTime ?? 'none'})`;
            process.stdout.write(`signer #${i + 1}: ${s.verdict.toUpperCase()} ${who}${s.code ? `: ${s.code}: ${s.message}` : ''}\n`);
          });
          if (result.signers.length === 0) process.stdout.write('no signers\n');
        }
        result.signers.forEach((s, i) => {
          if (s.code) process.stderr.write(`${s.code}: signer #${i + 1}: ${s.message}\n`);
        });
        return result.valid ? 0 : 1;
      }),
    );

  const keys = program.command('keys').description('Keystores (PKCS#12)');
  keys
    .command('inspect')
    .description('Show what a keystore holds: algorithm, subject, IIN, BIN, role OIDs, key usage, validity.')
    .requiredOption('--p12 <file>', 'PKCS#12 keystore')
    .addOption(new Option('--password-stdin', 'read the keystore password from standard input'))
    .option('--json', 'print one JSON document on stdout')
    .action(
      runAction(async (opts: { p12: string; passwordStdin?: boolean; json?: boolean }) => {
        const secret = await password(opts.passwordStdin);
        // Shows also a key `sign` refuses (GOST 34.310-2004): an admin handed one must see whose it
        // is; that it cannot sign is said on stderr and in the JSON (canSign, warnings). Exit 0.
        const keystore = inspectPkcs12(readInput(opts.p12, 'keystore'), secret);
        const info = keystore.info;
        warn(keystore.warnings);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...info, chainCertificates: keystore.chainDer.length, canSign: keystore.canSign, warnings: keystore.warnings })}\n`);
          return 0;
        }
        const lines = [
          `algorithm:   ${info.algorithm}${keystore.canSign ? '' : ' (cannot sign: NCA replaced it, see the warning)'}`,
          `subject:     ${info.subject}`,
          `issuer:      ${info.issuer}`,
          `IIN:         ${info.iin ?? '-'}`,
          `BIN:         ${info.bin ?? '-'}`,
          `roles:       ${info.roles.map((r, i) => `${r} (${info.roleNames[i]})`).join(', ') || '-'}`,
          `key usage:   ${info.keyUsage.join(', ') || '-'}`,
          `ext. usage:  ${info.extendedKeyUsage.join(', ') || '-'}`,
          `policies:    ${info.policies.join(', ') || '-'}`,
          `valid:       ${info.notBefore} .. ${info.notAfter}`,
          `serial:      ${info.serial}`,
        ];
        process.stdout.write(`${lines.join('\n')}\n`);
        return 0;
      }),
    );
}
