import { Builder, parseStringPromise } from 'xml2js';
import { formatAmount, parseAmount } from '../../../connector/shared/money';
import type { NormalisedOrder } from '../../../connector/orders/payment-order';

/**
 * The canonical signed payment order (DESIGN.md "The signed document"): one UTF-8 XML document
 * with a fixed element order, every requisite of the order and our external id. What a user signs
 * is exactly the Buffer `buildPaymentOrderDocument()` returns; the archive keeps it and the
 * bank (the sandbox) parses the same bytes back with `parsePaymentOrderDocument()`.
 *
 * Fixed form: every element is always present (an absent optional requisite is an empty element),
 * amounts have exactly two decimals, no trailing whitespace is trimmed from the purpose.
 */
export const PAYMENT_ORDER_NAMESPACE = 'urn:connector:kz:payment-order:1';
export const PAYMENT_ORDER_FORMAT = 'kz-payment-order-xml/1';

/** The requisites the document carries, in the contract's JSON shape (openapi PaymentRequisites). */
export interface PaymentRequisites {
  number: string;
  date: string;
  valueDate?: string;
  amount: string;
  currency: string;
  payer: { name: string; iinBin: string; iban: string; bic: string; kod: string };
  beneficiary: { name: string; iinBin: string; iban: string; bic: string; kbe: string };
  knp: string;
  kbk?: string;
  purpose: string;
}

export interface PaymentOrderDocument {
  externalId: string;
  requisites: PaymentRequisites;
}

export class DocumentError extends Error {
  readonly code = 'MALFORMED_DOCUMENT';
  constructor(message: string, readonly field?: string) {
    super(message);
    this.name = 'DocumentError';
  }
}

