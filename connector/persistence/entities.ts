import { ArrayType, BigIntType, EntitySchema } from '@mikro-orm/core';
import type { OrderState } from '../orders/order-state';
import type { FieldError } from '../orders/payment-order';

/**
 * Persistence model. Tables are created by hand-written SQL migrations (migrations/), so the
 * database schema is reviewed like code; these schemas only map rows to objects.
 * Amounts are bigint columns of tiyn mapped to JS safe integers.
 */

const tiyn = () => ({ type: new BigIntType('number') });

export class PaymentOrder {
  id!: string;
  source!: string;
  erpDocumentId?: string | null;
  number!: string;
  docDate!: string;
  valueDate!: string;
  amountTiyn!: number;
  currency!: string;
  payerName!: string;
  payerIinBin!: string;
  payerIban!: string;
  payerBic!: string;
  payerKod!: string;
  beneficiaryName!: string;
  beneficiaryIinBin!: string;
  beneficiaryIban!: string;
  beneficiaryBic!: string;
  beneficiaryKbe!: string;
  knp!: string;
  kbk?: string | null;
  purpose!: string;
  state!: OrderState;
  version!: number;
  /** Stable id of this order at the bank, fixed at intake and reused on every retry (LESSONS.md 1). */
  externalId!: string;
  errors?: FieldError[] | null;
  warnings?: FieldError[] | null;
  lastError?: string | null;
  failedFrom?: OrderState | null;
  heldFrom?: OrderState | null;
  submitAttempts!: number;
  bankReference?: string | null;
  bankStatus?: string | null;
  bankReasonCode?: string | null;
  bankReasonText?: string | null;
  rawDocument?: string | null;
  createdAt!: Date;
  updatedAt!: Date;
  stateChangedAt!: Date;
}

