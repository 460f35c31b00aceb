// Benchmark: the bytes a browser fetches (compressed, as sent) to show a page for the first
// time, with an empty cache, until the page has hydrated: the sign-in page, and a page of each
// lazily loaded area (the area's code is fetched whole, whichever of its pages is asked for).
// Budget (issue 6): 400 KB for any first page. Prints one line per page and the files behind
// it; fails if a page does not load, or (after printing every page) if one is over budget.
//
//   PANGEA_URL=http://127.0.0.1:3000 PANGEA_BOOTSTRAP_PASSWORD=… node end2end/bench/first-load.mjs
import { chromium } from '@playwright/test';

const base = process.env.PANGEA_URL ?? 'http://127.0.0.1:3000';
const BUDGET_KB = 400;
const overBudget = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function firstLoad(path, signIn) {
  const context = await browser.newContext({ baseURL: base });
  if (signIn) {
    const res = await context.request.post('/auth/login', {
      form: { username: 'admin', password: process.env.PANGEA_BOOTSTRAP_PASSWORD },
      headers: { origin: base },
      maxRedirects: 0,
    });
    if (res.status() !== 303) throw new Error(`sign-in failed: ${res.status()}`);
  }
  const page = await context.newPage();
  const responses = [];
  page.on('requestfinished', async (request) => {
    const sizes = await request.sizes();
    const response = await request.response();
    responses.push({ url: request.url().replace(base, ''), bytes: sizes.responseBodySize + sizes.responseHeadersSize,
      encoding: (await response?.headerValue('content-encoding')) ?? 'none' });
  });
  await page.goto(path);
  await page.locator('main[data-hydrated="true"]').waitFor({ state: 'attached', timeout: 30_000 });
  await page.waitForLoadState('networkidle');
  const total = responses.reduce((sum, r) => sum + r.bytes, 0);
  const over = total > BUDGET_KB * 1024;
  if (over) overBudget.push(path);
  console.log(`first-load: ${path} ${(total / 1024).toFixed(1)} KB in ${responses.length} responses (budget ${BUDGET_KB} KB)${over ? ' OVER' : ''}`);
  for (const r of responses.sort((a, b) => b.bytes - a.bytes)) {
    console.log(`first-load:   ${(r.bytes / 1024).toFixed(1).padStart(7)} KB ${r.encoding.padEnd(4)} ${r.url}`);
  }
  await context.close();
}

await firstLoad('/login', false);
for (const path of ['/', '/machines', '/machines/1', '/machines/power-runs', '/machines/classes', '/machines/discover', '/provisioning', '/clusters', '/clusters/create', '/access']) {
  await firstLoad(path, true);
}
await browser.close();
if (overBudget.length > 0) {
  console.error(`first-load: over the ${BUDGET_KB} KB budget: ${overBudget.join(', ')}`);
  process.exit(1);
}
