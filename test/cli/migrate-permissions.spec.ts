import { Client } from 'pg';
import { createTestEnv, dropDatabase, type TestEnv } from '../support/test-env';
import { runCli } from '../support/cli';

/**
 * `connector migrate` run as a login of its own rather than postgres (what an admin sets up for a
 * bank connector): PostgreSQL refuses it a right. The admin must read which user, which database and
 * the statement to run, not the driver's "create - permission denied for schema public".
 */
describe('connector migrate without the rights it needs', () => {
  let env: TestEnv;
  let role: string;
  const server = new URL(process.env.CONNECTOR_TEST_DATABASE_SERVER ?? 'postgresql://postgres@127.0.0.1:5432');

  const asSuperuser = async (database: string, sql: string) => {
    const url = new URL(server.toString());
    url.pathname = `/${database}`;
    const client = new Client({ connectionString: url.toString() });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  const migrateAs = () => {
    const url = new URL(server.toString());
    url.username = role;
    url.password = '';
    url.pathname = `/${env.name}`;
    return runCli(['migrate'], { env: { ...env.env, CONNECTOR_DATABASE_URL: url.toString() }, cwd: env.workDir });
  };

  beforeAll(async () => {
    env = await createTestEnv('migrate_rights', {}, { migrate: false });
    role = `${env.name}_login`;
    await asSuperuser('postgres', `create role "${role}" login`);
  });
  afterAll(async () => {
    await dropDatabase(env.name);
    await asSuperuser('postgres', `drop role if exists "${role}"`);
    await env.cleanup();
  });

  it('names the user, the database and what to run: no right to create the database, then none to create tables in it', async () => {
    const noDatabase = await migrateAs();
    expect(noDatabase.code).toBe(1);
    expect(noDatabase.stderr).toMatch(
      new RegExp(`^MIGRATE_PERMISSION_DENIED: the database "${env.name}" does not exist and PostgreSQL user "${role}" may not create databases .*: create it once as a superuser, owned by that user \\(sudo -u postgres createdb -O ${role} ${env.name}\\)`, 'm'),
    );

    // Created by postgres for the login, as PostgreSQL 15 and later leave it (schema public: its owner only).
    await asSuperuser('postgres', `create database "${env.name}"`);
    await asSuperuser(env.name, 'revoke create on schema public from public');
    const noTables = await migrateAs();
    expect(noTables.code).toBe(1);
    expect(noTables.stderr).toMatch(new RegExp(`^MIGRATE_PERMISSION_DENIED: PostgreSQL user "${role}" may not create the connector's tables in the database "${env.name}" \\(.*permission denied for schema public.*\\): .*ALTER DATABASE "${env.name}" OWNER TO "${role}".*GRANT CREATE ON SCHEMA public TO "${role}"`, 'm'));

    // What the message says to do is enough.
    await asSuperuser(env.name, `grant create on schema public to "${role}"`);
    const done = await migrateAs();
    expect([done.code, done.stderr]).toEqual([0, expect.stringMatching(/^applied \d+ migration\(s\)/m)]);
  }, 120_000);
});
