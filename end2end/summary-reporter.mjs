// Prints the plain "N passed, N failed" line that CI reads as the browser tests' count.
export default class SummaryReporter {
  constructor() { this.passed = 0; this.failed = 0; this.skipped = 0; }
  onTestEnd(test, result) {
    if (result.status === 'skipped') this.skipped++;
    else if (result.status === 'passed') this.passed++;
    else this.failed++;
  }
  onEnd() {
    console.log(`e2e: ${this.passed} passed, ${this.failed} failed, ${this.skipped} skipped`);
  }
  printsToStdio() { return true; }
}
