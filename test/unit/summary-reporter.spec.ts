// eslint-disable-next-line @typescript-eslint/no-require-imports
const SummaryReporter = require('../support/summary.reporter.js');

/** The closing line CI and the closing notes read: a spec file that could not load must show. */
function lineFor(results: Record<string, unknown>): string {
  const written: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  try {
    new SummaryReporter().onRunComplete(new Set(), { numPendingTests: 0, numTodoTests: 0, ...results });
  } finally {
    spy.mockRestore();
  }
  return written.join('');
}

describe('the summary line of a test run', () => {
  it('counts passed, failed and skipped tests', () => {
    expect(lineFor({ numPassedTests: 7, numFailedTests: 1, numPendingTests: 2, testResults: [{ numFailingTests: 1, failureMessage: 'x' }] })).toBe('tests: 7 passed, 1 failed, 2 skipped\n');
  });

  it('names a spec file that failed to run (an import that breaks), which has no failed test to count', () => {
    const results = { numPassedTests: 29, numFailedTests: 0, testResults: [{ numFailingTests: 0, testExecError: { message: "Cannot find module './does-not-exist'" }, failureMessage: 'Test suite failed to run' }, { numFailingTests: 0 }] };
    expect(lineFor(results)).toBe('tests: 29 passed, 0 failed, 1 file(s) failed to run\n');
  });
});
