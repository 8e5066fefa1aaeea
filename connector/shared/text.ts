/**
 * Text a person typed, made one line: control characters (CR, LF, tab, ...) and the spaces around
 * them become one space.
 * Wherever such text is shown inside text we write (a checklist, an e-mail, a status line), it can
 * then not pass for lines of ours.
 */
export function singleLine(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[ ]*[\u0000-\u001f\u007f]+[ ]*/g, ' ').trim();
}
