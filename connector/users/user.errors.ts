import { ConnectorError } from '../shared/errors';

/**
 * A refusal of the user/password/session rules. `message` is for the person (Russian, R-6..R-12
 * "a failed check tells the user why"); `logMessage` is English for the log; `httpStatus` is the
 * status INTERFACES.md fixes for the code.
 */
export class UserError extends ConnectorError {
  constructor(
    code: string,
    readonly httpStatus: number,
    message: string,
    readonly logMessage: string,
    details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(code, message, 1, details);
    this.name = 'UserError';
  }
}

export const MESSAGES = {
  INVALID_CREDENTIALS: ['Неверный логин или пароль.', 'wrong login or password'],
  LOCKED_TEMPORARILY: ['Учётная запись временно заблокирована после 5 неверных попыток ввода пароля. Повторите позже или обратитесь к администратору.', 'account locked after 5 consecutive wrong passwords (R-12)'],
  BLOCKED_INACTIVE: ['Учётная запись заблокирована: более 30 дней без активности. Обратитесь к администратору.', 'account blocked after 30 days without activity (R-11)'],
  BLOCKED_BY_ADMIN: ['Учётная запись заблокирована администратором.', 'account blocked by an administrator'],
  PASSWORD_EXPIRED: ['Срок действия пароля (60 дней) истёк. Смените пароль, чтобы продолжить.', 'password older than 60 days; only a change is allowed (R-9)'],
  TOTP_REQUIRED: ['Требуется одноразовый код второго фактора (TOTP).', 'second factor (TOTP) missing or wrong (R-14)'],
  TOTP_NOT_ENROLLED: ['Для вашей роли обязателен второй фактор, но он не настроен. Обратитесь к администратору.', 'role requires TOTP but the user has none enrolled (R-14)'],
  MUST_CHANGE_PASSWORD: ['Необходимо сменить пароль, прежде чем продолжить.', 'a password change is due (R-9, R-10)'],
  RATE_LIMITED: ['Слишком много попыток входа с этого адреса. Повторите позже.', 'too many login attempts from this address'],
  WRONG_CURRENT_PASSWORD: ['Текущий пароль указан неверно.', 'current password is wrong'],
} as const;

export type MessageCode = keyof typeof MESSAGES;

export function userError(code: MessageCode, httpStatus: number, details?: Record<string, unknown>, headers?: Record<string, string>, apiCode: string = code): UserError {
  const [ru, en] = MESSAGES[code];
  return new UserError(apiCode, httpStatus, ru, en, details, headers);
}
