import { availableParallelism } from 'node:os';
import { chmodSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { crlPathsFromConfig } from '../certificates/crl.refresher';
import type { ConnectorConfig } from '../../config/config.schema';
import { clockFromConfig } from '../../connector/shared/clock';
import { ConnectorError } from '../../connector/shared/errors';
import { listenFailure } from '../../connector/shared/listen-error';
import { AgentMetrics } from './agent.metrics';
import { ensureToken, resolveTokenFile, tokenFileTooOpen } from './agent-token.store';
import { KeyRegistry } from './key-registry.store';
import { KeySessionManager } from './key-session.manager';
import { parseListenAddress, type ListenAddress } from './listen-address.parser';
import { SignJournal } from './sign-journal.writer';
import { SigningPool } from './signing.pool';
import { buildSignerAgentServer } from './signer-agent.server';
import { SignerAgentService } from './signer-agent.service';

export interface StartSignerAgentOptions {
  config: ConnectorConfig;
  logger: Logger;
  cwd?: string;
  /** Wins over config.signer.url (the command's --url). */
  url?: string;
  /** Wins over config.signer.workers (the command's --workers). */
  workers?: number;
  /** The signing worker's compiled script (tests that load this module from sources point at dist/). */
  workerScript?: string;
}

export interface RunningSignerAgent {
  url: string;
  address: ListenAddress;
  app: FastifyInstance;
  service: SignerAgentService;
  /** Wipes every key, stops the workers and the server. Safe to call twice. */
  stop(): Promise<void>;
  /** After the journal file was rotated away: later records go to a new file at its path (SIGHUP). Logs, never throws. */
  reopenJournal(): Promise<void>;
}

/** Idle timeout in ms: R-13's 30 minutes at most; seconds only in test mode. */
export function idleTimeoutMs(config: ConnectorConfig): number {
  if (config.signer.sessionIdleSeconds !== undefined) {
    if (!config.testMode) {
      throw new ConnectorError('CONFIG_INVALID', 'config signer.sessionIdleSeconds is honoured only in test mode; use signer.sessionIdleMinutes (1-30)');
    }
    return config.signer.sessionIdleSeconds * 1000;
  }
  return config.signer.sessionIdleMinutes * 60_000;
}

/**
 * Starts the signer agent: token, registry, journal, signing workers, HTTP on loopback or a Unix
 * socket (mode 0600). Refuses any other address before touching a key.
 */
export async function startSignerAgent(options: StartSignerAgentOptions): Promise<RunningSignerAgent> {
  const { config, logger } = options;
  const cwd = options.cwd ?? process.cwd();
  const address = parseListenAddress(options.url ?? config.signer.url, cwd);
  const idleMs = idleTimeoutMs(config);
  // The absolute bound holds as configured, also below the idle timeout (a key is never kept longer).
  const maxMs = config.signer.sessionMaxMinutes * 60_000;
  const at = (p: string) => (isAbsolute(p) ? p : resolve(cwd, p));

  const tokenFile = resolveTokenFile(config.signer.tokenFile, cwd);
  const token = ensureToken(tokenFile);
  // The token is all a caller needs to have an unlocked key sign any bytes: a file others may read
  // hands that to every local account. Refused, as the vault refuses a master key file that is not private.
  if (tokenFileTooOpen(tokenFile)) {
    throw new ConnectorError('SIGNER_TOKEN_PERMISSIONS', `signer token file ${tokenFile} may be read by group or others: any local account could have unlocked keys sign; it must be readable by its owner only: chmod 600 ${tokenFile}`);
  }

  const clock = clockFromConfig(config);
  const registry = new KeyRegistry(at(config.signer.keysFile)).load();
  const journal = new SignJournal(at(config.signer.journalFile));
  await journal.open();

  // The sessions and the pool call back into the service, which needs them to exist first.
  const late: { service?: SignerAgentService } = {};
  const sessions = new KeySessionManager(idleMs, maxMs, (userId, reason) => late.service?.onSessionEnd(userId, reason));
  const metrics = new AgentMetrics(() => sessions.count());
  const workers = options.workers ?? config.signer.workers ?? availableParallelism();
  const pool = new SigningPool({
    size: workers,
    workerScript: options.workerScript,
    logger,
    setup: {
      testMode: config.testMode,
      trust: config.signer.trust.map(at),
      crl: crlPathsFromConfig(config, cwd),
      requireRevocation: config.signer.requireRevocation,
    },
    onWorkerLost: () => late.service?.onWorkerLost(),
  });
  try {
    await pool.start();
  } catch (err) {
    await pool.close().catch(() => undefined);
    await journal.close();
    throw new ConnectorError('SIGNER_UNAVAILABLE', `signing workers failed to start: ${(err as Error).message}`);
  }
  const service = new SignerAgentService({
    registry,
    sessions,
    pool,
    journal,
    metrics,
    clock,
    logger,
    cwd,
    testMode: config.testMode,
    maxDocumentBytes: config.signer.maxDocumentBytes,
  });
  late.service = service;
  const startedAt = new Date().toISOString();
  const version = agentVersion();
  const app = buildSignerAgentServer({
    service,
    metrics,
    logger,
    token,
    testMode: config.testMode,
    maxDocumentBytes: config.signer.maxDocumentBytes,
    describe: () => ({
      version,
      pid: process.pid,
      startedAt,
      testMode: config.testMode,
      workers: pool.size,
      idleTimeoutSeconds: idleMs / 1000,
      sessionMaxSeconds: maxMs / 1000,
    }),
  });

  let url: string;
  try {
    url = await listen(app, address);
  } catch (err) {
    await service.shutdown();
    throw err instanceof ConnectorError ? err : listenFailure('SIGNER_LISTEN_FAILED', 'the signer agent', address.url, err, '--url or CONNECTOR_SIGNER_URL (config signer.url)');
  }
  metrics.resetLoopDelay();
  logger.info({ event: 'signer-agent.listening', url, workers: pool.size, idleTimeoutSeconds: idleMs / 1000, testMode: config.testMode }, 'signer agent listening');

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      // Keys first: whatever happens to the server afterwards, they are gone.
      await service.shutdown();
      metrics.stop();
      await app.close();
      if (address.kind === 'unix' && existsSync(address.path)) unlinkSync(address.path);
      logger.info({ event: 'signer-agent.stopped' }, 'signer agent stopped; every key wiped');
    })());
  /** SIGHUP: the journal file was rotated; write to a new one at the same path. */
  const reopenJournal = async (): Promise<void> => {
    try {
      await journal.reopen();
      logger.info({ event: 'signer-agent.journal.reopened', path: journal.path }, 'journal reopened');
    } catch (err) {
      logger.error({ event: 'signer-agent.journal.reopen_failed', err: { message: (err as Error).message } }, 'journal not reopened; still writing the old file');
    }
  };
  return { url, address, app, service, stop, reopenJournal };
}

