'use strict';
// Prints one plain closing line ("N passed, N failed, N skipped") after jest's own summary, so any log
// reader can tell how many tests ran without parsing jest's layout.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skipped = results.numPendingTests + results.numTodoTests;
    process.stdout.write(
      `\n${results.numPassedTests} passed, ${results.numFailedTests} failed, ${skipped} skipped\n`,
    );
  }
}
module.exports = SummaryReporter;
