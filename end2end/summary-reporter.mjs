// Prints the plain "N passed, N failed" line that CI reads as the browser tests' count, after
// each failed test's title, place and first lines of its error. With PANGEA_E2E_SUMMARY set, it
// also writes them to that file, which .ci/test prints last, below the server's log.
import { writeFileSync } from 'node:fs';

export default class SummaryReporter {
  constructor() { this.passed = 0; this.failed = []; this.skipped = 0; }
  onTestEnd(test, result) {
    if (result.status === 'skipped') this.skipped++;
    else if (result.status === 'passed') this.passed++;
    else {
      const error = (result.error?.message ?? result.status).replace(/\x1b\[[0-9;]*m/g, '');
      const where = `${test.location.file.replace(/.*\/tests\//, '')}:${test.location.line}`;
      this.failed.push(`FAILED ${test.titlePath().slice(1).join(' › ')} (${where})\n  ${error.split('\n').slice(0, 6).join('\n  ')}`);
    }
  }
  onEnd() {
    const lines = [...this.failed, `e2e: ${this.passed} passed, ${this.failed.length} failed, ${this.skipped} skipped`];
    console.log(lines.join('\n'));
    if (process.env.PANGEA_E2E_SUMMARY) writeFileSync(process.env.PANGEA_E2E_SUMMARY, `${lines.join('\n')}\n`);
  }
  printsToStdio() { return true; }
}
