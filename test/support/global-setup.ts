import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/**
 * End-to-end tests run the real CLI (`node dist/connector/cli/main.js`) as child processes, so the
 * build must be current. Incremental: after `npm run build` this takes a second.
 */
export default function globalSetup(): void {
  const root = join(__dirname, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
}
