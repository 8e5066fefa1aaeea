import { existsSync, readFileSync } from 'node:fs';
import { delimiter } from 'node:path';
import { z } from 'zod';
import { jsonFault } from '../../../config/json-fault';
import { makeIban, makeIinBin } from './sandbox.requisites';

/**
 * The sandbox's own configuration (it plays the bank, so it does not share the connector's):
 * a JSON file named by CONNECTOR_SANDBOX_CONFIG, then environment overrides. Every key has a
 * default that runs the demo: one client pair, a funded demo account, an arrested one.
 */
const decimal = z.string().regex(/^\d{1,16}\.\d{2}$/, 'expected a decimal with two decimals, e.g. "300.00"');
const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/);

/** Demo requisites: valid checksums, computed once. */
export const DEMO = {
  bankBin: makeIinBin('99074000001'),
  /** The demo company of the test PKI (scripts/make-test-pki.ts `testBin('demo-company')`): its keys sign for this payer. */
  payerBin: '050640872810',
  payerIban: makeIban('998', 'CTB0000000001'),
  arrestedIban: makeIban('998', 'CTB0000000002'),
  poorIban: makeIban('998', 'CTB0000000003'),
  internalBeneficiaryBin: makeIinBin('12034000000'),
  internalBeneficiaryIban: makeIban('998', 'CTB0000000100'),
  clientId: 'demo-client',
  clientSecret: 'demo-secret-change-me',
};

export const sandboxAccountSchema = z.object({
  iban: z.string().regex(/^KZ\d{2}[0-9A-Z]{16}$/),
  name: z.string().default(''),
  iinBin: z.string().default(''),
  bic: z.string().default('TSESKZKA'),
  currency: z.string().default('KZT'),
  /** Opening balance when the account is first created (later balances live in the database). */
  balance: decimal.default('0.00'),
  /** Decides the account's status at every start ("arrested accounts from config"). */
  status: z.enum(['active', 'suspended', 'arrested']).default('active'),
});

export const sandboxConfigSchema = z
  .object({
    host: z.string().default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8900),
    databaseUrl: z.string().regex(/^postgres(ql)?:\/\//).default('postgresql://postgres@127.0.0.1:5432/connector'),
    /** PostgreSQL schema of the sandbox's state (INTERFACES.md: `sandbox`); tests use their own. */
    schema: z.string().regex(/^[a-z_][a-z0-9_]*$/).default('sandbox'),
    /** API versions served under /api/{version}. */
    apiVersions: z.array(z.string().min(1)).default(['v1']),
    /**
     * The Client ID / Secret pairs the bank issued. `iinBin`: the company a pair belongs to; `GET
     * /accounts` lists only that company's accounts, as a bank does (absent: every account here).
     */
    clients: z
      .array(z.object({ clientId: z.string().min(1), clientSecret: z.string().min(8), iinBin: z.string().regex(/^\d{12}$/).optional() }))
      .min(1)
      .default([{ clientId: DEMO.clientId, clientSecret: DEMO.clientSecret, iinBin: DEMO.payerBin }]),
    tokenTtlSeconds: z.number().int().min(1).max(86_400).default(600),
    bank: z
      .object({
        bic: z.string().default('TSESKZKA'),
        name: z.string().default('АО "Alatau City Bank"'),
        bin: z.string().default(DEMO.bankBin),
        feeIban: z.string().default(makeIban('998', 'FEE0000000001')),
      })
      .default({}),
    /** Fees per payment: inside the bank and to another bank. */
    tariff: z.object({ intrabankFee: decimal.default('0.00'), interbankFee: decimal.default('300.00') }).default({}),
    accounts: z.array(sandboxAccountSchema).default([
      { iban: DEMO.payerIban, name: 'ТОО "Ромашка"', iinBin: DEMO.payerBin, balance: '10000000.00', status: 'active' },
      { iban: DEMO.arrestedIban, name: 'ТОО "Ромашка" (арест)', iinBin: DEMO.payerBin, balance: '500000.00', status: 'arrested' },
      { iban: DEMO.poorIban, name: 'ТОО "Ромашка" (резерв)', iinBin: DEMO.payerBin, balance: '100.00', status: 'active' },
      { iban: DEMO.internalBeneficiaryIban, name: 'ТОО "Внутренний"', iinBin: DEMO.internalBeneficiaryBin, balance: '0.00', status: 'active' },
    ]),
    /** Beneficiary IIN/BINs the bank's AML screening refuses. */
    amlBlockedIinBins: z.array(z.string()).default([]),
    clock: z
      .object({
        /** Simulated ms per real ms; 0 freezes the operational-day clock (tests step it). */
        speed: z.number().min(0).max(100_000).default(1),
        startAt: z.string().datetime({ offset: true }).optional(),
        acceptedToProcessingMs: z.number().int().min(0).default(1_000),
        processingToFinalMs: z.number().int().min(0).default(2_000),
        /** Operational-day cut-off, Kazakhstan time; later documents belong to the next day. Absent: 24/7 (demo). */
        cutoff: hhmm.optional(),
        /** Operational days are Monday to Friday (documents of a weekend wait for Monday). */
        businessDaysOnly: z.boolean().default(false),
        tickMs: z.number().int().min(10).max(60_000).default(200),
      })
      .default({}),
    /** Test mode (CONNECTOR_TEST_MODE=1): the NCA test CAs join the trust store (INTERFACES.md). */
    testMode: z.boolean().default(false),
    /** Trust store for signer certificates (beside NCA's production CAs): PEM/DER files or directories (the test CA), plus inline PEMs (tests). */
    trust: z.array(z.string()).default([]),
    trustPem: z.array(z.string()).default([]),
    /** CRL files or directories; a CRL that cannot be read fails closed (LESSONS.md 14). */
    crl: z.array(z.string()).default([]),
    /** Refuse a signer whose revocation could not be checked. */
    requireRevocation: z.boolean().default(false),
    /** How long a "timeout after accepting" fault holds the connection before dropping it. */
    hangMs: z.number().int().min(0).default(30_000),
  })
  .strict();