async function listen(app: FastifyInstance, address: ListenAddress): Promise<string> {
  if (address.kind === 'tcp') {
    await app.listen({ host: address.host, port: address.port });
    const bound = app.server.address() as AddressInfo;
    return `http://${address.host === '::1' ? '[::1]' : address.host}:${bound.port}`;
  }
  if (existsSync(address.path)) {
    // A socket left by a crashed agent is replaced; any other file is not ours to delete.
    if (!lstatSync(address.path).isSocket()) {
      throw new ConnectorError('SIGNER_LISTEN_FAILED', `${address.path} exists and is not a socket; remove it or choose another unix: path`);
    }
    // A live agent's socket is not taken over: unlinked, that agent would run on unreachable, its
    // unlocked keys out of reach of a lockdown's wipe, while PM2 still shows it online.
    const answered = await socketAnswers(address.path);
    if (answered !== 'ECONNREFUSED') {
      throw new ConnectorError(
        'SIGNER_LISTEN_FAILED',
        answered === 'connected'
          ? `the signer agent cannot listen on ${address.url}: another process (a signer agent already running?) accepts connections on it; stop that process (pm2 stop connector-signer-agent), or choose another path with --url or CONNECTOR_SIGNER_URL (config signer.url)`
          : `the signer agent cannot listen on ${address.url}: the socket there cannot be checked (${answered}); remove it once no agent uses it, or choose another path with --url or CONNECTOR_SIGNER_URL (config signer.url)`,
      );
    }
    unlinkSync(address.path);
  }
  // The socket is created 0600 (no window where others could connect), then made sure of.
  const previous = process.umask(0o177);
  try {
    await app.listen({ path: address.path });
  } finally {
    process.umask(previous);
  }
  chmodSync(address.path, 0o600);
  return address.url;
}

/** 'connected' when a process accepts connections on the Unix socket, else the error code ('ECONNREFUSED': nobody listens, left by a crashed agent). */
function socketAnswers(path: string): Promise<string> {
  return new Promise((resolveAnswer) => {
    const probe = connect({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolveAnswer('connected');
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolveAnswer(err.code ?? err.message));
  });
}

function agentVersion(): string {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../../package.json') as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}
