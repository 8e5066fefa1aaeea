import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { SignerAgentClient } from '../../signer-agent/agent/signer-agent.client';

export const ROOT = resolve(__dirname, '..', '..');
const MAIN = join(ROOT, 'dist', 'connector', 'cli', 'main.js');

let built = false;
/** Builds dist/ once per test process: the agent runs as the real CLI in a child process. */
export function buildOnce(): void {
  if (built) return;
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT, stdio: 'pipe' });
  built = true;
}

export interface AgentProcess {
  dir: string;
  url: string;
  token: string;
  child: ChildProcess;
  client: SignerAgentClient;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Sends the signal and resolves with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  exited: Promise<number | null>;
}

export interface StartOptions {
  config?: Record<string, unknown>;
  env?: Record<string, string>;
  args?: string[];
  dir?: string;
}

/** Runs `connector signer-agent` and collects its output; does not wait for it to listen. */
export function runAgent(options: StartOptions = {}): { dir: string; child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'signer-agent-e2e-'));
  if (options.config) writeFileSync(join(dir, 'connector.config.json'), JSON.stringify(options.config));
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, CONNECTOR_LOG_LEVEL: 'trace', ...options.env };
  const child = spawn(process.execPath, [MAIN, 'signer-agent', ...(options.args ?? ['--url', 'http://127.0.0.1:0'])], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  return { dir, child, output: () => out, exited };
}

/** Starts the agent and waits for its `signer-agent.listening` log line (the URL it bound). */
export async function startAgent(options: StartOptions = {}): Promise<AgentProcess> {
  const run = runAgent(options);
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setInterval(() => {
      const match = /"event":"signer-agent\.listening","url":"([^"]+)"/.exec(run.output());
      if (match) {
        clearInterval(timer);
        resolveUrl(match[1]);
      }
    }, 20);
    void run.exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`signer agent exited (${code}) before listening:\n${run.output()}`));
    });
  });
  const token = readFileSync(join(run.dir, '.connector', 'signer.token'), 'utf8').trim();
  return {
    ...run,
    url,
    token,
    client: new SignerAgentClient({ url, token, timeoutMs: 60_000 }),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill(signal);
      return run.exited;
    },
  };
}

/** Polls until `check` stops throwing (or the deadline passes, then rethrows its last error). */
export async function expectEventually(check: () => Promise<void> | void, timeoutMs = 10_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }
}

export function journalOf(dir: string): Array<Record<string, unknown>> {
  const text = readFileSync(join(dir, '.connector', 'signer-journal.jsonl'), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}
