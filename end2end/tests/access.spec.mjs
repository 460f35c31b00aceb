import { expect } from '@playwright/test';
import { test, signIn, expectAccessible } from './support.mjs';

test('signed-out visitors are sent to the login page and back where they were going', async ({ page }) => {
  await page.goto('/machines/import');
  await expect(page).toHaveURL(/\/login\?next=%2Fmachines%2Fimport$/);
  await expectAccessible(page);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('not the password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.locator('#login-error')).toHaveText('The user name or password is wrong.');
  await expectAccessible(page);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill(process.env.PANGEA_BOOTSTRAP_PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page).toHaveURL(/\/machines\/import$/);
  await expect(page.locator('.who')).toHaveText('admin · admin');
});

test('sign out ends the session', async ({ page }) => {
  await signIn(page);
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login\?signed_out=1$/);
  await expect(page.getByText('You are signed out.')).toBeVisible();
  await page.goto('/machines');
  await expect(page).toHaveURL(/\/login\?next=/);
  const res = await page.context().request.get('/api/v1/machines');
  expect(res.status()).toBe(401);
});

test('the login page is accessible in dark mode and works by keyboard', async ({ page }) => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.goto('/login');
  await expectAccessible(page);
  await page.getByLabel('User name').focus();
  await page.keyboard.type('admin');
  await page.keyboard.press('Tab');
  await page.keyboard.type(process.env.PANGEA_BOOTSTRAP_PASSWORD);
  await page.keyboard.press('Enter');
  // Signing in lands on the home page: the fleet at a glance, accessible in dark mode too.
  await expect(page).toHaveURL(/:\d+\/$/);
  await expect(page.getByRole('heading', { name: 'Fleet' })).toBeVisible();
  await expect(page.getByRole('img', { name: /^Machines by boot state: \d+ machines$/ })).toBeVisible();
  await expect(page.getByRole('region', { name: 'Last failures' })).toBeVisible();
  await expectAccessible(page);
});