export const PaymentOrderSchema = new EntitySchema<PaymentOrder>({
  class: PaymentOrder,
  tableName: 'payment_order',
  properties: {
    id: { type: 'uuid', primary: true },
    source: { type: 'string' },
    erpDocumentId: { type: 'string', nullable: true },
    number: { type: 'string' },
    docDate: { type: 'date' },
    valueDate: { type: 'date' },
    amountTiyn: tiyn(),
    currency: { type: 'string' },
    payerName: { type: 'string' },
    payerIinBin: { type: 'string' },
    payerIban: { type: 'string' },
    payerBic: { type: 'string' },
    payerKod: { type: 'string' },
    beneficiaryName: { type: 'string' },
    beneficiaryIinBin: { type: 'string' },
    beneficiaryIban: { type: 'string' },
    beneficiaryBic: { type: 'string' },
    beneficiaryKbe: { type: 'string' },
    knp: { type: 'string' },
    kbk: { type: 'string', nullable: true },
    purpose: { type: 'text' },
    state: { type: 'string' },
    version: { type: 'integer', version: true },
    externalId: { type: 'string' },
    errors: { type: 'json', nullable: true },
    warnings: { type: 'json', nullable: true },
    lastError: { type: 'text', nullable: true },
    failedFrom: { type: 'string', nullable: true },
    heldFrom: { type: 'string', nullable: true },
    submitAttempts: { type: 'integer' },
    bankReference: { type: 'string', nullable: true },
    bankStatus: { type: 'string', nullable: true },
    bankReasonCode: { type: 'string', nullable: true },
    bankReasonText: { type: 'text', nullable: true },
    rawDocument: { type: 'text', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime' },
    stateChangedAt: { type: 'datetime' },
  },
});

export class OrderEvent {
  id!: string;
  orderId!: string;
  fromState?: OrderState | null;
  toState!: OrderState;
  actor!: string;
  reason?: string | null;
  details?: unknown;
  /** The order as it was at this event (OrderEventSnapshot); null for events written before it was kept. */
  orderSnapshot?: unknown;
  at!: Date;
}

export const OrderEventSchema = new EntitySchema<OrderEvent>({
  class: OrderEvent,
  tableName: 'order_event',
  properties: {
    id: { type: 'bigint', primary: true, autoincrement: true },
    orderId: { type: 'uuid' },
    fromState: { type: 'string', nullable: true },
    toState: { type: 'string' },
    actor: { type: 'string' },
    reason: { type: 'text', nullable: true },
    details: { type: 'json', nullable: true },
    orderSnapshot: { type: 'json', nullable: true },
    at: { type: 'datetime' },
  },
});

export class AuditEvent {
  seq!: number;
  at!: Date;
  actor!: string;
  action!: string;
  subject?: string | null;
  details?: unknown;
  prevHash!: string;
  hash!: string;
}

export const AuditEventSchema = new EntitySchema<AuditEvent>({
  class: AuditEvent,
  tableName: 'audit_event',
  properties: {
    seq: { type: new BigIntType('number'), primary: true },
    at: { type: 'datetime' },
    actor: { type: 'string' },
    action: { type: 'string' },
    subject: { type: 'string', nullable: true },
    details: { type: 'json', nullable: true },
    prevHash: { type: 'string' },
    hash: { type: 'string' },
  },
});

export type IncidentStatus = 'open' | 'resolved';
export type IncidentSeverity = 'low' | 'medium' | 'high' | 'critical';
export interface TimelineEntry {
  at: string;
  actor: string;
  text: string;
}

export class Incident {
  id!: string;
  kind!: string;
  severity!: IncidentSeverity;
  status!: IncidentStatus;
  title!: string;
  evidence!: Record<string, unknown>;
  timeline!: TimelineEntry[];
  /** Same trigger, same key: one incident, not one per occurrence. */
  dedupeKey?: string | null;
  deadlineAt?: Date | null;
  openedAt!: Date;
  resolvedAt?: Date | null;
  resolvedBy?: string | null;
}

export const IncidentSchema = new EntitySchema<Incident>({
  class: Incident,
  tableName: 'incident',
  properties: {
    id: { type: 'uuid', primary: true },
    kind: { type: 'string' },
    severity: { type: 'string' },
    status: { type: 'string' },
    title: { type: 'text' },
    evidence: { type: 'json' },
    timeline: { type: 'json' },
    dedupeKey: { type: 'string', nullable: true },
    deadlineAt: { type: 'datetime', nullable: true },
    openedAt: { type: 'datetime' },
    resolvedAt: { type: 'datetime', nullable: true },
    resolvedBy: { type: 'string', nullable: true },
  },
});

export class ApiKey {
  id!: string;
  name!: string;
  /** SHA-256 of the key: keys are 256-bit random, so a fast hash is enough and lookups stay O(1). */
  keyHash!: string;
  keyPrefix!: string;
  accounts!: string[];
  createdAt!: Date;
  revokedAt?: Date | null;
  lastUsedAt?: Date | null;
}

export const ApiKeySchema = new EntitySchema<ApiKey>({
  class: ApiKey,
  tableName: 'api_key',
  properties: {
    id: { type: 'uuid', primary: true },
    name: { type: 'string' },
    keyHash: { type: 'string' },
    keyPrefix: { type: 'string' },
    accounts: { type: ArrayType },
    createdAt: { type: 'datetime' },
    revokedAt: { type: 'datetime', nullable: true },
    lastUsedAt: { type: 'datetime', nullable: true },
  },
});

export class Statement {
  id!: string;
  account!: string;
  currency!: string;
  periodFrom!: string;
  periodTo!: string;
  kind!: 'booked' | 'intraday';
  openingBalance!: number;
  closingBalance!: number;
  balanced!: boolean;
  source!: string;
  fetchedAt!: Date;
}

export const StatementSchema = new EntitySchema<Statement>({
  class: Statement,
  tableName: 'statement',
  properties: {
    id: { type: 'uuid', primary: true },
    account: { type: 'string' },
    currency: { type: 'string' },
    periodFrom: { type: 'date' },
    periodTo: { type: 'date' },
    kind: { type: 'string' },
    openingBalance: tiyn(),
    closingBalance: tiyn(),
    balanced: { type: 'boolean' },
    source: { type: 'string' },
    fetchedAt: { type: 'datetime' },
  },
});

export class StatementLine {
  id!: string;
  account!: string;
  bankLineId!: string;
  statementId?: string | null;
  bookingDate!: string;
  valueDate!: string;
  direction!: 'debit' | 'credit';
  amountTiyn!: number;
  currency!: string;
  status!: 'booked' | 'pending';
  kind!: 'payment' | 'fee' | 'tax' | 'other';
  isFee!: boolean;
  counterpartyName!: string;
  counterpartyIinBin!: string;
  counterpartyIban!: string;
  counterpartyBic!: string;
  purpose!: string;
  knp?: string | null;
  documentNumber?: string | null;
  documentDate?: string | null;
  bankReference?: string | null;
  externalId?: string | null;
  orderId?: string | null;
  createdAt!: Date;
}

export const StatementLineSchema = new EntitySchema<StatementLine>({
  class: StatementLine,
  tableName: 'statement_line',
  properties: {
    id: { type: 'uuid', primary: true },
    account: { type: 'string' },
    bankLineId: { type: 'string' },
    statementId: { type: 'uuid', nullable: true },
    bookingDate: { type: 'date' },
    valueDate: { type: 'date' },
    direction: { type: 'string' },
    amountTiyn: tiyn(),
    currency: { type: 'string' },
    status: { type: 'string' },
    kind: { type: 'string' },
    isFee: { type: 'boolean' },
    counterpartyName: { type: 'text' },
    counterpartyIinBin: { type: 'string' },
    counterpartyIban: { type: 'string' },
    counterpartyBic: { type: 'string' },
    purpose: { type: 'text' },
    knp: { type: 'string', nullable: true },
    documentNumber: { type: 'string', nullable: true },
    documentDate: { type: 'date', nullable: true },
    bankReference: { type: 'string', nullable: true },
    externalId: { type: 'string', nullable: true },
    orderId: { type: 'uuid', nullable: true },
    createdAt: { type: 'datetime' },
  },
});


export type UserRole = 'admin' | 'signer' | 'operator' | 'viewer';
export type BlockedReason = 'admin' | 'inactive';

/** A person using the connector. Secrets appear only as scrypt hashes and AES-GCM ciphertexts. */
export class AppUser {
  id!: string;
  login!: string;
  iin?: string | null;
  role!: UserRole;
  passwordHash!: string;
  passwordChangedAt!: Date;
  mustChangePassword!: boolean;
  failedAttempts!: number;
  lockedUntil?: Date | null;
  blockedReason?: BlockedReason | null;
  blockedAt?: Date | null;
  lastActivityAt!: Date;
  totpSecretEnc?: string | null;
  createdAt!: Date;
  updatedAt!: Date;
}

export const AppUserSchema = new EntitySchema<AppUser>({
  class: AppUser,
  tableName: 'app_user',
  properties: {
    id: { type: 'uuid', primary: true },
    login: { type: 'string' },
    iin: { type: 'string', nullable: true },
    role: { type: 'string' },
    passwordHash: { type: 'text' },
    passwordChangedAt: { type: 'datetime' },
    mustChangePassword: { type: 'boolean' },
    failedAttempts: { type: 'integer' },
    lockedUntil: { type: 'datetime', nullable: true },
    blockedReason: { type: 'string', nullable: true },
    blockedAt: { type: 'datetime', nullable: true },
    lastActivityAt: { type: 'datetime' },
    totpSecretEnc: { type: 'text', nullable: true },
    createdAt: { type: 'datetime' },
    updatedAt: { type: 'datetime' },
  },
});

/** what a user may do on one account ('*' = every account). */
export class UserAccountRight {
  id!: number;
  userId!: string;
  account!: string;
  rights!: 'info' | 'manage';
  signLimitTiyn?: number | null;
  signLevel?: 'first' | 'second' | null;
  grantedAt!: Date;
  grantedBy!: string;
}

export const UserAccountRightSchema = new EntitySchema<UserAccountRight>({
  class: UserAccountRight,
  tableName: 'user_account_right',
  properties: {
    id: { type: new BigIntType('number'), primary: true, autoincrement: true },
    userId: { type: 'uuid' },
    account: { type: 'string' },
    rights: { type: 'string' },
    signLimitTiyn: { type: new BigIntType('number'), nullable: true },
    signLevel: { type: 'string', nullable: true },
    grantedAt: { type: 'datetime' },
    grantedBy: { type: 'string' },
  },
});

/** the one Client ID / Client Secret pair of this installation; the secret only as ciphertext. */
export class CredentialVault {
  id!: number;
  clientId!: string;
  secretEnc!: string;
  generatedAt!: Date;
  lastUsedAt?: Date | null;
  revokedAt?: Date | null;
  revokedReason?: string | null;
  /** Who made the pair unusable: the bank's answer or a lockdown. */
  revokedSource?: CredentialsRevokedSource | null;
  updatedAt!: Date;
  updatedBy!: string;
}

export type CredentialsRevokedSource = 'bank' | 'lockdown';

export const CredentialVaultSchema = new EntitySchema<CredentialVault>({
  class: CredentialVault,
  tableName: 'credential_vault',
  properties: {
    id: { type: 'smallint', primary: true },
    clientId: { type: 'string' },
    secretEnc: { type: 'text' },
    generatedAt: { type: 'datetime' },
    lastUsedAt: { type: 'datetime', nullable: true },
    revokedAt: { type: 'datetime', nullable: true },
    revokedReason: { type: 'text', nullable: true },
    revokedSource: { type: 'string', nullable: true },
    updatedAt: { type: 'datetime' },
    updatedBy: { type: 'string' },
  },
});

export const ENTITIES = [
  PaymentOrderSchema,
  OrderEventSchema,
  AuditEventSchema,
  IncidentSchema,
  ApiKeySchema,
  StatementSchema,
  StatementLineSchema,
  AppUserSchema,
  UserAccountRightSchema,
  CredentialVaultSchema,
];