const EXTERNAL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
// XML 1.0 Char production: a string with anything else cannot be represented, so it cannot be signed.
// eslint-disable-next-line no-control-regex
const NOT_XML_CHAR = /[^\u0009\u000A\u000D\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

function text(field: string, value: string | undefined): string {
  const v = value ?? '';
  if (NOT_XML_CHAR.test(v)) throw new DocumentError(`${field} contains a character XML cannot carry`, field);
  // A carriage return would be normalised to \n by any XML parser: the signed bytes and the parsed
  // value would then differ. Refuse rather than sign something that reads back differently.
  if (v.includes('\r')) throw new DocumentError(`${field} contains a carriage return; use \\n line breaks`, field);
  return v;
}

/** Canonical requisites from a normalised order (amount normalised to two decimals). */
export function requisitesFromOrder(order: NormalisedOrder): PaymentRequisites {
  let amount: string;
  try {
    amount = formatAmount(parseAmount(order.amount));
  } catch (err) {
    throw new DocumentError(`amount: ${(err as Error).message}`, 'amount');
  }
  const requisites: PaymentRequisites = {
    number: order.number,
    date: order.date,
    amount,
    currency: order.currency,
    payer: { name: order.payer.name, iinBin: order.payer.iinBin, iban: order.payer.iban, bic: order.payer.bic, kod: order.payer.kod },
    beneficiary: {
      name: order.beneficiary.name,
      iinBin: order.beneficiary.iinBin,
      iban: order.beneficiary.iban,
      bic: order.beneficiary.bic,
      kbe: order.beneficiary.kbe,
    },
    knp: order.knp,
    purpose: order.purpose,
  };
  if (order.valueDate) requisites.valueDate = order.valueDate;
  if (order.kbk) requisites.kbk = order.kbk;
  return requisites;
}

/**
 * Builds the canonical XML and returns its bytes. Call once per order and keep the Buffer: those
 * bytes are what gets signed, archived and sent, never rebuilt (a rebuild by a newer version of
 * this function could differ by one byte and void every signature).
 */
export function buildPaymentOrderDocument(order: NormalisedOrder, externalId: string): Buffer {
  return buildFromRequisites({ externalId, requisites: requisitesFromOrder(order) });
}

export function buildFromRequisites(doc: PaymentOrderDocument): Buffer {
  const { externalId, requisites: r } = doc;
  if (!EXTERNAL_ID.test(externalId)) throw new DocumentError('externalId must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit', 'externalId');
  if (!ISO_DATE.test(r.date)) throw new DocumentError('date must be YYYY-MM-DD', 'date');
  if (r.valueDate !== undefined && !ISO_DATE.test(r.valueDate)) throw new DocumentError('valueDate must be YYYY-MM-DD', 'valueDate');
  // Insertion order is element order: xml2js's builder keeps it, so this literal is the layout.
  const root = {
    PaymentOrder: {
      $: { xmlns: PAYMENT_ORDER_NAMESPACE, version: '1' },
      ExternalId: externalId,
      Number: text('number', r.number),
      Date: r.date,
      ValueDate: r.valueDate ?? '',
      Amount: text('amount', r.amount),
      Currency: text('currency', r.currency),
      Payer: {
        Name: text('payer.name', r.payer.name),
        IinBin: text('payer.iinBin', r.payer.iinBin),
        Iban: text('payer.iban', r.payer.iban),
        Bic: text('payer.bic', r.payer.bic),
        Kod: text('payer.kod', r.payer.kod),
      },
      Beneficiary: {
        Name: text('beneficiary.name', r.beneficiary.name),
        IinBin: text('beneficiary.iinBin', r.beneficiary.iinBin),
        Iban: text('beneficiary.iban', r.beneficiary.iban),
        Bic: text('beneficiary.bic', r.beneficiary.bic),
        Kbe: text('beneficiary.kbe', r.beneficiary.kbe),
      },
      Knp: text('knp', r.knp),
      Kbk: text('kbk', r.kbk),
      Purpose: text('purpose', r.purpose),
    },
  };
  const builder = new Builder({
    xmldec: { version: '1.0', encoding: 'UTF-8' },
    renderOpts: { pretty: true, indent: '  ', newline: '\n' },
    headless: false,
  });
  return Buffer.from(`${builder.buildObject(root)}\n`, 'utf8');
}

type XmlNode = { [key: string]: unknown };

const ROOT_ORDER = ['ExternalId', 'Number', 'Date', 'ValueDate', 'Amount', 'Currency', 'Payer', 'Beneficiary', 'Knp', 'Kbk', 'Purpose'];
const PAYER_ORDER = ['Name', 'IinBin', 'Iban', 'Bic', 'Kod'];
const BENEFICIARY_ORDER = ['Name', 'IinBin', 'Iban', 'Bic', 'Kbe'];

function children(node: XmlNode, expected: string[], where: string): XmlNode {
  const keys = Object.keys(node).filter((k) => k !== '$' && k !== '_');
  if (keys.join(',') !== expected.join(',')) {
    throw new DocumentError(`${where}: expected elements ${expected.join(', ')} in this order, found ${keys.join(', ') || 'none'}`);
  }
  for (const k of keys) {
    const v = node[k];
    if (!Array.isArray(v) || v.length !== 1) throw new DocumentError(`${where}.${k}: expected exactly one element`);
  }
  return node;
}

function leaf(node: XmlNode, key: string, where: string): string {
  const v = (node[key] as unknown[])[0];
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const obj = v as XmlNode;
    const extra = Object.keys(obj).filter((k) => k !== '_' && k !== '$');
    if (extra.length === 0) return typeof obj._ === 'string' ? obj._ : '';
  }
  throw new DocumentError(`${where}.${key}: expected text`);
}

/**
 * Parses document bytes back. Strict: UTF-8 only, the fixed root, namespace, version and element
 * order; anything else is MALFORMED_DOCUMENT (the bank refuses what it cannot read unambiguously).
 */
