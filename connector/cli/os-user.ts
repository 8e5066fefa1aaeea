import { userInfo } from 'node:os';

/** The operating-system account running this CLI (userInfo, else $USER); undefined when neither says. */
export function osUserName(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return process.env.USER || undefined;
  }
}
