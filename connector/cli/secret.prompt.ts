import { UsageError } from '../shared/errors';

/**
 * Asks for a secret on the terminal without echoing it (R-4: a password typed at a prompt never
 * reaches argv or shell history). Only when stdin is a TTY; scripts use --password-stdin.
 */
export function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) return Promise.reject(new UsageError('no terminal to prompt on; pass the secret on standard input with --password-stdin'));
  // Echo off before the prompt shows: a person who types as soon as it appears (or a password
  // typed ahead) would otherwise see it echoed by the terminal, and leave it on the screen.
  stdin.setRawMode(true);
  process.stderr.write(question);
  return new Promise((resolve, reject) => {
    let value = '';
    const done = (err?: Error) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return done();
        if (ch === '\u0003') return done(new UsageError('cancelled'));
        if (ch === '\u007f' || ch === '\b') value = [...value].slice(0, -1).join('');
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** A new password: typed twice at a prompt, or read once from stdin with --password-stdin. */
export async function readNewPassword(fromStdin: boolean | undefined, readStdin: () => Promise<string>): Promise<string> {
  if (fromStdin) return readStdin();
  const first = await promptHidden('Password: ');
  const second = await promptHidden('Repeat the password: ');
  if (first !== second) throw new UsageError('the two passwords differ');
  if (!first) throw new UsageError('empty password');
  return first;
}
