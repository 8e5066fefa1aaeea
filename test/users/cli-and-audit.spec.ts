import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { verifyAudit } from '../../connector/audit/audit.log';
import { buildProgram } from '../../connector/cli/main';
import { findUser } from '../../connector/users/user.service';
import { getIncident, listIncidents, openIncident } from '../../connector/incidents/incident.service';
import { intakeOrders } from '../../connector/intake/order-intake';
import { transitionOrder } from '../../connector/orders/order-state.machine';
import { sampleOrder } from '../support/orders.fixture';
import { loadSigner, mayUserSign } from '../../connector/users/authority';
import { startUsersTestEnv, type UsersTestEnv } from './users-test.env';

/**
 * The CLI in-process against a real database (INTERFACES.md: exit codes 0/1/2, secrets from
 * stdin only), and the audit log's tamper evidence: a modified, deleted or reordered record is
 * named by verifyAudit and makes `connector audit verify` exit 1.
 */
let env: UsersTestEnv;
const savedEnv = { ...process.env };

beforeAll(async () => {
  env = await startUsersTestEnv({ start: '2026-03-02T04:00:00Z' });
  Object.assign(process.env, {
    CONNECTOR_DATABASE_URL: env.dbUrl,
    CONNECTOR_REDIS_PREFIX: env.prefix,
    CONNECTOR_MASTER_KEY_FILE: env.context.config.masterKeyFile,
    CONNECTOR_SIGNER_URL: 'http://127.0.0.1:9',
    CONNECTOR_SIGNER_TOKEN_FILE: join(env.dir, 'signer.token'),
    CONNECTOR_LOG_LEVEL: 'silent',
  });
  delete process.env.CONNECTOR_CONFIG;
});
afterAll(async () => {
  process.env = savedEnv;
  await env?.close();
});

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], stdin?: string): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => (out.push(String(chunk)), true));
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => (err.push(String(chunk)), true));
  const originalStdin = Object.getOwnPropertyDescriptor(process, 'stdin')!;
  if (stdin !== undefined) Object.defineProperty(process, 'stdin', { value: Readable.from([Buffer.from(stdin)]), configurable: true });
  process.exitCode = undefined;
  try {
    try {
      await buildProgram().parseAsync(['node', 'connector', ...args]);
    } catch (e) {
      // commander's exitOverride: usage errors.
      if ((e as { exitCode?: number }).exitCode === undefined) throw e;
      process.exitCode = (e as { exitCode: number }).exitCode === 0 ? 0 : 2;
    }
    return { code: Number(process.exitCode ?? 0), stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.exitCode = undefined;
    stdout.mockRestore();
    stderr.mockRestore();
    Object.defineProperty(process, 'stdin', originalStdin);
  }
}

