import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { REASON_TEXT_RU } from './business-api.errors';

const file = join(__dirname, 'openapi.yaml');

describe('the bank contract (openapi.yaml)', () => {
  it('is a valid OpenAPI 3.1 document (@seriousme/openapi-schema-validator)', async () => {
    // The validator is ESM-only; its CLI runs it in its own process.
    const cli = require.resolve('@seriousme/openapi-schema-validator/bin/validate-api-cli.js');
    const { stdout } = await promisify(execFile)(process.execPath, [cli, file]);
    expect(JSON.parse(stdout)).toEqual({ valid: true });
  });

  it('names every refusal code the client translates, and the fixed error codes', () => {
    const text = readFileSync(file, 'utf8');
    for (const code of [...Object.keys(REASON_TEXT_RU), 'CREDENTIALS_REVOKED', 'INVALID_CLIENT', 'UNAUTHORIZED', 'RATE_LIMITED', 'MAINTENANCE']) {
      expect(text).toContain(code);
    }
  });

  it('versions the API in the path and gives 429/503 a Retry-After', () => {
    const spec = parse(readFileSync(file, 'utf8'));
    expect(spec.openapi).toBe('3.1.0');
    expect(spec.servers[0].url).toContain('/api/{apiVersion}');
    expect(Object.keys(spec.paths).sort()).toEqual(['/accounts', '/accounts/{iban}/statement', '/oauth/token', '/payments', '/payments/by-external-id/{externalId}', '/payments/{documentId}/status']);
    expect(spec.components.responses.RateLimited.headers['Retry-After']).toBeDefined();
    expect(spec.components.responses.Maintenance.headers['Retry-After']).toBeDefined();
  });
});
