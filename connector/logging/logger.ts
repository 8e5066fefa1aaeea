import pino, { type Logger, type DestinationStream } from 'pino';

/**
 * Paths that may hold secrets anywhere in a log object. pino removes them before serialising,
 * so a secret never reaches a log file even when a caller logs a whole request or config.
 */
export const REDACT_PATHS = [
  'password',
  'newPassword',
  'currentPassword',
  'secret',
  'clientSecret',
  'client_secret',
  'token',
  'accessToken',
  'access_token',
  'apiKey',
  'key',
  'privateKey',
  'totp',
  'totpSecret',
  'authorization',
  'cookie',
  // logins are confidential as well; a log names a user by id.
  'login',
  '*.login',
  '*.password',
  '*.newPassword',
  '*.currentPassword',
  '*.secret',
  '*.clientSecret',
  '*.client_secret',
  '*.token',
  '*.accessToken',
  '*.access_token',
  '*.apiKey',
  '*.privateKey',
  '*.totp',
  '*.totpSecret',
  '*.authorization',
  '*.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers.cookie',
  'config.bank.clientSecret',
];

export function createLogger(options: { level?: string; name?: string } = {}, destination?: DestinationStream): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      name: options.name,
      base: { pid: process.pid },
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}

export type { Logger };