describe('connector users / credentials', () => {
  test('users add reads the password from stdin; never from argv', async () => {
    expect((await cli(['users', 'add', 'ivanov', '--role', 'signer', '--iin', '880712300141', '--password-stdin'], 'Ivanov-Start-1\n')).code).toBe(0);
    const noStdin = await cli(['users', 'add', 'petrov', '--role', 'signer']);
    expect(noStdin.code).toBe(2);
    expect(noStdin.stderr).toMatch(/--password-stdin/);
    const weak = await cli(['users', 'add', 'weak', '--role', 'viewer', '--password-stdin'], 'password\n');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toMatch(/^TOO_SIMPLE: /m);
    expect((await cli(['users', 'add', 'ivanov', '--role', 'viewer', '--password-stdin'], 'Ivanov-Start-2\n')).stderr).toMatch(/LOGIN_TAKEN/);
    expect((await cli(['users', 'add', 'x', '--role', 'boss', '--password-stdin'], 'Ivanov-Start-2\n')).code).toBe(2);
  });


  test('a password typed where the login goes is refused without being shown: its length and the rule broken instead (R-4)', async () => {
    const notALogin = 'Kz Secret!Pw-2026';
    const add = await cli(['users', 'add', notALogin, '--role', 'viewer', '--password-stdin'], 'Viewer-Start-1\n');
    expect(add.code).toBe(2);
    expect(add.stderr).toMatch(/^INVALID_LOGIN: the login given \(17 characters: it has a character other than latin letters, digits, "\.", "_", "@", "-"; not repeated here/m);
    // Lowercased, a password can look like a login: nobody has it, and it is not shown either.
    for (const typed of [notALogin, 'Kz-Secret-Pw-2026']) {
      for (const run of [
        await cli(['users', 'show', typed]),
        await cli(['users', 'block', typed]),
        await cli(['users', 'reset-password', typed, '--password-stdin'], 'Viewer-Reset-1\n'),
      ]) {
        expect(run.code).toBe(1);
        expect(run.stderr).toMatch(/^USER_NOT_FOUND: no user has the login given \(17 characters/m);
        expect(run.stderr.toLowerCase()).not.toContain('secret');
      }
    }
  });

  test('an IIN or an account that `connector validate` refuses is refused the same way by users add, users grant and api-keys create', async () => {
    const em = () => env.context.orm.em.fork();
    // 12 digits, but the 12th is not the check digit: `validate --iin` exits 1 on it.
    const validate = await cli(['validate', '--iin', '860101300011']);
    expect([validate.code, validate.stderr]).toEqual([1, expect.stringMatching(/^IIN_BIN_CHECKSUM: /m)]);
    const add = await cli(['users', 'add', 'badiin', '--role', 'signer', '--iin', '860101300011', '--password-stdin'], 'Badiin-Start-1\n');
    expect([add.code, add.stderr]).toEqual([1, expect.stringMatching(/^INVALID_IIN: iin "860101300011" breaks IIN_BIN_CHECKSUM: IIN\/BIN 860101300011: check digit \(12th\) does not match \(ИИН\/БИН/m)]);
    expect(await findUser(em(), 'badiin')).toBeNull();
    // Check digit right, but no birth date in it (month 13): not an IIN either.
    const structure = await cli(['users', 'add', 'badiin', '--role', 'signer', '--iin', '851315300011', '--password-stdin'], 'Badiin-Start-1\n');
    expect([structure.code, structure.stderr]).toEqual([1, expect.stringMatching(/^INVALID_IIN: iin "851315300011" breaks IIN_STRUCTURE: /m)]);
    expect(await findUser(em(), 'badiin')).toBeNull();
    expect((await cli(['users', 'add', 'goodiin', '--role', 'signer', '--iin', '850315300019', '--password-stdin'], 'Goodiin-Start-1\n')).code).toBe(0);

    // KZ + 18 characters, but mod-97 fails (a typo in the account number).
    expect((await cli(['validate', '--iban', 'KZ00998CTB0000000001'])).code).toBe(1);
    const grant = await cli(['users', 'grant', 'goodiin', '--account', 'KZ00998CTB0000000001', '--rights', 'info']);
    expect([grant.code, grant.stderr]).toEqual([1, expect.stringMatching(/^INVALID_ACCOUNT: account "KZ00998CTB0000000001" breaks IBAN_CHECKSUM: /m)]);
    expect((await cli(['users', 'grant', 'goodiin', '--account', 'KZ88998CTB0000000001', '--rights', 'info'])).code).toBe(0);
    expect((await cli(['users', 'grant', 'goodiin', '--account', 'all', '--rights', 'info'])).code).toBe(0);
    expect(JSON.parse((await cli(['users', 'show', 'goodiin', '--json'])).stdout).rights.map((r: { account: string }) => r.account).sort()).toEqual(['KZ88998CTB0000000001', 'all']);

    const key = await cli(['api-keys', 'create', 'erp-typo', '--accounts', 'KZ88998CTB0000000001,KZ00998CTB0000000001']);
    expect([key.code, key.stdout, key.stderr]).toEqual([1, '', expect.stringMatching(/^INVALID_ACCOUNT: accounts "KZ00998CTB0000000001" breaks IBAN_CHECKSUM: /m)]);
    expect(await em().execute("select 1 from api_key where name = 'erp-typo'")).toEqual([]);
    // `--accounts ""` (an empty shell variable) or only commas: the flag names no account. It used to
    // make a key for no account, as if the flag were left out; now a usage error naming the flag.
    for (const empty of ['', ' ', ',', ' , ']) {
      const none = await cli(['api-keys', 'create', 'erp-empty', '--accounts', empty]);
      expect([empty, none.code, none.stdout, none.stderr]).toEqual([empty, 2, '', expect.stringMatching(/^USAGE: --accounts ".*" names no account/m)]);
    }
    expect(await em().execute("select 1 from api_key where name = 'erp-empty'")).toEqual([]);
    const good = await cli(['api-keys', 'create', 'erp-typo', '--accounts', 'KZ88998CTB0000000001']);
    expect([good.code, good.stdout]).toEqual([0, expect.stringMatching(/^ck_/)]);
  });

  test('users set-iin: a user added without an IIN can enroll a key after all; not once they have signatures that count', async () => {
    const em = () => env.context.orm.em.fork();
    expect((await cli(['users', 'add', 'noiin', '--role', 'signer', '--password-stdin'], 'Noiin-Start-1\n')).code).toBe(0);
    expect((await cli(['users', 'enroll-key', 'noiin', '--keystore', '/nonexistent.p12'])).stderr).toMatch(/^IIN_MISSING: .*connector users set-iin noiin IIN/m);
    expect((await cli(['users', 'set-iin', 'noiin', '860101300011'])).stderr).toMatch(/^INVALID_IIN: /m);
    const set = await cli(['users', 'set-iin', 'noiin', '850315300019']);
    expect([set.code, set.stderr]).toEqual([0, expect.stringContaining('IIN of noiin set to 850315300019')]);
    expect(JSON.parse((await cli(['users', 'show', 'noiin', '--json'])).stdout).iin).toBe('850315300019');
    // Once it has signed, the person is that IIN's: another IIN is another user.
    const user = (await findUser(em(), 'noiin'))!;
    const [order] = await intakeOrders(em(), 'iin-test', [{ order: sampleOrder({ number: 'IIN-1' }) }], { enqueueValidate: async () => undefined }, { actor: 'test' });
    {
      await em().execute(
        `insert into order_signature (order_id, user_id, login, level, algorithm, serial, subject, iin, signing_time, document_sha256, cms, created_at)
         values (?, ?, 'noiin', 'first', 'RSA-SHA256', '01', 'CN=x', '850315300019', now(), 'x', '\\x00', now())`,
        [order.orderId, user.id],
      );
      const refused = await cli(['users', 'set-iin', 'noiin', '880712300141']);
      expect([refused.code, refused.stderr]).toEqual([1, expect.stringMatching(/^IIN_IN_USE: noiin has 1 signature\(s\) that count/m)]);
      await em().execute('delete from order_signature where user_id = ?', [user.id]);
    }
    expect(await em().execute("select action from audit_event where subject = 'noiin' and action = 'user.iin_set'")).toHaveLength(1);
  });

  test('api-keys grant / revoke-accounts: a key created without accounts is given some later (INTERFACES.md: "until one is granted"), audited', async () => {
    const accountsOf = async (name: string) => (JSON.parse((await cli(['api-keys', 'list', '--json'])).stdout) as { apiKeys: Array<{ name: string; accounts: string[] }> }).apiKeys.find((k) => k.name === name)?.accounts;
    expect((await cli(['api-keys', 'create', 'erp-later'])).code).toBe(0);
    expect(await accountsOf('erp-later')).toEqual([]);
    const bad = await cli(['api-keys', 'grant', 'erp-later', '--accounts', 'KZ00998CTB0000000001']);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/^INVALID_ACCOUNT: /m)]);
    const granted = await cli(['api-keys', 'grant', 'erp-later', '--accounts', 'KZ88998CTB0000000001,KZ69998CTA0000000101']);
    expect([granted.code, granted.stderr]).toEqual([0, expect.stringContaining('may now submit for: KZ88998CTB0000000001, KZ69998CTA0000000101')]);
    expect(await accountsOf('erp-later')).toEqual(['KZ88998CTB0000000001', 'KZ69998CTA0000000101']);
    expect((await cli(['api-keys', 'revoke-accounts', 'erp-later', '--accounts', 'KZ88998CTB0000000001'])).code).toBe(0);
    expect(await accountsOf('erp-later')).toEqual(['KZ69998CTA0000000101']);
    expect((await cli(['api-keys', 'grant', 'nokey', '--accounts', 'KZ88998CTB0000000001'])).stderr).toMatch(/^NOT_FOUND: /m);
    // Taking an account the key does not have is a mistake said as one, not a silent success.
    expect((await cli(['api-keys', 'revoke-accounts', 'erp-later', '--accounts', 'KZ88998CTB0000000001'])).stderr).toMatch(/^ACCOUNT_NOT_GRANTED: .*has: KZ69998CTA0000000101/m);
    expect(await env.context.orm.em.fork().execute("select action from audit_event where subject = 'erp-later' order by seq")).toEqual([
      { action: 'api_key.created' },
      { action: 'api_key.accounts_changed' },
      { action: 'api_key.accounts_changed' },
    ]);
  });

  test('api-keys create under the name of a revoked key (rotating an ERP\'s key) says to choose another name, not to revoke it', async () => {
    expect((await cli(['api-keys', 'create', 'erp-rotated'])).code).toBe(0);
    const live = await cli(['api-keys', 'create', 'erp-rotated']);
    expect([live.code, live.stderr]).toEqual([1, expect.stringMatching(/^NAME_TAKEN: an API key named "erp-rotated" already exists; revoke it or choose another name/m)]);
    expect((await cli(['api-keys', 'revoke', 'erp-rotated'])).code).toBe(0);
    const again = await cli(['api-keys', 'create', 'erp-rotated']);
    expect([again.code, again.stdout]).toEqual([1, '']);
    expect(again.stderr).toMatch(/^NAME_TAKEN: the API key named "erp-rotated" was revoked on .*: choose another name, e\.g\. "erp-rotated-2"/m);
    expect(again.stderr).not.toMatch(/revoke it/);
  });

  test('grant / revoke / show / list / block / unblock / reset-password', async () => {
    await cli(['users', 'add', 'signer1', '--role', 'signer', '--password-stdin'], 'Signer-Start-1\n');
    const grant = await cli(['users', 'grant', 'signer1', '--account', 'KZ69998CTA0000000101', '--rights', 'manage', '--limit', '1000000.00', '--level', 'second']);
    expect(grant.code).toBe(0);
    expect((await cli(['users', 'grant', 'signer1', '--account', 'all', '--rights', 'info'])).code).toBe(0);
    // A value that is not an IBAN is invalid input (exit 1, INTERFACES.md), named with its rule.
    const notIban = await cli(['users', 'grant', 'signer1', '--account', 'KZ1', '--rights', 'info']);
    expect([notIban.code, notIban.stderr]).toEqual([1, expect.stringMatching(/^INVALID_ACCOUNT: account "KZ1" breaks IBAN_FORMAT: /m)]);
    const shown = JSON.parse((await cli(['users', 'show', 'signer1', '--json'])).stdout);
    expect(shown.rights).toHaveLength(2);
    expect(shown.rights).toEqual(
      expect.arrayContaining([
        { account: 'KZ69998CTA0000000101', rights: 'manage', limitTiyn: 100_000_000, level: 'second' },
        { account: 'all', rights: 'info', limitTiyn: null, level: null },
      ]),
    );
    const id = (await findUser(env.context.orm.em.fork(), 'signer1'))!.id;
    expect(await mayUserSign(env.context.orm.em.fork(), id, 'KZ69998CTA0000000101', 100_000_000)).toMatchObject({ allowed: true, level: 'second' });
    expect(await mayUserSign(env.context.orm.em.fork(), id, 'KZ58998CTA0000000202', 1)).toMatchObject({ allowed: false, reason: 'INFO_ONLY' });
    expect(await mayUserSign(env.context.orm.em.fork(), id, 'KZ69998CTA0000000101', 100_000_001)).toMatchObject({ allowed: false, reason: 'OVER_LIMIT', limitTiyn: 100_000_000 });
    // The pipeline loads a signer by id or by login, with their rights, in one statement: the same record either way.
    const byId = await loadSigner(env.context.orm.em.fork(), id);
    const byLogin = await loadSigner(env.context.orm.em.fork(), { login: 'signer1' });
    expect(byLogin?.user.id).toBe(id);
    expect(byId?.rights).toEqual(byLogin?.rights);
    expect(byId?.rights.map((r) => [r.account, r.rights, r.signLimitTiyn, r.signLevel, r.grantedAt instanceof Date])).toEqual([
      ['*', 'info', null, null, true],
      ['KZ69998CTA0000000101', 'manage', 100_000_000, 'second', true],
    ]);
    expect(await loadSigner(env.context.orm.em.fork(), { login: 'nobody' })).toBeNull();
    expect(await loadSigner(env.context.orm.em.fork(), 'not-a-uuid')).toBeNull();
    expect((await cli(['users', 'revoke', 'signer1', '--account', 'all'])).code).toBe(0);
    expect(await mayUserSign(env.context.orm.em.fork(), id, 'KZ58998CTA0000000202', 1)).toMatchObject({ allowed: false, reason: 'NO_RIGHT_ON_ACCOUNT' });
    const list = JSON.parse((await cli(['users', 'list', '--json'])).stdout).users;
    expect(list.map((u: { login: string }) => u.login)).toContain('signer1');
    const block = await cli(['users', 'block', 'signer1', '--reason', 'dismissed']);
    expect(block.code).toBe(0);
    expect(block.stderr).toMatch(/R-17: tell the bank by/);
    // No agent runs here: the block holds and the CLI warns.
    expect(block.stderr).toMatch(/WARNING: signer agent did not confirm/);
    expect(JSON.parse((await cli(['users', 'show', 'signer1', '--json'])).stdout).status).toBe('blocked_admin');
    expect((await cli(['users', 'unblock', 'signer1'])).code).toBe(0);
    expect((await cli(['users', 'reset-password', 'signer1', '--password-stdin'], 'Signer-Reset-2\n')).code).toBe(0);
    expect((await cli(['users', 'block', 'nobody'])).stderr).toMatch(/USER_NOT_FOUND/);
  });

  test('credentials set / status / rotate; the secret only from stdin', async () => {
    expect((await cli(['credentials', 'status', '--json'])).code).toBe(1);
    // Nothing stored yet: rotate says so, and what to run (not that a master key file is missing).
    const early = await cli(['credentials', 'rotate', '--secret-stdin'], 'Early-Client-Secret\n');
    expect([early.code, early.stderr]).toEqual([1, expect.stringMatching(/^CREDENTIALS_MISSING: no Client ID \/ Client Secret stored yet: store the pair with connector credentials set --client-id ID --secret-stdin$/m)]);
    expect((await cli(['credentials', 'set', '--client-id', 'client-7'])).code).toBe(2);
    expect((await cli(['credentials', 'set', '--client-id', 'client-7', '--secret-stdin'], 'First-Client-Secret\n')).code).toBe(0);
    const status = await cli(['credentials', 'status', '--json']);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ configured: true, clientId: 'client-7', ageDays: 0, usable: true, warnings: [] });
    expect(status.stdout).not.toContain('First-Client-Secret');
    expect((await cli(['credentials', 'rotate', '--secret-stdin'], 'First-Client-Secret\n')).stderr).toMatch(/SECRET_UNCHANGED/);
    expect((await cli(['credentials', 'rotate', '--secret-stdin'], 'Second-Client-Secret\n')).code).toBe(0);
  });

  test('vault rotate-key re-encrypts the stored secret under a new master key', async () => {
    const before = readFileSync(env.context.config.masterKeyFile, 'utf8');
    const rotated = await cli(['vault', 'rotate-key']);
    expect(rotated.code).toBe(0);
    expect(readFileSync(env.context.config.masterKeyFile, 'utf8')).not.toBe(before);
    const status = await cli(['credentials', 'status', '--json']);
    expect(JSON.parse(status.stdout).usable).toBe(true);
    expect((await cli(['credentials', 'rotate', '--secret-stdin'], 'Third-Client-Secret\n')).code).toBe(0);
  });

  test('vault rotate-key with a key file that does not exist, or that did not seal the secrets, changes nothing and says which file', async () => {
    const installed = env.context.config.masterKeyFile;
    const before = readFileSync(installed, 'utf8');
    try {
      // Run from another folder, the default relative path names a file that is not there.
      const elsewhere = join(env.dir, 'elsewhere', '.connector', 'master.key');
      process.env.CONNECTOR_MASTER_KEY_FILE = elsewhere;
      const missing = await cli(['vault', 'rotate-key']);
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain('MASTER_KEY_MISSING');
      expect(missing.stderr).toContain(elsewhere);
      expect(existsSync(elsewhere)).toBe(false);
      // Another installation's key file: it opens none of the secrets.
      const other = join(env.dir, 'other.key');
      writeFileSync(other, `kother:${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
      process.env.CONNECTOR_MASTER_KEY_FILE = other;
      const mismatch = await cli(['vault', 'rotate-key']);
      expect(mismatch.code).toBe(1);
      expect(mismatch.stderr).toContain('MASTER_KEY_MISMATCH');
      expect(mismatch.stderr).toMatch(/cannot open the bank Client Secret/);
      expect(readFileSync(other, 'utf8').trim().split('\n')).toHaveLength(1);
    } finally {
      process.env.CONNECTOR_MASTER_KEY_FILE = installed;
    }
    expect(readFileSync(installed, 'utf8')).toBe(before);
    expect(JSON.parse((await cli(['credentials', 'status', '--json'])).stdout).usable).toBe(true);
  });

  test('archive export writes the tables with a manifest and refuses a non-empty directory', async () => {
    const out = join(env.dir, 'archive');
    expect((await cli(['archive', 'export', '--out', out])).code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    expect(manifest.files.map((f: { table: string }) => f.table)).toEqual(expect.arrayContaining(['payment_order', 'audit_event', 'statement_line']));
    expect(existsSync(join(out, 'audit_event.jsonl'))).toBe(true);
    expect((await cli(['archive', 'export', '--out', out])).stderr).toMatch(/ARCHIVE_DIR_NOT_EMPTY/);
  });
});

describe('audit log tamper evidence', () => {
  type Row = Record<string, unknown>;
  let snapshot: Row[];

  beforeAll(async () => {
    snapshot = await env.context.orm.em.fork().execute<Row[]>('select * from audit_event order by seq');
    expect(snapshot.length).toBeGreaterThanOrEqual(6);
  });
  afterEach(async () => {
    const em = env.context.orm.em.fork();
    await em.execute('delete from audit_event');
    for (const r of snapshot) {
      await em.execute('insert into audit_event (seq, at, actor, action, subject, details, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?)', [
        r.seq, r.at, r.actor, r.action, r.subject, r.details === null ? null : JSON.stringify(r.details), r.prev_hash, r.hash,
      ]);
    }
  });

  test('intact: verifyAudit ok, CLI exit 0', async () => {
    expect(await verifyAudit(env.context.orm.em.fork())).toMatchObject({ ok: true, records: snapshot.length });
    expect(await verifyAudit(env.context.orm.em.fork(), { batch: 2 })).toEqual({ ok: true, records: snapshot.length });
    const res = await cli(['audit', 'verify']);
    expect(res.code).toBe(0);
    expect(res.stderr).toMatch(/intact/);
  });

  test.each([
    ['modified actor', "update audit_event set actor = 'someone-else' where seq = 3", 3, 'modified'],
    ['modified details', `update audit_event set details = '{"role":"admin"}' where seq = 4`, 4, 'modified'],
    ['modified time', "update audit_event set at = at + interval '1 second' where seq = 2", 2, 'modified'],
    ['deleted record', 'delete from audit_event where seq = 3', 3, 'missing'],
    ['deleted first record', 'delete from audit_event where seq = 1', 1, 'missing'],
    [
      'two records swapped',
      `update audit_event a set at = b.at, actor = b.actor, action = b.action, subject = b.subject, details = b.details, prev_hash = b.prev_hash, hash = b.hash
         from audit_event b where (a.seq, b.seq) in ((3, 4), (4, 3))`,
      3,
      'reordered',
    ],
    ['record rehashed alone (hash recomputed, chain not)', "update audit_event set hash = repeat('a', 64) where seq = 2", 2, 'modified'],
  ])('%s: verifyAudit names the record and how; CLI exits 1', async (_what, sql, seq, kind) => {
    await env.context.orm.em.fork().execute(sql);
    const result = await verifyAudit(env.context.orm.em.fork());
    expect(result.ok).toBe(false);
    expect(result.problem).toMatchObject({ seq, kind });
    // Read a few records at a time (as years of log are), the walk finds the same.
    expect(await verifyAudit(env.context.orm.em.fork(), { batch: 2 })).toEqual(result);
    const res = await cli(['audit', 'verify']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^AUDIT_${kind.toUpperCase()}: record ${seq}\\b`, 'm'));
  });

  test('a cut-off tail keeps the chain valid, but an exported archive anchors it', async () => {
    const dir = join(env.dir, `anchor-${Date.now()}`);
    expect((await cli(['archive', 'export', '--out', dir])).code).toBe(0);
    expect((await cli(['audit', 'verify', '--anchor', dir])).code).toBe(0);
    const last = snapshot[snapshot.length - 1].seq;
    // The tail cut from the last exported record on (the export's own record came after it).
    await env.context.orm.em.fork().execute('delete from audit_event where seq >= ?', [last]);
    expect((await verifyAudit(env.context.orm.em.fork())).ok).toBe(true);
    const res = await cli(['audit', 'verify', '--anchor', dir]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(new RegExp(`^AUDIT_ANCHOR_MISMATCH: record ${last}, exported on .* is missing`, 'm'));
  });
});