export async function parsePaymentOrderDocument(bytes: Buffer): Promise<PaymentOrderDocument> {
  const xml = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let source: string;
  try {
    source = xml.decode(bytes);
  } catch {
    throw new DocumentError('the document is not valid UTF-8');
  }
  if (!/^<\?xml version="1\.0" encoding="UTF-8"\?>/.test(source)) throw new DocumentError('the document must start with <?xml version="1.0" encoding="UTF-8"?>');
  let parsed: XmlNode;
  try {
    parsed = (await parseStringPromise(source, { explicitArray: true, trim: false, normalize: false, explicitRoot: true, strict: true, includeWhiteChars: true })) as XmlNode;
  } catch (err) {
    throw new DocumentError(`the document is not well-formed XML: ${(err as Error).message.split('\n')[0]}`);
  }
  const root = parsed?.PaymentOrder as XmlNode | undefined;
  if (!root || Object.keys(parsed).length !== 1) throw new DocumentError('the root element must be PaymentOrder');
  const attrs = (root.$ ?? {}) as Record<string, string>;
  if (attrs.xmlns !== PAYMENT_ORDER_NAMESPACE || attrs.version !== '1') throw new DocumentError(`PaymentOrder must have xmlns="${PAYMENT_ORDER_NAMESPACE}" version="1"`);
  children(root, ROOT_ORDER, 'PaymentOrder');
  const payer = children(((root.Payer as unknown[])[0] ?? {}) as XmlNode, PAYER_ORDER, 'PaymentOrder.Payer');
  const ben = children(((root.Beneficiary as unknown[])[0] ?? {}) as XmlNode, BENEFICIARY_ORDER, 'PaymentOrder.Beneficiary');
  const g = (k: string) => leaf(root, k, 'PaymentOrder');
  const requisites: PaymentRequisites = {
    number: g('Number'),
    date: g('Date'),
    amount: g('Amount'),
    currency: g('Currency'),
    payer: {
      name: leaf(payer, 'Name', 'Payer'),
      iinBin: leaf(payer, 'IinBin', 'Payer'),
      iban: leaf(payer, 'Iban', 'Payer'),
      bic: leaf(payer, 'Bic', 'Payer'),
      kod: leaf(payer, 'Kod', 'Payer'),
    },
    beneficiary: {
      name: leaf(ben, 'Name', 'Beneficiary'),
      iinBin: leaf(ben, 'IinBin', 'Beneficiary'),
      iban: leaf(ben, 'Iban', 'Beneficiary'),
      bic: leaf(ben, 'Bic', 'Beneficiary'),
      kbe: leaf(ben, 'Kbe', 'Beneficiary'),
    },
    knp: g('Knp'),
    purpose: g('Purpose'),
  };
  const valueDate = g('ValueDate');
  if (valueDate) requisites.valueDate = valueDate;
  const kbk = g('Kbk');
  if (kbk) requisites.kbk = kbk;
  const externalId = g('ExternalId');
  if (!EXTERNAL_ID.test(externalId)) throw new DocumentError('ExternalId is not a valid external id', 'externalId');
  if (!ISO_DATE.test(requisites.date)) throw new DocumentError('Date must be YYYY-MM-DD', 'date');
  if (!/^\d{1,16}\.\d{2}$/.test(requisites.amount)) throw new DocumentError('Amount must be a decimal with two decimals, e.g. 7745.70', 'amount');
  return { externalId, requisites };
}

/** Canonical JSON of requisites for comparing what was signed with what was requested. */
export function canonicalRequisites(r: PaymentRequisites): string {
  return JSON.stringify([
    r.number, r.date, r.valueDate ?? '', r.amount, r.currency,
    r.payer.name, r.payer.iinBin, r.payer.iban, r.payer.bic, r.payer.kod,
    r.beneficiary.name, r.beneficiary.iinBin, r.beneficiary.iban, r.beneficiary.bic, r.beneficiary.kbe,
    r.knp, r.kbk ?? '', r.purpose,
  ]);
}
