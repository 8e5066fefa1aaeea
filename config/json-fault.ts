/**
 * Where a JSON text stops being JSON, as `line L, column C`, without JSON.parse's own words: Node
 * quotes the text around the fault ('Unexpected token ..., "<the text>" is not valid JSON'), and the
 * texts given here hold passwords (a config file's database.url, a login's body). The smallest
 * prefix that fails before its own end is found by bisection (a prefix that is only cut short fails
 * at its end, or parses).
 */
export function jsonFault(text: string): string {
  const failsInside = (n: number): boolean => {
    try {
      JSON.parse(text.slice(0, n));
      return false;
    } catch (err) {
      const message = (err as Error).message;
      if (/Unexpected end of JSON input/.test(message)) return false;
      const at = /at position (\d+)/.exec(message);
      return !(at && Number(at[1]) >= n);
    }
  };
  if (!failsInside(text.length)) return 'it ends before it is complete';
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (failsInside(mid)) hi = mid;
    else lo = mid + 1;
  }
  const before = text.slice(0, lo - 1).split('\n');
  return `it breaks at line ${before.length}, column ${before[before.length - 1].length + 1}`;
}
