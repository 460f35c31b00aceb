import { expect } from '@playwright/test';
import { test, signIn, uniqueMac, expectAccessible } from './support.mjs';

/** Signs in through the test IdP's own login form, as a person would. */
async function signInWithSso(page, user) {
  await page.goto('/login?next=%2Fmachines');
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await page.getByLabel('IdP user').fill(user);
  await page.getByLabel('IdP password').fill(`${user}-password`);
  await page.getByRole('button', { name: 'Continue' }).click();
  await expect(page).toHaveURL(/\/machines$/);
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
}

test('alice (pangea-admins) signs in through the IdP as an admin', async ({ page }) => {
  await signInWithSso(page, 'alice');
  await expect(page.locator('.who')).toHaveText('alice@example.com · admin');
  await expect(page.getByRole('link', { name: 'Add machine' })).toBeVisible();
});

test('an admin binds pangea-operators on the Access page; olga is then an operator and can add machines', async ({ page, browser }) => {
  await signIn(page, '/access');
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  await page.getByLabel('Kind').selectOption('group');
  await page.getByLabel('Group or user').fill('pangea-operators');
  await page.getByLabel('Role', { exact: true }).selectOption('operator');
  await page.getByRole('button', { name: 'Bind role' }).click();
  await expect(page.getByRole('status')).toContainText('Binding saved');
  await expect(page.locator('table.bindings')).toContainText('pangea-operators');
  await expectAccessible(page);

  const olgaContext = await browser.newContext();
  const olga = await olgaContext.newPage();
  const mac = uniqueMac();
  await signInWithSso(olga, 'olga');
  page = olga;
  await expect(page.locator('.who')).toHaveText('olga@example.com · operator');
  await page.getByRole('link', { name: 'Add machine' }).click();
  await page.getByLabel('MAC address (required)').fill(mac);
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page.getByRole('status')).toContainText(`Saved machine ${mac}`);
  await olgaContext.close();
});

test('victor (pangea-viewers) sees machines but no way to change them, and direct calls are refused', async ({ page, api }) => {
  // Calls an admin-only and an operator server function directly, as a script in the page could.
  const mac = uniqueMac();
  await api.post('/api/v1/machines', { data: { mac, hostname: 'seen-by-victor' } });
  await signInWithSso(page, 'victor');
  await expect(page.locator('.who')).toHaveText('victor@example.com · viewer');
  await page.goto('/machines?q=seen-by-victor');
  await expect(page.getByRole('row').filter({ hasText: mac })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Add machine' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Import' })).toHaveCount(0);
  await expect(page.getByLabel(`Select ${mac}`)).toHaveCount(0);
  const call = (path, body) => page.evaluate(async ([path, body]) => {
    const res = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return [res.status, (await res.json()).code];
  }, [path, body]);
  expect(await call('/api/gui/list_bindings', {})).toEqual([403, 'forbidden']);
  expect(await call('/api/gui/create_token', { name: 'sneaky', role: 'admin', expires_in_days: 1 })).toEqual([403, 'forbidden']);
  expect(await call('/api/gui/create_machine', { input: { mac: '52:54:0f:00:00:01' } })).toEqual([403, 'forbidden']);
  await expect(page.getByRole('link', { name: 'Audit' })).toHaveCount(0);
  await page.goto('/audit');
  await expect(page.getByRole('alert')).toContainText('does not allow');
  // The machine's page shows it read-only: no form, no delete.
  await page.goto('/machines?q=seen-by-victor');
  await page.getByRole('link', { name: mac }).click();
  await expect(page.getByRole('heading', { name: `Machine ${mac}` })).toBeVisible();
  await expect(page.locator('dl.details')).toContainText('seen-by-victor');
  await expect(page.getByRole('button', { name: 'Save machine' })).toHaveCount(0);
  await expect(page.getByRole('button', { name: /Delete machine/ })).toHaveCount(0);
  for (const [path, what] of [['/machines/new', 'Adding machines'], ['/machines/import', 'Importing machines']]) {
    const res = await page.goto(path);
    expect(res.status()).toBe(403);
    await expect(page.getByRole('alert')).toContainText(`${what} needs the operator role`);
    await expect(page.getByRole('textbox')).toHaveCount(0);
  }
});

test('signing out of an SSO session also signs out at the IdP', async ({ page }) => {
  await signInWithSso(page, 'alice');
  await page.getByRole('button', { name: 'Sign out' }).click();
  // The IdP asks to confirm, then sends the browser back to Pangea's login page.
  await page.getByRole('button', { name: /sign me out/i }).click();
  await expect(page).toHaveURL(/\/login\?signed_out=1$/);
  await page.getByRole('link', { name: 'Sign in with single sign-on' }).click();
  await expect(page.getByLabel('IdP user')).toBeVisible();
});
