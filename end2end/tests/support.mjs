import { test as base, expect } from '@playwright/test';

/** Tests get `api`: a request context that calls /api/v1 with the token .ci/test created. */
export const test = base.extend({
  api: async ({ playwright, baseURL }, use) => {
    const api = await playwright.request.newContext({
      baseURL,
      extraHTTPHeaders: { Authorization: `Bearer ${process.env.PANGEA_E2E_TOKEN}` },
    });
    await use(api);
    await api.dispose();
  },
});

/** Signs in through the login form as the local admin. */
export async function signIn(page, next = '/machines') {
  await page.goto(`/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(process.env.PANGEA_BOOTSTRAP_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(new RegExp(`${next.replace(/[?]/g, '\\?')}$`));
}
import AxeBuilder from '@axe-core/playwright';

/**
 * Opens a page and waits until it has hydrated, so clicks are never lost. A page that does not
 * hydrate fails with what the browser said meanwhile (a panic in the wasm is a console error),
 * so the cause is in the CI log.
 */
export async function open(page, url) {
  const said = [];
  const onError = (error) => said.push(`page error: ${error}`);
  const onConsole = (message) => {
    if (['error', 'warning'].includes(message.type())) said.push(`console ${message.type()}: ${message.text()}`);
  };
  const onFailed = (request) => said.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  const onResponse = (response) => {
    if (response.status() >= 400) said.push(`answered ${response.status()}: ${response.url()}`);
  };
  page.on('pageerror', onError);
  page.on('response', onResponse);
  page.on('console', onConsole);
  page.on('requestfailed', onFailed);
  try {
    await page.goto(url);
    await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  } catch (error) {
    throw new Error(`${url} did not hydrate; the browser said: ${said.join(' | ') || 'nothing'}`, { cause: error });
  } finally {
    page.off('pageerror', onError);
    page.off('console', onConsole);
    page.off('requestfailed', onFailed);
    page.off('response', onResponse);
  }
}

/** Fails with the list of violations when axe-core finds any. */
export async function expectAccessible(page) {
  const results = await new AxeBuilder({ page }).analyze();
  const found = results.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).join(', ')})`);
  expect(found).toEqual([]);
}

let counter = 0;
/** A MAC no other test uses: 52:54:00:TT:RR:CC from the test's worker time and a counter. */
export function uniqueMac() {
  counter += 1;
  const n = (Date.now() % 0xffff) ^ (counter << 8);
  const b = [0x52, 0x54, 0x01, (n >> 8) & 0xff, n & 0xff, counter & 0xff];
  return b.map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** Creates a machine through the JSON API. */
export async function createMachine(api, input) {
  const res = await api.post('/api/v1/machines', { data: input });
  expect(res.status(), await res.text()).toBe(201);
  return res.json();
}

/**
 * The report token of machine `mac`, as the machine itself gets it: from a config rendered for
 * it (a generic template of `{{.report_token}}`, in a boot profile of the machine's own).
 */
export async function reportToken(api, mac) {
  const put = async (path, data) => {
    const res = await api.put(path, { data });
    expect(res.status(), await res.text()).toBe(200);
  };
  await put('/api/v1/provisioning/templates/generic/report-token.tmpl', { content: '{{.report_token}}' });
  await put('/api/v1/provisioning/profiles/report-token', {
    id: 'report-token', generic_id: 'report-token.tmpl', boot: { kernel: '/assets/vmlinuz' },
  });
  await put(`/api/v1/provisioning/machines/${mac}`, { profile: 'report-token' });
  // The boot listener follows the catalog within a second.
  let token = '';
  await expect.poll(async () => {
    const res = await fetch(`${process.env.PANGEA_BOOT_URL}/generic?mac=${mac}`);
    token = res.ok ? (await res.text()).trim() : '';
    return token;
  }).toMatch(/^[0-9a-f]+\.[0-9a-f]{32}$/);
  return token;
}

/** Calls the real kube-apiserver .ci/test starts as its admin, as a kubelet or a test would. */
export async function kube(path, init = {}) {
  const res = await fetch(`${process.env.KUBE_URL}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${process.env.KUBE_ADMIN_TOKEN}`, 'content-type': init.contentType ?? 'application/json' },
  });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}
