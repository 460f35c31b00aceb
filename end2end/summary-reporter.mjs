// Prints the plain "N passed, N failed" line that CI reads as the browser tests' count.
export default class SummaryReporter {
  constructor() { this.passed = 0; this.failed = 0; this.skipped = 0; this.flaky = []; }
  onTestEnd(test, result) {
    if (result.status === 'skipped') this.skipped++;
    else if (result.status === 'passed') {
      this.passed++;
      if (result.retry > 0) this.flaky.push(test.title);
    } else if (result.retry === test.retries) this.failed++;
  }
  onEnd() {
    for (const title of this.flaky) console.log(`e2e: FLAKY (passed on retry): ${title}`);
    console.log(`e2e: ${this.passed} passed, ${this.failed} failed, ${this.skipped} skipped`);
  }
  printsToStdio() { return true; }
}
