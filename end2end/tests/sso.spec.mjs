import { expect } from '@playwright/test';
import { test, uniqueMac } from './support.mjs';

/** Signs in through the test IdP's own login form, as a person would. */
async function signInWithSso(page, user) {
  await page.goto('/login');
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

test('olga (pangea-operators) can add machines', async ({ page }) => {
  const mac = uniqueMac();
  await signInWithSso(page, 'olga');
  await expect(page.locator('.who')).toHaveText('olga@example.com · operator');
  await page.getByRole('link', { name: 'Add machine' }).click();
  await page.getByLabel('MAC address (required)').fill(mac);
  await page.getByRole('button', { name: 'Save machine' }).click();
  await expect(page.getByRole('status')).toContainText(`Saved machine ${mac}`);
});

test('victor (pangea-viewers) sees machines but no way to change them, and direct calls are refused', async ({ page, api }) => {
  const mac = uniqueMac();
  await api.post('/api/v1/machines', { data: { mac, hostname: 'seen-by-victor' } });
  await signInWithSso(page, 'victor');
  await expect(page.locator('.who')).toHaveText('victor@example.com · viewer');
  await page.goto('/machines?q=seen-by-victor');
  await expect(page.getByRole('row').filter({ hasText: mac })).toBeVisible();
  await expect(page.getByRole('link', { name: 'Add machine' })).toHaveCount(0);
  await expect(page.getByRole('link', { name: 'Import' })).toHaveCount(0);
  await expect(page.getByLabel(`Select ${mac}`)).toHaveCount(0);
  const status = await page.evaluate(async () => {
    const res = await fetch('/api/gui/create_machine', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { mac: '52:54:0f:00:00:01' } }),
    });
    return [res.status, (await res.json()).code];
  });
  expect(status).toEqual([403, 'forbidden']);
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
