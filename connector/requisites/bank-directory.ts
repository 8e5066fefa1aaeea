import banksData from './data/kz-banks.json';

/**
 * The directory of Kazakhstan banks: BIC and the 3-digit bank code inside an IIK (IBAN),
 * from data/kz-banks.json (built from the shared refdata; see its description).
 */
export interface BankEntry {
  bic: string;
  ibanCode: string;
  name: string;
  source?: string;
  note?: string;
  /** false: believed closed or merged; the BIC stays known so old statements still read. */
  active?: boolean;
  /** false: the IBAN code of this BIC was inferred, not read in a source. */
  ibanCodeVerified?: boolean;
}

export class BankDirectory {
  private readonly byBic = new Map<string, BankEntry>();
  private readonly byCode = new Map<string, BankEntry[]>();

  constructor(entries: readonly BankEntry[]) {
    for (const entry of entries) {
      this.byBic.set(entry.bic.toUpperCase(), entry);
      const list = this.byCode.get(entry.ibanCode) ?? [];
      list.push(entry);
      this.byCode.set(entry.ibanCode, list);
    }
  }

  /** By the 8-character BIC; an 11-character BIC with branch `XXX` is the same bank. */
  findByBic(bic: string): BankEntry | undefined {
    const key = bic.toUpperCase();
    return this.byBic.get(key.length === 11 && key.endsWith('XXX') ? key.slice(0, 8) : key);
  }

  findByIbanCode(code: string): readonly BankEntry[] {
    return this.byCode.get(code) ?? [];
  }
}

export const TREASURY_BIC = 'KKMFKZ2A';
export const TREASURY_IBAN_CODE = '070';

export const defaultBankDirectory = new BankDirectory((banksData as { banks: BankEntry[] }).banks);