describe('connector incidents list', () => {
  test('all incidents newest first, or with --limit the newest N, saying when older ones were left out', async () => {
    const em = () => env.context.orm.em.fork();
    for (let k = 0; k < 3; k += 1) await openIncident(em(), { kind: 'statement_gap', severity: 'low', title: `list ${k}`, actor: 'test' });
    const all = (await listIncidents(em())).map((i) => i.id);
    const two = await cli(['incidents', 'list', '--limit', '2', '--json']);
    expect(two.code).toBe(0);
    expect(JSON.parse(two.stdout)).toMatchObject({ more: true });
    // README: with --limit, "more" and a note on stderr when older ones were left out (--json too).
    expect(two.stderr).toContain('the newest 2 shown');
    expect(JSON.parse(two.stdout).incidents.map((i: { id: string }) => i.id)).toEqual(all.slice(0, 2));
    const table = await cli(['incidents', 'list', '--limit', '2']);
    expect(table.stdout.trim().split('\n')).toHaveLength(3);
    expect(table.stderr).toContain('the newest 2 shown');
    const every = JSON.parse((await cli(['incidents', 'list', '--json'])).stdout);
    expect([every.incidents.map((i: { id: string }) => i.id), every.more]).toEqual([all, false]);
    expect((await cli(['incidents', 'list', '--limit', 'many'])).code).toBe(2);
  });
});

