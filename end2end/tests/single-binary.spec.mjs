// The release binary alone serves the whole console: copied into an empty folder and started
// there with no --site-root, it serves its own site (unpacked into its data folder), a person
// signs in through the browser, and a lazily loaded area hydrates.
import { expect, test } from '@playwright/test';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const freePort = () =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

test('the release binary alone, in an empty folder, serves the console', async ({ page }) => {
  test.skip(!process.env.PANGEA_BIN, 'PANGEA_BIN (the release binary .ci/test builds) is not set');
  const folder = mkdtempSync(join(tmpdir(), 'pangea-alone-'));
  copyFileSync(process.env.PANGEA_BIN, join(folder, 'pangea'));
  expect(readdirSync(folder)).toEqual(['pangea']);
  const [port, bootPort] = [await freePort(), await freePort()];
  const password = `alone-${Date.now()}`;
  // Nothing of the suite's own server: no data folder, site root or IdP from the environment.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('PANGEA_') && !name.startsWith('LEPTOS_')),
  );
  const server = spawn(
    './pangea',
    ['serve', '--listen', `127.0.0.1:${port}`, '--boot-listen', `127.0.0.1:${bootPort}`],
    { cwd: folder, env: { ...env, PANGEA_BOOTSTRAP_PASSWORD: password }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  server.stderr.on('data', (chunk) => (log += chunk));
  const base = `http://127.0.0.1:${port}`;
  try {
    await expect
      .poll(async () => (await fetch(`${base}/readyz`).catch(() => null))?.status, { timeout: 30_000, message: log })
      .toBe(200);

    const pkg = [];
    page.on('response', (res) => {
      if (new URL(res.url()).pathname.startsWith('/pkg/')) pkg.push(res);
    });
    await page.goto(`${base}/login?next=%2Fmachines`);
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page).toHaveURL(`${base}/machines`);
    await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();

    // A lazy area: its code is fetched from the binary's own site when the page is opened.
    await page.goto(`${base}/clusters`);
    await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
    await expect(page.getByRole('heading', { level: 1 })).toContainText('Clusters');

    // Content-hashed, precompressed and cached for a year, as a site on disk is served.
    const wasm = pkg.filter((res) => res.url().endsWith('.wasm'));
    expect(wasm.length).toBeGreaterThan(1);
    for (const res of wasm) {
      expect(res.status()).toBe(200);
      const headers = await res.allHeaders();
      expect(headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(['br', 'gzip']).toContain(headers['content-encoding']);
    }
    // The site was unpacked into the data folder beside the binary.
    expect(readdirSync(folder).sort()).toEqual(['pangea', 'pangea-data']);
    expect(readdirSync(join(folder, 'pangea-data', 'site'))).toHaveLength(1);
  } finally {
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    rmSync(folder, { recursive: true, force: true });
  }
});