export type SandboxConfig = z.infer<typeof sandboxConfigSchema>;
export type SandboxConfigInput = z.input<typeof sandboxConfigSchema>;

export class SandboxConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
}

/**
 * File (CONNECTOR_SANDBOX_CONFIG) + environment: CONNECTOR_DATABASE_URL, CONNECTOR_SANDBOX_SCHEMA,
 * CONNECTOR_SANDBOX_CLIENT_ID + CONNECTOR_SANDBOX_CLIENT_SECRET (replace the demo pair),
 * CONNECTOR_SANDBOX_TRUST (extra CA files/directories) and CONNECTOR_SANDBOX_CRL (CRL files), both
 * separated like PATH, CONNECTOR_TEST_MODE.
 */
export function loadSandboxConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<SandboxConfigInput> = {}): SandboxConfig {
  let raw: Record<string, unknown> = {};
  const file = env.CONNECTOR_SANDBOX_CONFIG;
  if (file) {
    if (!existsSync(file)) throw new SandboxConfigError(`CONNECTOR_SANDBOX_CONFIG: ${file} does not exist`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new SandboxConfigError(`sandbox config ${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      raw = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // Where it breaks, never JSON.parse's words: Node quotes the text around the fault, and this
      // file holds the Client Secrets (and maybe a database password).
      throw new SandboxConfigError(`sandbox config ${file} is not valid JSON: ${jsonFault(text)}`);
    }
  }
  if (env.CONNECTOR_DATABASE_URL) raw.databaseUrl = env.CONNECTOR_DATABASE_URL;
  if (env.CONNECTOR_SANDBOX_SCHEMA) raw.schema = env.CONNECTOR_SANDBOX_SCHEMA;
  if (env.CONNECTOR_TEST_MODE === '1' || env.CONNECTOR_TEST_MODE === 'true') raw.testMode = true;
  // Extra trust anchors (e.g. the demo's test CA), separated like PATH.
  if (env.CONNECTOR_SANDBOX_CRL) raw.crl = [...((raw.crl as string[] | undefined) ?? []), ...env.CONNECTOR_SANDBOX_CRL.split(delimiter).filter(Boolean)];
  if (env.CONNECTOR_SANDBOX_TRUST) raw.trust = [...((raw.trust as string[] | undefined) ?? []), ...env.CONNECTOR_SANDBOX_TRUST.split(delimiter).filter(Boolean)];
  if (env.CONNECTOR_SANDBOX_CLIENT_ID || env.CONNECTOR_SANDBOX_CLIENT_SECRET) {
    if (!env.CONNECTOR_SANDBOX_CLIENT_ID || !env.CONNECTOR_SANDBOX_CLIENT_SECRET) {
      throw new SandboxConfigError('set both CONNECTOR_SANDBOX_CLIENT_ID and CONNECTOR_SANDBOX_CLIENT_SECRET, or neither');
    }
    // The pair replaces the demo's: the demo company's accounts stay its accounts.
    raw.clients = [{ clientId: env.CONNECTOR_SANDBOX_CLIENT_ID, clientSecret: env.CONNECTOR_SANDBOX_CLIENT_SECRET, iinBin: DEMO.payerBin }];
  }
  Object.assign(raw, overrides);
  const parsed = sandboxConfigSchema.safeParse(raw);
  if (!parsed.success) {
    // Secrets are never echoed: only key paths and the rule broken.
    throw new SandboxConfigError(parsed.error.issues.map((i) => `sandbox config: ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n'));
  }
  return parsed.data;
}