describe('connector incidents resolve', () => {
  test('closes an incident with a note; one the bank must hear of needs when and under which reference; a lockdown is not closed here', async () => {
    const em = () => env.context.orm.em.fork();
    const gap = await openIncident(em(), { kind: 'statement_gap', severity: 'medium', title: 'A gap on KZ12', actor: 'test' });
    const debit = await openIncident(em(), { kind: 'unexplained_debit', severity: 'critical', title: 'A debit no order explains', actor: 'test' });
    const lock = await openIncident(em(), { kind: 'lockdown', severity: 'critical', title: 'Lockdown', actor: 'test' });

    const closed = await cli(['incidents', 'resolve', gap.incident.id, '--note', 're-fetched, the lines arrived\nlate', '--json']);
    expect(closed.code).toBe(0);
    expect(JSON.parse(closed.stdout)).toMatchObject({ resolved: true, incident: { id: gap.incident.id, status: 'resolved', resolvedBy: expect.stringMatching(/^cli:/) } });
    expect(JSON.parse(closed.stdout).incident.timeline.at(-1).text).toBe('resolved: re-fetched, the lines arrived late');
    expect(JSON.parse((await cli(['incidents', 'resolve', gap.incident.id, '--note', 'again', '--json'])).stdout).resolved).toBe(false);

    const noBank = await cli(['incidents', 'resolve', debit.incident.id, '--note', 'called the bank']);
    expect(noBank.code).toBe(1);
    expect(noBank.stderr).toMatch(/^BANK_NOTICE_MISSING: .*--bank-notified-at ISO --bank-reference TEXT/m);
    // A notice in the future is a mistyped date: the notice is still missing (exit 1), naming the flag and the time given;
    // the incident stays open. (One before the incident opened is taken: people often call first.)
    const ahead = new Date(Date.now() + 3_600_000).toISOString();
    const future = await cli(['incidents', 'resolve', debit.incident.id, '--note', 'called the bank', '--bank-notified-at', ahead, '--bank-reference', 'ACB 4711']);
    expect(future.code).toBe(1);
    expect(future.stderr).toContain(`BANK_NOTICE_MISSING: --bank-notified-at ${ahead} (${ahead}) is in the future`);
    expect((await getIncident(em(), debit.incident.id))?.status).toBe('open');
    // Months before the incident opened (the debit phoned in on the day, the statement read late): taken as given.
    const told = await cli(['incidents', 'resolve', debit.incident.id, '--note', 'called the bank', '--bank-notified-at', '2026-03-02T10:30:00+05:00', '--bank-reference', 'ACB 4711']);
    expect(told.code).toBe(0);
    const [audit] = await em().execute<Array<{ details: Record<string, unknown> }>>("select details from audit_event where action = 'incident.resolved' and subject = ?", [debit.incident.id]);
    expect(audit.details).toMatchObject({ kind: 'unexplained_debit', bank: { notifiedAt: '2026-03-02T05:30:00.000Z', reference: 'ACB 4711' } });

    const refused = await cli(['incidents', 'resolve', lock.incident.id, '--note', 'x']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^LOCKDOWN_INCIDENT: .*connector lockdown resolve/m);
    expect((await cli(['incidents', 'resolve', '00000000-0000-0000-0000-000000000000', '--note', 'x'])).stderr).toMatch(/^NOT_FOUND: /m);
    await em().execute("update incident set status = 'resolved' where id = ?", [lock.incident.id]);
  });

  test('--bank-notified-at without an offset is Kazakhstan time, not the zone of the machine the command runs on', async () => {
    const em = () => env.context.orm.em.fork();
    const debit = await openIncident(em(), { kind: 'unexplained_debit', severity: 'critical', title: 'A debit told by phone', actor: 'test' });
    expect((await cli(['incidents', 'resolve', debit.incident.id, '--note', 'x', '--bank-notified-at', '2026-03-02', '--bank-reference', 'R'])).code).toBe(2);
    expect((await cli(['incidents', 'resolve', debit.incident.id, '--note', 'x', '--bank-notified-at', '2026-02-30T10:30', '--bank-reference', 'R'])).code).toBe(2);
    const minute = Math.floor(Date.now() / 60_000) * 60_000;
    const kzWall = new Date(minute + 5 * 3_600_000).toISOString().slice(0, 16);
    const told = await cli(['incidents', 'resolve', debit.incident.id, '--note', 'called the bank', '--bank-notified-at', kzWall, '--bank-reference', 'ACB 4712']);
    expect(told.code).toBe(0);
    const [audit] = await em().execute<Array<{ details: Record<string, unknown> }>>("select details from audit_event where action = 'incident.resolved' and subject = ?", [debit.incident.id]);
    expect(audit.details).toMatchObject({ bank: { notifiedAt: new Date(minute).toISOString(), reference: 'ACB 4712' } });
  });
});

