// Runs against a Pangea that .ci/test started (PANGEA_URL), in Debian's Chromium: Playwright's
// own browser downloads cannot work on a closed network.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  timeout: 60_000,
  workers: 1,
  // No retries: a flaky test fails the run. (The "no role" flake of 2026-11-25 was the test
  // IdP throwing on userinfo's Bearer header; fixed in oidc/provider.mjs.)
  retries: 0,
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
