// Runs against a Pangea that .ci/test started (PANGEA_URL), in Debian's Chromium: Playwright's
// own browser downloads cannot work on a closed network.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  workers: 1,
  // One retry, reported as "flaky": see the closing note of 2026-11-25 (a viewer once showed
  // "no role" in CI and never again in a dozen runs).
  retries: 1,
  globalSetup: './global-setup.mjs',
  reporter: [['list'], ['./summary-reporter.mjs']],
  use: {
    baseURL: process.env.PANGEA_URL ?? 'http://127.0.0.1:3000',
    browserName: 'chromium',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    },
    trace: 'off',
  },
});
