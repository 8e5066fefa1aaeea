import recorded from './testdata/recorded-responses.json';
import { BankError, parseBankError, parseRetryAfter, redirectTarget, type BankFailure, type BankOperation } from './business-api.errors';

/**
 * Table test of the pure error parser against responses recorded from the sandbox
 * (testdata/recorded-responses.json) plus transport failures. What callers rely on: the code,
 * and for refusals the bank's reason code and a Russian text; for 429/503 the wait.
 */
type Recorded = { name: string; operation: BankOperation; status: number; headers: Record<string, string>; body: unknown };
const byName = new Map((recorded as Recorded[]).map((r) => [r.name, r]));
const fromRecording = (name: string): BankFailure => {
  const r = byName.get(name);
  if (!r) throw new Error(`no recording ${name}`);
  return { operation: r.operation, status: r.status, headers: r.headers, body: r.body };
};

describe('parseBankError', () => {
  const table: Array<[string, BankFailure, Partial<{ code: string; reasonCode: string; reasonText: string; retryAfterMs: number }>]> = [
    ['token wrong secret', fromRecording('token wrong secret'), { code: 'AUTH' }],
    ['expired or bad token', fromRecording('expired or bad token'), { code: 'AUTH' }],
    ['unknown document', fromRecording('unknown document'), { code: 'NOT_FOUND' }],
    ['unknown external id', fromRecording('unknown external id'), { code: 'NOT_FOUND' }],
    ['statement bad range', fromRecording('statement bad range'), { code: 'CONTRACT_VIOLATION' }],
    ['submit duplicate document', fromRecording('submit duplicate document'), { code: 'REJECTED', reasonCode: 'DUPLICATE_DOCUMENT' }],
    ['submit arrested account', fromRecording('submit arrested account'), { code: 'REJECTED', reasonCode: 'ACCOUNT_ARRESTED' }],
    ['submit mismatch', fromRecording('submit mismatch'), { code: 'REJECTED', reasonCode: 'DOCUMENT_MISMATCH' }],
    ['submit malformed body', fromRecording('submit malformed body'), { code: 'CONTRACT_VIOLATION' }],
    ['rate limited', fromRecording('rate limited'), { code: 'RATE_LIMITED', retryAfterMs: 3000 }],
    ['maintenance', fromRecording('maintenance'), { code: 'MAINTENANCE', retryAfterMs: 120_000 }],
    ['internal error on read', fromRecording('internal error on read'), { code: 'TRANSIENT' }],
    ['internal error on submit', fromRecording('internal error on submit'), { code: 'OUTCOME_UNKNOWN' }],
    ['credentials revoked on token', fromRecording('credentials revoked on token'), { code: 'CREDENTIALS_REVOKED' }],
    ['credentials revoked on call', fromRecording('credentials revoked on call'), { code: 'CREDENTIALS_REVOKED' }],
    ['503 without a body on submit: not processed', { operation: 'submit', status: 503, headers: { 'Retry-After': '30' }, body: '' }, { code: 'MAINTENANCE', retryAfterMs: 30_000 }],
    ['429 on submit is not an unknown outcome', { operation: 'submit', status: 429, headers: {}, body: { code: 'RATE_LIMITED', message: 'x' } }, { code: 'RATE_LIMITED' }],
    ['502 HTML from a proxy on a read', { operation: 'status', status: 502, headers: {}, body: '<html>Bad gateway</html>' }, { code: 'TRANSIENT' }],
    ['504 from a proxy on submit', { operation: 'submit', status: 504, headers: {}, body: '' }, { code: 'OUTCOME_UNKNOWN' }],
    ['AML refusal', { operation: 'submit', status: 422, body: { code: 'AML_REFUSAL', message: 'refused' } }, { code: 'REJECTED', reasonCode: 'AML_REFUSAL' }],
    ['insufficient funds', { operation: 'submit', status: 422, body: { code: 'INSUFFICIENT_FUNDS', message: 'no money' } }, { code: 'REJECTED', reasonCode: 'INSUFFICIENT_FUNDS' }],
    ['a 422 refusal with a code this release does not know is still a refusal, in the bank\'s words', { operation: 'submit', status: 422, body: { code: 'NEW_RULE_2027', message: 'KBK 105101 closed' } }, { code: 'REJECTED', reasonCode: 'NEW_RULE_2027', reasonText: 'Банк отказал: KBK 105101 closed' }],
    ['a 422 without a code on submit breaks the contract', { operation: 'submit', status: 422, body: '' }, { code: 'CONTRACT_VIOLATION' }],
    ['an unknown 409 code on submit is not read as a refusal', { operation: 'submit', status: 409, body: { code: 'NEW_CONFLICT', message: 'x' } }, { code: 'CONTRACT_VIOLATION' }],
    ['a compromise refusal of the token is about our access, not a document', { operation: 'token', status: 403, body: { code: 'CREDENTIALS_COMPROMISED', message: 'x' } }, { code: 'AUTH', reasonCode: 'CREDENTIALS_COMPROMISED' }],
    ['an identification refusal of a lookup is about our access: the order may be at the bank', { operation: 'lookup', status: 422, body: { code: 'AUTHENTICATION_IMPOSSIBLE', message: 'x' } }, { code: 'AUTH', reasonCode: 'AUTHENTICATION_IMPOSSIBLE' }],
    ['a document refusal code on a poll refuses no document', { operation: 'status', status: 422, body: { code: 'INSUFFICIENT_FUNDS', message: 'x' } }, { code: 'CONTRACT_VIOLATION' }],
    ['a 403 with a document refusal code on a statement is about our access', { operation: 'statement', status: 403, body: { code: 'ACCOUNT_ARRESTED', message: 'x' } }, { code: 'AUTH', reasonCode: 'ACCOUNT_ARRESTED' }],
    ['403 without the revoked code', { operation: 'accounts', status: 403, body: { code: 'FORBIDDEN', message: 'no' } }, { code: 'AUTH' }],
    ['a 3xx is unexpected', { operation: 'accounts', status: 302, body: '' }, { code: 'CONTRACT_VIOLATION' }],
    ['submit timed out after sending', { operation: 'submit', transportCode: 'ECONNABORTED' }, { code: 'OUTCOME_UNKNOWN' }],
    ['submit connection reset', { operation: 'submit', transportCode: 'ECONNRESET' }, { code: 'OUTCOME_UNKNOWN' }],
    ['submit cancelled by the caller', { operation: 'submit', transportCode: 'ERR_CANCELED' }, { code: 'OUTCOME_UNKNOWN' }],
    ['submit connection refused: never sent', { operation: 'submit', transportCode: 'ECONNREFUSED' }, { code: 'TRANSIENT' }],
    ['submit DNS failure: never sent', { operation: 'submit', transportCode: 'ENOTFOUND' }, { code: 'TRANSIENT' }],
    ['read timed out', { operation: 'lookup', transportCode: 'ETIMEDOUT' }, { code: 'TRANSIENT' }],
  ];

  it.each(table)('%s', (_name, failure, expected) => {
    const err = parseBankError(failure);
    expect(err).toBeInstanceOf(BankError);
    expect({ code: err.code, reasonCode: err.reasonCode, reasonText: err.details.reasonText, retryAfterMs: err.retryAfterMs }).toMatchObject(expected);
  });

  it('gives every recorded refusal a Russian text a person understands (R-23)', () => {
    for (const name of ['submit duplicate document', 'submit arrested account', 'submit mismatch']) {
      const err = parseBankError(fromRecording(name));
      expect(err.details.reasonText).toMatch(/^[А-ЯЁ][а-яё]/);
    }
    expect(parseBankError({ operation: 'submit', status: 422, body: { code: 'INSUFFICIENT_FUNDS', message: 'x' } }).details.reasonText).toMatch(/комисси/);
  });

  it('says what the admin must do on revoked credentials (R-2)', () => {
    expect(parseBankError(fromRecording('credentials revoked on call')).message).toMatch(/regenerate.*connector credentials rotate/);
    // A pair the bank blocked may come back as a plain 401 on the token: the admin is told that too.
    expect(parseBankError(fromRecording('token wrong secret')).message).toMatch(/check bank\.clientId .*blocked the pair .*regenerate.*connector credentials rotate/);
  });

  it('covers every recording', () => {
    expect(table.filter(([name]) => byName.has(name))).toHaveLength(byName.size - 2);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, ignores garbage', () => {
    const now = new Date('2026-11-25T10:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});

describe('redirectTarget', () => {
  it.each([
    ['https://u:p4ss@portal.example:8443/login?session=s3cr3t#f', 'https://portal.example:8443/login'],
    ['/api/v2/accounts?token=t0k3n', '/api/v2/accounts on the same host'],
    ['//other.example/x?y=1', '//other.example/x'],
    ['', undefined],
    [undefined, undefined],
    [['https://a.example/b?c=d'], 'https://a.example/b'],
  ])('%j -> %j', (location, shown) => {
    expect(redirectTarget(location)).toBe(shown);
  });
});
