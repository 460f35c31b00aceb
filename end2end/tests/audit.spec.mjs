import { expect } from '@playwright/test';
import { test, open, signIn, expectAccessible, uniqueMac, createMachine } from './support.mjs';

test('the audit page shows changes, filters them, opens one and exports the filtered set', async ({ page, api }) => {
  const mac = uniqueMac();
  await createMachine(api, { mac, hostname: 'audited-1' });
  await signIn(page, '/audit');
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  await expect(page.locator('table.audit')).toContainText('machine.create');
  await expectAccessible(page);
  await page.getByLabel('Actor').fill('token:e2e');
  await page.getByLabel('Action').fill('machine.create');
  await page.getByRole('button', { name: 'Filter' }).click();
  await expect(page).toHaveURL(/actor=token%3Ae2e/);
  const rows = page.locator('table.audit tbody tr');
  await expect(rows.first()).toContainText('token:e2e');
  await rows.first().getByRole('link').click();
  await expect(page.getByRole('heading', { name: /^Audit record \d+$/ })).toBeVisible();
  await expect(page.locator('pre.summary-json')).toContainText('"mac"');
  await expectAccessible(page);

  const request = page.context().request;
  const csv = await (await request.get('/api/v1/audit?format=csv&actor=token%3Ae2e&action=machine.create')).text();
  const lines = csv.trim().split('\n');
  expect(lines[0]).toBe('id,at,actor,auth_method,roles,action,target_kind,target_id,target_name,outcome,summary,ip,user_agent,request_id,prev_hash,hash');
  expect(lines.slice(1).every((l) => l.includes(',token:e2e,token,admin,machine.create,'))).toBe(true);
  expect(csv).toContain(mac);
  const ndjson = await (await request.get('/api/v1/audit?format=ndjson&actor=token%3Ae2e&action=machine.create')).text();
  expect(ndjson.trim().split('\n').length).toBe(lines.length - 1);
});

test('tokens are created on the Access page, shown once, work, and stop when revoked', async ({ page, playwright, baseURL }) => {
  await signIn(page, '/access');
  await expect(page.locator('main[data-hydrated="true"]')).toBeAttached();
  await page.getByLabel('Token name').fill('e2e-made');
  await page.getByLabel('Token role').selectOption('viewer');
  await page.getByRole('button', { name: 'Create token' }).click();
  const token = (await page.locator('.token-value').textContent()).trim();
  expect(token).toMatch(/^pgt_/);
  const client = await playwright.request.newContext({ baseURL, extraHTTPHeaders: { Authorization: `Bearer ${token}` } });
  expect((await client.get('/api/v1/machines')).status()).toBe(200);
  expect((await client.post('/api/v1/machines', { data: { mac: uniqueMac() } })).status()).toBe(403);
  await page.getByRole('button', { name: 'Revoke token e2e-made' }).click();
  await expect(page.locator('.toasts')).toContainText('Token revoked.');
  expect((await client.get('/api/v1/machines')).status()).toBe(401);
  await client.dispose();
  await page.reload();
  await expect(page.locator('.token-value')).toHaveCount(0);
  await expectAccessible(page);
});
