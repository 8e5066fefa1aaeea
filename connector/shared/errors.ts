/**
 * The connector's coded error. `code` is UPPER_SNAKE and stable (INTERFACES.md); `exitCode`
 * follows the CLI convention: 1 refused/invalid/check failed, 2 usage or unreadable input.
 * `details` must never hold a secret.
 */
export class ConnectorError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly exitCode: 1 | 2 = 1,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ConnectorError';
  }
}

export class UsageError extends ConnectorError {
  constructor(message: string, code = 'USAGE') {
    super(code, message, 2);
    this.name = 'UsageError';
  }
}