describe('connector orders claim', () => {
  test('prints the R-28 penalty and the draft claim for an order the bank has not executed; exit 1 for one never sent', async () => {
    const em = () => env.context.orm.em.fork();
    const at = new Date(env.clock.now().getTime() - 3 * 86_400_000);
    // Dated and valued the day they were sent (Kazakhstan date), not today as sampleOrder's: a value date ahead of receipt would postpone the delay.
    const sentOn = new Date(at.getTime() + 5 * 3_600_000).toISOString().slice(0, 10);
    const [sent, kept] = await intakeOrders(em(), 'claims-cli', [{ order: sampleOrder({ number: 'CL-1', amount: '2000.00', date: sentOn, valueDate: sentOn }) }, { order: sampleOrder({ number: 'CL-2' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const) await transitionOrder(em(), sent.orderId, to, { actor: 't', now: at });
    const claim = await cli(['orders', 'claim', sent.orderId, '--json']);
    expect(claim.code).toBe(0);
    const body = JSON.parse(claim.stdout) as { delayDays: number; penaltyTiyn: number; claimable: boolean; draft: string };
    expect(body.claimable).toBe(true);
    expect(body.delayDays).toBeGreaterThanOrEqual(3);
    expect(body.penaltyTiyn).toBe(Math.round((2000_00 * body.delayDays) / 10_000));
    expect(body.draft).toContain('Претензия о взыскании неустойки');
    const human = await cli(['orders', 'claim', sent.orderId]);
    expect(human.stderr).toMatch(/^order CL-1: received \d{4}-\d{2}-\d{2}, not executed yet; delay \d+ day\(s\); penalty \d+\.\d{2} KZT$/m);
    expect(human.stdout).toContain('× 0,01 %');
    const never = await cli(['orders', 'claim', kept.orderId]);
    expect(never.code).toBe(1);
    expect(never.stderr).toMatch(/^NOT_CLAIMABLE: /m);
    // Received today and not late yet: nothing to claim, the reason named with the code.
    const [today] = await intakeOrders(em(), 'claims-cli', [{ order: sampleOrder({ number: 'CL-3' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const) await transitionOrder(em(), today.orderId, to, { actor: 't', now: new Date() });
    const notYet = await cli(['orders', 'claim', today.orderId, '--json']);
    expect(notYet.code).toBe(1);
    expect(JSON.parse(notYet.stdout)).toMatchObject({ delayDays: 0, claimable: false });
    expect(notYet.stderr).toMatch(/^NOT_CLAIMABLE: .*not executed yet, but still within the operational day the bank received it \(\d{4}-\d{2}-\d{2}\): no delay so far/m);
    expect(notYet.stderr).not.toMatch(/executed on the day/);

    // Executed per the bank, its debit not yet in a stored statement: never "not executed yet".
    const [late, onTime] = await intakeOrders(em(), 'claims-cli', [{ order: sampleOrder({ number: 'CL-4', amount: '2000.00', date: sentOn, valueDate: sentOn }) }, { order: sampleOrder({ number: 'CL-5' }) }], { enqueueValidate: async () => undefined }, { actor: 't' });
    for (const [order, when] of [[late, at], [onTime, new Date()]] as const) {
      for (const to of ['validated', 'awaiting_signatures', 'signed', 'submitting', 'submitted'] as const) await transitionOrder(em(), order.orderId, to, { actor: 't', now: when });
      await transitionOrder(em(), order.orderId, 'executed', { actor: 't', now: new Date() });
    }
    const executedLate = await cli(['orders', 'claim', late.orderId]);
    expect(executedLate.stderr).toMatch(/^order CL-4: received \d{4}-\d{2}-\d{2}, executed, day unknown \(no booked debit in the stored statements; delay counted to today\); delay [1-9]\d* day\(s\); penalty \d+\.\d{2} KZT/m);
    expect(executedLate.stderr).not.toMatch(/not executed yet/);
    const executedOnTime = await cli(['orders', 'claim', onTime.orderId]);
    expect(executedOnTime.code).toBe(1);
    expect(executedOnTime.stderr).not.toMatch(/not executed yet/);
    expect(executedOnTime.stderr).toMatch(/^NOT_CLAIMABLE: .*executed on the day the bank received it \(\d{4}-\d{2}-\d{2}\): no delay, nothing to claim/m);
  });
});

