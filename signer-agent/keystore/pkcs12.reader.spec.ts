import { execFileSync } from 'node:child_process';
import { P12, readP12 } from '../../test/fixtures/nca/fixtures';
import { SignerError } from '../signer.errors';
import { inspectPkcs12, openPkcs12 } from './pkcs12.reader';

function opensslCertDer(path: string, password: string): Buffer {
  const pem = execFileSync('openssl', ['pkcs12', '-in', path, '-legacy', '-nokeys', '-clcerts', '-passin', `pass:${password}`], { stdio: ['ignore', 'pipe', 'ignore'] });
  return execFileSync('openssl', ['x509', '-outform', 'DER'], { input: pem });
}

describe('openPkcs12 on the real NCA test keystores', () => {
  it('opens the RSA signing key; the certificate bytes are exactly those OpenSSL extracts', () => {
    const key = openPkcs12(readP12(P12.rsaSign2021), P12.rsaSign2021.password);
    expect(key.algorithm).toBe('RSA-SHA256');
    expect(key.info.iin).toBe('123456789011');
    expect(key.info.serial).toBe('4279390A141F5353A62947B61ED65E81741467D1');
    expect(key.certificateDer.equals(opensslCertDer(P12.rsaSign2021.path, P12.rsaSign2021.password))).toBe(true);
  });

  it('WRONG_PASSWORD for a wrong password', () => {
    expect(() => openPkcs12(readP12(P12.rsaSign2021), 'Qwerty13')).toThrow(expect.objectContaining({ code: 'WRONG_PASSWORD' }));
    expect(() => openPkcs12(readP12(P12.gostIndividual), 'wrong')).toThrow(expect.objectContaining({ code: 'WRONG_PASSWORD' }));
  });

  it('refuses GOST 34.310-2004 naming the algorithm and its replacement', () => {
    let error: unknown;
    try {
      openPkcs12(readP12(P12.gost2004), P12.gost2004.password);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SignerError);
    expect((error as SignerError).code).toBe('UNSUPPORTED_ALGORITHM');
    expect((error as SignerError).message).toMatch(/GOST 34\.310-2004/);
    expect((error as SignerError).message).toMatch(/replaced .*GOST 34\.10-2015/);
  });

  it('inspectPkcs12 shows the certificate of a GOST 34.310-2004 keystore openPkcs12 refuses, marked as unable to sign', () => {
    const contents = inspectPkcs12(readP12(P12.gost2004), P12.gost2004.password);
    expect(contents.canSign).toBe(false);
    expect(contents.warnings).toEqual([expect.stringMatching(/GOST 34\.310-2004.*replaced .*GOST 34\.10-2015/)]);
    expect(contents.info).toMatchObject({ algorithm: 'GOST34.310-2004', iin: '123456789011', bin: '123456789021', serial: '12E3E7B9966D09EB9CDA64251457E815C2A8DDED' });
    expect(contents.certificateDer.equals(opensslCertDer(P12.gost2004.path, P12.gost2004.password))).toBe(true);
    expect(() => inspectPkcs12(readP12(P12.gost2004), 'Qwerty13')).toThrow(expect.objectContaining({ code: 'WRONG_PASSWORD' }));
  });

  it('inspectPkcs12 of a key that signs: the certificate openPkcs12 finds', () => {
    const contents = inspectPkcs12(readP12(P12.gostCeoRevoked), P12.gostCeoRevoked.password);
    expect(contents).toMatchObject({ canSign: true, warnings: [] });
    const key = openPkcs12(readP12(P12.gostCeoRevoked), P12.gostCeoRevoked.password);
    expect(contents.certificateDer.equals(key.certificateDer)).toBe(true);
    expect(contents.info).toEqual(key.info);
    key.wipe();
  });

  it('reads the GOST 2015 certificate from bag.asn1 (IIN, algorithm, roles)', () => {
    const bytes = readP12(P12.gostCeoRevoked);
    // Opening needs the GOST math only to pair key and certificate when ids are missing; the ids are there.
    const key = openPkcs12(bytes, P12.gostCeoRevoked.password);
    expect(key.algorithm).toBe('GOST34.10-2015-512');
    expect(key.info.iin).toBe('123456789011');
    expect(key.info.bin).toBe('123456789021');
    expect(key.info.roles).toEqual(['1.2.398.3.3.4.1.2', '1.2.398.3.3.4.1.2.1']);
    expect(key.info.organisation).toBe(true);
    expect(key.info.financialSigningRole).toBe(true);
    const material = key.material();
    expect(material.algorithm === 'GOST34.10-2015-512' && material.d.length).toBe(64);
  });

  it('wipe() zeroes the GOST private scalar and makes the key unusable', () => {
    const key = openPkcs12(readP12(P12.gostIndividual), P12.gostIndividual.password);
    const material = key.material();
    if (material.algorithm !== 'GOST34.10-2015-512') throw new Error('expected GOST');
    expect(material.d.some((b) => b !== 0)).toBe(true);
    key.wipe();
    expect(key.wiped).toBe(true);
    expect(material.d.every((b) => b === 0)).toBe(true);
    expect(() => key.sign(Buffer.from('x'))).toThrow(/wiped/);
  });

  it('an RSA key signs until wiped', () => {
    const key = openPkcs12(readP12(P12.rsaSign2021), P12.rsaSign2021.password);
    expect(key.sign(Buffer.from('doc')).length).toBe(256);
    key.wipe();
    expect(() => key.sign(Buffer.from('doc'))).toThrow(SignerError);
  });
});
