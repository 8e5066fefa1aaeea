/**
 * Prints one plain closing line, "tests: N passed, N failed[, N skipped][, N file(s) failed to run]",
 * that any CI reads, after jest's own summary. A spec file that cannot even load (a bad import, a
 * throw at its top) runs no test: it is named apart, never hidden behind "0 failed".
 */
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    const broken = results.testResults.filter((r) => r.testExecError || (r.failureMessage && r.numFailingTests === 0)).length;
    const line = `tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped ? `, ${skipped} skipped` : ''}${broken ? `, ${broken} file(s) failed to run` : ''}`;
    process.stdout.write(`${line}\n`);
  }
}
module.exports = SummaryReporter;
